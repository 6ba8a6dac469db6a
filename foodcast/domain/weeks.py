"""Week numbering shared by the data, the library and the pipeline parameters.

Week 1 starts on Monday 2014-12-29; week ``n`` covers the seven days starting
``2014-12-29 + 7 * (n - 1)`` days, from Monday 00:00 to Sunday 23:59.
"""

import pandas as pd

WEEK_ONE_START = pd.Timestamp("2014-12-29")
HOURS_PER_WEEK = 168


def week_start(week: int) -> pd.Timestamp:
    """Monday 00:00 of ``week``."""
    return WEEK_ONE_START + pd.Timedelta(days=7 * (int(week) - 1))


def week_of(timestamp) -> int:
    """Number of the week that holds ``timestamp``."""
    days = (pd.Timestamp(timestamp).normalize() - WEEK_ONE_START).days
    return days // 7 + 1


def weeks_of(timestamps: pd.Series) -> pd.Series:
    """Vectorised :func:`week_of` for a datetime Series."""
    days = (timestamps.dt.normalize() - WEEK_ONE_START).dt.days
    return days // 7 + 1


def week_hours(week: int) -> pd.DatetimeIndex:
    """The 168 hourly timestamps of ``week``."""
    return pd.date_range(week_start(week), periods=HOURS_PER_WEEK, freq="h")


def describe_weeks(weeks) -> str:
    """Compact text for a set of week numbers, e.g. ``1-52, 60, 70-72`` (``none`` if empty)."""
    weeks = sorted(set(int(w) for w in weeks))
    if not weeks:
        return "none"
    parts, first, prev = [], weeks[0], weeks[0]
    for w in weeks[1:] + [None]:
        if w is not None and w == prev + 1:
            prev = w
            continue
        parts.append(str(first) if first == prev else f"{first}-{prev}")
        if w is not None:
            first = prev = w
    return ", ".join(parts)
