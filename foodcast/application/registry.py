"""The model registry: each trained model a version, the challenger, and the champion gate.

``train`` adds its ``multi_model`` to the registered model as a new version tagged with its
train run, features run and training weeks, and points the alias ``challenger`` at it.
``promote`` then moves the alias ``champion`` to the challenger only when it scores at least
as well as the current champion on the same weeks: both configurations (features and model
parameters of their runs) are backtested, rolling origin, on the ``gate_weeks`` weeks that end
with the challenger's last training week, each trained on as many weeks before them as the
challenger was. The first model becomes champion.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
from mlflow.exceptions import MlflowException

from foodcast.application import catalog
from foodcast.errors import FoodcastError

CHALLENGER, CHAMPION = "challenger", "champion"
TRAIN_RUN_TAG, FEATURES_RUN_TAG, WEEKS_TAG = "train_run_id", "features_run_id", "weeks"
# On a version promote made champion: the version it replaced ("" when it was the first).
REPLACED_TAG = "replaced_champion"


def mark_challenger(name: str, info, features_run_id: str, weeks: str) -> None:
    """Tag the version ``train`` just registered and point ``challenger`` at it.

    Parameters
    ----------
    name : str
        The registered model ("" when train registered nothing).
    info : mlflow.models.model.ModelInfo
        What logging the model returned (its ``registered_model_version``).
    features_run_id : str
    weeks : str
        The training weeks, ``start-end``.
    """
    if not name:
        return
    client = mlflow.tracking.MlflowClient()
    version = str(info.registered_model_version)
    tags = {TRAIN_RUN_TAG: info.run_id, FEATURES_RUN_TAG: features_run_id, WEEKS_TAG: weeks}
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, CHALLENGER, version)


def version_of_train_run(client, name: str, train_run_id: str):
    """The version of ``name`` that train run ``train_run_id`` registered.

    Raises
    ------
    FoodcastError
        If it registered none.
    """
    versions = client.search_model_versions(f"name = '{name}' and run_id = '{train_run_id}'")
    if not versions:
        raise FoodcastError(f"train run {train_run_id} registered no version of model {name!r}")
    return max(versions, key=lambda v: int(v.version))


def champion_of(client, name: str):
    """The version the alias ``champion`` points at, or ``None``."""
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


@dataclass(frozen=True)
class Decision:
    """What the gate decided: promote or not, the two scores (``None`` when not computed), why."""

    promote: bool
    reason: str
    challenger_mae: float | None = None
    champion_mae: float | None = None


def decide(challenger_mae: float, champion_mae: float, margin: float) -> Decision:
    """The gate's rule: the challenger becomes champion when its MAE is at most
    ``(1 + margin)`` times the champion's (ties promote the newer model)."""
    scores = f"backtest MAE {challenger_mae:.3f} against the champion's {champion_mae:.3f}"
    if challenger_mae <= champion_mae:
        return Decision(True, f"at least as good: {scores}", challenger_mae, champion_mae)
    if challenger_mae <= champion_mae * (1 + margin):
        return Decision(True, f"within the margin of {margin:.1%}: {scores}", challenger_mae, champion_mae)
    return Decision(False, f"worse by more than the margin of {margin:.1%}: {scores}", challenger_mae, champion_mae)


# What a parameter added later meant for the runs logged before it existed (their champion
# is backtested with the configuration it was trained with).
BEFORE_PARAM = {"level_halflife": 0.0, "profile_weeks": 0, "profile_groups": 2, "n_bins": 5}


def _param(run, name: str):
    try:
        return run.data.params[name]
    except KeyError:
        if name in BEFORE_PARAM:
            return BEFORE_PARAM[name]
        raise FoodcastError(f"run {run.info.run_id} has no parameter {name}: it cannot be backtested again") from None


def configuration(train_run) -> tuple[dict, dict, tuple[int, int]]:
    """The features and model parameters a train run was made with, and its training weeks."""
    from foodcast.application import stages
    from foodcast.application.upstream import check_run

    features_run = check_run(train_run.data.params[catalog.run_id_param(catalog.FEATURES)], catalog.FEATURES)
    load_run = check_run(features_run.data.params[catalog.run_id_param(catalog.LOAD)], catalog.LOAD)
    features = {p.name: p.cast(_param(features_run, p.name)) for p in stages.FEATURE_PARAMS}
    model = stages.model_settings({p.name: p.cast(_param(train_run, p.name)) for p in stages.MODEL_PARAMS})
    weeks = int(load_run.data.params["start_week"]), int(load_run.data.params["end_week"])
    return features, model, weeks


def gate(challenger_train_run, champion_train_run, gate_weeks: int, margin: float, hourly) -> Decision:
    """Backtest both configurations on the same weeks and apply :func:`decide`.

    Parameters
    ----------
    challenger_train_run, champion_train_run : mlflow.entities.Run
        The train runs of the two versions.
    gate_weeks : int
        Target weeks, ending with the challenger's last training week.
    margin : float
    hourly : DataFrame
        The hourly cash-in of the weeks the backtests read (see :func:`gate_weeks_read`).
    """
    from foodcast.domain.backtest import backtest

    features, model, (start, end) = configuration(challenger_train_run)
    their_features, their_model, _ = configuration(champion_train_run)
    if (features, model) == (their_features, their_model):
        return Decision(True, "same features and model parameters as the champion (equal backtests), "
                              f"trained on weeks {start}-{end}")
    first = end - gate_weeks + 1
    window = gate_window(start, end, gate_weeks)
    for who, settings in (("challenger", features), ("champion", their_features)):
        needed = max(settings["lag_in_week"], settings["level_weeks"])
        if window <= needed:
            raise FoodcastError(
                f"the gate trains on the {window} weeks before its first week {first}, which leave no hour with "
                f"all its lags and level for the {who}'s lag_in_week={settings['lag_in_week']} and "
                f"level_weeks={settings['level_weeks']}: lower gate_weeks (or train on more weeks)")
    ours = backtest(None, first, end, window, features, model, hourly=hourly).summary["mae_model"]
    theirs = backtest(None, first, end, window, their_features, their_model, hourly=hourly).summary["mae_model"]
    return decide(ours, theirs, margin)


def gate_window(start_week: int, end_week: int, gate_weeks: int) -> int:
    """Training weeks before each gate week: as many as the challenger had, fewer when the data
    cannot go back that far.

    Raises
    ------
    FoodcastError
        If the first gate week leaves fewer than 4 weeks before it.
    """
    first = end_week - gate_weeks + 1
    if first - 4 < 1:
        raise FoodcastError(f"the gate's first week {first} has fewer than 4 weeks before it: lower gate_weeks")
    return min(end_week - start_week + 1, first - 1)


def gate_weeks_read(start_week: int, end_week: int, gate_weeks: int, history: int = 1) -> tuple[int, int]:
    """The weeks of batches the gate's backtests read: each gate week's training window, the
    ``history`` weeks its prediction rows read (lags, level, profile: ``forecast.past_weeks``)
    and the 4 weeks of the references."""
    first = end_week - gate_weeks + 1
    return max(1, first - max(gate_window(start_week, end_week, gate_weeks), 4, int(history))), end_week


def history_weeks(*configurations) -> int:
    """The most weeks before a forecast week that the features of ``configurations`` (as
    :func:`configuration` returns them) read."""
    from foodcast.domain.forecast import past_weeks

    return max(past_weeks(f.get("lag_in_week", 1), f.get("level_weeks", 0), f.get("profile_weeks", 0))
               for f, _, _ in configurations)
