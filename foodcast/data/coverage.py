"""The rule of complete weeks, and which batch files a read of weeks opens.

A week of the chain is complete when every restaurant that has orders before and after it has
a non-empty batch for it. :func:`chain_coverage` says what a read of a range of weeks holds and
lacks, from the file listing and the first lines of the batches (no pandas: ``main`` and the
stage table ask it before anything is launched); ``foodcast.data.chain.read_chain`` refuses an
incomplete week unless told ``allow_missing``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from foodcast.core.windows import check_week_range, describe_weeks
from foodcast.data.batch_files import batch_files, batch_name, data_span, has_orders, list_batches
from foodcast.digests import files_digest
from foodcast.errors import FoodcastError


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

    def ended_before(self, week: int) -> list[tuple[str, int]]:
        """``(restaurant, its last week with orders)`` of the restaurants whose orders all come
        before ``week``, over the whole data directory (a read from ``week`` on has none of theirs)."""
        return [(r, last) for r, _, last in self.spans if last < week]

    def summary(self) -> str:
        """One line for a log or a run description."""
        text = (
            f"weeks {describe_weeks(self.weeks)} of {len(self.restaurants)} restaurants ({', '.join(self.restaurants)})"
        )
        if self.missing:
            text += f"; incomplete: {', '.join(map(str, self.missing))}"
        if self.left_out:
            text += f"; left out (no data): weeks {describe_weeks(self.left_out)}"
        partial = [
            f"{r} has orders in weeks {first}-{last} only"
            for r, first, last in self.spans
            if first > self.start_week or last < self.end_week
        ]
        if partial:
            text += f"; {', '.join(partial)}"
        return text


def chain_coverage(data_dir: str | Path, start_week: int, end_week: int) -> Coverage:
    """Which weeks of ``start_week..end_week`` the data directory holds, and which
    restaurant-weeks it lacks, from the file listing and the first lines of the batches.

    A week of the chain is complete when every restaurant that has orders before and after
    it has a non-empty batch for it.

    Raises
    ------
    FoodcastError
        If start > end or a week is < 1; the message says which weeks the directory holds.
    """
    return coverage_of(list_batches(data_dir), data_dir, start_week, end_week)


def coverage_of(batches: dict[str, dict[int, Path]], data_dir: str | Path, start_week: int, end_week: int) -> Coverage:
    """:func:`chain_coverage` of a listing already made (``batch_files.list_batches``)."""
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


def batches_fingerprint(data_dir: str | Path, start_week: int, end_week: int) -> str:
    """SHA-256 over exactly the batch files a read of weeks ``start_week..end_week`` opens, and
    over each restaurant's span of weeks with orders (which decides whether a week of the range
    is complete)."""
    root = Path(data_dir).resolve()
    batches = list_batches(root)
    files = [path.resolve() for path in batch_files(batches, start_week, end_week)]
    spans = coverage_of(batches, root, start_week, end_week).spans
    return hashlib.sha256(json.dumps([files_digest(root, files), spans]).encode()).hexdigest()
