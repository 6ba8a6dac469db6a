"""From order lines to the hourly cash-in series the pipeline forecasts.

The rule of complete weeks: a week of the chain is complete when every restaurant that has
orders before and after it has a non-empty batch for it. :func:`read_chain` (and :func:`etl`)
refuse an incomplete week of the range they read unless told ``allow_missing``, and
:class:`Coverage` says what a read held and lacked, for the caller to record.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from foodcast.domain.weeks import describe_weeks, week_hours
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


@dataclass(frozen=True)
class MissingBatch:
    """A restaurant-week the rule of complete weeks requires and the data directory lacks."""

    restaurant: str
    week: int
    reason: str  # "no batch" or "empty batch"
    path: str  # the empty batch, or where the missing one belongs

    def __str__(self) -> str:
        return f"{self.restaurant} week {self.week} ({self.reason})"


@dataclass(frozen=True)
class Coverage:
    """What a read of weeks ``start_week..end_week`` covers, and what it lacks.

    Attributes
    ----------
    start_week, end_week : int
        The range asked for.
    weeks : tuple of int
        The weeks the result holds (every hour of each).
    left_out : tuple of int
        Weeks of the range the result does not hold: no restaurant has orders in them.
    missing : tuple of MissingBatch
        Restaurant-weeks of the range that break the rule: the restaurant has orders before
        and after the week, but no batch, or an empty one, for it. A read goes through only
        with ``allow_missing``; those weeks then hold the other restaurants' cash-in only.
    restaurants : tuple of str
        The restaurants of the chain (every directory of the data directory holding batches).
    spans : tuple of (str, int, int)
        ``(restaurant, first week, last week)`` with orders, over the whole data directory,
        for each restaurant that has any. The rule does not require a restaurant outside its
        span, so a restaurant whose latest batches are late, rather than closed, only shows
        here (and in :meth:`summary`).
    """

    start_week: int
    end_week: int
    weeks: tuple[int, ...]
    left_out: tuple[int, ...]
    missing: tuple[MissingBatch, ...]
    restaurants: tuple[str, ...]
    spans: tuple[tuple[str, int, int], ...] = ()

    @property
    def complete(self) -> bool:
        """True when no restaurant-week of the range breaks the rule."""
        return not self.missing

    def summary(self) -> str:
        """One line for a log or a run description."""
        text = (f"weeks {describe_weeks(self.weeks)} of {len(self.restaurants)} restaurants "
                f"({', '.join(self.restaurants)})")
        if self.missing:
            text += f"; incomplete: {', '.join(map(str, self.missing))}"
        if self.left_out:
            text += f"; left out (no data): weeks {describe_weeks(self.left_out)}"
        partial = [f"{r} has orders in weeks {first}-{last} only" for r, first, last in self.spans
                   if first > self.start_week or last < self.end_week]
        if partial:
            text += f"; {', '.join(partial)}"
        return text

    def to_dict(self) -> dict:
        """The coverage as JSON-ready values."""
        return {
            "start_week": self.start_week,
            "end_week": self.end_week,
            "weeks": list(self.weeks),
            "left_out": list(self.left_out),
            "missing": [asdict(m) for m in self.missing],
            "restaurants": list(self.restaurants),
            "spans": {r: [first, last] for r, first, last in self.spans},
            "complete": self.complete,
        }


def chain_coverage(data_dir, start_week: int, end_week: int) -> Coverage:
    """Which weeks of ``start_week..end_week`` the data directory holds, and which
    restaurant-weeks it lacks, from the file listing and the first lines of the batches.

    A week of the chain is complete when every restaurant that has orders before and after
    it has a non-empty batch for it.

    Raises
    ------
    FoodcastError
        If start > end or a week is < 1; the message says which weeks the directory holds.
    """
    from foodcast.infrastructure.batches import list_batches

    return _coverage(list_batches(data_dir), data_dir, start_week, end_week)


def _coverage(batches: dict, data_dir, start_week: int, end_week: int) -> Coverage:
    from foodcast.infrastructure.batches import batch_name, data_span, has_orders

    start_week, end_week = int(start_week), int(end_week)
    held = {w for weeks in batches.values() for w in weeks}
    try:
        check_week_range(start_week, end_week)
    except FoodcastError as exc:
        raise FoodcastError(f"{exc}; {data_dir} holds weeks {describe_weeks(held)}") from None
    wanted = range(start_week, end_week + 1)
    filled, missing, spans = set(), [], []
    for restaurant, weeks in batches.items():
        span = data_span(weeks)
        if span is not None:
            spans.append((restaurant, *span))
        for week in wanted:
            if week in weeks and has_orders(weeks[week]):
                filled.add(week)
            elif span is not None and span[0] < week < span[1]:
                if week in weeks:
                    missing.append(MissingBatch(restaurant, week, "empty batch", str(weeks[week])))
                else:
                    where = Path(data_dir) / restaurant / batch_name(week)
                    missing.append(MissingBatch(restaurant, week, "no batch", str(where)))
    return Coverage(
        start_week=start_week,
        end_week=end_week,
        weeks=tuple(sorted(filled)),
        left_out=tuple(w for w in wanted if w not in filled),
        missing=tuple(sorted(missing, key=lambda m: (m.week, m.restaurant))),
        restaurants=tuple(batches),
        spans=tuple(spans),
    )


def read_chain(data_dir, start_week: int, end_week: int, *, allow_missing: bool = False
               ) -> tuple[pd.DataFrame, Coverage]:
    """Hourly cash-in of the whole chain over weeks ``start_week..end_week``, and its coverage.

    Reads every restaurant's batch of those weeks from ``data_dir`` (each file validated, see
    ``foodcast.infrastructure.batches.read_batches``); the cash-in of an hour is the sum of
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
    from foodcast.infrastructure.batches import list_batches, read_batches

    batches = list_batches(data_dir)
    coverage = _coverage(batches, data_dir, start_week, end_week)
    if not coverage.weeks:
        held = {w for weeks in batches.values() for w in weeks}
        raise FoodcastError(
            f"no data for weeks {coverage.start_week}-{coverage.end_week} in {data_dir}; "
            f"it holds weeks {describe_weeks(held)}"
        )
    # Damaged or invalid files are reported first: that diagnosis is the more precise one.
    wanted = set(coverage.weeks)
    orders = read_batches(sorted(path for weeks in batches.values() for w, path in weeks.items() if w in wanted))
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
        logger.warning("incomplete weeks read with allow_missing, their cash-in lacking %s",
                       ", ".join(map(str, coverage.missing)))
    if coverage.left_out:
        logger.warning("weeks %s have no data in %s and are left out", describe_weeks(coverage.left_out), data_dir)
    return hourly_cash_in(orders, coverage.weeks), coverage


def etl(data_dir, start_week: int, end_week: int, *, allow_missing: bool = False) -> pd.DataFrame:
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
