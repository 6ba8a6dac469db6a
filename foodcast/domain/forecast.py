"""Forecast horizon, chronological cross-validation and the forecast plot."""

from __future__ import annotations

import numpy as np
import pandas as pd

from foodcast.errors import FoodcastError

SIMPLE_COLUMN = "y_pred_simple"
POINT_COLUMN = "y_pred"
LOWER_COLUMN = "y_lower"
UPPER_COLUMN = "y_upper"
FOLD_COLUMN = "fold"
# Columns of a prediction frame that are not bootstrap members.
_NOT_MEMBERS = {SIMPLE_COLUMN, POINT_COLUMN}


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
    return [c for c in preds.columns if c.startswith("y_pred_") and c not in _NOT_MEMBERS]


def _predict_frame(model, x: pd.DataFrame) -> pd.DataFrame:
    """Every prediction column of a ``MultiModel``; a plain regressor's as ``y_pred_simple``."""
    if hasattr(model, "predict_frame"):
        return model.predict_frame(x)
    return pd.DataFrame({SIMPLE_COLUMN: np.asarray(model.predict(x), dtype="float64")}, index=x.index)


def cross_validate(model, x: pd.DataFrame, y: pd.Series, n_fold: int = 10):
    """Chronological cross-validation with scikit-learn's ``TimeSeriesSplit``.

    Parameters
    ----------
    model : MultiModel or scikit-learn regressor
        Cloned and fitted on each fold's past. A ``MultiModel`` gives every column of
        ``predict_frame``; a plain regressor's ``predict`` becomes ``y_pred_simple``.
    x : DataFrame
        Features indexed by timestamp, in time order.
    y : Series
        Target aligned with ``x``.
    n_fold : int
        Number of splits (>= 2).

    Returns
    -------
    maes : ndarray of shape (n_fold, n_members)
        The mean absolute error of each bootstrap member (``y_pred_0`` ...) on each fold:
        ``for i, mae in enumerate(maes)`` gives fold ``i``'s row, whose ``min()`` /
        ``max()`` are the best and worst member. A plain regressor has one column, its own
        MAE. The MAE of any other column (``y_pred_simple``, ``y_pred``) per fold is
        ``fold_maes(preds, y)[column]``.
    preds : DataFrame
        Out-of-fold predictions indexed by timestamp, with the ``fold`` (0 ...) they belong to.
    """
    from sklearn.base import clone
    from sklearn.model_selection import TimeSeriesSplit

    n_fold = int(n_fold)
    if n_fold < 2:
        raise FoodcastError(f"n_fold must be >= 2, got {n_fold}")
    if len(x) <= n_fold:
        raise FoodcastError(f"cannot split {len(x)} training rows into {n_fold} folds")
    target = np.asarray(y, dtype="float64")
    preds, tested = [], []
    for fold, (train, test) in enumerate(TimeSeriesSplit(n_splits=n_fold).split(x)):
        fitted = clone(model).fit(x.iloc[train], target[train])
        pred = _predict_frame(fitted, x.iloc[test])
        pred[FOLD_COLUMN] = fold
        preds.append(pred)
        tested.append(test)
    preds = pd.concat(preds)
    maes = fold_maes(preds, target[np.concatenate(tested)])
    members = member_columns(maes) or [SIMPLE_COLUMN]
    return maes[members].to_numpy(), preds


def fold_maes(preds: pd.DataFrame, y) -> pd.DataFrame:
    """Mean absolute error of every prediction column on every fold of ``cross_validate``'s ``preds``.

    Parameters
    ----------
    preds : DataFrame
        Out-of-fold predictions with their ``fold``, indexed like ``y``.
    y : Series or array
        The truth: a Series is aligned on ``preds``' index, an array must be in its order.

    Returns
    -------
    DataFrame
        One row per fold, one column per prediction column except the interval's bounds.
    """
    truth = y.loc[preds.index] if isinstance(y, pd.Series) else y
    truth = np.asarray(truth, dtype="float64")
    columns = [c for c in preds.columns if c.startswith("y_pred")]
    errors = preds[columns].sub(truth, axis=0).abs()
    return errors.groupby(preds[FOLD_COLUMN].to_numpy()).mean().rename_axis(None)


