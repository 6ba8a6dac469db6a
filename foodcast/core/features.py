"""Calendar, lag, level and profile features, computed the same way for training and for prediction.

``features_offline`` (training) and ``features_online`` (prediction) both call
:func:`build_features`, so a timestamp gets the same feature row whichever path computes
it: there is no train/serve skew by construction. Every feature of an hour is either a
function of its timestamp, a statistic of the weeks *before* its week (lags, level) or of the
weeks *around* it, its own week left out (profile), so the rows of a training window and the
rows of the week after it are described alike.

The functions' defaults are the tutorial's features (weekday one-hot, one hour harmonic, the
lag of one week); :data:`DEFAULT_FEATURES` are the pipeline's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import cast

import numpy as np
import pandas as pd
from sklearn.cluster import AgglomerativeClustering

from foodcast.core.windows import history_weeks
from foodcast.errors import FoodcastError

# Monday (0) is the dropped level. Floats, not ints: an MLflow signature with integer columns
# refuses inputs that went through a float representation.
WEEKDAY_COLUMNS = [f"weekday_{d}" for d in range(1, 7)]
INDEX_COLUMNS = ["weekday", "hour"]
LEVEL_PREFIX = "level_"
PROFILE_PREFIX = "profile_"
HOURS_PER_WEEK = 168
DAYS_PER_WEEK = 7
HOURS_PER_DAY = 24
HARMONIC_PATTERN = re.compile(r"^hour_(cos|sin)_\d+$")

#: The tutorial's features: what ``features_offline(df)`` computes.
TUTORIAL_FEATURES = {
    "degree": 1,
    "lag_in_week": 1,
    "level_weeks": 0,
    "calendar_index": False,
    "level_halflife": 0.0,
    "profile_weeks": 0,
    "profile_groups": 2,
}
#: The pipeline's default features: calendar, the level of the 8 weeks before (weighted with
#: a half-life of 2 weeks) and the week's profile over the 21 weeks around (no lags: the
#: cash-in of one hour a week ago is mostly noise; see bench/forecast_accuracy.py).
DEFAULT_FEATURES = {
    "degree": 1,
    "lag_in_week": 0,
    "level_weeks": 8,
    "calendar_index": True,
    "level_halflife": 2.0,
    "profile_weeks": 21,
    "profile_groups": 2,
}


def level_column(level_weeks: int) -> str:
    """Name of the level feature: ``level_{L}W``."""
    return f"{LEVEL_PREFIX}{int(level_weeks)}W"


def profile_column(profile_weeks: int) -> str:
    """Name of the profile feature: ``profile_{P}W``."""
    return f"{PROFILE_PREFIX}{int(profile_weeks)}W"


def _check_settings(
    degree: int,
    lag_in_week: int,
    level_weeks: int,
    level_halflife: float = 0.0,
    profile_weeks: int = 0,
    profile_groups: int = 2,
) -> None:
    for name, value in (
        ("degree", degree),
        ("lag_in_week", lag_in_week),
        ("level_weeks", level_weeks),
        ("level_halflife", level_halflife),
        ("profile_weeks", profile_weeks),
    ):
        if float(value) < 0:
            raise FoodcastError(f"{name} must be >= 0, got {value}")
    if not 1 <= int(profile_groups) <= DAYS_PER_WEEK:
        raise FoodcastError(f"profile_groups must be between 1 and {DAYS_PER_WEEK}, got {profile_groups}")


def _week_monday(timestamps: pd.Series) -> pd.Series:
    monday: pd.Series = timestamps.dt.normalize() - pd.to_timedelta(timestamps.dt.day_of_week, unit="D")
    return monday


def _hour_of_week(timestamps: pd.Series) -> np.ndarray:
    hour: np.ndarray = (timestamps.dt.day_of_week * 24 + timestamps.dt.hour).to_numpy()
    return hour


def _observed(history: pd.DataFrame) -> pd.Series:
    """``history``'s cash-in indexed by hour, each hour once (the last row of a repeated hour)."""
    observed = pd.Series(history["cash_in"].to_numpy(dtype="float64"), index=pd.DatetimeIndex(history["order_date"]))
    return observed[~observed.index.duplicated(keep="last")]


