"""Calendar, lag and level features, computed the same way for training and for prediction.

``features_offline`` (training) and ``features_online`` (prediction) both call
:func:`build_features`, so a timestamp gets the same feature row whichever path computes
it: there is no train/serve skew by construction. Every feature of an hour is either a
function of its timestamp or a statistic of the weeks *before* its week, so the rows of a
training window and the rows of the week after it are described alike.

The functions' defaults are the tutorial's features (weekday one-hot, one hour harmonic, the
lag of one week); :data:`DEFAULT_FEATURES` are the pipeline's.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from foodcast.errors import FoodcastError

# Monday (0) is the dropped level. Floats, not ints: an MLflow signature with integer columns
# refuses inputs that went through a float representation.
WEEKDAY_COLUMNS = [f"weekday_{d}" for d in range(1, 7)]
INDEX_COLUMNS = ["weekday", "hour"]
LEVEL_PREFIX = "level_"
HOURS_PER_WEEK = 168

#: The tutorial's features: what ``features_offline(df)`` computes.
TUTORIAL_FEATURES = {"degree": 1, "lag_in_week": 1, "level_weeks": 0, "calendar_index": False}
#: The pipeline's default features: calendar and the level of the 5 weeks before (no lags:
#: the cash-in of one hour a week ago is mostly noise, see bench/forecast_accuracy.py).
DEFAULT_FEATURES = {"degree": 1, "lag_in_week": 0, "level_weeks": 5, "calendar_index": True}


def feature_columns(degree: int = 1, lag_in_week: int = 1, level_weeks: int = 0,
                    calendar_index: bool = False) -> list[str]:
    """Names and order of the feature columns for these settings (see :func:`build_features`)."""
    hours = [f"hour_{f}_{k}" for k in range(1, degree + 1) for f in ("cos", "sin")]
    clock = INDEX_COLUMNS if calendar_index else []
    lags = [f"lag_{lag}W" for lag in range(1, lag_in_week + 1)]
    level = [level_column(level_weeks)] if level_weeks else []
    return WEEKDAY_COLUMNS + hours + clock + lags + level


def level_column(level_weeks: int) -> str:
    """Name of the level feature: ``level_{L}W``."""
    return f"{LEVEL_PREFIX}{int(level_weeks)}W"


def history_weeks(lag_in_week: int = 1, level_weeks: int = 0) -> int:
    """How many weeks before an hour its features read (0: calendar features only)."""
    return max(int(lag_in_week), int(level_weeks))


def _check_settings(degree: int, lag_in_week: int, level_weeks: int) -> None:
    for name, value in (("degree", degree), ("lag_in_week", lag_in_week), ("level_weeks", level_weeks)):
        if int(value) < 0:
            raise FoodcastError(f"{name} must be >= 0, got {value}")


def _week_monday(timestamps: pd.Series) -> pd.Series:
    return timestamps.dt.normalize() - pd.to_timedelta(timestamps.dt.day_of_week, unit="D")


def _levels(timestamps: pd.Series, observed: pd.Series, level_weeks: int) -> np.ndarray:
    """Mean hourly cash-in of the ``level_weeks`` calendar weeks before each timestamp's week.

    NaN where one of those weeks is not complete (168 hours) in ``observed``.
    """
    mondays = _week_monday(observed.index.to_series())
    weekly = observed.groupby(mondays.to_numpy()).agg(["mean", "count"])
    complete = weekly.loc[weekly["count"] == HOURS_PER_WEEK, "mean"]
    complete.index = pd.DatetimeIndex(complete.index).as_unit("us")
    own = pd.DatetimeIndex(_week_monday(timestamps)).as_unit("us")
    before = [complete.reindex(own - pd.Timedelta(weeks=k)).to_numpy(dtype="float64")
              for k in range(1, level_weeks + 1)]
    # A plain mean, NaN as soon as one week is missing: the level is never taken from fewer weeks.
    return np.sum(before, axis=0) / level_weeks


def build_features(timestamps: pd.Series, history: pd.DataFrame, degree: int, lag_in_week: int,
                   level_weeks: int = 0, calendar_index: bool = False) -> pd.DataFrame:
    """Feature rows for ``timestamps``, lags and levels looked up in ``history``.

    Parameters
    ----------
    timestamps : Series of datetime64
        Hours to describe.
    history : DataFrame
        ``order_date`` / ``cash_in`` observations the lags and levels are read from.
    degree : int
        Number of hour-of-day harmonics (``hour_cos_k``, ``hour_sin_k``, k = 1..degree).
    lag_in_week : int
        Lags ``lag_{L}W``: cash-in at the same hour L = 1..lag_in_week weeks earlier
        (NaN where ``history`` lacks that hour).
    level_weeks : int, default 0
        If > 0, ``level_{L}W``: the mean hourly cash-in of the L calendar weeks (Monday to
        Sunday) before the hour's week; NaN unless all L weeks are complete in ``history``.
        It is the same for every hour of a week, so the rows of a forecast week get the
        level the model saw for the weeks it was trained on.
    calendar_index : bool, default False
        If true, ``weekday`` (0 = Monday .. 6) and ``hour`` (0-23): positions in the week and
        the day, which a tree cuts into ranges (Friday-Saturday, the evening) in one split each.

    Returns
    -------
    DataFrame
        ``order_date`` then :func:`feature_columns`, one row per timestamp.
    """
    _check_settings(degree, lag_in_week, level_weeks)
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
    if calendar_index:
        out["weekday"] = weekday.astype("float64")
        out["hour"] = hour.astype("float64")
    observed = pd.Series(history["cash_in"].to_numpy(dtype="float64"),
                         index=pd.DatetimeIndex(history["order_date"]))
    observed = observed[~observed.index.duplicated(keep="last")]
    for lag in range(1, lag_in_week + 1):
        when = pd.DatetimeIndex(timestamps - pd.Timedelta(weeks=lag)).as_unit(observed.index.unit)
        out[f"lag_{lag}W"] = observed.reindex(when).to_numpy(dtype="float64")
    if level_weeks:
        out[level_column(level_weeks)] = _levels(timestamps, observed, int(level_weeks))
    return pd.DataFrame(out)


def _history_columns(features: pd.DataFrame) -> list[str]:
    return [c for c in features.columns if c.startswith(("lag_", LEVEL_PREFIX))]


def features_offline(df: pd.DataFrame, degree: int = 1, lag_in_week: int = 1, level_weeks: int = 0,
                     calendar_index: bool = False) -> pd.DataFrame:
    """Training rows: features of every hour of ``df`` plus its ``cash_in`` target.

    Rows whose lags or level are not all in ``df`` (its first
    ``max(lag_in_week, level_weeks)`` weeks) are dropped.

    Parameters
    ----------
    df : DataFrame
        Hourly ``order_date`` / ``cash_in``, as returned by ``etl``.
    degree, lag_in_week, level_weeks, calendar_index
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
    features = build_features(df["order_date"], df, degree, lag_in_week, level_weeks, calendar_index)
    features["cash_in"] = df["cash_in"].to_numpy(dtype="float64")
    features = features.dropna(subset=_history_columns(features)).reset_index(drop=True)
    if features.empty:
        weeks = history_weeks(lag_in_week, level_weeks)
        raise FoodcastError(
            f"no hour has all its lags and level: the data must span more than {weeks} complete "
            f"weeks (lag_in_week={lag_in_week}, level_weeks={level_weeks})"
        )
    return features


