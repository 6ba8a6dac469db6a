"""Upstream runs by id: checked before use (it exists, is FINISHED, is the expected stage), and
what they logged (their models, their weeks)."""

from __future__ import annotations

import mlflow
from mlflow.entities import LifecycleStage, LoggedModel, Run, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from foodcast.errors import FoodcastError
from foodcast.tracking import names

_CHECKED: dict[str, Run] = {}  # run id -> the FINISHED upstream run check_run fetched, for this process


def known_run(run_id: str) -> Run:
    """An upstream run by id: the one :func:`check_run` fetched, else fetched now.

    An upstream run is FINISHED: what a stage reads of it (experiment, recorded checksums)
    no longer changes, so one request per run and process is enough.
    """
    return _CHECKED.get(run_id) or MlflowClient().get_run(run_id)


def check_run(run_id: str | None, stage: str, deleted_ok: bool = False) -> Run:
    """Return the upstream run ``run_id`` if it exists, is FINISHED, is a ``stage`` run and,
    unless ``deleted_ok`` (only its parameters are read), was not deleted: a deleted run is
    one its user meant to be rid of, and the cache never reuses one.

    Raises
    ------
    FoodcastError
        One line naming the run id and what is wrong.
    """
    if not run_id:
        raise FoodcastError(f"a {names.run_id_param(stage)} is required")
    try:
        run = MlflowClient().get_run(run_id)
    except MlflowException:
        raise FoodcastError(
            f"run {run_id} ({names.run_id_param(stage)}) does not exist in "
            f"the tracking store {mlflow.get_tracking_uri()}"
        ) from None
    actual = run.data.tags.get(names.STEP_TAG)
    if actual != stage:
        raise FoodcastError(
            f"run {run_id} is a {actual or 'non-foodcast'} run, not a {stage} run ({names.run_id_param(stage)})"
        )
    if run.info.status != RunStatus.to_string(RunStatus.FINISHED):
        raise FoodcastError(f"run {run_id} ({stage}) is {run.info.status}, not FINISHED")
    if run.info.lifecycle_stage == LifecycleStage.DELETED and not deleted_ok:
        raise FoodcastError(
            f"run {run_id} ({stage}) is deleted: restore it (mlflow runs restore --run-id {run_id}) or give another run"
        )
    _CHECKED[run_id] = run
    return run


def training_weeks(features_run: Run) -> str:
    """The weeks a checked features run's load read, as ``start-end``."""
    load = check_run(features_run.data.params[names.run_id_param(names.LOAD)], names.LOAD)
    return f"{load.data.params['start_week']}-{load.data.params['end_week']}"


def forecast_week(predict_run: Run) -> int:
    """The week a checked predict run forecast: its tag, else its future run's ``next_week``."""
    week = predict_run.data.tags.get(names.WEEK_TAG)
    if week is None:
        future_id = predict_run.data.params.get(names.run_id_param(names.FUTURE))
        week = check_run(future_id, names.FUTURE).data.params["next_week"]
    return int(week)


def logged_models(client: MlflowClient, run: Run) -> dict[str, LoggedModel]:
    """``{name: LoggedModel}`` of the models ``run`` logged (``run`` as from ``get_run``)."""
    outputs = run.outputs.model_outputs if run.outputs else []
    models = (client.get_logged_model(output.model_id) for output in outputs)
    return {model.name: model for model in models}


def logged_model(run: Run, name: str, stage: str) -> LoggedModel:
    """The LoggedModel ``name`` that the checked ``stage`` run ``run`` logged.

    Raises
    ------
    FoodcastError
        If the run logged no model of that name, or its files are gone.
    """
    client = MlflowClient()
    model = logged_models(client, run).get(name)
    if model is None:
        raise FoodcastError(f"run {run.info.run_id} ({stage}) has no logged model {name}")
    if not client.list_logged_model_artifacts(model.model_id):
        raise FoodcastError(
            f"run {run.info.run_id} ({stage}): the files of its model {name} "
            f"({model.model_id}) are gone from the artifact store"
        )
    return model
