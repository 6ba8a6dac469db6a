"""Calendar and lag features, computed the same way for training and for prediction.

``features_offline`` (training) and ``features_online`` (prediction) both call
:func:`build_features`, so a timestamp gets the same feature row whichever path computes
it: there is no train/serve skew by construction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from foodcast.errors import FoodcastError

# Monday (0) is the dropped level. Floats, not ints: an MLflow signature with integer columns
# refuses inputs that went through a float representation.
WEEKDAY_COLUMNS = [f"weekday_{d}" for d in range(1, 7)]


def feature_columns(degree: int = 1, lag_in_week: int = 1) -> list[str]:
    """Names and order of the feature columns for these settings."""
    hours = [f"hour_{f}_{k}" for k in range(1, degree + 1) for f in ("cos", "sin")]
    lags = [f"lag_{lag}W" for lag in range(1, lag_in_week + 1)]
    return WEEKDAY_COLUMNS + hours + lags


def _check_settings(degree: int, lag_in_week: int) -> None:
    if degree < 1:
        raise FoodcastError(f"degree must be >= 1, got {degree}")
    if lag_in_week < 1:
        raise FoodcastError(f"lag_in_week must be >= 1, got {lag_in_week}")


def build_features(timestamps: pd.Series, history: pd.DataFrame, degree: int, lag_in_week: int) -> pd.DataFrame:
    """Feature rows for ``timestamps``, lags looked up in ``history``.

    Parameters
    ----------
    timestamps : Series of datetime64
        Hours to describe.
    history : DataFrame
        ``order_date`` / ``cash_in`` observations the lags are read from.
    degree : int
        Number of hour-of-day harmonics (``hour_cos_k``, ``hour_sin_k``, k = 1..degree).
    lag_in_week : int
        Lags ``lag_{L}W``: cash-in at the same hour L = 1..lag_in_week weeks earlier
        (NaN where ``history`` lacks that hour).

    Returns
    -------
    DataFrame
        ``order_date`` then :func:`feature_columns`, one row per timestamp.
    """
    _check_settings(degree, lag_in_week)
    timestamps = pd.Series(pd.to_datetime(timestamps).to_numpy(), name="order_date")
    out = {"order_date": timestamps.to_numpy()}
    weekday = timestamps.dt.day_of_week.to_numpy()
    for d, column in enumerate(WEEKDAY_COLUMNS, start=1):
        out[column] = (weekday == d).astype("float64")
    hour = timestamps.dt.hour.to_numpy()
    for k in range(1, degree + 1):
        angle = 2 * np.pi * k * hour / 24
        out[f"hour_cos_{k}"] = np.round(np.cos(angle), 12)
        out[f"hour_sin_{k}"] = np.round(np.sin(angle), 12)
    observed = pd.Series(history["cash_in"].to_numpy(), index=pd.DatetimeIndex(history["order_date"]))
    observed = observed[~observed.index.duplicated(keep="last")]
    for lag in range(1, lag_in_week + 1):
        when = pd.DatetimeIndex(timestamps - pd.Timedelta(weeks=lag)).as_unit(observed.index.unit)
        out[f"lag_{lag}W"] = observed.reindex(when).to_numpy(dtype="float64")
    return pd.DataFrame(out)


def features_offline(df: pd.DataFrame, degree: int = 1, lag_in_week: int = 1) -> pd.DataFrame:
    """Training rows: features of every hour of ``df`` plus its ``cash_in`` target.

    Rows whose lags are not all in ``df`` (its first ``lag_in_week`` weeks) are dropped.

    Parameters
    ----------
    df : DataFrame
        Hourly ``order_date`` / ``cash_in``, as returned by ``etl``.
    degree, lag_in_week : int
        See :func:`build_features`.

    Returns
    -------
    DataFrame
        ``order_date``, the feature columns, and ``cash_in``.

    Raises
    ------
    FoodcastError
        If no hour has all its lags.
    """
    features = build_features(df["order_date"], df, degree, lag_in_week)
    features["cash_in"] = df["cash_in"].to_numpy(dtype="float64")
    lags = [c for c in features.columns if c.startswith("lag_")]
    features = features.dropna(subset=lags).reset_index(drop=True)
    if features.empty:
        raise FoodcastError(
            f"no hour has all its lags: the data must span more than lag_in_week={lag_in_week} weeks"
        )
    return features


def features_online(df_future: pd.DataFrame, past: pd.DataFrame, degree: int = 1, lag_in_week: int = 1) -> pd.DataFrame:
    """Prediction rows: features of the future hours, lags taken from ``past``.

    Parameters
    ----------
    df_future : DataFrame
        Column ``order_date``: the hours to predict (e.g. from ``span_future``).
    past : DataFrame
        Hourly ``order_date`` / ``cash_in`` covering the ``lag_in_week`` weeks before.
    degree, lag_in_week : int
        See :func:`build_features`.

    Returns
    -------
    DataFrame
        ``order_date`` and the feature columns, one row per future hour.

    Raises
    ------
    FoodcastError
        If ``past`` lacks an hour a lag needs.
    """
    features = build_features(df_future["order_date"], past, degree, lag_in_week)
    lags = [c for c in features.columns if c.startswith("lag_")]
    missing = features[lags].isna().any(axis=1)
    if missing.any():
        first = features.loc[missing, "order_date"].iloc[0]
        raise FoodcastError(
            f"the past data lacks the hours the lags of {int(missing.sum())} future hours need "
            f"(first: {first}); lag_in_week={lag_in_week} needs the {lag_in_week} weeks before"
        )
    return features
