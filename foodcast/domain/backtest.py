"""Rolling-origin backtest: the pipeline's forecast replayed over many weeks.

For each target week ``w``, exactly as a weekly run with ``start_week = w - window_weeks``,
``end_week = w - 1`` and ``next_week = w`` would:

* training rows: ``features_offline`` of the hourly cash-in of weeks ``w - window_weeks .. w - 1``;
* prediction rows: ``forecast.week_rows`` (``features_online`` of the 168 hours of week ``w``),
  lags and level read from the weeks before ``w``, as ``forecast.prediction_set`` does;
* model: ``estimators.forecast_model(**model)`` fitted on the training rows; its
  ``predict_frame`` gives the point forecast and the interval;
* references: seasonal naive (the same hour a week earlier) and the mean of the same hour over
  the 4 weeks before.

The hourly cash-in is computed once with ``etl`` over every week needed and sliced per week:
a slice of ``etl`` over weeks ``a .. b`` is ``etl`` of weeks ``a .. b`` (``etl`` aggregates each
hour from that hour's orders alone).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

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
    summary: dict


def summarise(weeks: pd.DataFrame) -> dict:
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
        "n_weeks": int(len(weeks)),
    }


def week_slice(hourly: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    """The ``order_date`` / ``cash_in`` rows of weeks ``first .. last`` of an hourly frame."""
    from foodcast.domain.weeks import week_start

    start, end = week_start(first), week_start(last + 1)
    rows = (hourly["order_date"] >= start) & (hourly["order_date"] < end)
    return hourly.loc[rows, ["order_date", "cash_in"]].reset_index(drop=True)


def week_sets(hourly: pd.DataFrame, week: int, window_weeks: int, features: dict):
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
    from foodcast.domain.feature_engineering import features_offline
    from foodcast.domain.forecast import past_weeks, week_rows

    train = features_offline(week_slice(hourly, week - window_weeks, week - 1), **features)
    x = train.drop(columns="cash_in").set_index("order_date")
    y = train.set_index("order_date")["cash_in"]
    before = past_weeks(features.get("lag_in_week", 1), features.get("level_weeks", 0),
                        features.get("profile_weeks", 0))
    x_pred = week_rows(week_slice(hourly, week - before, week - 1), week, **features)
    return x, y, x_pred.set_index("order_date")


def backtest_week(hourly: pd.DataFrame, week: int, window_weeks: int, features: dict, model: dict) -> dict:
    """Forecast one target week and score it as ``evaluate`` does (:func:`scoring.score_week`);
    one row of :attr:`Backtest.weeks`."""
    from foodcast.domain.estimators import forecast_model
    from foodcast.domain.scoring import score_week, split_actuals

    x, y, x_pred = week_sets(hourly, week, window_weeks, features)
    preds = forecast_model(**model).fit(x, y).predict_frame(x_pred)
    truth, history = split_actuals(week_slice(hourly, week - 4, week), week)
    metrics, table = score_week(preds, truth, history)
    inside = (table["actual"] >= table["y_lower"]) & (table["actual"] <= table["y_upper"])
    open_hours = (table["y_upper"] > 0) | (table["actual"] != 0)
    return {
        "week": int(week),
        **{name: metrics[name] for name in ("mae_model", "mae_naive", "mae_mean4", "coverage", "width")},
        "coverage_open": float(inside[open_hours].mean()) if open_hours.any() else 1.0,
    }


def backtest(data_dir, first_week: int, last_week: int, window_weeks: int = 21, features: dict | None = None,
             model: dict | None = None, jobs: int | None = None, progress=None, hourly: pd.DataFrame | None = None) -> Backtest:
    """Rolling-origin backtest of the pipeline's forecast over target weeks ``first_week .. last_week``.

    Parameters
    ----------
    data_dir : str or Path
        Directory of weekly batches (read once with ``etl``); unused if ``hourly`` is given.
    first_week, last_week : int
        Target weeks, inclusive.
    window_weeks : int
        Training weeks before each target week (the pipeline's ``end_week - start_week + 1``).
    features : dict, optional
        ``features_offline`` settings; default ``feature_engineering.DEFAULT_FEATURES``.
    model : dict, optional
        ``estimators.forecast_model`` settings; default ``estimators.DEFAULT_MODEL``.
    jobs : int, optional
        Worker processes (default: the number of CPUs); weeks are independent, and every
        model is seeded, so the result does not depend on it.
    progress : callable, optional
        Called as ``progress(done, total, row)`` after each week, in week order.
    hourly : DataFrame, optional
        The hourly ``order_date`` / ``cash_in`` already loaded (must cover the weeks needed).

    Returns
    -------
    Backtest

    Raises
    ------
    FoodcastError
        If the weeks are out of range or the data lacks a week the backtest needs.
    """
    import os

    from joblib import Parallel, delayed

    from foodcast.domain.estimators import DEFAULT_MODEL
    from foodcast.domain.feature_engineering import DEFAULT_FEATURES
    from foodcast.domain.transform import etl

    features = dict(DEFAULT_FEATURES if features is None else features)
    model = dict(DEFAULT_MODEL if model is None else model)
    first_week, last_week, window_weeks = int(first_week), int(last_week), int(window_weeks)
    if window_weeks < 1 or first_week > last_week:
        raise FoodcastError(f"need window_weeks >= 1 and first_week <= last_week, got {window_weeks}, "
                            f"{first_week}..{last_week}")
    from foodcast.domain.forecast import past_weeks

    # The training window, the weeks the prediction rows read, and the references' 4 weeks.
    before = max(window_weeks, 4, past_weeks(features.get("lag_in_week", 1), features.get("level_weeks", 0),
                                             features.get("profile_weeks", 0)))
    oldest = first_week - before
    if oldest < 1:
        raise FoodcastError(f"target week {first_week} needs {before} weeks before it (week 1 is the first)")
    if hourly is None:
        hourly = etl(data_dir, oldest, last_week)
    weeks = range(first_week, last_week + 1)
    jobs = int(jobs or os.cpu_count() or 1)
    tasks = (delayed(backtest_week)(hourly, w, window_weeks, features, model) for w in weeks)
    rows = []
    for row in Parallel(n_jobs=jobs, return_as="generator")(tasks):
        rows.append(row)
        if progress is not None:
            progress(len(rows), len(weeks), row)
    table = pd.DataFrame(rows, columns=WEEK_COLUMNS)
    return Backtest(weeks=table, summary=summarise(table))


def plotly_backtest(weeks: pd.DataFrame, interval_level: float | None = None):
    """Weekly MAE of the model and of the two references, and the interval's coverage.

    Parameters
    ----------
    weeks : DataFrame
        :attr:`Backtest.weeks` (``coverage_open``, if there, is drawn too).
    interval_level : float, optional
        Drawn as the coverage's target line.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.06)
    for column, name, color in (("mae_naive", "seasonal naive", "rgb(180,180,180)"),
                                ("mae_mean4", "4-week mean", "rgb(255,127,14)"),
                                ("mae_model", "model", "rgb(31,119,180)")):
        fig.add_trace(go.Scatter(x=weeks["week"], y=weeks[column], mode="lines+markers", name=name,
                                 line={"color": color}), row=1, col=1)
    fig.add_trace(go.Scatter(x=weeks["week"], y=weeks["coverage"], mode="lines+markers",
                             name="interval coverage", line={"color": "rgb(44,160,44)"}), row=2, col=1)
    if "coverage_open" in weeks.columns:
        fig.add_trace(go.Scatter(x=weeks["week"], y=weeks["coverage_open"], mode="lines+markers",
                                 name="interval coverage, open hours", line={"color": "rgb(148,103,189)"}),
                      row=2, col=1)
    if interval_level is not None:
        fig.add_hline(y=float(interval_level), line={"dash": "dash", "color": "gray"}, row=2, col=1)
    fig.update_yaxes(title_text="hourly MAE", row=1, col=1)
    fig.update_yaxes(title_text="coverage", range=[0, 1], row=2, col=1)
    fig.update_xaxes(title_text="target week", row=2, col=1)
    fig.update_layout(template="plotly_white", hovermode="x unified")
    return fig
