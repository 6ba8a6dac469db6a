"""From order lines to the hourly cash-in series the pipeline forecasts."""

from __future__ import annotations

import logging

import pandas as pd

from foodcast.domain.weeks import describe_weeks, week_hours, weeks_of
from foodcast.errors import FoodcastError

logger = logging.getLogger(__name__)


def check_week_range(start_week: int, end_week: int) -> None:
    """Refuse a week range that cannot hold data (start after end, or a week before 1)."""
    if start_week < 1 or end_week < 1:
        raise FoodcastError(f"weeks start at 1 (week 1 = 2014-12-29), got {start_week}..{end_week}")
    if start_week > end_week:
        raise FoodcastError(f"start_week {start_week} is after end_week {end_week}")


def hourly_cash_in(orders: pd.DataFrame, weeks) -> pd.DataFrame:
    """Sum the order lines of ``weeks`` per hour, every hour of those weeks present.

    Parameters
    ----------
    orders : DataFrame
        Order lines with ``order_date``, ``quantity`` and ``product_price``.
    weeks : iterable of int
        Weeks to cover; each contributes its 168 hours, hours without orders being 0.

    Returns
    -------
    DataFrame
        ``order_date`` (hourly timestamps, ascending) and ``cash_in`` (float).
    """
    weeks = sorted(set(int(w) for w in weeks))
    if weeks:
        grid = pd.DatetimeIndex(pd.concat([week_hours(w).to_series() for w in weeks]).to_numpy())
    else:
        grid = pd.DatetimeIndex([], dtype="datetime64[us]")
    grid = grid.as_unit("us")
    amount = orders["quantity"] * orders["product_price"]
    per_hour = amount.groupby(orders["order_date"].dt.floor("h").dt.as_unit("us")).sum()
    cash_in = per_hour.reindex(grid, fill_value=0.0).astype("float64").round(2)
    return pd.DataFrame({"order_date": grid, "cash_in": cash_in.to_numpy()})


def etl(data_dir, start_week: int, end_week: int) -> pd.DataFrame:
    """Hourly cash-in of the whole chain over weeks ``start_week..end_week``.

    Reads every restaurant's batch of those weeks from ``data_dir``; the cash-in of an hour
    is the sum of quantity x price of the order lines placed in that hour. Weeks the data
    directory does not hold are left out (and reported in a warning), not zero-filled.

    Parameters
    ----------
    data_dir : str or Path
        Directory of weekly batches (``<restaurant>/week_NNN.csv.gz``).
    start_week, end_week : int
        First and last week, inclusive (week 1 starts Monday 2014-12-29).

    Returns
    -------
    DataFrame
        ``order_date`` (every hour of the weeks held) and ``cash_in``.

    Raises
    ------
    FoodcastError
        If start > end, a week is < 1, or no week of the range has data; the message says
        which weeks the data directory holds.
    """
    from foodcast.infrastructure.batches import list_batches, read_batches

    start_week, end_week = int(start_week), int(end_week)
    batches = list_batches(data_dir)
    held = {w for weeks in batches.values() for w in weeks}
    try:
        check_week_range(start_week, end_week)
    except FoodcastError as exc:
        raise FoodcastError(f"{exc}; {data_dir} holds weeks {describe_weeks(held)}") from None
    wanted = set(range(start_week, end_week + 1))
    present = sorted(wanted & held)
    if not present:
        raise FoodcastError(
            f"no data for weeks {start_week}-{end_week} in {data_dir}; "
            f"it holds weeks {describe_weeks(held)}"
        )
    missing = wanted - held
    if missing:
        logger.warning("weeks %s have no data in %s and are left out", describe_weeks(missing), data_dir)
    for restaurant, weeks in batches.items():
        gaps = set(present) - set(weeks)
        if gaps:
            logger.warning("restaurant %s has no batch for weeks %s", restaurant, describe_weeks(gaps))
    paths = [path for weeks in batches.values() for w, path in weeks.items() if w in wanted]
    orders = read_batches(sorted(paths))
    orders = orders[weeks_of(orders["order_date"]).isin(present)]
    return hourly_cash_in(orders, present)