def _complete_weeks(observed: pd.Series) -> pd.DataFrame:
    """The calendar weeks (Monday to Sunday) of which ``observed`` holds all 168 hours.

    One row per week, indexed by its Monday; one column per hour of the week (0 = Monday 00:00).
    """
    stamps = observed.index.to_series()
    table = pd.DataFrame(
        {"monday": _week_monday(stamps).to_numpy(), "hour": _hour_of_week(stamps), "cash_in": observed.to_numpy()}
    )
    weeks = table.pivot(index="monday", columns="hour", values="cash_in")
    weeks = weeks.reindex(columns=range(HOURS_PER_WEEK)).dropna()
    weeks.index = pd.DatetimeIndex(weeks.index).as_unit("us")
    return weeks


def _levels(timestamps: pd.Series, weeks: pd.DataFrame, level_weeks: int, halflife: float) -> np.ndarray:
    """Mean hourly cash-in of the ``level_weeks`` calendar weeks before each timestamp's week.

    With ``halflife > 0`` the week ``k`` weeks before (k = 1 .. level_weeks) weighs
    ``0.5 ** ((k - 1) / halflife)``. NaN where one of those weeks is not in ``weeks``.
    """
    means = weeks.mean(axis=1)
    own = pd.DatetimeIndex(_week_monday(timestamps)).as_unit("us")
    before = np.array(
        [means.reindex(own - pd.Timedelta(weeks=k)).to_numpy(dtype="float64") for k in range(1, level_weeks + 1)]
    )
    weights = 0.5 ** (np.arange(level_weeks) / halflife) if halflife > 0 else np.ones(level_weeks)
    # NaN as soon as one week is missing: the level is never taken from fewer weeks.
    levels: np.ndarray = weights @ before / weights.sum()
    return levels


def day_groups(shares: np.ndarray, groups: int) -> np.ndarray:
    """Group the weekdays whose hours share the day's trade alike.

    Parameters
    ----------
    shares : ndarray of shape (7, 24)
        Each weekday's hourly shares of its day (rows of zeros for days without trade).
    groups : int
        Number of groups of the days with trade (1 .. 7): scikit-learn's average-linkage
        ``AgglomerativeClustering`` of their share vectors.

    Returns
    -------
    ndarray of int, shape (7,)
        Group of each weekday; -1 for days without trade.
    """
    trading = shares.sum(axis=1) > 0
    labels = np.full(DAYS_PER_WEEK, -1)
    groups = min(int(groups), int(trading.sum()))
    if groups == trading.sum():
        labels[trading] = np.arange(groups)
    elif groups == 1:
        labels[trading] = 0
    elif groups > 1:
        labels[trading] = AgglomerativeClustering(n_clusters=groups, linkage="average").fit_predict(shares[trading])
    return labels


def week_profile(weeks: np.ndarray, groups: int = 2) -> np.ndarray:
    """The shape of a typical week: each hour's cash-in over the week's mean hour.

    An hour's value is its weekday's share of the week's cash-in times the hour's share of
    its day, both summed over ``weeks``; the hourly shares are pooled over the weekdays of
    the hour's group (see :func:`day_groups`), so that an hour of the week is estimated
    from ``len(weeks) x days in its group`` days instead of ``len(weeks)`` hours (the noise
    of single hours, not the shape, then varies between the days of a group). A day
    without any trade (a closure) counts for neither its weekday's share nor the hours'.

    Parameters
    ----------
    weeks : ndarray of shape (n, 168)
        Hourly cash-in of ``n`` weeks with trade, each from Monday 00:00.
    groups : int
        Groups of weekdays sharing their hourly shares (7: every day its own).

    Returns
    -------
    ndarray of shape (168,)
        Non-negative, mean 1.
    """
    weeks = np.asarray(weeks, dtype="float64")
    days = weeks.sum(axis=0).reshape(DAYS_PER_WEEK, 24)
    sums = days.sum(axis=1)
    labels = day_groups(days / np.where(sums > 0, sums, 1.0)[:, None], groups)
    shares = np.zeros_like(days)
    for label in np.unique(labels[labels >= 0]):
        members = labels == label
        shares[members] = days[members].sum(axis=0) / days[members].sum()
    # A weekday's cash-in is the mean of its days with trade: a closure says nothing of the others.
    trading = (weeks.reshape(len(weeks), DAYS_PER_WEEK, 24).sum(axis=2) > 0).sum(axis=0)
    profile = (sums / np.maximum(trading, 1))[:, None] * shares
    normalised: np.ndarray = (profile / profile.mean()).ravel()
    return normalised


