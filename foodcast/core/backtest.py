"""Rolling-origin backtest: the pipeline's forecast replayed over many weeks.

For each target week ``w``, exactly as a weekly run with ``start_week = w - window_weeks``,
``end_week = w - 1`` and ``next_week = w`` would:

* training rows: ``features_offline`` of the hourly cash-in of weeks ``w - window_weeks .. w - 1``;
* prediction rows: ``forecast.week_rows`` (``features_online`` of the 168 hours of week ``w``),
  lags and level read from the weeks before ``w``, as the ``future`` stage does;
* model: ``multi_model.forecast_model(**model)`` fitted on the training rows; its
  ``predict_frame`` gives the point forecast and the interval;
* references: seasonal naive (the same hour a week earlier) and the mean of the same hour over
  the 4 weeks before, scored as the weekly scorecard scores them (``scoring.score_week``).

The hourly cash-in is read once by the caller, over every week needed
(``windows.backtest_weeks``), and sliced per week (``hourly.week_slice``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pandas as pd

from foodcast.core.estimators import DEFAULT_MODEL
from foodcast.core.features import DEFAULT_FEATURES, features_offline
from foodcast.core.forecast import week_rows
from foodcast.core.hourly import week_slice
from foodcast.core.multi_model import forecast_model
from foodcast.core.pool import fan_out_each
from foodcast.core.scoring import score_week, split_actuals
from foodcast.core.windows import REFERENCE_WEEKS, backtest_reach, forecast_history
from foodcast.errors import FoodcastError

WEEK_COLUMNS = ["week", "mae_model", "mae_naive", "mae_mean4", "coverage", "width", "coverage_open"]


@dataclass(frozen=True)
class Backtest:
    """What :func:`backtest` returns.

    Attributes
    ----------
    weeks : DataFrame
        One row per target week: ``week``, ``mae_model``, ``mae_naive`` (seasonal naive),
        ``mae_mean4`` (mean of the same hour over the 4 weeks before) - hourly mean absolute
        errors in the data's currency - ``coverage`` (share of the week's hours inside
        ``[y_lower, y_upper]``), ``width`` (mean ``y_upper - y_lower``) and
        ``coverage_open`` (the same share among the open hours: those whose interval is not
        ``[0, 0]`` or whose truth is not 0; the others - the night - are certain, and
        ``MultiModel`` calibrates its interval on the open hours).
    summary : dict
        See :func:`summarise`.
    """

    weeks: pd.DataFrame
    summary: dict[str, Any]


def summarise(weeks: pd.DataFrame) -> dict[str, Any]:
    """Headline figures of a backtest's weekly table.

    Returns
    -------
    dict
        ``mae_model``, ``mae_naive``, ``mae_mean4`` (means over weeks: every week has 168
        hours, so these are hourly MAEs), ``ratio_naive`` (model / seasonal naive),
        ``ratio_mean4`` (model / 4-week mean), ``mean4_ratio_naive`` (4-week mean / naive),
        ``share_weeks_beating_naive``, ``coverage``, ``width``, ``coverage_open`` (means over
        weeks), ``n_weeks``.
    """
    mae = {name: float(weeks[name].mean()) for name in ("mae_model", "mae_naive", "mae_mean4")}
    return {
        **mae,
        "ratio_naive": mae["mae_model"] / mae["mae_naive"],
        "ratio_mean4": mae["mae_model"] / mae["mae_mean4"],
        "mean4_ratio_naive": mae["mae_mean4"] / mae["mae_naive"],
        "share_weeks_beating_naive": float((weeks["mae_model"] < weeks["mae_naive"]).mean()),
        "coverage": float(weeks["coverage"].mean()),
        "width": float(weeks["width"].mean()),
        "coverage_open": float(weeks["coverage_open"].mean()),
        "n_weeks": len(weeks),
    }


def week_sets(
    hourly: pd.DataFrame, week: int, window_weeks: int, features: dict[str, Any]
) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Training and prediction rows of one target week, as the pipeline builds them.

    Parameters
    ----------
    hourly : DataFrame
        ``order_date`` / ``cash_in`` of (at least) weeks ``week - window_weeks .. week - 1``.
    week : int
        Target week.
    window_weeks : int
        Training weeks before ``week``.
    features : dict
        Keyword arguments of ``features_offline`` / ``features_online``.

    Returns
    -------
    x, y, x_pred
        Features indexed by ``order_date`` (``x``, ``x_pred``) and the target ``y``.
    """
    train = features_offline(week_slice(hourly, week - window_weeks, week - 1), **features)
    x = train.drop(columns="cash_in").set_index("order_date")
    y = train.set_index("order_date")["cash_in"]
    before = forecast_history(**features)
    x_pred = week_rows(week_slice(hourly, week - before, week - 1), week, **features)
    return x, y, x_pred.set_index("order_date")


