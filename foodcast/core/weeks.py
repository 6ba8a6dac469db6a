"""Week numbering shared by the data, the core and the pipeline parameters.

Week 1 starts on Monday 2014-12-29; week ``n`` covers the seven days starting
``2014-12-29 + 7 * (n - 1)`` days, from Monday 00:00 to Sunday 23:59.
"""

from __future__ import annotations

import pandas as pd

WEEK_ONE_START = pd.Timestamp("2014-12-29")
HOURS_PER_WEEK = 168


def week_start(week: int) -> pd.Timestamp:
    """Monday 00:00 of ``week``."""
    return WEEK_ONE_START + pd.Timedelta(days=7 * (int(week) - 1))


def weeks_of(timestamps: pd.Series) -> pd.Series:
    """The number of the week that holds each timestamp of a datetime Series."""
    days = (timestamps.dt.normalize() - WEEK_ONE_START).dt.days
    week: pd.Series = days // 7 + 1
    return week


def week_hours(week: int) -> pd.DatetimeIndex:
    """The 168 hourly timestamps of ``week``."""
    return pd.date_range(week_start(week), periods=HOURS_PER_WEEK, freq="h")
