"""Find a finished run of a stage that can be reused instead of recomputed."""

from __future__ import annotations

import mlflow.artifacts
from mlflow.tracking import MlflowClient

from foodcast.application import catalog
from foodcast.application.stages import Stage
from foodcast.application.upstream import logged_models


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
    """Whether every artifact and logged model ``stage`` produces is still stored for ``run``."""
    for directory in sorted({d for d, _ in stage.artifacts}):
        # Listed from the run's artifact URI, which the search result carries:
        # client.list_artifacts would look the run up in the store again for each directory.
        listed = {f.path for f in mlflow.artifacts.list_artifacts(artifact_uri=f"{run.info.artifact_uri}/{directory}")}
        wanted = {name for d, name in stage.artifacts if d == directory}
        if not wanted <= {path.rsplit("/", 1)[-1] for path in listed}:
            return False
    if stage.models:
        # Search results carry no run outputs: fetch the run to see its logged models.
        found = logged_models(client, client.get_run(run.info.run_id))
        for name in stage.models:
            if name not in found or not client.list_logged_model_artifacts(found[name].model_id):
                return False
    return True
