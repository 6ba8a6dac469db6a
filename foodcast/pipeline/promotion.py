"""The champion gate as the ``promote`` stage runs it: the challenger (this train run's version)
against the champion, each backtested with the configuration its train run was made with
(``foodcast.core.gate``), and the registry's aliases moved by the decision."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from mlflow.tracking import MlflowClient

from foodcast.core.gate import Configuration, Decision, compare
from foodcast.core.windows import forecast_history, gate_weeks_read
from foodcast.pipeline.champion import recorded_param
from foodcast.pipeline.params import (
    CLOSED_WEEKS,
    FEATURE_PARAMS,
    GRANULARITY,
    MODEL_PARAMS,
    RESTAURANT_MODEL,
    model_settings,
)
from foodcast.pipeline.stages.promote import last_champion
from foodcast.settings import data_dir, workers
from foodcast.tracking import names
from foodcast.tracking.datasets import read_logged_batches
from foodcast.tracking.model_registry import champion_of, point_alias, version_of_train_run
from foodcast.tracking.runs import check_run


def configuration(train_run: Run) -> Configuration:
    """The features and model parameters a checked train run was made with, and its training
    weeks (read from its upstream runs, deleted or not: only their parameters are read)."""
    features_run = check_run(train_run.data.params[names.run_id_param(names.FEATURES)], names.FEATURES, deleted_ok=True)
    load_run = check_run(features_run.data.params[names.run_id_param(names.LOAD)], names.LOAD, deleted_ok=True)
    features = {p.name: p.cast(recorded_param(features_run, p.name)) for p in FEATURE_PARAMS}
    model = model_settings({p.name: p.cast(recorded_param(train_run, p.name)) for p in MODEL_PARAMS})
    restaurants = None
    if recorded_param(load_run, GRANULARITY.name) == "restaurant":
        # closed_weeks is future's, not in the train run's lineage: the default.
        restaurants = {"kind": recorded_param(train_run, RESTAURANT_MODEL.name), "closed_weeks": CLOSED_WEEKS.default}
    return Configuration(
        features,
        model,
        int(load_run.data.params["start_week"]),
        int(load_run.data.params["end_week"]),
        restaurants,
    )


@dataclass(frozen=True)
class Gating:
    """One pass of the gate: the two versions and what was decided.

    ``champion`` is the version the challenger was compared with: the one the alias points at,
    or, when it points at none (``former``), the last version that was champion.
    """

    challenger: ModelVersion
    champion: ModelVersion | None
    decision: Decision
    former: bool = False

    @property
    def verdict(self) -> str:
        return "promoted" if self.decision.promote else "kept"

    @property
    def summary(self) -> str:
        if self.champion is None:
            was = "none"
        elif self.former:
            was = f"none; version {self.champion.version} was champion last"
        else:
            was = f"version {self.champion.version}"
        return (
            f"Challenger version {self.challenger.version} {self.verdict}: {self.decision.reason} "
            f"(champion before: {was})."
        )


def gate(
    client: MlflowClient, model_name: str, train_run_id: str, gate_weeks: int, margin: float, allow_missing: bool
) -> Gating:
    """Decide whether the version train run ``train_run_id`` registered becomes champion.

    The first model of the registry becomes champion; the champion itself stays; otherwise both
    configurations are backtested on the gate's weeks (batches read and recorded as this run's
    input). When the alias ``champion`` points at no version (deleted by hand) but a version
    was champion once, the challenger is gated against the last such version, and the reason
    says so: deleting the alias does not let a model the gate refused through.
    """
    challenger_run = check_run(train_run_id, names.TRAIN)
    challenger = version_of_train_run(client, model_name, train_run_id)
    champion, former = champion_of(client, model_name), False
    if champion is None:
        champion, former = last_champion(client, model_name), True
        if champion is None:
            versions = client.search_model_versions(f"name = '{model_name}'")
            others = [v for v in versions if v.version != challenger.version]
            reason = (
                f"no version was ever champion ({len(others)} other versions, none promoted)"
                if others
                else "the first model of the registry"
            )
            return Gating(challenger, None, Decision(True, reason))
    if champion.version == challenger.version:
        if former:
            reason = "it was champion last (the alias champion pointed at no version)"
            return Gating(challenger, champion, Decision(True, reason), former)
        return Gating(challenger, champion, Decision(True, "it is the champion already"))
    ours = configuration(challenger_run)
    # The champion's train run deleted: its configuration still backtests (else no promote could pass).
    theirs = configuration(check_run(champion.tags[names.TRAIN_RUN_TAG], names.TRAIN, deleted_ok=True))
    history = max(forecast_history(**ours.features), forecast_history(**theirs.features))
    granularity = "chain" if ours.restaurants is None and theirs.restaurants is None else "restaurant"
    if granularity == "restaurant":  # and the weeks that tell an open restaurant from a closed one
        history = max(history, *(int(c.restaurants["closed_weeks"]) for c in (ours, theirs) if c.restaurants))
    first, last = gate_weeks_read(ours.start_week, ours.end_week, gate_weeks, history)
    hourly, _ = read_logged_batches(data_dir(), first, last, allow_missing, granularity=granularity)
    decision = compare(ours, theirs, gate_weeks, margin, hourly, workers())
    if former:
        against = f"; against version {champion.version}, champion last: the alias champion points at no version"
        decision = replace(decision, reason=decision.reason + against)
    return Gating(challenger, champion, decision, former)


def apply(client: MlflowClient, model_name: str, gating: Gating) -> None:
    """Point the alias challenger at the version compared; write the decision in its description
    and, when it is promoted, move the champion alias to it (recording the version it was
    compared with, and when). When the challenger is the champion already, no more (its
    description keeps the decision that made it champion), except that the alias champion is
    pointed at it again if it pointed at none."""
    champion, challenger = gating.champion, gating.challenger
    point_alias(client, model_name, names.CHALLENGER, challenger.version)
    if champion is not None and champion.version == challenger.version:
        if gating.former:
            _make_champion(client, model_name, challenger.version)
        return
    client.update_model_version(model_name, challenger.version, description=gating.summary)
    if gating.decision.promote:
        client.set_model_version_tag(
            model_name, challenger.version, names.REPLACED_TAG, champion.version if champion is not None else ""
        )
        _make_champion(client, model_name, challenger.version)


def _make_champion(client: MlflowClient, model_name: str, version: str) -> None:
    client.set_model_version_tag(model_name, version, names.CHAMPION_SINCE_TAG, str(int(time.time() * 1000)))
    point_alias(client, model_name, names.CHAMPION, version)
