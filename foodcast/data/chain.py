"""The chain's hourly cash-in, or each restaurant's, read from the weekly batches of a range of weeks.

:func:`read_chain` (and :func:`etl`) and :func:`read_restaurants` refuse an incomplete week of
the range they read (the rule of complete weeks, ``foodcast.data.coverage``) unless told
``allow_missing``, and return the :class:`~foodcast.data.coverage.Coverage` that says what the
read held and lacked, for the caller to record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from foodcast.core.hourly import hourly_cash_in
from foodcast.core.weeks import weeks_of
from foodcast.core.windows import describe_weeks
from foodcast.data.batch_files import list_batches
from foodcast.data.coverage import Coverage, coverage_of
from foodcast.data.orders import read_batches
from foodcast.errors import FoodcastError

logger = logging.getLogger(__name__)

#: ``reader(paths) -> order lines`` with ``restaurant``, ``order_date``, ``quantity``,
#: ``product_price``, checked as :func:`foodcast.data.orders.read_batches` checks them (its
#: default): another engine's reader (``foodcast.spark.load``) may return each restaurant's
#: hours already summed, one line per hour (quantity 1, product_price the hour's cash-in).
Reader = Callable[[list[Path]], pd.DataFrame]


def read_chain(
    data_dir: str | Path, start_week: int, end_week: int, *, allow_missing: bool = False, reader: Reader = read_batches
) -> tuple[pd.DataFrame, Coverage]:
    """Hourly cash-in of the whole chain over weeks ``start_week..end_week``, and its coverage.

    Reads every restaurant's batch of those weeks from ``data_dir`` (each file validated, see
    ``foodcast.data.orders.read_batches``); the cash-in of an hour is the sum of
    quantity x price of the order lines placed in that hour. A week no restaurant has orders
    in is left out (and reported in a warning), not zero-filled.

    Parameters
    ----------
    data_dir : str or Path
        Directory of weekly batches (``<restaurant>/week_NNN.csv.gz``).
    start_week, end_week : int
        First and last week, inclusive (week 1 starts Monday 2014-12-29).
    allow_missing : bool
        False (default): an incomplete week (a restaurant with orders before and after it
        has no batch, or an empty one, for it) is an error. True: read it anyway, its
        cash-in being that of the restaurants that have a batch, and warn; the returned
        coverage lists what was missing.
    reader : callable, optional
        What reads and checks the batch files (see :data:`Reader`); ``read_batches`` by default.

    Returns
    -------
    DataFrame
        ``order_date`` (every hour of the weeks held) and ``cash_in``.
    Coverage
        The weeks held, left out, and the restaurant-weeks missing.

    Raises
    ------
    FoodcastError
        If start > end, a week is < 1, no week of the range has data (the message says which
        weeks the data directory holds), a week is incomplete and ``allow_missing`` is
        False (naming the restaurant and week), or a batch is unreadable or invalid (naming
        the file, row and column).
    """
    orders, coverage = _checked_orders(list_batches(data_dir), data_dir, start_week, end_week, allow_missing, reader)
    return hourly_cash_in(orders, coverage.weeks), coverage


def read_restaurants(
    data_dir: str | Path, start_week: int, end_week: int, *, allow_missing: bool = False, reader: Reader = read_batches
) -> tuple[pd.DataFrame, Coverage]:
    """Hourly cash-in of each restaurant over weeks ``start_week..end_week`` (the long form),
    and the coverage of the read.

    The batches are read and checked as :func:`read_chain` reads them (the same rule of complete
    weeks, the same refusals). A restaurant's rows are every hour of each week of the range it
    has orders in (a non-empty batch; hours without orders = 0): not the weeks before it opened
    or after it closed, nor a week it lacks (read with ``allow_missing``).

    Returns
    -------
    DataFrame
        ``restaurant`` (the batch directory's name), ``order_date``, ``cash_in``; sorted by
        restaurant, then order_date.
    Coverage
        As :func:`read_chain`'s.

    Raises
    ------
    FoodcastError
        As :func:`read_chain`; and if a restaurant directory is named ``chain``, the name of the
        chain's total in the forecasts.
    """
    # The names of the per-restaurant core, imported here: it loads scikit-learn, which a read of
    # the chain (load with granularity=chain) never needs.
    from foodcast.core.restaurants import CHAIN  # noqa: PLC0415

    batches = list_batches(data_dir)
    if CHAIN in batches:
        raise FoodcastError(
            f"{Path(data_dir) / CHAIN}: a restaurant cannot be named {CHAIN} with granularity=restaurant, "
            f"the name of the chain's total in the forecasts; rename the directory"
        )
    orders, coverage = _checked_orders(batches, data_dir, start_week, end_week, allow_missing, reader)
    return _per_restaurant(orders), coverage


def _per_restaurant(orders: pd.DataFrame) -> pd.DataFrame:
    """The long form of order lines (with ``restaurant``): each restaurant's hourly cash-in of the
    weeks it has orders in, restaurants sorted."""
    from foodcast.core.restaurants import RESTAURANT  # noqa: PLC0415  # (as in read_restaurants)

    frames = []
    for name, lines in orders.groupby(RESTAURANT, sort=True):
        hourly = hourly_cash_in(lines, weeks_of(lines["order_date"]).unique())
        hourly.insert(0, RESTAURANT, str(name))
        frames.append(hourly)
    return pd.concat(frames, ignore_index=True)


def _checked_orders(
    batches: dict[str, dict[int, Path]],
    data_dir: str | Path,
    start_week: int,
    end_week: int,
    allow_missing: bool,
    reader: Reader = read_batches,
) -> tuple[pd.DataFrame, Coverage]:
    """The order lines of weeks ``start_week..end_week`` among the listing ``batches``, and the
    read's coverage; refused, or warned about, as :func:`read_chain` says."""
    coverage = coverage_of(batches, data_dir, start_week, end_week)
    if not coverage.weeks:
        held = {w for weeks in batches.values() for w in weeks}
        raise FoodcastError(
            f"no data for weeks {coverage.start_week}-{coverage.end_week} in {data_dir}; "
            f"it holds weeks {describe_weeks(held)}"
        )
    # Damaged or invalid files are reported first: that diagnosis is the more precise one.
    wanted = set(coverage.weeks)
    orders = reader(sorted(path for weeks in batches.values() for w, path in weeks.items() if w in wanted))
    if coverage.missing and not allow_missing:
        first, others = coverage.missing[0], coverage.missing[1:]
        more = ""
        if others:
            shown = ", ".join(map(str, others[:5])) + (", ..." if len(others) > 5 else "")
            more = f"; {len(others)} more incomplete: {shown}"
        raise FoodcastError(
            f"week {first.week} is incomplete: restaurant {first.restaurant} has orders before "
            f"and after it but {'an empty batch' if first.reason == 'empty batch' else 'no batch'} "
            f"for it ({first.path}){more}; add the batch, or set allow_missing to read the week without it"
        )
    if coverage.missing:
        logger.warning(
            "incomplete weeks read with allow_missing, their cash-in lacking %s", ", ".join(map(str, coverage.missing))
        )
    if coverage.left_out:
        logger.warning("weeks %s have no data in %s and are left out", describe_weeks(coverage.left_out), data_dir)
    return orders, coverage


def etl(data_dir: str | Path, start_week: int, end_week: int, *, allow_missing: bool = False) -> pd.DataFrame:
    """Hourly cash-in of the whole chain over weeks ``start_week..end_week``.

    :func:`read_chain` without the coverage: use that function to learn what an
    ``allow_missing`` read lacked.

    Parameters
    ----------
    data_dir, start_week, end_week, allow_missing
        As for :func:`read_chain`: the batch directory, the first and last week (inclusive),
        and whether to read incomplete weeks instead of refusing them.

    Returns
    -------
    DataFrame
        ``order_date`` (every hour of the weeks held) and ``cash_in``.

    Raises
    ------
    FoodcastError
        As :func:`read_chain`.
    """
    return read_chain(data_dir, start_week, end_week, allow_missing=allow_missing)[0]
