"""The hourly cash-in series the pipeline forecasts: built from order lines, cut by weeks."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from foodcast.core.weeks import week_hours, week_start


def hourly_cash_in(orders: pd.DataFrame, weeks: Iterable[int]) -> pd.DataFrame:
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
    ordered = sorted({int(w) for w in weeks})
    if ordered:
        grid = pd.DatetimeIndex(pd.concat([week_hours(w).to_series() for w in ordered]).to_numpy())
    else:
        grid = pd.DatetimeIndex([], dtype="datetime64[us]")
    grid = grid.as_unit("us")
    amount = orders["quantity"] * orders["product_price"]
    per_hour = amount.groupby(orders["order_date"].dt.floor("h").dt.as_unit("us")).sum()
    cash_in = per_hour.reindex(grid, fill_value=0.0).astype("float64").round(2)
    return pd.DataFrame({"order_date": grid, "cash_in": cash_in.to_numpy()})


def week_slice(hourly: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    """The ``order_date`` / ``cash_in`` rows of weeks ``first .. last`` of an hourly frame.

    A slice of the hourly cash-in of weeks ``a .. b`` is the hourly cash-in of weeks ``a .. b``
    (each hour is aggregated from that hour's orders alone), so a series read once serves
    every window cut from it.
    """
    start, end = week_start(first), week_start(last + 1)
    rows = (hourly["order_date"] >= start) & (hourly["order_date"] < end)
    return hourly.loc[rows, ["order_date", "cash_in"]].reset_index(drop=True)
