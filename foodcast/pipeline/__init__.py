"""The pipeline: parameters, the stages and their table, the plan of a ``main`` run, cache keys
and reuse, the frame a stage's run works in, and the runner behind ``main.py``.

``params``, ``stage``, ``stages``, ``stage_table`` and ``command`` import nothing heavy: every
stage command and ``main --help`` read them.
"""