def features_online(df_future: pd.DataFrame, past: pd.DataFrame, degree: int = 1, lag_in_week: int = 1,
                    level_weeks: int = 0, calendar_index: bool = False) -> pd.DataFrame:
    """Prediction rows: features of the future hours, lags and level taken from ``past``.

    Parameters
    ----------
    df_future : DataFrame
        Column ``order_date``: the hours to predict (e.g. from ``span_future``).
    past : DataFrame
        Hourly ``order_date`` / ``cash_in`` covering the ``max(lag_in_week, level_weeks)``
        weeks before.
    degree, lag_in_week, level_weeks, calendar_index
        See :func:`build_features`.

    Returns
    -------
    DataFrame
        ``order_date`` and the feature columns, one row per future hour.

    Raises
    ------
    FoodcastError
        If ``past`` lacks an hour a lag or the level needs.
    """
    features = build_features(df_future["order_date"], past, degree, lag_in_week, level_weeks, calendar_index)
    missing = features[_history_columns(features)].isna().any(axis=1)
    if missing.any():
        first = features.loc[missing, "order_date"].iloc[0]
        weeks = history_weeks(lag_in_week, level_weeks)
        raise FoodcastError(
            f"the past data lacks the hours the lags or level of {int(missing.sum())} future hours "
            f"need (first: {first}); lag_in_week={lag_in_week} and level_weeks={level_weeks} need "
            f"the {weeks} complete weeks before"
        )
    return features
