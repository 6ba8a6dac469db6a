"""The champion gate's arithmetic: two configurations backtested on the same weeks, and the
rule that decides between them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from foodcast.core.backtest import backtest
from foodcast.core.windows import gate_targets, gate_window
from foodcast.errors import FoodcastError


@dataclass(frozen=True)
class Configuration:
    """What a trained model was made of: its feature and model settings and its training weeks."""

    features: dict[str, Any]
    model: dict[str, Any]
    start_week: int
    end_week: int


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


def compare(
    challenger: Configuration, champion: Configuration, gate_weeks: int, margin: float, hourly: pd.DataFrame
) -> Decision:
    """Backtest both configurations on the same weeks and apply :func:`decide`.

    The target weeks are the ``gate_weeks`` weeks that end with the challenger's last training
    week, each trained on as many weeks before it as the challenger was (``windows.gate_window``).

    Parameters
    ----------
    challenger, champion : Configuration
    gate_weeks : int
    margin : float
    hourly : DataFrame
        The hourly cash-in of the weeks the backtests read (``windows.gate_weeks_read``).

    Raises
    ------
    FoodcastError
        If the window leaves no training hour with all its lags and level for one of them.
    """
    start, end = challenger.start_week, challenger.end_week
    if (challenger.features, challenger.model) == (champion.features, champion.model):
        return Decision(
            True,
            f"same features and model parameters as the champion (equal backtests), trained on weeks {start}-{end}",
        )
    first, _ = gate_targets(end, gate_weeks)
    window = gate_window(start, end, gate_weeks)
    for who, settings in (("challenger", challenger.features), ("champion", champion.features)):
        needed = max(settings["lag_in_week"], settings["level_weeks"])
        if window <= needed:
            raise FoodcastError(
                f"the gate trains on the {window} weeks before its first week {first}, which leave no hour with "
                f"all its lags and level for the {who}'s lag_in_week={settings['lag_in_week']} and "
                f"level_weeks={settings['level_weeks']}: lower gate_weeks (or train on more weeks)"
            )
    ours = backtest(hourly, first, end, window, challenger.features, challenger.model).summary["mae_model"]
    theirs = backtest(hourly, first, end, window, champion.features, champion.model).summary["mae_model"]
    return decide(ours, theirs, margin)
