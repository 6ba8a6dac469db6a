"""What ``main`` checks of the registered champion before anything runs (``model=champion``
forecasts with features like the champion's), and how a run's parameters read when the run
was logged before a parameter existed. Apart from the gate (``foodcast.pipeline.promotion``),
whose backtest brings scikit-learn: ``main`` starts ~1.2 s sooner without it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from foodcast.errors import FoodcastError
from foodcast.pipeline.params import FEATURE_PARAMS, GRANULARITY, REGISTERED_MODEL_NAME
from foodcast.tracking import names
from foodcast.tracking.model_registry import champion_of
from foodcast.tracking.runs import check_run

# What a parameter added later meant for the runs logged before it existed (their champion
# is backtested with the configuration it was trained with).
BEFORE_PARAM = {
    "level_halflife": 0.0,
    "profile_weeks": 0,
    "profile_groups": 2,
    "n_bins": 5,
    "granularity": "chain",
    "restaurant_model": "local",
}


def recorded_param(run: Run, name: str) -> Any:
    """Parameter ``name`` of ``run``, or what it meant before it existed (``BEFORE_PARAM``)."""
    try:
        return run.data.params[name]
    except KeyError:
        if name in BEFORE_PARAM:
            return BEFORE_PARAM[name]
        raise FoodcastError(f"run {run.info.run_id} has no parameter {name}: it cannot be backtested again") from None


def champion_feature_differences(client: MlflowClient, options: Mapping[str, Any]) -> str | None:
    """How ``main``'s feature parameters differ from those of the registered champion, which
    ``model=champion`` forecasts with: ``"lag_in_week=1 (the champion's: 0), ..."``, or ``None``
    when they are the same or there is no champion (promote decides which one it is)."""
    champion = champion_of(client, options[REGISTERED_MODEL_NAME.name])
    if champion is None:
        return None
    features_run = check_run(champion.tags.get(names.FEATURES_RUN_TAG), names.FEATURES)
    differences = []
    # A model per restaurant forecasts restaurants' rows, a chain's model the chain's: the
    # champion's granularity is its load run's.
    load_run = check_run(features_run.data.params[names.run_id_param(names.LOAD)], names.LOAD, deleted_ok=True)
    ours, theirs = options.get(GRANULARITY.name, GRANULARITY.default), recorded_param(load_run, GRANULARITY.name)
    if ours != theirs:
        differences.append(f"{GRANULARITY.name}={ours} (the champion's: {theirs})")
    for param in FEATURE_PARAMS:
        ours, theirs = param.cast(options[param.name]), param.cast(recorded_param(features_run, param.name))
        if ours != theirs:
            differences.append(f"{param.name}={param.text(ours)} (the champion's: {param.text(theirs)})")
    if not differences:
        return None
    return f"version {champion.version} of {options[REGISTERED_MODEL_NAME.name]!r}: " + ", ".join(differences)
