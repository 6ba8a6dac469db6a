"""The chain's hourly cash-in, or each restaurant's, read from the weekly batches of a range of weeks.

:func:`read_chain` (and :func:`etl`) and :func:`read_restaurants` refuse an incomplete week of
the range they read (the rule of complete weeks, ``foodcast.data.coverage``) unless told
``allow_missing``, and return the :class:`~foodcast.data.coverage.Coverage` that says what the
read held and lacked, for the caller to record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

import pandas as pd

from foodcast.core.hourly import hourly_cash_in
from foodcast.core.weeks import weeks_of
from foodcast.core.windows import describe_weeks
from foodcast.data.batch_files import batch_week, list_batches
from foodcast.data.coverage import Coverage, coverage_of
from foodcast.data.orders import check_order_ids, read_batches, read_file
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
    data_dir: str | Path,
    start_week: int,
    end_week: int,
    *,
    allow_missing: bool = False,
    workers: int = 1,
    reader: Reader | None = None,
) -> tuple[pd.DataFrame, Coverage]:
    """Hourly cash-in of each restaurant over weeks ``start_week..end_week`` (the long form),
    and the coverage of the read.

    The batches are read and checked as :func:`read_chain` reads them (the same rule of complete
    weeks, the same refusals in the same words and order: a bad file first, then an order id
    given to two orders, then an incomplete week). A restaurant's rows are every hour of each
    week of the range it has orders in (a non-empty batch; hours without orders = 0): not the
    weeks before it opened or after it closed, nor a week it lacks (read with ``allow_missing``).

    Each restaurant's batches are read, checked and summed per hour on their own, one restaurant
    per task of ``workers`` processes (``foodcast.core.pool.fan_out``): only its hourly
    cash-in comes back, so that the order lines of one restaurant at a time are held, not the
    chain's (the memory of a read does not grow with the restaurants).

    Parameters
    ----------
    data_dir, start_week, end_week, allow_missing
        As :func:`read_chain`'s.
    workers : int, default 1
        Processes reading the restaurants (0: all cores); the result does not depend on it.
    reader : callable, optional
        Another engine's reader of the batch files (see :data:`Reader`), which reads every
        restaurant's at once and returns their order lines (``engine=spark``: summed per hour on
        Spark); ``workers`` is then unused.

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
    # The per-restaurant core, imported here: it loads scikit-learn, which a read of the chain
    # (load with granularity=chain) never needs.
    from foodcast.core.pool import fan_out  # noqa: PLC0415
    from foodcast.core.restaurants import CASH_IN, CHAIN, ORDER_DATE, RESTAURANT  # noqa: PLC0415

    batches = list_batches(data_dir)
    if CHAIN in batches:
        raise FoodcastError(
            f"{Path(data_dir) / CHAIN}: a restaurant cannot be named {CHAIN} with granularity=restaurant, "
            f"the name of the chain's total in the forecasts; rename the directory"
        )
    if reader is not None:
        orders, coverage = _checked_orders(batches, data_dir, start_week, end_week, allow_missing, reader)
        return _per_restaurant(orders), coverage
    coverage, paths = _covered_paths(batches, data_dir, start_week, end_week)
    # The paths sorted, as read_chain reads them: each restaurant's are consecutive (they share
    # the prefix of its directory), so that its tasks in order meet the errors in read_chain's order.
    tasks = [(str(name), list(group)) for name, group in groupby(paths, key=lambda path: path.parent.name)]
    reads = fan_out(_restaurant_hourly, tasks, workers)
    # Damaged or invalid files are reported first: that diagnosis is the more precise one.
    for read in reads:
        if read.file_error is not None:
            raise FoodcastError(read.file_error)
    for read in reads:
        if read.id_error is not None:
            raise FoodcastError(read.id_error)
    _refuse_or_warn(coverage, data_dir, allow_missing)
    frames = [read.hourly for read in sorted(reads, key=lambda read: read.name) if read.hourly is not None]
    if not frames:
        return pd.DataFrame({RESTAURANT: [], ORDER_DATE: pd.DatetimeIndex([], dtype="datetime64[us]"), CASH_IN: []}), (
            coverage
        )
    return pd.concat(frames, ignore_index=True), coverage


