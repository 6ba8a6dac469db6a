"""Rolling-origin backtest per restaurant: ``granularity=restaurant``'s forecast replayed.

For each target week ``w``, as a weekly run of restaurants with ``start_week = w - window_weeks``,
``end_week = w - 1`` and ``next_week = w`` would (:func:`restaurant_week_sets`):

* training rows: :func:`~foodcast.core.restaurants.training_rows` of weeks ``w - window_weeks .. w - 1``;
* prediction rows: :func:`~foodcast.core.restaurants.prediction_rows` of week ``w`` from the
  weeks before it (restaurants closed for ``closed_weeks`` weeks left out);
* model: :class:`~foodcast.core.restaurants.RestaurantModel` fitted and predicting;
* scores (:func:`score_restaurants`): each restaurant's forecast against its own cash-in of week
  ``w``, and the chain's against the chain's total, as the weekly scorecard scores the chain
  (``scoring.score_week``: the model, seasonal naive, the 4-week same-hour mean, the interval).

:func:`summarise_restaurants` gives the figures of issue 20: the median and the worst
*established* restaurant (every week of the window in the data and no fallback row), the
restaurants with fallback rows apart, and the chain. (The cross-validation of a restaurant model
is ``restaurant_validation``'s: validate does not score weeks.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from foodcast.core.backtest import checked_reach
from foodcast.core.estimators import DEFAULT_MODEL
from foodcast.core.features import DEFAULT_FEATURES
from foodcast.core.restaurants import (
    CHAIN,
    DEFAULT_RECONCILIATION,
    FALLBACK,
    RESTAURANT,
    RestaurantModel,
    chain_total,
    prediction_rows,
    training_rows,
)
from foodcast.core.scoring import score_week, split_actuals
from foodcast.core.weeks import HOURS_PER_WEEK, week_start
from foodcast.core.windows import REFERENCE_WEEKS, forecast_history
from foodcast.errors import FoodcastError

#: One row per restaurant (and the chain) per target week.
WEEK_COLUMNS = [
    "week",
    "restaurant",
    "established",
    "fallback",
    "mae_model",
    "mae_naive",
    "mae_mean4",
    "coverage",
    "width",
    "coverage_open",
]
_MAES = ["mae_model", "mae_naive", "mae_mean4"]


@dataclass(frozen=True)
class RestaurantBacktest:
    """What :func:`backtest_restaurants` returns.

    Attributes
    ----------
    weeks : DataFrame
        :data:`WEEK_COLUMNS`, one row per restaurant scored per target week, the chain's last.
    restaurants : DataFrame
        See :func:`summarise_restaurants`.
    summary : dict
        See :func:`summarise_restaurants`.
    notes : list of str
        The lines of the restaurants left out, per target week (``week N: ...``).
    """

    weeks: pd.DataFrame
    restaurants: pd.DataFrame
    summary: dict[str, Any]
    notes: list[str]


def _weeks(hourly: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    rows = (hourly["order_date"] >= week_start(first)) & (hourly["order_date"] < week_start(last + 1))
    return hourly[rows].reset_index(drop=True)


def restaurant_week_sets(
    hourly: pd.DataFrame, week: int, window_weeks: int, closed_weeks: int, workers: int = 1, **features: Any
) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame, list[str]]:
    """Training and prediction rows of one target week, as a weekly run of restaurants builds them.

    Parameters
    ----------
    hourly : DataFrame
        Long hourly cash-in (``restaurant``, ``order_date``, ``cash_in``) of (at least) the
        weeks before ``week`` that the window and the features read.
    week : int
        Target week.
    window_weeks : int
        Training weeks before ``week``.
    closed_weeks, workers, **features
        As :func:`~foodcast.core.restaurants.prediction_rows` takes them.

    Returns
    -------
    x, y, x_pred, notes
        ``x`` and ``x_pred`` indexed by ``order_date`` (``restaurant``, ``fallback``, the
        features), the target ``y`` aligned with ``x``, and the lines of the restaurants left out.
    """
    window = _weeks(hourly, week - window_weeks, week - 1)
    train = training_rows(window, workers=workers, **features)
    x = train.drop(columns="cash_in").set_index("order_date")
    y = pd.Series(train["cash_in"].to_numpy(), index=x.index, name="cash_in")
    before = _weeks(hourly, week - forecast_history(**{**DEFAULT_FEATURES, **features}), week - 1)
    x_pred, notes = prediction_rows(before, week, closed_weeks, workers=workers, **features)
    return x, y, x_pred.set_index("order_date"), notes


def _score(preds: pd.DataFrame, actual: pd.DataFrame, week: int) -> dict[str, float] | None:
    """``score_week`` of one series' forecast, with ``coverage_open``; None without its truth
    or the week before it (a restaurant closed in ``week``, or with no batch the week before)."""
    try:
        truth, history = split_actuals(_weeks(actual, week - REFERENCE_WEEKS, week), week)
        metrics, table = score_week(preds, truth, history)
    except FoodcastError:
        return None
    # As backtest.backtest_week: among the hours that can sell (the interval is calibrated on those).
    inside = (table["actual"] >= table["y_lower"]) & (table["actual"] <= table["y_upper"])
    open_hours = (table["y_upper"] > 0) | (table["actual"] != 0)
    metrics["coverage_open"] = float(inside[open_hours].mean()) if open_hours.any() else 1.0
    return metrics


def score_restaurants(
    preds: pd.DataFrame, hourly: pd.DataFrame, week: int, window_weeks: int, total: pd.DataFrame
) -> pd.DataFrame:
    """Score every restaurant's forecast of ``week`` and the chain's.

    Parameters
    ----------
    preds : DataFrame
        ``RestaurantModel.predict_frame`` of week ``week``'s rows, indexed by ``order_date``.
    hourly : DataFrame
        Long hourly cash-in of (at least) weeks ``week - window_weeks .. week``.
    week, window_weeks : int
        The target week and the training window (a restaurant with every week of the window
        and no fallback row is *established*).
    total : DataFrame
        The chain's hourly ``order_date`` / ``cash_in`` of (at least) the reference weeks and ``week``.

    Returns
    -------
    DataFrame
        :data:`WEEK_COLUMNS`; a restaurant without cash-in in ``week`` (closed since) or in the
        week before (no seasonal naive) is not scored.
    """
    window = _weeks(hourly, week - window_weeks, week - 1)
    held = window.groupby(RESTAURANT)["order_date"].nunique() // HOURS_PER_WEEK
    rows: list[dict[str, Any]] = []
    for name, forecast in preds.groupby(RESTAURANT, sort=False):
        own = total if name == CHAIN else hourly[hourly[RESTAURANT] == name]
        metrics = _score(forecast, own, week)
        if metrics is None:
            continue
        fallback = bool(forecast[FALLBACK].to_numpy().any())
        rows.append(
            {
                "week": int(week),
                "restaurant": str(name),
                "established": name != CHAIN and int(held.get(name, 0)) == window_weeks and not fallback,
                "fallback": fallback,
                **{key: metrics[key] for key in WEEK_COLUMNS[4:]},
            }
        )
    return pd.DataFrame(rows, columns=WEEK_COLUMNS)


def summarise_restaurants(weeks: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-restaurant and headline figures of a backtest's rows.

    Parameters
    ----------
    weeks : DataFrame
        :data:`WEEK_COLUMNS` rows (:func:`score_restaurants` of several weeks).

    Returns
    -------
    restaurants : DataFrame
        One row per established restaurant (indexed by name): its mean ``mae_model``,
        ``mae_naive``, ``mae_mean4``, ``coverage``, ``coverage_open`` over the weeks it was
        established, ``ratio_naive`` and ``ratio_mean4`` (ratios of those means), ``n_weeks``.
    summary : dict
        ``n_established``; ``ratio_naive_median`` / ``_worst``, ``ratio_mean4_median`` /
        ``_worst``, ``coverage_open_median`` / ``_worst`` (worst: the highest ratio, the
        lowest coverage), ``coverage_median`` / ``_worst`` over the established restaurants;
        ``fallback_weeks``, ``fallback_ratio_naive`` (its MAEs summed over restaurant-weeks),
        ``fallback_coverage_open``; ``chain_mae_model``, ``chain_ratio_naive``,
        ``chain_ratio_mean4``, ``chain_coverage``, ``chain_coverage_open`` (means over weeks),
        ``chain_weeks``.
    """
    established = weeks[weeks["established"].astype(bool)]
    by = established.groupby("restaurant")
    restaurants = by[[*_MAES, "coverage", "coverage_open"]].mean()
    restaurants["ratio_naive"] = restaurants["mae_model"] / restaurants["mae_naive"]
    restaurants["ratio_mean4"] = restaurants["mae_model"] / restaurants["mae_mean4"]
    restaurants["n_weeks"] = by.size()
    fallback = weeks[weeks["fallback"].astype(bool) & (weeks["restaurant"] != CHAIN)]
    chain = weeks[weeks["restaurant"] == CHAIN]
    nan = float("nan")
    summary: dict[str, Any] = {"n_established": len(restaurants)}
    for column in ("ratio_naive", "ratio_mean4"):
        summary[f"{column}_median"] = float(restaurants[column].median()) if len(restaurants) else nan
        summary[f"{column}_worst"] = float(restaurants[column].max()) if len(restaurants) else nan
    for column in ("coverage_open", "coverage"):
        summary[f"{column}_median"] = float(restaurants[column].median()) if len(restaurants) else nan
        summary[f"{column}_worst"] = float(restaurants[column].min()) if len(restaurants) else nan
    summary["fallback_weeks"] = len(fallback)
    summary["fallback_ratio_naive"] = (
        float(fallback["mae_model"].sum() / fallback["mae_naive"].sum()) if len(fallback) else nan
    )
    summary["fallback_coverage_open"] = float(fallback["coverage_open"].mean()) if len(fallback) else nan
    maes = {column: float(chain[column].mean()) if len(chain) else nan for column in _MAES}
    summary["chain_mae_model"] = maes["mae_model"]
    summary["chain_ratio_naive"] = maes["mae_model"] / maes["mae_naive"] if maes["mae_naive"] else nan
    summary["chain_ratio_mean4"] = maes["mae_model"] / maes["mae_mean4"] if maes["mae_mean4"] else nan
    summary["chain_coverage"] = float(chain["coverage"].mean()) if len(chain) else nan
    summary["chain_coverage_open"] = float(chain["coverage_open"].mean()) if len(chain) else nan
    summary["chain_weeks"] = len(chain)
    return restaurants, summary