def plotly_predictions(preds: pd.DataFrame, y=None):
    """Plot the point forecast, its interval and, if given, the truth.

    Parameters
    ----------
    preds : DataFrame
        Predictions indexed by timestamp: ``y_pred`` with ``y_lower`` / ``y_upper`` (a
        ``MultiModel``'s), or, from an older model, ``y_pred_simple`` and the members
        ``y_pred_0`` ..., whose min-max is then the band.
    y : Series, optional
        True cash-in indexed by timestamp.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    import plotly.graph_objects as go

    x = preds.index
    if {LOWER_COLUMN, UPPER_COLUMN} <= set(preds.columns):
        lower, upper, band = preds[LOWER_COLUMN], preds[UPPER_COLUMN], "interval"
    else:
        members = preds[member_columns(preds) or [SIMPLE_COLUMN]]
        lower, upper, band = members.min(axis=1), members.max(axis=1), "multi-model min-max"
    point = preds[POINT_COLUMN] if POINT_COLUMN in preds.columns else preds[SIMPLE_COLUMN]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=upper, mode="lines", line={"width": 0}, name=f"{band} upper",
                             showlegend=False))
    fig.add_trace(go.Scatter(x=x, y=lower, mode="lines", line={"width": 0}, fill="tonexty",
                             fillcolor="rgba(31,119,180,0.25)", name=band))
    fig.add_trace(go.Scatter(x=x, y=point, mode="lines", name="forecast", line={"color": "rgb(31,119,180)"}))
    if y is not None:
        fig.add_trace(go.Scatter(x=y.index, y=y, mode="lines", name="cash-in",
                                 line={"color": "black", "width": 1}))
    fig.update_layout(xaxis_title="hour", yaxis_title="cash-in (£)", hovermode="x unified",
                      template="plotly_white")
    return fig


def prediction_set(data_dir, next_week: int, degree: int = 1, lag_in_week: int = 1, level_weeks: int = 0,
                   calendar_index: bool = False, **features) -> pd.DataFrame:
    """Feature rows of the 168 hours of ``next_week``, lags, level and profile from the weeks before it.

    Parameters
    ----------
    data_dir : str or Path
        Directory of weekly batches.
    next_week : int
        Week to forecast.
    degree, lag_in_week, level_weeks, calendar_index, **features
        Feature settings, as in ``features_online`` (``level_halflife``, ``profile_weeks``,
        ``profile_groups``).

    Returns
    -------
    DataFrame
        ``order_date`` and the feature columns.

    Raises
    ------
    FoodcastError
        If the weeks the lags or the level need are not all in ``data_dir``.
    """
    from foodcast.domain.transform import etl

    next_week = int(next_week)
    before = past_weeks(lag_in_week, level_weeks, features.get("profile_weeks", 0))
    if next_week - before < 1:
        raise FoodcastError(
            f"next_week {next_week} has no {before} week(s) of past data before it "
            "(week 1 is the first)"
        )
    past = etl(data_dir, next_week - before, next_week - 1)
    return week_rows(past, next_week, degree=degree, lag_in_week=lag_in_week, level_weeks=level_weeks,
                     calendar_index=calendar_index, **features)


def past_weeks(lag_in_week: int = 1, level_weeks: int = 0, profile_weeks: int = 0) -> int:
    """How many weeks before the forecast week :func:`prediction_set` reads (at least 1).

    Calendar-only features need no past; one week is still read so that a data directory
    without the weeks before the forecast is refused.

    Raises
    ------
    FoodcastError
        If a setting is negative.
    """
    from foodcast.domain.feature_engineering import history_weeks

    for name, value in (("lag_in_week", lag_in_week), ("level_weeks", level_weeks), ("profile_weeks", profile_weeks)):
        if int(value) < 0:
            raise FoodcastError(f"{name} must be >= 0, got {value}")
    return max(history_weeks(lag_in_week, level_weeks, profile_weeks), 1)


def week_rows(past: pd.DataFrame, next_week: int, **features) -> pd.DataFrame:
    """Feature rows of the 168 hours of ``next_week``, lags and level read from ``past``.

    Parameters
    ----------
    past : DataFrame
        Hourly ``order_date`` / ``cash_in`` of the weeks before ``next_week``.
    next_week : int
        Week to forecast.
    **features
        Settings of ``features_online``.

    Returns
    -------
    DataFrame
        ``order_date`` and the feature columns.
    """
    from foodcast.domain.feature_engineering import features_online
    from foodcast.domain.weeks import week_start

    # The horizon is anchored on the calendar, not on the last hour in the data, so that a
    # missing last week shows up as missing lags rather than as a shifted forecast.
    horizon = span_future(week_start(int(next_week)) - pd.Timedelta(hours=1))
    return features_online(horizon, past, **features)
