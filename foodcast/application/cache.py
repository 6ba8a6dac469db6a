"""Find a finished run of a stage that can be reused instead of recomputed."""

from __future__ import annotations

import mlflow.artifacts
from mlflow.tracking import MlflowClient

from foodcast.application import catalog
from foodcast.application.upstream import logged_models

PARAM_TYPES = {"int": int, "float": float, "string": str, "str": str, "path": str, "uri": str}


def entry_point_params(project_dir) -> dict[str, dict[str, tuple[type, object]]]:
    """``{entry point: {parameter: (python type, default)}}`` as declared in MLproject."""
    import os

    import yaml

    with open(os.path.join(project_dir, "MLproject"), encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    declared = {}
    for name, entry in spec["entry_points"].items():
        params = {}
        for param, value in (entry.get("parameters") or {}).items():
            if not isinstance(value, dict):
                value = {"type": "string", "default": value}
            params[param] = (PARAM_TYPES[value.get("type", "string")], value.get("default"))
        declared[name] = params
    return declared


def normalise_params(declared: dict, values: dict) -> dict:
    """Values cast to their MLproject types, defaults filled in, undeclared names refused."""
    unknown = set(values) - set(declared)
    if unknown:
        raise ValueError(f"parameters {sorted(unknown)} are not declared in MLproject")
    out = {}
    for name, (kind, default) in declared.items():
        value = values.get(name, default)
        out[name] = None if value is None else kind(value)
    return out


def find_reusable(client: MlflowClient, experiment_id: str, stage: str, key: str):
    """The newest FINISHED run of ``experiment_id`` tagged with cache key ``key`` whose outputs
    are all still there, or ``None``.

    One ``search_runs`` query (filtered on the key's index tag and the status, newest first,
    ``max_results=1``) then a look at the hit's artifacts and logged models.
    """
    runs = client.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.`{catalog.cache_index_tag(key)}` = '{stage}' AND attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return None
    run = runs[0]
    return run if outputs_present(client, run, stage) else None


def outputs_present(client: MlflowClient, run, stage: str) -> bool:
    """Whether every artifact and logged model ``stage`` produces is still stored for ``run``."""
    run_id = run.info.run_id
    for directory in sorted({d for d, _ in catalog.ARTIFACTS[stage]}):
        # Listed from the run's artifact URI, which the search result carries:
        # client.list_artifacts would look the run up in the store again for each directory.
        listed = {f.path for f in mlflow.artifacts.list_artifacts(artifact_uri=f"{run.info.artifact_uri}/{directory}")}
        wanted = {name for d, name in catalog.ARTIFACTS[stage] if d == directory}
        if not wanted <= {path.rsplit("/", 1)[-1] for path in listed}:
            return False
    names = catalog.MODELS.get(stage)
    if names:
        # Search results carry no run outputs: fetch the run to see its logged models.
        found = logged_models(client, client.get_run(run_id))
        for name in names:
            if name not in found or not client.list_logged_model_artifacts(found[name].model_id):
                return False
    return True