def backtest_restaurants(
    hourly: pd.DataFrame,
    first_week: int,
    last_week: int,
    window_weeks: int = 21,
    features: dict[str, Any] | None = None,
    model: dict[str, Any] | None = None,
    kind: str = "local",
    reconciliation: str = DEFAULT_RECONCILIATION,
    closed_weeks: int = 4,
    workers: int = 1,
    progress: Callable[[int, int, pd.DataFrame], None] | None = None,
) -> RestaurantBacktest:
    """Rolling-origin backtest of the per-restaurant forecast over target weeks ``first_week .. last_week``.

    Parameters
    ----------
    hourly : DataFrame
        Long hourly cash-in of (at least) the weeks the backtest reads:
        ``windows.backtest_weeks(first_week, last_week, window_weeks, forecast_history(**features))``.
    first_week, last_week : int
        Target weeks, inclusive.
    window_weeks : int
        Training weeks before each target week.
    features, model : dict, optional
        Feature and ``forecast_model`` settings (default: the pipeline's).
    kind, reconciliation : str
        Of the :class:`~foodcast.core.restaurants.RestaurantModel`.
    closed_weeks : int
        As :func:`~foodcast.core.restaurants.prediction_rows` takes it.
    workers : int
        Processes of each week's per-restaurant work (0: all cores); the result does not depend on it.
    progress : callable, optional
        Called as ``progress(done, total, rows)`` after each week with its scored rows.

    Returns
    -------
    RestaurantBacktest

    Raises
    ------
    FoodcastError
        If the weeks are out of range.
    """
    features = dict(DEFAULT_FEATURES if features is None else features)
    model = dict(DEFAULT_MODEL if model is None else model)
    first_week, last_week, window_weeks = int(first_week), int(last_week), int(window_weeks)
    checked_reach(first_week, last_week, window_weeks, forecast_history(**features))
    # The chain's total once: its reference weeks are read for every target week.
    total = chain_total(hourly)
    frames: list[pd.DataFrame] = []
    notes: list[str] = []
    weeks = range(first_week, last_week + 1)
    for done, week in enumerate(weeks, start=1):
        x, y, x_pred, left_out = restaurant_week_sets(hourly, week, window_weeks, closed_weeks, workers, **features)
        fitted = RestaurantModel(model, kind=kind, workers=workers, reconciliation=reconciliation).fit(x, y)
        scored = score_restaurants(fitted.predict_frame(x_pred), hourly, week, window_weeks, total)
        frames.append(scored)
        notes.extend(f"week {week}: {line}" for line in left_out)
        if progress is not None:
            progress(done, len(weeks), scored)
    table = pd.concat(frames, ignore_index=True)
    restaurants, summary = summarise_restaurants(table)
    return RestaurantBacktest(weeks=table, restaurants=restaurants, summary=summary, notes=notes)