def _profiles(timestamps: pd.Series, weeks: pd.DataFrame, profile_weeks: int, groups: int) -> np.ndarray:
    """Each timestamp's value in :func:`week_profile` of the weeks within ``profile_weeks`` of its own.

    The weeks used are those of ``weeks`` with trade, at most ``profile_weeks`` weeks before or
    after the timestamp's week, that week itself left out: a training row's profile does not
    contain its own cash-in, and a forecast week's is that of the weeks before it. NaN where
    there is no such week.
    """
    weeks = weeks[weeks.mean(axis=1) > 0]
    mondays = cast(pd.DatetimeIndex, weeks.index)
    own = pd.DatetimeIndex(_week_monday(timestamps)).as_unit("us")
    hour = _hour_of_week(timestamps)
    out = np.full(len(timestamps), np.nan)
    for monday in own.unique():
        apart = np.abs((mondays - monday).days.to_numpy()) // 7
        used = (apart >= 1) & (apart <= profile_weeks)
        if used.any():
            rows = np.asarray(own == monday)
            out[rows] = week_profile(weeks.to_numpy()[used], groups)[hour[rows]]
    return out


def build_features(
    timestamps: pd.Series,
    history: pd.DataFrame,
    degree: int,
    lag_in_week: int,
    level_weeks: int = 0,
    calendar_index: bool = False,
    level_halflife: float = 0.0,
    profile_weeks: int = 0,
    profile_groups: int = 2,
) -> pd.DataFrame:
    """Feature rows for ``timestamps``, lags, levels and profiles looked up in ``history``.

    Parameters
    ----------
    timestamps : Series of datetime64
        Hours to describe.
    history : DataFrame
        ``order_date`` / ``cash_in`` observations the lags, levels and profiles are read from.
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
    level_halflife : float, default 0
        If > 0, the level is a weighted mean: the week k weeks before weighs
        ``0.5 ** ((k - 1) / level_halflife)``, so that the level follows the season with
        less delay. 0: a plain mean.
    profile_weeks : int, default 0
        If > 0, ``profile_{P}W``: the hour's value in the shape of a typical week (mean 1
        over the 168 hours; :func:`week_profile`), from the complete weeks of ``history``
        at most P weeks before or after the hour's week, that week left out. For a forecast
        week it is the shape of the P weeks before it; for a training window of P weeks,
        each row's is that of the window's other weeks. Times the level, it is the hour's
        expected cash-in. NaN where ``history`` has no such week.
    profile_groups : int, default 2
        Groups of weekdays whose hours share the day alike (1 .. 7), pooled in the profile.

    Returns
    -------
    DataFrame
        ``order_date`` then the feature columns, one row per timestamp: the weekday one-hot,
        the hour harmonics, ``weekday`` / ``hour``, the lags, the level and the profile, as set.
    """
    _check_settings(degree, lag_in_week, level_weeks, level_halflife, profile_weeks, profile_groups)
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
    observed = _observed(history)
    for lag in range(1, lag_in_week + 1):
        when = pd.DatetimeIndex(timestamps - pd.Timedelta(weeks=lag)).as_unit(
            cast(pd.DatetimeIndex, observed.index).unit
        )
        out[f"lag_{lag}W"] = observed.reindex(when).to_numpy(dtype="float64")
    if level_weeks or profile_weeks:
        weeks = _complete_weeks(observed)
    if level_weeks:
        out[level_column(level_weeks)] = _levels(timestamps, weeks, int(level_weeks), float(level_halflife))
    if profile_weeks:
        out[profile_column(profile_weeks)] = _profiles(timestamps, weeks, int(profile_weeks), int(profile_groups))
    return pd.DataFrame(out)


def history_columns(features: pd.DataFrame) -> list[str]:
    """The columns of a feature frame read from the past (lags, level, profile): NaN where the
    history lacks what they need."""
    return [c for c in features.columns if c.startswith(("lag_", LEVEL_PREFIX, PROFILE_PREFIX))]


