"""The forecast horizon, chronological cross-validation, and the feature rows of a week to forecast."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import TimeSeriesSplit

from foodcast.core.columns import FOLD_COLUMN, SIMPLE_COLUMN, member_columns
from foodcast.core.features import features_online
from foodcast.core.weeks import week_start
from foodcast.errors import FoodcastError


def span_future(last_timestamp: Any) -> pd.DataFrame:
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


def _predict_frame(model: Any, x: pd.DataFrame) -> pd.DataFrame:
    """Every prediction column of a ``MultiModel``; a plain regressor's as ``y_pred_simple``."""
    if hasattr(model, "predict_frame"):
        frame: pd.DataFrame = model.predict_frame(x)
        return frame
    return pd.DataFrame({SIMPLE_COLUMN: np.asarray(model.predict(x), dtype="float64")}, index=x.index)


def cross_validate(model: Any, x: pd.DataFrame, y: pd.Series, n_fold: int = 10) -> tuple[np.ndarray, pd.DataFrame]:
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
    n_fold = int(n_fold)
    if n_fold < 2:
        raise FoodcastError(f"n_fold must be >= 2, got {n_fold}")
    if len(x) <= n_fold:
        raise FoodcastError(f"cannot split {len(x)} training rows into {n_fold} folds")
    target = np.asarray(y, dtype="float64")
    frames, tested = [], []
    for fold, (train, test) in enumerate(TimeSeriesSplit(n_splits=n_fold).split(x)):
        fitted = clone(model).fit(x.iloc[train], target[train])
        pred = _predict_frame(fitted, x.iloc[test])
        pred[FOLD_COLUMN] = fold
        frames.append(pred)
        tested.append(test)
    preds = pd.concat(frames)
    maes = fold_maes(preds, target[np.concatenate(tested)])
    members = member_columns(maes) or [SIMPLE_COLUMN]
    return maes[members].to_numpy(), preds


def fold_maes(preds: pd.DataFrame, y: pd.Series | np.ndarray) -> pd.DataFrame:
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
    truth = np.asarray(y.loc[preds.index] if isinstance(y, pd.Series) else y, dtype="float64")
    columns = [c for c in preds.columns if str(c).startswith("y_pred")]
    errors = preds[columns].sub(truth, axis=0).abs()
    return errors.groupby(preds[FOLD_COLUMN].to_numpy()).mean().rename_axis(None)


def week_rows(past: pd.DataFrame, next_week: int, **features: Any) -> pd.DataFrame:
    """Feature rows of the 168 hours of ``next_week``, lags, level and profile read from ``past``.

    Parameters
    ----------
    past : DataFrame
        Hourly ``order_date`` / ``cash_in`` of the weeks before ``next_week``
        (``foodcast.core.windows.forecast_weeks`` says which).
    next_week : int
        Week to forecast.
    **features
        Settings of ``features_online``.

    Returns
    -------
    DataFrame
        ``order_date`` and the feature columns.
    """
    # The horizon is anchored on the calendar, not on the last hour in the data, so that a
    # missing last week shows up as missing lags rather than as a shifted forecast.
    horizon = span_future(week_start(int(next_week)) - pd.Timedelta(hours=1))
    return features_online(horizon, past, **features)
