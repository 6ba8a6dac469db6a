"""Forecast horizon, chronological cross-validation and the forecast plot."""

from __future__ import annotations

import numpy as np
import pandas as pd

from foodcast.errors import FoodcastError

SIMPLE_COLUMN = "y_pred_simple"


def span_future(last_timestamp) -> pd.DataFrame:
    """The 168 hours of the seven days after the day of ``last_timestamp``.

    Parameters
    ----------
    last_timestamp : timestamp-like
        Last observed hour; the horizon starts at 00:00 the next day.

    Returns
    -------
    DataFrame
        Column ``order_date``: 168 hourly timestamps, 00:00 of day+1 to 23:00 of day+7.
    """
    start = pd.Timestamp(last_timestamp).normalize() + pd.Timedelta(days=1)
    hours = pd.date_range(start, periods=7 * 24, freq="h").as_unit("us")
    return pd.DataFrame({"order_date": hours})


def member_columns(preds: pd.DataFrame) -> list[str]:
    """The bootstrap members' prediction columns (``y_pred_0`` ...) of a prediction frame."""
    return [c for c in preds.columns if c.startswith("y_pred_") and c != SIMPLE_COLUMN]


def cross_validate(model, x: pd.DataFrame, y: pd.Series, n_fold: int = 10):
    """Chronological cross-validation with scikit-learn's ``TimeSeriesSplit``.

    Parameters
    ----------
    model : MultiModel
        Cloned and fitted on each fold's past; predicts with ``predict(None, X)``.
    x : DataFrame
        Features indexed by timestamp, in time order.
    y : Series
        Target aligned with ``x``.
    n_fold : int
        Number of splits (>= 2).

    Returns
    -------
    maes : DataFrame
        One row per fold, one column per prediction (``y_pred_0`` ..., ``y_pred_simple``):
        the fold's mean absolute error.
    preds : DataFrame
        Out-of-fold predictions, indexed by timestamp.
    """
    from sklearn.base import clone
    from sklearn.model_selection import TimeSeriesSplit

    n_fold = int(n_fold)
    if n_fold < 2:
        raise FoodcastError(f"n_fold must be >= 2, got {n_fold}")
    if len(x) <= n_fold:
        raise FoodcastError(f"cannot split {len(x)} training rows into {n_fold} folds")
    target = np.asarray(y, dtype="float64")
    maes, preds = [], []
    for train, test in TimeSeriesSplit(n_splits=n_fold).split(x):
        fitted = clone(model).fit(x.iloc[train], target[train])
        pred = fitted.predict(None, x.iloc[test])
        errors = (pred.sub(target[test], axis=0)).abs().mean()
        maes.append(errors)
        preds.append(pred)
    return pd.DataFrame(maes).reset_index(drop=True), pd.concat(preds)


def plotly_predictions(preds: pd.DataFrame, y=None):
    """Plot the simple prediction, the min-max band of the members and, if given, the truth.

    Parameters
    ----------
    preds : DataFrame
        Predictions indexed by timestamp (``y_pred_simple`` and ``y_pred_0`` ...).
    y : Series, optional
        True cash-in indexed by timestamp.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go

    members = preds[member_columns(preds)]
    x = preds.index
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=members.max(axis=1), mode="lines", line={"width": 0},
                             name="multi-model max", showlegend=False))
    fig.add_trace(go.Scatter(x=x, y=members.min(axis=1), mode="lines", line={"width": 0},
                             fill="tonexty", fillcolor="rgba(31,119,180,0.25)",
                             name="multi-model min-max"))
    fig.add_trace(go.Scatter(x=x, y=preds[SIMPLE_COLUMN], mode="lines", name="prediction",
                             line={"color": "rgb(31,119,180)"}))
    if y is not None:
        fig.add_trace(go.Scatter(x=y.index, y=y, mode="lines", name="cash-in",
                                 line={"color": "black", "width": 1}))
    fig.update_layout(xaxis_title="hour", yaxis_title="cash-in (£)", hovermode="x unified",
                      template="plotly_white")
    return fig


def prediction_set(data_dir, next_week: int, degree: int = 1, lag_in_week: int = 1, past=None) -> pd.DataFrame:
    """Feature rows of the 168 hours of ``next_week``, lags from the weeks before it.

    Parameters
    ----------
    data_dir : str or Path
        Directory of weekly batches.
    next_week : int
        Week to forecast.
    degree, lag_in_week : int
        Feature settings, as in ``features_online``.
    past : DataFrame, optional
        The hourly cash-in of the ``lag_in_week`` weeks before ``next_week``, if already read
        (``etl`` of ``data_dir`` otherwise).

    Returns
    -------
    DataFrame
        ``order_date`` and the feature columns.

    Raises
    ------
    FoodcastError
        If the weeks the lags need are not all in ``data_dir``.
    """
    from foodcast.domain.feature_engineering import features_online
    from foodcast.domain.transform import etl
    from foodcast.domain.weeks import week_start

    next_week, lag_in_week = int(next_week), int(lag_in_week)
    if lag_in_week < 1:
        raise FoodcastError(f"lag_in_week must be >= 1, got {lag_in_week}")
    if next_week - lag_in_week < 1:
        raise FoodcastError(
            f"next_week {next_week} has no {lag_in_week} week(s) of past data before it "
            "(week 1 is the first)"
        )
    if past is None:
        past = etl(data_dir, next_week - lag_in_week, next_week - 1)
    # The horizon is anchored on the calendar, not on the last hour in the data, so that a
    # missing last week shows up as missing lags rather than as a shifted forecast.
    horizon = span_future(week_start(next_week) - pd.Timedelta(hours=1))
    return features_online(horizon, past, degree=degree, lag_in_week=lag_in_week)