def checked_reach(first_week: int, last_week: int, window_weeks: int, history: int) -> int:
    """The weeks a backtest of target weeks ``first_week .. last_week`` reads before each target
    week (``windows.backtest_reach``), once the range is checked.

    Raises
    ------
    FoodcastError
        If ``window_weeks`` < 1, ``first_week`` > ``last_week``, or the first target week would
        read before week 1.
    """
    if window_weeks < 1 or first_week > last_week:
        raise FoodcastError(
            f"need window_weeks >= 1 and first_week <= last_week, got {window_weeks}, {first_week}..{last_week}"
        )
    before = backtest_reach(window_weeks, history)
    if first_week - before < 1:
        raise FoodcastError(f"target week {first_week} needs {before} weeks before it (week 1 is the first)")
    return before


def backtest_week(
    hourly: pd.DataFrame, week: int, window_weeks: int, features: dict[str, Any], model: dict[str, Any]
) -> dict[str, Any]:
    """Forecast one target week and score it as ``evaluate`` does (:func:`scoring.score_week`);
    one row of :attr:`Backtest.weeks`."""
    x, y, x_pred = week_sets(hourly, week, window_weeks, features)
    preds = forecast_model(**model).fit(x, y).predict_frame(x_pred)
    truth, history = split_actuals(week_slice(hourly, week - REFERENCE_WEEKS, week), week)
    metrics, table = score_week(preds, truth, history)
    inside = (table["actual"] >= table["y_lower"]) & (table["actual"] <= table["y_upper"])
    open_hours = (table["y_upper"] > 0) | (table["actual"] != 0)
    return {
        "week": int(week),
        **{name: metrics[name] for name in ("mae_model", "mae_naive", "mae_mean4", "coverage", "width")},
        "coverage_open": float(inside[open_hours].mean()) if open_hours.any() else 1.0,
    }


def backtest(
    hourly: pd.DataFrame,
    first_week: int,
    last_week: int,
    window_weeks: int = 21,
    features: dict[str, Any] | None = None,
    model: dict[str, Any] | None = None,
    jobs: int | None = None,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> Backtest:
    """Rolling-origin backtest of the pipeline's forecast over target weeks ``first_week .. last_week``.

    Parameters
    ----------
    hourly : DataFrame
        The hourly ``order_date`` / ``cash_in`` of (at least) the weeks the backtest reads:
        ``windows.backtest_weeks(first_week, last_week, window_weeks, forecast_history(**features))``.
    first_week, last_week : int
        Target weeks, inclusive.
    window_weeks : int
        Training weeks before each target week (the pipeline's ``end_week - start_week + 1``).
    features : dict, optional
        ``features_offline`` settings; default ``features.DEFAULT_FEATURES``.
    model : dict, optional
        ``multi_model.forecast_model`` settings; default ``estimators.DEFAULT_MODEL``.
    jobs : int, optional
        Worker processes of the core's pool (``pool.fan_out_each``; default: the number of CPUs);
        weeks are independent, and every model is seeded, so the result does not depend on it.
    progress : callable, optional
        Called as ``progress(done, total, row)`` after each week, in week order.

    Returns
    -------
    Backtest

    Raises
    ------
    FoodcastError
        If the weeks are out of range or ``hourly`` lacks a week the backtest needs.
    """
    features = dict(DEFAULT_FEATURES if features is None else features)
    model = dict(DEFAULT_MODEL if model is None else model)
    first_week, last_week, window_weeks = int(first_week), int(last_week), int(window_weeks)
    checked_reach(first_week, last_week, window_weeks, forecast_history(**features))
    weeks = range(first_week, last_week + 1)
    week_of = partial(backtest_week, hourly, window_weeks=window_weeks, features=features, model=model)
    rows: list[dict[str, Any]] = []
    for row in fan_out_each(week_of, weeks, jobs or 0):
        rows.append(row)
        if progress is not None:
            progress(len(rows), len(weeks), row)
    table = pd.DataFrame(rows, columns=WEEK_COLUMNS)
    return Backtest(weeks=table, summary=summarise(table))
