"""Fetch what an upstream step produced, by run id, after checking the run is usable."""

from __future__ import annotations

import os

import mlflow
from mlflow.entities import RunStatus
from mlflow.exceptions import MlflowException

from foodcast.application import catalog
from foodcast.errors import FoodcastError


_CHECKED: dict = {}  # run id -> the FINISHED upstream run check_run fetched, for this process


def known_run(run_id: str):
    """An upstream run by id: the one :func:`check_run` fetched, else fetched now.

    An upstream run is FINISHED: what a stage reads of it (experiment, recorded checksums)
    no longer changes, so one request per run and process is enough.
    """
    return _CHECKED.get(run_id) or mlflow.tracking.MlflowClient().get_run(run_id)


def check_run(run_id: str, stage: str):
    """Return the upstream run ``run_id`` if it exists, is FINISHED and is a ``stage`` run.

    Raises
    ------
    FoodcastError
        One line naming the run id and what is wrong.
    """
    if not run_id:
        raise FoodcastError(f"a {catalog.run_id_param(stage)} is required")
    try:
        run = mlflow.tracking.MlflowClient().get_run(run_id)
    except MlflowException:
        raise FoodcastError(f"run {run_id} ({catalog.run_id_param(stage)}) does not exist in "
                            f"the tracking store {mlflow.get_tracking_uri()}") from None
    actual = run.data.tags.get(catalog.STEP_TAG)
    if actual != stage:
        raise FoodcastError(f"run {run_id} is a {actual or 'non-foodcast'} run, "
                            f"not a {stage} run ({catalog.run_id_param(stage)})")
    if run.info.status != RunStatus.to_string(RunStatus.FINISHED):
        raise FoodcastError(f"run {run_id} ({stage}) is {run.info.status}, not FINISHED")
    _CHECKED[run_id] = run
    return run


def training_weeks(features_run) -> str:
    """The weeks a checked features run's load read, as ``start-end``."""
    load = check_run(features_run.data.params[catalog.run_id_param(catalog.LOAD)], catalog.LOAD)
    return f"{load.data.params['start_week']}-{load.data.params['end_week']}"


def forecast_week(predict_run) -> int:
    """The week a checked predict run forecast: its tag, else its future run's ``next_week``."""
    week = predict_run.data.tags.get(catalog.WEEK_TAG)
    if week is None:
        future_id = predict_run.data.params.get(catalog.run_id_param(catalog.FUTURE))
        week = check_run(future_id, catalog.FUTURE).data.params["next_week"]
    return int(week)


def read_frame(run_id: str, artifact: tuple[str, str], stage: str, parse_dates=("order_date",)):
    """Download a CSV artifact of a checked ``stage`` run and read it.

    Raises
    ------
    FoodcastError
        If the run has no such artifact, or it changed since it was logged (its checksum, when
        recorded, differs), or it is not a CSV file.
    """
    import pandas as pd

    from foodcast.application.integrity import artifact_tag, file_digest
    from foodcast.application.processes import temp_dir

    path = catalog.artifact_path(artifact)
    expected = known_run(run_id).data.tags.get(artifact_tag(path))
    with temp_dir("read") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=tmp)
        except (MlflowException, OSError):
            raise FoodcastError(f"run {run_id} ({stage}) has no artifact {path}") from None
        if not os.path.isfile(local):
            raise FoodcastError(f"run {run_id} ({stage}) has no artifact {path}")
        if expected is not None and file_digest(local) != expected:
            raise FoodcastError(f"run {run_id} ({stage}): artifact {path} has changed since the run "
                                "finished (its checksum differs from the one recorded)")
        try:
            return pd.read_csv(local, parse_dates=list(parse_dates))
        except (ValueError, pd.errors.ParserError) as exc:
            raise FoodcastError(f"run {run_id} ({stage}): artifact {path} cannot be read as CSV "
                                f"({' '.join(str(exc).split())[:200]})") from None


def logged_models(client, run) -> dict:
    """``{name: LoggedModel}`` of the models ``run`` logged (``run`` as from ``get_run``)."""
    outputs = run.outputs.model_outputs if run.outputs else []
    models = (client.get_logged_model(output.model_id) for output in outputs)
    return {model.name: model for model in models}


def logged_model(run, name: str, stage: str):
    """The LoggedModel ``name`` that the checked ``stage`` run ``run`` logged.

    Raises
    ------
    FoodcastError
        If the run logged no model of that name, or its files are gone.
    """
    client = mlflow.tracking.MlflowClient()
    model = logged_models(client, run).get(name)
    if model is None:
        raise FoodcastError(f"run {run.info.run_id} ({stage}) has no logged model {name}")
    if not client.list_logged_model_artifacts(model.model_id):
        raise FoodcastError(f"run {run.info.run_id} ({stage}): the files of its model {name} "
                            f"({model.model_id}) are gone from the artifact store")
    return model


def training_set(features_run_id: str):
    """Check a features run, read its training set and log it as this run's input.

    Returns
    -------
    x : DataFrame
        Features indexed by ``order_date``.
    y : Series
        ``cash_in`` indexed by ``order_date``.
    """
    from foodcast.application.datasets import log_input_frame

    check_run(features_run_id, catalog.FEATURES)
    x = read_frame(features_run_id, catalog.X_TRAIN, catalog.FEATURES)
    y = read_frame(features_run_id, catalog.Y_TRAIN, catalog.FEATURES)
    log_input_frame(x.merge(y, on="order_date"), features_run_id, catalog.X_TRAIN,
                    context="training", targets="cash_in", stage=catalog.FEATURES)
    return x.set_index("order_date"), y.set_index("order_date")["cash_in"]
