"""Find a finished run of a stage that can be reused instead of recomputed."""

from __future__ import annotations

import logging

from mlflow.tracking import MlflowClient

from foodcast.application import catalog
from foodcast.application.integrity import mismatch
from foodcast.application.stages import Stage
from foodcast.application.upstream import logged_models

logger = logging.getLogger("foodcast.main")


def find_reusable(client: MlflowClient, experiment_id: str, stage: Stage, key: str):
    """The newest FINISHED run of ``experiment_id`` tagged with cache key ``key`` whose outputs
    are all still there, or ``None``.

    One ``search_runs`` query (filtered on the key's index tag and the status, newest first,
    ``max_results=1``) then a look at the hit's artifacts and logged models.
    """
    runs = client.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.`{catalog.cache_index_tag(key)}` = '{stage.name}' AND attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return None
    run = runs[0]
    return run if outputs_present(client, run, stage) else None


def outputs_present(client: MlflowClient, run, stage: Stage) -> bool:
    """Whether every artifact and logged model ``stage`` produces is still stored for ``run``,
    byte for byte as the run recorded it."""
    models = {}
    if stage.models:
        # Search results carry no run outputs: fetch the run to see its logged models.
        found = logged_models(client, client.get_run(run.info.run_id))
        if not set(stage.models) <= set(found):
            return False
        models = {name: found[name].artifact_location for name in stage.models}
    reason = mismatch(run, stage.artifacts, models)
    if reason is not None:
        logger.info("%s: run %s is not reused: %s", stage.name, run.info.run_id, reason)
    return reason is None
