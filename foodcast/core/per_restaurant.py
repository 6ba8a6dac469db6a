"""Forecasts per restaurant scored: a rolling-origin backtest, a cross-validation on whole weeks,
and the figures of the median and the worst restaurant.

Everything here forecasts as the pipeline does with ``granularity=restaurant``: the rows are
:func:`foodcast.core.restaurants.training_rows` and :func:`~foodcast.core.restaurants.prediction_rows`
and the model a :class:`~foodcast.core.restaurants.RestaurantModel` (no second implementation).
A restaurant's forecast is scored as the chain's is (:func:`foodcast.core.backtest.score_forecast`:
model, seasonal naive, 4-week same-hour mean, coverage of the interval) against its own cash-in;
the chain's total (the :data:`~foodcast.core.restaurants.CHAIN` rows, bottom-up) against the
sum of the restaurants'.

A restaurant-week is *established* when the restaurant held every week of the training window
and its forecast had no fallback row; otherwise it is *new* (a restaurant opened in the window,
or back from weeks without batches). The median and the worst restaurant are those of the
established ones; the new ones are counted apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.model_selection import TimeSeriesSplit

from foodcast.core.backtest import WEEK_COLUMNS, score_forecast, summarise
from foodcast.core.columns import FOLD_COLUMN, LOWER_COLUMN, POINT_COLUMN, UPPER_COLUMN
from foodcast.core.estimators import DEFAULT_MODEL
from foodcast.core.features import DEFAULT_FEATURES
from foodcast.core.restaurants import (
    CASH_IN,
    CHAIN,
    FALLBACK,
    ORDER_DATE,
    RESTAURANT,
    RestaurantModel,
    chain_total,
    prediction_rows,
    resolve_workers,
    training_rows,
)
from foodcast.core.weeks import week_start, weeks_of
from foodcast.core.windows import REFERENCE_WEEKS, backtest_reach, forecast_history
from foodcast.errors import FoodcastError

ESTABLISHED, NEW = "established", "new"
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
#: ``metrics/per_restaurant.csv`` of a cross-validation.
VALIDATION_TABLE_COLUMNS = [
    RESTAURANT,
    "status",
    "rows",
    "fallback_rows",
    "mae",
    "mean_cash_in",
    "scaled_mae",
    "coverage",
    "coverage_open",
]
ACTUAL = "actual"


def _weeks(hourly: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    """The rows (every column) of weeks ``first .. last`` of an hourly frame."""
    stamps = hourly[ORDER_DATE]
    rows = (stamps >= week_start(first)) & (stamps < week_start(last + 1))
    return hourly.loc[rows].reset_index(drop=True)


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")


def backtest_restaurants_week(
    hourly: pd.DataFrame,
    week: int,
    window_weeks: int,
    features: dict[str, Any],
    model: dict[str, Any],
    kind: str = "local",
    closed_weeks: int = 4,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Forecast one target week for every restaurant and the chain, as a weekly run would, and score it.

    Training rows from weeks ``week - window_weeks .. week - 1``, prediction rows from the weeks
    ``future`` would read (``forecast_history`` of the features, at least ``closed_weeks``).

    Returns
    -------
    chain : dict
        The chain's total's row of :attr:`RestaurantBacktest.weeks` (``backtest.WEEK_COLUMNS``).
    restaurants : list of dict
        One :data:`RESTAURANT_WEEK_COLUMNS` row per restaurant forecast and scored: a restaurant
        without cash-in in ``week`` (closed), or without the week before it (no seasonal naive),
        is not scored.
    """
    past = _weeks(hourly, week - window_weeks, week - 1)
    train = training_rows(past, **features)
    x = train.drop(columns=CASH_IN).set_index(ORDER_DATE)
    read = max(forecast_history(**features), int(closed_weeks))
    x_pred, _ = prediction_rows(_weeks(hourly, week - read, week - 1), week, closed_weeks, **features)
    preds = RestaurantModel(model, kind).fit(x, train[CASH_IN]).predict_frame(x_pred.set_index(ORDER_DATE))
    scored = _weeks(hourly, week - REFERENCE_WEEKS, week)
    chain = preds[preds[RESTAURANT] == CHAIN]
    chain_row = {"week": int(week), **score_forecast(chain, chain_total(scored), week)}
    held = past.groupby(RESTAURANT)[ORDER_DATE].nunique()
    own = {str(name): rows for name, rows in scored.groupby(RESTAURANT, sort=False)}
    rows: list[dict[str, Any]] = []
    for name, forecast in preds[preds[RESTAURANT] != CHAIN].groupby(RESTAURANT, sort=True):
        try:
            scores = score_forecast(forecast, own.get(str(name), scored.iloc[:0]), week)
        except FoodcastError:
            continue
        established = int(held.get(name, 0)) == 168 * window_weeks and not bool(forecast[FALLBACK].any())
        rows.append({"week": int(week), RESTAURANT: str(name), ESTABLISHED: established, **scores})
    return chain_row, rows


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
        ``backtest.summarise(weeks)`` (the chain's total) and :func:`backtest_summary`.
    """

    weeks: pd.DataFrame
    restaurant_weeks: pd.DataFrame
    restaurants: pd.DataFrame
    summary: dict[str, Any]


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
                "ratio_naive": _ratio(means["mae_model"], means["mae_naive"]),
                "ratio_mean4": _ratio(means["mae_model"], means["mae_mean4"]),
                **{k: means[k] for k in ("coverage", "coverage_open", "width")},
            }
        )
    return pd.DataFrame(rows, columns=BACKTEST_TABLE_COLUMNS)


def _median_worst(values: pd.Series, prefix: str, worst: str) -> dict[str, float]:
    """``<prefix>_median`` and ``<prefix>_worst`` (the largest, or with ``worst="min"`` the smallest)."""
    if not len(values):
        return {f"{prefix}_median": float("nan"), f"{prefix}_worst": float("nan")}
    return {f"{prefix}_median": float(values.median()), f"{prefix}_worst": float(getattr(values, worst)())}


def backtest_summary(table: pd.DataFrame) -> dict[str, float]:
    """The median and the worst established restaurant of a :func:`backtest_table`.

    Returns
    -------
    dict
        ``restaurants`` (scored), ``restaurants_new``; ``restaurant_ratio_naive_median`` /
        ``_worst`` (the largest), ``restaurant_ratio_mean4_*``, ``restaurant_coverage_*`` and
        ``restaurant_coverage_open_*`` (the worst: the smallest), over the established
        restaurants (NaN without any).
    """
    established = table[table["status"] == ESTABLISHED]
    return {
        "restaurants": float(len(table)),
        "restaurants_new": float(len(table) - len(established)),
        **_median_worst(established["ratio_naive"].dropna(), "restaurant_ratio_naive", "max"),
        **_median_worst(established["ratio_mean4"].dropna(), "restaurant_ratio_mean4", "max"),
        **_median_worst(established["coverage"], "restaurant_coverage", "min"),
        **_median_worst(established["coverage_open"], "restaurant_coverage_open", "min"),
    }


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
    ``first_week .. last_week``.

    Parameters
    ----------
    hourly : DataFrame
        Long hourly cash-in (``restaurant``, ``order_date``, ``cash_in``) of the weeks the
        backtest reads: ``windows.backtest_weeks(first_week, last_week, window_weeks,
        max(forecast_history(**features), closed_weeks))``.
    first_week, last_week, window_weeks, features, model
        As ``backtest.backtest``.
    kind : {"local", "global"}
        The :class:`RestaurantModel`'s.
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
    if window_weeks < 1 or first_week > last_week:
        raise FoodcastError(
            f"need window_weeks >= 1 and first_week <= last_week, got {window_weeks}, {first_week}..{last_week}"
        )
    history = max(forecast_history(**features), int(closed_weeks))
    before = backtest_reach(window_weeks, history)
    if first_week - before < 1:
        raise FoodcastError(f"target week {first_week} needs {before} weeks before it (week 1 is the first)")
    weeks = range(first_week, last_week + 1)
    tasks = (
        delayed(backtest_restaurants_week)(
            _weeks(hourly, w - before, w), w, window_weeks, features, model, kind, closed_weeks
        )
        for w in weeks
    )
    chain_rows: list[dict[str, Any]] = []
    restaurant_rows: list[dict[str, Any]] = []
    processes = min(resolve_workers(jobs), len(weeks))
    for chain_row, rows in Parallel(n_jobs=processes, return_as="generator")(tasks):
        chain_rows.append(chain_row)
        restaurant_rows.extend(rows)
        if progress is not None:
            progress(len(chain_rows), len(weeks), chain_row)
    chain = pd.DataFrame(chain_rows, columns=WEEK_COLUMNS)
    restaurant_weeks = pd.DataFrame(restaurant_rows, columns=RESTAURANT_WEEK_COLUMNS)
    table = backtest_table(restaurant_weeks)
    return RestaurantBacktest(chain, restaurant_weeks, table, {**summarise(chain), **backtest_summary(table)})


def cross_validate_restaurants(
    model: RestaurantModel, x: pd.DataFrame, y: pd.Series | np.ndarray, n_fold: int = 10
) -> tuple[pd.DataFrame, list[str]]:
    """Chronological cross-validation of a :class:`RestaurantModel` on folds of whole weeks.

    scikit-learn's ``TimeSeriesSplit`` of the weeks that hold the chain's rows (all of them if
    none does): each fold's test rows are every row (each restaurant's and the chain's) of its
    test weeks, and its model is fitted on every row of the weeks before them (the restaurants'
    fallback weeks before the chain's first included), so that all restaurants' rows of an hour
    are predicted together, as a forecast does. A restaurant first seen in a fold's test weeks
    is unknown to its model: its rows, and the chain's rows of the hours it has, are not
    predicted in that fold (a note says so).

    Parameters
    ----------
    model : RestaurantModel
        Cloned and fitted on each fold's past.
    x : DataFrame
        ``training_rows`` without ``cash_in``, indexed by ``order_date``.
    y : Series or array
        ``cash_in``, row by row with ``x``.
    n_fold : int
        Number of folds (>= 2), each of whole weeks.

    Returns
    -------
    preds : DataFrame
        Indexed by ``order_date``: ``predict_frame``'s columns (``restaurant``, ``fallback``,
        members, ``y_pred_simple``, ``y_pred``, ``y_lower``, ``y_upper``), ``fold`` and
        ``actual`` (the row's ``cash_in``).
    notes : list of str
        One line per fold that left a restaurant out.

    Raises
    ------
    FoodcastError
        If ``n_fold`` < 2 or there are not more weeks than folds.
    """
    n_fold = int(n_fold)
    if n_fold < 2:
        raise FoodcastError(f"n_fold must be >= 2, got {n_fold}")
    target = np.asarray(y, dtype="float64").ravel()
    names = x[RESTAURANT].astype(str).to_numpy()
    stamps = pd.DatetimeIndex(x.index)
    weeks = weeks_of(pd.Series(stamps)).to_numpy()
    chain = names == CHAIN
    split = np.unique(weeks[chain] if chain.any() else weeks)
    if len(split) <= n_fold:
        raise FoodcastError(f"cannot split {len(split)} weeks of training rows into {n_fold} folds of whole weeks")
    frames, notes = [], []
    for fold, (_, tested) in enumerate(TimeSeriesSplit(n_splits=n_fold).split(split)):
        test_weeks = split[tested]
        train = weeks < test_weeks.min()
        test = np.isin(weeks, test_weeks)
        fitted = clone(model).fit(x[train], target[train])
        unknown = test & ~chain & ~np.isin(names, fitted.restaurants_)
        if unknown.any():
            left = sorted(set(names[unknown]))
            test &= ~unknown & ~(chain & np.isin(stamps.asi8, stamps[unknown].asi8))
            notes.append(
                f"fold {fold} (weeks {int(test_weeks.min())}-{int(test_weeks.max())}): restaurant(s) "
                f"{', '.join(left)} not in the weeks before: not predicted, nor the chain at their hours"
            )
        pred = fitted.predict_frame(x[test])
        pred[FOLD_COLUMN] = fold
        pred[ACTUAL] = target[test]
        frames.append(pred)
    return pd.concat(frames), notes


def validation_table(preds: pd.DataFrame) -> pd.DataFrame:
    """Per restaurant, its out-of-fold predictions scored (``metrics/per_restaurant.csv``).

    Parameters
    ----------
    preds : DataFrame
        :func:`cross_validate_restaurants`' (the chain's rows are left out).

    Returns
    -------
    DataFrame
        :data:`VALIDATION_TABLE_COLUMNS`, restaurants sorted: ``status`` ``new`` if some of its
        rows were fallback rows, else ``established``; ``rows`` and ``fallback_rows`` predicted;
        ``mae`` (of ``y_pred``), ``mean_cash_in``, ``scaled_mae`` (``mae / mean_cash_in``,
        comparable between restaurants of any size), ``coverage`` of the interval and
        ``coverage_open`` (among the hours that can trade, as a backtest's).
    """
    rows = []
    for name, mine in preds[preds[RESTAURANT] != CHAIN].groupby(RESTAURANT, sort=True):
        actual = mine[ACTUAL].to_numpy(dtype="float64")
        lower, upper = mine[LOWER_COLUMN].to_numpy(dtype="float64"), mine[UPPER_COLUMN].to_numpy(dtype="float64")
        inside = (actual >= lower) & (actual <= upper)
        open_hours = (upper > 0) | (actual != 0)
        fallback = int((mine[FALLBACK].to_numpy(dtype="float64") > 0).sum())
        mae = float(np.mean(np.abs(mine[POINT_COLUMN].to_numpy(dtype="float64") - actual)))
        mean = float(actual.mean())
        rows.append(
            {
                RESTAURANT: str(name),
                "status": NEW if fallback else ESTABLISHED,
                "rows": len(mine),
                "fallback_rows": fallback,
                "mae": mae,
                "mean_cash_in": mean,
                "scaled_mae": _ratio(mae, mean),
                "coverage": float(inside.mean()),
                "coverage_open": float(inside[open_hours].mean()) if open_hours.any() else 1.0,
            }
        )
    return pd.DataFrame(rows, columns=VALIDATION_TABLE_COLUMNS)


def validation_summary(table: pd.DataFrame) -> dict[str, float]:
    """The median and the worst established restaurant of a :func:`validation_table`:
    ``restaurants``, ``restaurants_new``, ``restaurant_scaled_mae_median`` / ``_worst`` (the
    largest), ``restaurant_coverage_*`` and ``restaurant_coverage_open_*`` (the worst: the
    smallest); NaN without an established restaurant."""
    established = table[table["status"] == ESTABLISHED]
    return {
        "restaurants": float(len(table)),
        "restaurants_new": float(len(table) - len(established)),
        **_median_worst(established["scaled_mae"].dropna(), "restaurant_scaled_mae", "max"),
        **_median_worst(established["coverage"], "restaurant_coverage", "min"),
        **_median_worst(established["coverage_open"], "restaurant_coverage_open", "min"),
    }


def chain_predictions(preds: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The chain's rows of :func:`cross_validate_restaurants`' ``preds`` as ``forecast.cross_validate``
    gives them (prediction columns and ``fold``, indexed by hour), and their truth."""
    chain = preds[preds[RESTAURANT] == CHAIN]
    truth = pd.Series(chain[ACTUAL].to_numpy(dtype="float64"), index=chain.index, name=CASH_IN)
    return chain.drop(columns=[RESTAURANT, FALLBACK, ACTUAL]), truth
