"""Where the weekly batches are: their names, the listing of a data directory, and which
batches hold orders, without reading their content (so without pandas).

Layout: ``<data_dir>/<restaurant>/week_<NNN>.csv.gz`` (plain ``.csv`` is read too), one file
per restaurant per week. Every sub-directory holding batches is a restaurant of the chain.
"""

from __future__ import annotations

import datetime
import fcntl
import gzip
import os
import re
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from foodcast.errors import FoodcastError

BATCH_PATTERN = re.compile(r"^week_(\d+)\.csv(\.gz)?$")
RESTAURANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def batch_name(week: int) -> str:
    """File name of a restaurant's batch for ``week``."""
    return f"week_{int(week):03d}.csv.gz"


def list_batches(data_dir: str | Path) -> dict[str, dict[int, Path]]:
    """Every batch under ``data_dir``: ``{restaurant: {week: path}}``, sorted.

    Raises
    ------
    FoodcastError
        If ``data_dir`` is not a directory.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise FoodcastError(f"data directory {root} does not exist")
    found: dict[str, dict[int, Path]] = {}
    for restaurant_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        weeks = {}
        for path in restaurant_dir.iterdir():
            match = BATCH_PATTERN.match(path.name)
            if match:
                week = int(match.group(1))
                if week in weeks:
                    raise FoodcastError(f"two batches for week {week} in {restaurant_dir}")
                weeks[week] = path
        if weeks:
            found[restaurant_dir.name] = dict(sorted(weeks.items()))
    return found


def available_weeks(data_dir: str | Path) -> list[int]:
    """Sorted week numbers for which at least one restaurant has a batch."""
    return sorted({w for weeks in list_batches(data_dir).values() for w in weeks})


WEEK_ONE = datetime.date(2014, 12, 29)  # the Monday week 1 starts (foodcast.core.weeks, without pandas)


def last_complete_week(data_dir: str | Path, today: datetime.date | None = None) -> int | None:
    """The last week of ``data_dir`` a Monday's forecast can start from: the latest week that has
    ended (its Sunday before ``today``) whose batches are all there, a week lacking the batch of a
    restaurant that has one for the week before counting as not there yet (its export has not
    arrived). Reads file names only. ``None`` when no week qualifies.
    """
    today = today or datetime.date.today()
    batches = list_batches(data_dir)
    ended = (today - WEEK_ONE).days // 7  # weeks 1..ended are over
    weeks = sorted({w for held in batches.values() for w in held if w <= ended}, reverse=True)
    for week in weeks:
        if all(week in held for held in batches.values() if week - 1 in held):
            return week
    return None


def batch_files(batches: dict[str, dict[int, Path]], start_week: int, end_week: int) -> list[Path]:
    """Exactly the batch files a read of weeks ``start_week..end_week`` opens, sorted, among the
    listing ``batches`` (:func:`list_batches`)."""
    return sorted(path for weeks in batches.values() for week, path in weeks.items() if start_week <= week <= end_week)


def batch_week(path: str | Path) -> int:
    """Week number of a batch file, from its name ``week_NNN.csv[.gz]``.

    Raises
    ------
    FoodcastError
        If the name is not a batch name.
    """
    match = BATCH_PATTERN.match(Path(path).name)
    if match is None:
        raise FoodcastError(f"{path}: not a batch file name (week_NNN.csv.gz or week_NNN.csv)")
    return int(match.group(1))


def has_orders(path: str | Path) -> bool:
    """Whether a batch holds at least one order line, read from its first lines only.

    Only a header followed by nothing (or blank lines) is empty. A file that cannot be read,
    or lacks even a header, counts as holding orders: it shows the restaurant traded that
    week, and reading it in full reports what is wrong with it.
    """
    path = Path(path)
    try:
        with gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb") as f:
            header = f.readline()
            if not header.strip() or b"\0" in header:
                return True
            return any(line.strip() for line in f)
    except (OSError, EOFError, zlib.error):
        return True


def data_span(weeks: dict[int, Path]) -> tuple[int, int] | None:
    """First and last week whose batch holds orders, among one restaurant's ``{week: path}``.

    ``None`` if none does. Only the batches at both ends are opened, until one holds orders.
    """
    ordered = sorted(weeks)
    first = next((w for w in ordered if has_orders(weeks[w])), None)
    if first is None:
        return None
    last = next(w for w in reversed(ordered) if has_orders(weeks[w]))
    return first, last


@contextmanager
def writing(data_dir: str | Path) -> Iterator[Path]:
    """Hold the data directory's write lock, creating the directory if missing.

    Whatever writes batches (``import``, ``generate``) holds it from its first read of the
    batches it merges with to its last write, so two writers into the same directory take
    turns and neither overwrites a batch with a merge that misses the other's lines. The lock
    is an ``flock`` on the directory itself: nothing is left behind, and it is released when
    the process ends, however it ends. Readers need no lock: each batch is replaced whole
    (written to a temporary file, then renamed).

    Raises
    ------
    FoodcastError
        If the directory cannot be created or opened (under a regular file, in a read-only
        or virtual file system such as /proc).
    """
    root = Path(data_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    except FileExistsError:
        raise FoodcastError(f"data directory {root} is a file, not a directory") from None
    except OSError as exc:
        raise FoodcastError(f"data directory {root} cannot be created or opened: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield root
    finally:
        os.close(fd)


@contextmanager
def replacing(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """A file written whole or not at all: what the block writes goes to a temporary file in
    the same directory, which replaces ``path`` when the block ends and is removed if it fails.

    Raises
    ------
    FoodcastError
        If the file cannot be written (its directory cannot be created, no space, no right).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    except OSError as exc:
        raise FoodcastError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(exc, OSError):
            raise FoodcastError(f"{path}: cannot be written ({exc.strerror or exc})") from None
        raise


def check_restaurant_name(name: str) -> str:
    """A restaurant name is a directory name: letters, digits, ``_ . -``."""
    if not RESTAURANT_PATTERN.match(name or ""):
        raise FoodcastError(
            f"restaurant name {name!r} must start with a letter or digit and use only letters, digits, '_', '.' and '-'"
        )
    return name
