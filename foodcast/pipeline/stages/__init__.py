"""One module per stage: its :class:`~foodcast.pipeline.stage.Stage` and the hooks that serve it
alone. ``foodcast.pipeline.stage_table`` lists them; each stage command imports only its own,
so that its cache key does not depend on the others' (``foodcast.pipeline.stage_code``)."""
