"""The champion gate as the ``promote`` stage runs it: the challenger (this train run's version)
against the champion, each backtested with the configuration its train run was made with
(``foodcast.core.gate``), and the registry's aliases moved by the decision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from foodcast.core.gate import Configuration, Decision, compare
from foodcast.core.windows import forecast_history, gate_weeks_read
from foodcast.errors import FoodcastError
from foodcast.pipeline.params import FEATURE_PARAMS, MODEL_PARAMS, model_settings
from foodcast.settings import data_dir
from foodcast.tracking import names
from foodcast.tracking.datasets import read_logged_batches
from foodcast.tracking.model_registry import champion_of, point_alias, version_of_train_run
from foodcast.tracking.runs import check_run

# What a parameter added later meant for the runs logged before it existed (their champion
# is backtested with the configuration it was trained with).
BEFORE_PARAM = {"level_halflife": 0.0, "profile_weeks": 0, "profile_groups": 2, "n_bins": 5}


def _param(run: Run, name: str) -> Any:
    try:
        return run.data.params[name]
    except KeyError:
        if name in BEFORE_PARAM:
            return BEFORE_PARAM[name]
        raise FoodcastError(f"run {run.info.run_id} has no parameter {name}: it cannot be backtested again") from None


def configuration(train_run: Run) -> Configuration:
    """The features and model parameters a checked train run was made with, and its training
    weeks (read from its upstream runs, deleted or not: only their parameters are read)."""
    features_run = check_run(train_run.data.params[names.run_id_param(names.FEATURES)], names.FEATURES, deleted_ok=True)
    load_run = check_run(features_run.data.params[names.run_id_param(names.LOAD)], names.LOAD, deleted_ok=True)
    features = {p.name: p.cast(_param(features_run, p.name)) for p in FEATURE_PARAMS}
    model = model_settings({p.name: p.cast(_param(train_run, p.name)) for p in MODEL_PARAMS})
    return Configuration(
        features, model, int(load_run.data.params["start_week"]), int(load_run.data.params["end_week"])
    )


@dataclass(frozen=True)
class Gating:
    """One pass of the gate: the two versions and what was decided."""

    challenger: ModelVersion
    champion: ModelVersion | None
    decision: Decision

    @property
    def verdict(self) -> str:
        return "promoted" if self.decision.promote else "kept"

    @property
    def summary(self) -> str:
        was = f"version {self.champion.version}" if self.champion is not None else "none"
        return (
            f"Challenger version {self.challenger.version} {self.verdict}: {self.decision.reason} "
            f"(champion before: {was})."
        )


def gate(
    client: MlflowClient, model_name: str, train_run_id: str, gate_weeks: int, margin: float, allow_missing: bool
) -> Gating:
    """Decide whether the version train run ``train_run_id`` registered becomes champion.

    The first model becomes champion; the champion itself stays; otherwise both configurations
    are backtested on the gate's weeks (batches read and recorded as this run's input).
    """
    challenger_run = check_run(train_run_id, names.TRAIN)
    challenger = version_of_train_run(client, model_name, train_run_id)
    champion = champion_of(client, model_name)
    if champion is None:
        return Gating(challenger, None, Decision(True, "the first model of the registry"))
    if champion.version == challenger.version:
        return Gating(challenger, champion, Decision(True, "it is the champion already"))
    ours = configuration(challenger_run)
    # The champion's train run deleted: its configuration still backtests (else no promote could pass).
    theirs = configuration(check_run(champion.tags[names.TRAIN_RUN_TAG], names.TRAIN, deleted_ok=True))
    history = max(forecast_history(**ours.features), forecast_history(**theirs.features))
    first, last = gate_weeks_read(ours.start_week, ours.end_week, gate_weeks, history)
    hourly, _ = read_logged_batches(data_dir(), first, last, allow_missing)
    return Gating(challenger, champion, compare(ours, theirs, gate_weeks, margin, hourly))


def apply(client: MlflowClient, model_name: str, gating: Gating) -> None:
    """Point the alias challenger at the version compared; write the decision in its description
    and, when it is promoted, move the champion alias to it (recording the version it replaced).
    No more when the challenger is the champion already: its description keeps the decision that
    made it champion."""
    champion, challenger = gating.champion, gating.challenger
    point_alias(client, model_name, names.CHALLENGER, challenger.version)
    if champion is not None and champion.version == challenger.version:
        return
    client.update_model_version(model_name, challenger.version, description=gating.summary)
    if gating.decision.promote:
        client.set_model_version_tag(
            model_name, challenger.version, names.REPLACED_TAG, champion.version if champion is not None else ""
        )
        point_alias(client, model_name, names.CHAMPION, challenger.version)
