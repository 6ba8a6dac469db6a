"""Forecasts per restaurant scored for the stages: a rolling-origin backtest on a process pool,
the table per restaurant of a backtest, and the figures of the median and the worst restaurant
(a cross-validation's are ``restaurant_validation``'s).

Nothing here forecasts: the backtest of a week is the core's
(``restaurant_backtest.backtest_restaurants``: the rows of
:func:`foodcast.core.restaurants.training_rows` and
:func:`~foodcast.core.restaurants.prediction_rows`, a :class:`~foodcast.core.restaurants.RestaurantModel`,
each restaurant scored against its own cash-in and the chain's total against the sum).

A restaurant-week of a backtest is *established* when the restaurant held every week of the
training window and its forecast had no fallback row; otherwise it is *new* (a restaurant opened
in the window, or back from weeks without batches). The median and the worst restaurant are
those of the established ones; the new ones are counted apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pandas as pd

from foodcast.core.backtest import WEEK_COLUMNS, checked_reach, summarise
from foodcast.core.estimators import DEFAULT_MODEL
from foodcast.core.features import DEFAULT_FEATURES
from foodcast.core.pool import fan_out_each
from foodcast.core.restaurant_backtest import backtest_restaurants as replay
from foodcast.core.restaurant_backtest import summarise_restaurants
from foodcast.core.restaurant_validation import ESTABLISHED, NEW, ratio
from foodcast.core.restaurants import CHAIN, ORDER_DATE, RESTAURANT
from foodcast.core.weeks import week_start
from foodcast.core.windows import forecast_history

SCORES = ["mae_model", "mae_naive", "mae_mean4", "coverage", "width", "coverage_open"]
#: One row per restaurant and target week scored.
RESTAURANT_WEEK_COLUMNS = ["week", RESTAURANT, ESTABLISHED, *SCORES]
#: ``metrics/per_restaurant.csv`` of a backtest.
BACKTEST_TABLE_COLUMNS = [
    RESTAURANT,
    "status",
    "weeks",
    "new_weeks",
    "mae_model",
    "mae_naive",
    "mae_mean4",
    "ratio_naive",
    "ratio_mean4",
    "coverage",
    "coverage_open",
    "width",
]


def _replay_week(item: tuple[pd.DataFrame, int], **settings: Any) -> Any:
    """One target week's backtest (``item``: the hours it reads, the week), as the pool runs it."""
    hours, week = item
    return replay(hours, week, week, **settings)


