"""The champion gate's arithmetic: two configurations backtested on the same weeks, and the
rule that decides between them.

A configuration of ``granularity=restaurant`` (:attr:`Configuration.restaurants`) is
backtested per restaurant (``per_restaurant.backtest_restaurants``), and the gate then compares
the challenger and the champion twice: on the chain's total (its hourly MAE) and on the median
restaurant (the median established restaurant's MAE over seasonal naive's); both must be within
the margin (:func:`decide_restaurants`). A chain configuration compared with a restaurant one is
compared on the chain's total only, and the reason says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from foodcast.core.backtest import backtest
from foodcast.core.per_restaurant import backtest_restaurants
from foodcast.core.restaurants import chain_total
from foodcast.core.windows import gate_targets, gate_window
from foodcast.errors import FoodcastError


@dataclass(frozen=True)
class Configuration:
    """What a trained model was made of: its feature and model settings and its training weeks;
    ``restaurants``: ``None`` for a model of the chain's total, the ``RestaurantModel``'s kind
    (``local`` / ``global``) for a model of every restaurant (``granularity=restaurant``)."""

    features: dict[str, Any]
    model: dict[str, Any]
    start_week: int
    end_week: int
    restaurants: str | None = None


@dataclass(frozen=True)
class Decision:
    """What the gate decided: promote or not, the two scores (``None`` when not computed), why;
    with restaurants, also the median restaurant's MAE over seasonal naive's of each (``None``
    when not compared)."""

    promote: bool
    reason: str
    challenger_mae: float | None = None
    champion_mae: float | None = None
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


def _at_most(value: float, bound: float) -> bool:
    """``value <= bound``, up to a relative 1e-9 (a float sum's rounding)."""
    return value <= bound or math.isclose(value, bound, rel_tol=1e-9)


def decide_restaurants(
    chain: tuple[float, float], median: tuple[float, float] | None, margin: float, why_not: str = ""
) -> Decision:
    """The gate's rule with restaurants: the challenger becomes champion when its chain-total MAE
    and its median restaurant's ratio to seasonal naive are each at most ``(1 + margin)`` times
    the champion's.

    Parameters
    ----------
    chain : (challenger's, champion's)
        Backtest MAE of the chain's total.
    median : (challenger's, champion's) or None
        The median established restaurant's MAE over seasonal naive's; ``None`` (or a NaN) when
        they cannot be compared: the decision is then the chain total's, and the reason says
        why not, with ``why_not``.
    margin : float
    """
    figures = f"chain total backtest MAE {chain[0]:.3f} against the champion's {chain[1]:.3f}"
    compared = median is not None and not any(math.isnan(v) for v in median)
    if median is not None and compared:
        figures += f"; median restaurant MAE / seasonal naive {median[0]:.3f} against the champion's {median[1]:.3f}"
    else:
        figures += f"; {why_not or 'no established restaurant to compare'}: compared on the chain total"
    pairs = {"chain total": chain, **({"median restaurant": median} if median is not None and compared else {})}
    # Equal up to rounding: the chain's forecast of two restaurant models is often the same
    # chain model's, summed in another order.
    worse = [name for name, (ours, theirs) in pairs.items() if not _at_most(ours, theirs * (1 + margin))]
    better = all(_at_most(ours, theirs) for ours, theirs in pairs.values())
    on = " and the ".join(pairs)
    if worse:
        verdict = f"worse by more than the margin of {margin:.1%} on the {' and the '.join(worse)}"
    elif better:
        verdict = f"at least as good on the {on}"
    else:
        verdict = f"within the margin of {margin:.1%} on the {on}"
    medians = median if median is not None and compared else (None, None)
    return Decision(not worse, f"{verdict}: {figures}", chain[0], chain[1], *medians)


def _backtested(
    configuration: Configuration,
    hourly: pd.DataFrame,
    first: int,
    last: int,
    window: int,
    closed_weeks: int,
    jobs: int,
) -> tuple[float, float | None]:
    """The chain total's backtest MAE of a configuration, and its median restaurant's MAE over
    seasonal naive's (``None`` for a chain configuration; NaN without an established one)."""
    features, model = configuration.features, configuration.model
    if configuration.restaurants is None:
        chain = chain_total(hourly) if "restaurant" in hourly.columns else hourly
        return float(backtest(chain, first, last, window, features, model, jobs or None).summary["mae_model"]), None
    result = backtest_restaurants(
        hourly, first, last, window, features, model, configuration.restaurants, closed_weeks, jobs
    )
    return float(result.summary["mae_model"]), float(result.summary["median_restaurant_ratio_naive"])


def compare(
    challenger: Configuration,
    champion: Configuration,
    gate_weeks: int,
    margin: float,
    hourly: pd.DataFrame,
    closed_weeks: int = 4,
    jobs: int = 0,
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
        The hourly cash-in of the weeks the backtests read (``windows.gate_weeks_read``): the
        chain's, or when either configuration is of restaurants each restaurant's (the long form;
        its history reaching ``closed_weeks`` back at least).
    closed_weeks : int
        Restaurant configurations: a restaurant without orders in that many weeks before a
        target week is not forecast (the pipeline's default, 4).
    jobs : int
        Processes of the backtests (0: every core); the decision does not depend on it.

    Raises
    ------
    FoodcastError
        If the window leaves no training hour with all its lags and level for one of them.
    """
    start, end = challenger.start_week, challenger.end_week
    if all(getattr(challenger, k) == getattr(champion, k) for k in ("features", "model", "restaurants")):
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
    if challenger.restaurants is None and champion.restaurants is None:
        ours = backtest(hourly, first, end, window, challenger.features, challenger.model).summary["mae_model"]
        theirs = backtest(hourly, first, end, window, champion.features, champion.model).summary["mae_model"]
        return decide(ours, theirs, margin)
    ours_chain, ours_median = _backtested(challenger, hourly, first, end, window, closed_weeks, jobs)
    theirs_chain, theirs_median = _backtested(champion, hourly, first, end, window, closed_weeks, jobs)
    if ours_median is None or theirs_median is None:
        who = "the challenger" if ours_median is None else "the champion"
        return decide_restaurants(
            (ours_chain, theirs_chain), None, margin, f"{who} forecasts the chain's total only (granularity=chain)"
        )
    return decide_restaurants((ours_chain, theirs_chain), (ours_median, theirs_median), margin)