@dataclass(frozen=True)
class _RestaurantRead:
    """One restaurant's batches read (:func:`_restaurant_hourly`): its hourly cash-in (None
    without any order line), or the one-line error of its first bad file, or of an order id
    given to two of its orders."""

    name: str
    hourly: pd.DataFrame | None
    file_error: str | None = None
    id_error: str | None = None


def _restaurant_hourly(task: tuple[str, list[Path]]) -> _RestaurantRead:
    """The hourly cash-in of one restaurant's batches (``task``: its name and its paths, sorted),
    checked as ``orders.read_batch_files`` checks them; the order lines are dropped once summed."""
    # (as in read_restaurants)
    from foodcast.core.restaurants import RESTAURANT  # noqa: PLC0415

    name, paths = task
    frames, sources = [], []
    try:
        for path in paths:
            orders, source = read_file(path, batch_week(path))
            frames.append(orders)
            sources.append(source)
    except FoodcastError as exc:
        return _RestaurantRead(name, None, file_error=str(exc))
    lines = pd.concat(frames, ignore_index=True)
    del frames
    try:
        # Within one restaurant: order ids are a restaurant's own (read_batch_files checks them by restaurant).
        check_order_ids(lines, sources)
    except FoodcastError as exc:
        return _RestaurantRead(name, None, id_error=str(exc))
    if lines.empty:  # header-only batches: no week it has orders in
        return _RestaurantRead(name, None)
    hourly = hourly_cash_in(lines, weeks_of(lines["order_date"]).unique())
    hourly.insert(0, RESTAURANT, name)
    return _RestaurantRead(name, hourly)


def _per_restaurant(orders: pd.DataFrame) -> pd.DataFrame:
    """The long form of order lines (with ``restaurant``), as another engine's reader returns
    them: each restaurant's hourly cash-in of the weeks it has orders in, restaurants sorted."""
    from foodcast.core.restaurants import RESTAURANT  # noqa: PLC0415  # (as in read_restaurants)

    frames = []
    for name, lines in orders.groupby(RESTAURANT, sort=True):
        hourly = hourly_cash_in(lines, weeks_of(lines["order_date"]).unique())
        hourly.insert(0, RESTAURANT, str(name))
        frames.append(hourly)
    return pd.concat(frames, ignore_index=True)


def _covered_paths(
    batches: dict[str, dict[int, Path]], data_dir: str | Path, start_week: int, end_week: int
) -> tuple[Coverage, list[Path]]:
    """The coverage of weeks ``start_week..end_week`` among the listing ``batches``, and the
    batches of its weeks, sorted; refused when no week has data."""
    coverage = coverage_of(batches, data_dir, start_week, end_week)
    if not coverage.weeks:
        held = {w for weeks in batches.values() for w in weeks}
        raise FoodcastError(
            f"no data for weeks {coverage.start_week}-{coverage.end_week} in {data_dir}; "
            f"it holds weeks {describe_weeks(held)}"
        )
    wanted = set(coverage.weeks)
    return coverage, sorted(path for weeks in batches.values() for w, path in weeks.items() if w in wanted)


def _refuse_or_warn(coverage: Coverage, data_dir: str | Path, allow_missing: bool) -> None:
    """Refuse an incomplete week of a read unless ``allow_missing`` (then warn), and warn of the
    weeks without data, as :func:`read_chain` says."""
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
    coverage, paths = _covered_paths(batches, data_dir, start_week, end_week)
    # Damaged or invalid files are reported first: that diagnosis is the more precise one.
    orders = reader(paths)
    _refuse_or_warn(coverage, data_dir, allow_missing)
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