def _settings_text(lag_in_week: int, level_weeks: int, profile_weeks: int) -> str:
    return f"lag_in_week={lag_in_week}, level_weeks={level_weeks}, profile_weeks={profile_weeks}"


def features_offline(
    df: pd.DataFrame,
    degree: int = 1,
    lag_in_week: int = 1,
    level_weeks: int = 0,
    calendar_index: bool = False,
    level_halflife: float = 0.0,
    profile_weeks: int = 0,
    profile_groups: int = 2,
) -> pd.DataFrame:
    """Training rows: features of every hour of ``df`` plus its ``cash_in`` target.

    Rows whose lags or level are not all in ``df`` (its first
    ``max(lag_in_week, level_weeks)`` weeks) are dropped; the profile of a row comes from
    the other weeks of ``df`` (see :func:`build_features`).

    Parameters
    ----------
    df : DataFrame
        Hourly ``order_date`` / ``cash_in``, as returned by ``etl``.
    degree, lag_in_week, level_weeks, calendar_index, level_halflife, profile_weeks, profile_groups
        See :func:`build_features`.

    Returns
    -------
    DataFrame
        ``order_date``, the feature columns, and ``cash_in``.

    Raises
    ------
    FoodcastError
        If no hour has all its lags, level and profile.
    """
    features = build_features(
        df["order_date"],
        df,
        degree,
        lag_in_week,
        level_weeks,
        calendar_index,
        level_halflife,
        profile_weeks,
        profile_groups,
    )
    features["cash_in"] = df["cash_in"].to_numpy(dtype="float64")
    features = features.dropna(subset=history_columns(features)).reset_index(drop=True)
    if features.empty:
        weeks = max(history_weeks(lag_in_week, level_weeks), 1 if profile_weeks else 0)
        raise FoodcastError(
            f"no hour has all its lags, level and profile: the data must span more than {weeks} "
            f"complete weeks ({_settings_text(lag_in_week, level_weeks, profile_weeks)})"
        )
    return features


def features_online(
    df_future: pd.DataFrame,
    past: pd.DataFrame,
    degree: int = 1,
    lag_in_week: int = 1,
    level_weeks: int = 0,
    calendar_index: bool = False,
    level_halflife: float = 0.0,
    profile_weeks: int = 0,
    profile_groups: int = 2,
) -> pd.DataFrame:
    """Prediction rows: features of the future hours, lags, level and profile taken from ``past``.

    Parameters
    ----------
    df_future : DataFrame
        Column ``order_date``: the hours to predict (e.g. from ``span_future``).
    past : DataFrame
        Hourly ``order_date`` / ``cash_in`` covering the
        ``history_weeks(lag_in_week, level_weeks, profile_weeks)`` weeks before.
    degree, lag_in_week, level_weeks, calendar_index, level_halflife, profile_weeks, profile_groups
        See :func:`build_features`.

    Returns
    -------
    DataFrame
        ``order_date`` and the feature columns, one row per future hour.

    Raises
    ------
    FoodcastError
        If ``past`` lacks an hour a lag or the level needs, or one of the ``profile_weeks``
        complete weeks before the first future hour's week.
    """
    features = build_features(
        df_future["order_date"],
        past,
        degree,
        lag_in_week,
        level_weeks,
        calendar_index,
        level_halflife,
        profile_weeks,
        profile_groups,
    )
    weeks = history_weeks(lag_in_week, level_weeks, profile_weeks)
    missing = features[history_columns(features)].isna().any(axis=1)
    if missing.any():
        first = features.loc[missing, "order_date"].iloc[0]
        raise FoodcastError(
            f"the past data lacks the hours the lags, level or profile of {int(missing.sum())} future "
            f"hours need (first: {first}); {_settings_text(lag_in_week, level_weeks, profile_weeks)} "
            f"need the {weeks} complete weeks before"
        )
    if profile_weeks and len(features):
        # A profile is defined from fewer weeks too; a forecast's is from all of them.
        first_monday = _week_monday(pd.Series(pd.to_datetime(features["order_date"]))).min()
        wanted = pd.DatetimeIndex(
            [first_monday - pd.Timedelta(weeks=k) for k in range(1, int(profile_weeks) + 1)]
        ).as_unit("us")
        lacking = wanted.difference(cast(pd.DatetimeIndex, _complete_weeks(_observed(past)).index))
        if len(lacking):
            raise FoodcastError(
                f"the past data lacks {len(lacking)} of the {int(profile_weeks)} complete weeks before "
                f"{first_monday.date()} the profile needs (first: the week of {lacking[0].date()}); "
                f"{_settings_text(lag_in_week, level_weeks, profile_weeks)} need the {weeks} complete weeks before"
            )
    return features