def _weeks(hourly: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    """The rows (every column) of weeks ``first .. last`` of an hourly frame."""
    stamps = hourly[ORDER_DATE]
    rows = (stamps >= week_start(first)) & (stamps < week_start(last + 1))
    return hourly.loc[rows].reset_index(drop=True)


@dataclass(frozen=True)
class RestaurantBacktest:
    """What :func:`backtest_restaurants` returns.

    Attributes
    ----------
    weeks : DataFrame
        The chain's total, one row per target week, as ``backtest.Backtest.weeks``.
    restaurant_weeks : DataFrame
        One :data:`RESTAURANT_WEEK_COLUMNS` row per restaurant and week scored.
    restaurants : DataFrame
        :func:`backtest_table` of ``restaurant_weeks``.
    summary : dict
        ``backtest.summarise(weeks)`` (the chain's total: ``mae_model``, ``ratio_naive``...),
        ``restaurants`` and ``restaurants_new`` (of :attr:`restaurants`), and the figures of
        ``restaurant_backtest.summarise_restaurants`` but the chain's, named as ``evaluate``
        names its own (:func:`restaurant_names`): ``median_restaurant_ratio_naive`` /
        ``worst_restaurant_ratio_naive``, ``*_restaurant_ratio_mean4``,
        ``*_restaurant_coverage``, ``*_restaurant_coverage_open`` (over the established
        restaurants), ``restaurants_established``, ``restaurant_fallback_weeks``,
        ``restaurant_fallback_ratio_naive``, ``restaurant_fallback_coverage_open``.
    notes : list of str
        The restaurants left out of a week's forecast, one line each (``week N: ...``).
    """

    weeks: pd.DataFrame
    restaurant_weeks: pd.DataFrame
    restaurants: pd.DataFrame
    summary: dict[str, Any]
    notes: list[str]


def backtest_table(restaurant_weeks: pd.DataFrame) -> pd.DataFrame:
    """Per restaurant, its backtest (``metrics/per_restaurant.csv``).

    Returns
    -------
    DataFrame
        :data:`BACKTEST_TABLE_COLUMNS`, restaurants sorted: ``status`` ``established`` (some of
        its weeks were) or ``new``; ``weeks`` scored and ``new_weeks`` among them; the MAEs (means
        over its established weeks, or over all its weeks for a new one), ``ratio_naive`` and
        ``ratio_mean4`` (model over seasonal naive, over the 4-week mean), ``coverage`` of the
        interval, ``coverage_open`` (among the hours that can trade) and ``width`` (means).
    """
    rows = []
    for name, weeks in restaurant_weeks.groupby(RESTAURANT, sort=True):
        established = weeks[weeks[ESTABLISHED].astype(bool)]
        used = established if len(established) else weeks
        means = {score: float(used[score].mean()) for score in SCORES}
        rows.append(
            {
                RESTAURANT: str(name),
                "status": ESTABLISHED if len(established) else NEW,
                "weeks": len(weeks),
                "new_weeks": len(weeks) - len(established),
                **{k: means[k] for k in ("mae_model", "mae_naive", "mae_mean4")},
                "ratio_naive": ratio(means["mae_model"], means["mae_naive"]),
                "ratio_mean4": ratio(means["mae_model"], means["mae_mean4"]),
                **{k: means[k] for k in ("coverage", "coverage_open", "width")},
            }
        )
    return pd.DataFrame(rows, columns=BACKTEST_TABLE_COLUMNS)


def restaurant_names(figures: dict[str, Any]) -> dict[str, Any]:
    """Figures over restaurants named as ``evaluate`` names its own: ``<m>_median`` ->
    ``median_restaurant_<m>``, ``<m>_worst`` -> ``worst_restaurant_<m>``, ``n_established`` ->
    ``restaurants_established``, any other ``<k>`` -> ``restaurant_<k>``."""
    named = {}
    for key, value in figures.items():
        for end in ("median", "worst"):
            if key.endswith(f"_{end}"):
                named[f"{end}_restaurant_{key[: -len(end) - 1]}"] = value
                break
        else:
            named["restaurants_established" if key == "n_established" else f"restaurant_{key}"] = value
    return named


def backtest_restaurants(
    hourly: pd.DataFrame,
    first_week: int,
    last_week: int,
    window_weeks: int = 21,
    features: dict[str, Any] | None = None,
    model: dict[str, Any] | None = None,
    kind: str = "local",
    closed_weeks: int = 4,
    jobs: int = 0,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> RestaurantBacktest:
    """Rolling-origin backtest of every restaurant's forecast and the chain's, target weeks
    ``first_week .. last_week``: ``restaurant_backtest.backtest_restaurants`` (the core's) of
    each week, the weeks on a process pool, and the tables and figures of the stages.

    Parameters
    ----------
    hourly : DataFrame
        Long hourly cash-in (``restaurant``, ``order_date``, ``cash_in``) of the weeks the
        backtest reads: ``windows.backtest_weeks(first_week, last_week, window_weeks,
        max(forecast_history(**features), closed_weeks))``.
    first_week, last_week, window_weeks, features, model
        As ``backtest.backtest``.
    kind : {"local", "global"}
        The :class:`RestaurantModel`'s (its reconciliation: the default, as ``train`` fits it).
    closed_weeks : int
        A restaurant without orders in that many weeks before a target week is not forecast.
    jobs : int, default 0
        Processes, one target week each (0: every core); every model is seeded, so the result
        does not depend on it.
    progress : callable, optional
        ``progress(done, total, chain_row)`` after each week, in week order.

    Raises
    ------
    FoodcastError
        If the weeks are out of range or ``hourly`` lacks a week the backtest needs.
    """
    features = dict(DEFAULT_FEATURES if features is None else features)
    model = dict(DEFAULT_MODEL if model is None else model)
    first_week, last_week, window_weeks = int(first_week), int(last_week), int(window_weeks)
    before = checked_reach(first_week, last_week, window_weeks, max(forecast_history(**features), int(closed_weeks)))
    weeks = range(first_week, last_week + 1)
    frames: list[pd.DataFrame] = []
    notes: list[str] = []
    settings: dict[str, Any] = {"features": features, "model": model, "kind": kind, "closed_weeks": closed_weeks}
    week_of = partial(_replay_week, window_weeks=window_weeks, **settings)
    items = [(_weeks(hourly, w - before, w), w) for w in weeks]
    for week in fan_out_each(week_of, items, jobs):  # each week's result as it ends (``progress``)
        frames.append(week.weeks)
        notes.extend(week.notes)
        chain = week.weeks[week.weeks[RESTAURANT] == CHAIN]
        if progress is not None and len(chain):  # a week without the chain's truth is not scored
            row = {column: chain[column].iloc[0] for column in WEEK_COLUMNS}
            progress(len(frames), len(weeks), {**row, "week": int(row["week"])})
    scored = pd.concat(frames, ignore_index=True)
    _, figures = summarise_restaurants(scored)
    chain = scored[scored[RESTAURANT] == CHAIN][WEEK_COLUMNS].reset_index(drop=True)
    restaurant_weeks = scored[scored[RESTAURANT] != CHAIN][RESTAURANT_WEEK_COLUMNS].reset_index(drop=True)
    table = backtest_table(restaurant_weeks)
    counts = {"restaurants": float(len(table)), "restaurants_new": float((table["status"] == NEW).sum())}
    restaurants = restaurant_names({k: v for k, v in figures.items() if not k.startswith("chain_")})
    summary = {**summarise(chain), **counts, **restaurants}
    return RestaurantBacktest(chain, restaurant_weeks, table, summary, notes)
