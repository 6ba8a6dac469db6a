"""The champion gate's arithmetic: two configurations backtested on the same weeks, and the
rule that decides between them.

A configuration per restaurant (``granularity=restaurant``) is backtested per restaurant
(:func:`foodcast.core.per_restaurant.backtest_restaurants`: the core's backtest of each week, the
weeks on a process pool): it is compared on the chain's total (its MAE, as a chain
configuration's) and, when both are per restaurant, on the median established restaurant's MAE
over seasonal naive's; it must pass the rule on both. Two MAEs equal but for a float sum's
rounding tie there (two models per restaurant often share the chain model's forecast)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from foodcast.core.backtest import backtest
from foodcast.core.per_restaurant import backtest_restaurants
from foodcast.core.restaurants import RESTAURANT, chain_total
from foodcast.core.windows import gate_targets, gate_window
from foodcast.errors import FoodcastError


@dataclass(frozen=True)
class Configuration:
    """What a trained model was made of: its feature and model settings and its training weeks."""

    features: dict[str, Any]
    model: dict[str, Any]
    start_week: int
    end_week: int
    #: None for the chain's model; for a model per restaurant, its ``RestaurantModel`` settings
    #: (``kind``) and ``closed_weeks``, as ``backtest_restaurants`` takes them.
    restaurants: dict[str, Any] | None = None


@dataclass(frozen=True)
class Decision:
    """What the gate decided: promote or not, the two scores (``None`` when not computed), why."""

    promote: bool
    reason: str
    challenger_mae: float | None = None
    champion_mae: float | None = None
    #: Both per restaurant: the median established restaurant's MAE over seasonal naive's.
    challenger_median_ratio: float | None = None
    champion_median_ratio: float | None = None


def decide(challenger_mae: float, champion_mae: float, margin: float) -> Decision:
    """The gate's rule: the challenger becomes champion when its MAE is at most
    ``(1 + margin)`` times the champion's (ties promote the newer model)."""
    scores = f"backtest MAE {challenger_mae:.3f} against the champion's {champion_mae:.3f}"
    if challenger_mae <= champion_mae:
        return Decision(True, f"at least as good: {scores}", challenger_mae, champion_mae)
    if challenger_mae <= champion_mae * (1 + margin):
        return Decision(True, f"within the margin of {margin:.1%}: {scores}", challenger_mae, champion_mae)
    return Decision(False, f"worse by more than the margin of {margin:.1%}: {scores}", challenger_mae, champion_mae)


def _tied(ours: float, theirs: float) -> float:
    """``ours``, or ``theirs`` when the two are equal up to a relative 1e-9 (a float sum's rounding)."""
    return theirs if math.isclose(ours, theirs, rel_tol=1e-9) else ours


def compare(
    challenger: Configuration,
    champion: Configuration,
    gate_weeks: int,
    margin: float,
    hourly: pd.DataFrame,
    jobs: int = 0,
) -> Decision:
    """Backtest both configurations on the same weeks and apply :func:`decide`.

    The target weeks are the ``gate_weeks`` weeks that end with the challenger's last training
    week, each trained on as many weeks before it as the challenger was (``windows.gate_window``).
    When one is per restaurant, the decision is on the chain's total (MAE); when both are, also
    on the median established restaurant (MAE over seasonal naive's), and both must pass.

    Parameters
    ----------
    challenger, champion : Configuration
    gate_weeks : int
    margin : float
    hourly : DataFrame
        The hourly cash-in of the weeks the backtests read (``windows.gate_weeks_read``): the
        chain's, or each restaurant's (the long form) when a configuration is per restaurant.
    jobs : int
        Processes of a backtest per restaurant, one target week each (0: every core); the
        decision does not depend on it.

    Raises
    ------
    FoodcastError
        If the window leaves no training hour with all its lags and level for one of them.
    """
    start, end = challenger.start_week, challenger.end_week
    if (challenger.features, challenger.model, challenger.restaurants) == (
        champion.features,
        champion.model,
        champion.restaurants,
    ):
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
    ours, our_median = _scores(challenger, hourly, first, end, window, jobs)
    theirs, their_median = _scores(champion, hourly, first, end, window, jobs)
    if challenger.restaurants is None and champion.restaurants is None:
        return decide(ours, theirs, margin)
    chain = replace(decide(_tied(ours, theirs), theirs, margin), challenger_mae=ours)
    if our_median is None or their_median is None or math.isnan(our_median) or math.isnan(their_median):
        # Chain against restaurants, or no established restaurant in the gate's window.
        return Decision(chain.promote, f"{chain.reason} (the chain's total)", ours, theirs)
    median = decide(_tied(our_median, their_median), their_median, margin)
    words = f"median restaurant's MAE over seasonal naive {our_median:.3f} against the champion's {their_median:.3f}"
    if chain.promote and median.promote:
        reason = f"{chain.reason} (the chain's total), and {words}"
    elif not chain.promote:
        reason = f"{chain.reason} (the chain's total); {words}"
    else:
        reason = f"{chain.reason} (the chain's total), but worse by more than the margin of {margin:.1%} on the {words}"
    return Decision(chain.promote and median.promote, reason, ours, theirs, our_median, their_median)


def _scores(
    configuration: Configuration, hourly: pd.DataFrame, first: int, end: int, window: int, jobs: int
) -> tuple[float, float | None]:
    """A configuration's backtest MAE of the chain's total, and (per restaurant) its median
    established restaurant's MAE over seasonal naive's."""
    if configuration.restaurants is None:
        chain = chain_total(hourly) if RESTAURANT in hourly.columns else hourly
        return float(
            backtest(chain, first, end, window, configuration.features, configuration.model).summary["mae_model"]
        ), None
    result = backtest_restaurants(
        hourly, first, end, window, configuration.features, configuration.model, jobs=jobs, **configuration.restaurants
    )
    return float(result.summary["mae_model"]), float(result.summary["median_restaurant_ratio_naive"])