def feature_bounds(column: str) -> tuple[float, float, bool] | None:
    """``(lowest, highest, whole)``: the values a feature column of :func:`build_features` can
    take, by its name; ``None`` for a name of no kind it writes."""
    if column in WEEKDAY_COLUMNS:
        return 0.0, 1.0, True
    if column == INDEX_COLUMNS[0]:
        return 0.0, DAYS_PER_WEEK - 1.0, True
    if column == INDEX_COLUMNS[1]:
        return 0.0, HOURS_PER_DAY - 1.0, True
    if HARMONIC_PATTERN.match(column):
        return -1.0, 1.0, False
    if column.startswith(("lag_", LEVEL_PREFIX, PROFILE_PREFIX)):
        # Cash-in, a mean of it, a share of the week's: never negative.
        return 0.0, np.inf, False
    return None


def check_feature_frame(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Feature rows a model fitted on ``columns`` can be asked about, as float columns.

    A model answers anything: a NaN level or a weekday of 42 gives a forecast, and a
    wrong one. This refuses what no row of :func:`build_features` holds: a column that is not
    one of ``columns`` (or is given twice), a missing one, no row at all, a value that is not
    a number or not finite, and one out of its column's range (:func:`feature_bounds`): a
    weekday one-hot other than 0 or 1, ``weekday`` outside 0-6, ``hour`` outside 0-23 or not
    whole, a harmonic outside [-1, 1], a negative lag, level or profile.

    Parameters
    ----------
    frame : DataFrame
        The rows to predict, columns in any order.
    columns : sequence of str
        The model's features.

    Returns
    -------
    DataFrame
        ``frame``'s values as float64, columns in the order of ``columns``, index kept.

    Raises
    ------
    FoodcastError
        Naming the column (and the row, 1-based, of the first bad value).
    """
    names = [str(c) for c in frame.columns]
    twice = sorted({c for c in names if names.count(c) > 1})
    if twice:
        raise FoodcastError(f"column {twice[0]!r} is given twice")
    unknown = [c for c in names if c not in columns]
    if unknown:
        raise FoodcastError(f"unknown column {unknown[0]!r}: the model's features are {list(columns)}")
    missing = [c for c in columns if c not in names]
    if missing:
        raise FoodcastError(f"missing column {missing[0]!r}: the model's features are {list(columns)}")
    if frame.empty:
        raise FoodcastError("no rows to predict")
    frame = frame.set_axis(names, axis=1)
    values = {}
    for column in columns:
        raw = frame[column]
        numbers = pd.to_numeric(raw, errors="coerce").to_numpy(dtype="float64")
        bounds = feature_bounds(column)
        with np.errstate(invalid="ignore"):
            checks = [
                (np.isnan(numbers) & raw.notna().to_numpy(), "not a number:"),
                (np.isnan(numbers), "missing value:"),
                (np.isinf(numbers), "not a finite number:"),
            ]
            if bounds is not None:
                low, high, whole = bounds
                span = f"{low:g} or more" if high == np.inf else f"{low:g} to {high:g}"
                checks.append(((numbers < low) | (numbers > high), f"outside {span}:"))
                if whole:
                    checks.append((numbers != np.round(numbers), "not a whole number:"))
        for bad, what in checks:
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                value = raw.iloc[row]
                value = value.item() if isinstance(value, np.generic) else value  # 42.0, not np.float64(42.0)
                raise FoodcastError(f"row {row + 1}, column {column!r}: {what} {value!r}")
        values[column] = numbers
    return pd.DataFrame(values, index=frame.index)
