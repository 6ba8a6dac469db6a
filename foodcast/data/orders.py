"""Order lines in files: how to read, validate and write them.

A batch (``foodcast.data.batch_files`` says where they are) holds a restaurant's order lines of
one week in the export schema: ``Order Number`` (or ``Order ID``), ``Order Date``,
``Item Name``, ``Quantity``, ``Product Price``, ``Total products``; so does a raw export.

Every file read, export or batch, goes through the same checks (:func:`read_orders`,
:func:`read_batch_files`): readable UTF-8 CSV, every value present and plausible (finite,
within :data:`LIMITS`), each order id naming one order, and, for a batch, every row inside the
batch's week. A refusal names the file, and the row and column of the first bad value.
"""

from __future__ import annotations

import codecs
import gzip
import io
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

from foodcast.core.weeks import WEEK_ONE_START, week_start
from foodcast.data.batch_files import batch_week, replacing
from foodcast.errors import FoodcastError

ORDER_ID = "Order Number"
ORDER_ID_ALIASES = ("Order Number", "Order ID")
ORDER_DATE = "Order Date"
ITEM_NAME = "Item Name"
QUANTITY = "Quantity"
PRICE = "Product Price"
TOTAL_PRODUCTS = "Total products"
EXPORT_COLUMNS = [ORDER_ID, ORDER_DATE, ITEM_NAME, QUANTITY, PRICE, TOTAL_PRODUCTS]
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
DAY_FIRST_FORMAT = "%d/%m/%Y %H:%M"
# A time followed by a zone (``19:22:00+01:00``, ``19:22Z``): batches hold local times.
ZONED_DATE = re.compile(r"\d:\d\d(?::\d\d(?:\.\d*)?)?\s*(?:z|[+-]\d\d(?::?\d\d)?)$", re.IGNORECASE)

# Bounds of a plausible order line. A value beyond them is a typo or a corrupt export, and a
# single one would swamp every hourly total it lands in (or, at 1e308, overflow them).
MAX_QUANTITY = 1_000  # items on one line
MAX_PRICE = 1_000.0  # price of one item, in the export's currency
MAX_TOTAL_PRODUCTS = 10_000  # items in one order
LIMITS = {QUANTITY: MAX_QUANTITY, PRICE: MAX_PRICE, TOTAL_PRODUCTS: MAX_TOTAL_PRODUCTS}


def parse_orders(raw: pd.DataFrame, source: str, week: int | None = None) -> pd.DataFrame:
    """Validate export rows and normalise them.

    Refused: a missing column or value; an unparseable date, one before week 1 or one in
    the future (:func:`latest_order_date`); a quantity, price or total that is not a finite
    number, negative, above its bound (:data:`LIMITS`) or, for counts, not whole; and, for a
    batch, a row dated outside the batch's week. Order ids are checked across whole files by :func:`check_order_ids`.

    Parameters
    ----------
    raw : DataFrame
        Rows as read from an export or a batch (all columns as strings).
    source : str
        File name used in error messages.
    week : int, optional
        The week of the batch these rows come from; every row must fall in it.

    Returns
    -------
    DataFrame
        Columns ``order_id`` (str), ``order_date`` (datetime64), ``item_name`` (str),
        ``quantity`` (int), ``product_price`` (float), ``total_products`` (int).

    Raises
    ------
    FoodcastError
        Naming the file, row (1-based, header excluded) and column of the first bad value.
    """
    id_column = _id_column(raw, source)
    for column in EXPORT_COLUMNS[1:]:
        if column not in raw.columns:
            raise FoodcastError(f"{source}: missing column '{column}'")

    def fail(mask: object, column: str, what: str) -> NoReturn:
        row = int(np.flatnonzero(np.asarray(mask))[0])
        value = raw[column].iloc[row]
        raise FoodcastError(f"{source}: row {row + 1}, column '{column}': {what} {value!r}")

    for column in (id_column, ORDER_DATE, ITEM_NAME):
        missing = raw[column].isna()
        if missing.any():
            fail(missing, column, "empty value")
    zoned = raw[ORDER_DATE].astype(str).str.strip().str.contains(ZONED_DATE).to_numpy(dtype=bool)
    if zoned.any():
        fail(zoned, ORDER_DATE, "date with a time zone (give the restaurant's local time, without a zone):")
    dates = _parse_dates(raw[ORDER_DATE])
    # The checks below work on numpy arrays: pandas' per-call overhead, times the 40-odd
    # batches of a training window, would cost more than the checks themselves.
    stamps = dates.to_numpy()
    if np.isnat(stamps).any():
        fail(np.isnat(stamps), ORDER_DATE, "unparseable date")
    if (stamps < WEEK_ONE_START.to_datetime64()).any():
        fail(
            stamps < WEEK_ONE_START.to_datetime64(),
            ORDER_DATE,
            f"date before week 1 (which starts on {WEEK_ONE_START.date()}):",
        )
    latest = latest_order_date()
    if (stamps >= latest.to_datetime64()).any():
        fail(
            stamps >= latest.to_datetime64(),
            ORDER_DATE,
            f"date in the future (on or after {latest.date()}, the day after tomorrow):",
        )
    if week is not None:
        first_day, next_monday = week_start(week), week_start(week + 1)
        outside = (stamps < first_day.to_datetime64()) | (stamps >= next_monday.to_datetime64())
        if outside.any():
            last_day = (next_monday - pd.Timedelta(days=1)).date()
            fail(outside, ORDER_DATE, f"date outside week {week} of this batch ({first_day.date()} to {last_day}):")
    numbers = {}
    for column in (QUANTITY, PRICE, TOTAL_PRODUCTS):
        values = pd.to_numeric(raw[column], errors="coerce").to_numpy(dtype="float64")
        with np.errstate(invalid="ignore"):
            checks = (
                (np.isnan(values), "not a number:"),
                (np.isinf(values), "not a finite number:"),
                (values < 0, "negative value"),
                (values > LIMITS[column], f"above the maximum of {LIMITS[column]:g}:"),
                # Counts of items: a fraction would be silently truncated by the integer cast.
                (values != np.round(values) if column != PRICE else None, "not a whole number:"),
            )
        for bad, what in checks:
            if bad is not None and bad.any():
                fail(bad, column, what)
        numbers[column] = values
    return pd.DataFrame(
        {
            "order_id": raw[id_column].astype(str).to_numpy(),
            "order_date": stamps,
            "item_name": raw[ITEM_NAME].astype(str).to_numpy(),
            "quantity": numbers[QUANTITY].astype("int64"),
            "product_price": numbers[PRICE],
            "total_products": numbers[TOTAL_PRODUCTS].astype("int64"),
        }
    )


def latest_order_date() -> pd.Timestamp:
    """The first instant no order can be dated at: the start of the day after tomorrow, local
    time. An order dated tomorrow passes (a till's clock may run a day ahead); a later one is a
    typo (2108 for 2018) that would otherwise become weeks of data nobody can forecast from."""
    return pd.Timestamp.now().normalize() + pd.Timedelta(days=2)


def _id_column(raw: pd.DataFrame, source: str) -> str:
    column = next((c for c in ORDER_ID_ALIASES if c in raw.columns), None)
    if column is None:
        raise FoodcastError(f"{source}: missing column '{ORDER_ID}' (or 'Order ID')")
    return column


def _parse_dates(text: pd.Series) -> pd.Series:
    """ISO dates (``2018-06-12 19:22:00``) or day-first ones (``03/08/2019 20:25``), row by row."""
    text = text.astype(str).str.strip()
    iso = pd.to_datetime(text, format="ISO8601", errors="coerce")
    todo = iso.isna()
    if todo.any():
        iso[todo] = pd.to_datetime(text[todo], format=DAY_FIRST_FORMAT, errors="coerce")
    return iso


@dataclass(frozen=True)
class Source:
    """Where a run of consecutive rows of a frame of order lines was read from."""

    path: str
    id_column: str
    rows: int


def check_order_ids(orders: pd.DataFrame, sources: Sequence[Source], by: Sequence[str] = ()) -> None:
    """Refuse an order id given to two different orders: lines with the same id and different dates.

    The lines of one order share its id and date, and identical lines (the same dish entered
    twice) are legitimate; only a second date under the same id shows a second order.

    Parameters
    ----------
    orders : DataFrame
        Normalised order lines (``order_id``, ``order_date`` and the ``by`` columns).
    sources : sequence of Source
        The files the rows come from, in order (their row counts add up to ``len(orders)``).
    by : sequence of str
        Columns within which an id must be unique (``restaurant`` across several restaurants).

    Raises
    ------
    FoodcastError
        Naming the file, row and column of the first line that reuses an id, and where the
        id was first used.
    """
    if orders.empty:
        return
    keys = [*by, "order_id"]
    first_date = orders.groupby(keys, sort=False)["order_date"].transform("first")
    reused = np.flatnonzero((orders["order_date"] != first_date).to_numpy())
    if not len(reused):
        return
    position = int(reused[0])
    same = np.ones(len(orders), dtype=bool)
    for key in keys:
        same &= (orders[key] == orders[key].iat[position]).to_numpy()
    first = int(np.flatnonzero(same)[0])
    ends = np.cumsum([source.rows for source in sources])

    def locate(i: int) -> tuple[Source, int]:
        index = int(np.searchsorted(ends, i, side="right"))
        return sources[index], i - (int(ends[index - 1]) if index else 0) + 1

    source, row = locate(position)
    first_source, first_row = locate(first)
    where = f"row {first_row}" if first_source is source else f"{first_source.path} row {first_row}"
    raise FoodcastError(
        f"{source.path}: row {row}, column '{source.id_column}': order id "
        f"{orders['order_id'].iat[position]!r} already names another order, dated "
        f"{orders['order_date'].iat[first]} at {where}"
    )


def _read_text(path: Path) -> str:
    """The file's text, or one line saying why it is not readable UTF-8 text."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FoodcastError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    compressed = path.name.endswith(".gz")
    if compressed:
        try:
            data = gzip.decompress(data)
        except EOFError:
            raise FoodcastError(f"{path}: truncated gzip file (the compressed data ends early)") from None
        except (OSError, zlib.error) as exc:
            raise FoodcastError(f"{path}: corrupt gzip file ({exc})") from None
    if not data.strip():
        raise FoodcastError(f"{path}: empty file, without even a header line")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        where = " of its decompressed data" if compressed else ""
        raise FoodcastError(
            f"{path}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}{where}); save it as UTF-8 CSV"
        ) from None
    if "\0" in text:
        raise FoodcastError(f"{path}: binary data (a NUL byte at offset {text.index(chr(0))}), not CSV text")
    return text


def read_orders(path: str | Path, week: int | None = None) -> tuple[pd.DataFrame, Source]:
    """Read and validate one CSV file (optionally gzipped, UTF-8) in the export schema.

    Refused: a file that is not readable UTF-8 CSV (a truncated or corrupt gzip stream, other
    bytes, binary data), what :func:`parse_orders` refuses, and an order id given to two
    orders (:func:`check_order_ids`).

    Parameters
    ----------
    path : path-like
        The file; gzip-compressed when its name ends with ``.gz``.
    week : int, optional
        For a batch, its week: every row must fall in it.

    Returns
    -------
    DataFrame
        The normalised order lines (see :func:`parse_orders`).
    Source
        The file, its order id column and its number of rows, for :func:`check_order_ids`.

    Raises
    ------
    FoodcastError
        Naming the file (and the row and column of a bad value).
    """
    orders, source = read_file(Path(path), week)
    check_order_ids(orders, [source])
    return orders, source


def read_file(path: Path, week: int | None) -> tuple[pd.DataFrame, Source]:
    """:func:`read_orders` but for the order ids, which the caller checks across files (all of a
    restaurant's: ``read_batch_files``, ``chain.read_restaurants``)."""
    text = _read_text(path)
    try:
        raw = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])
    except (ValueError, pd.errors.ParserError) as exc:
        # Parser messages may span lines; the caller prints one.
        raise FoodcastError(f"{path}: cannot be read as CSV ({' '.join(str(exc).split())})") from None
    if not isinstance(raw.index, pd.RangeIndex):
        # pandas takes the surplus first field of every row as an index, silently.
        raise FoodcastError(f"{path}: its rows have more fields than its header line")
    orders = parse_orders(raw, str(path), week)
    return orders, Source(str(path), _id_column(raw, str(path)), len(orders))


def read_batch_file(path: str | Path) -> tuple[pd.DataFrame, Source]:
    """One batch file's order lines, checked as :func:`read_orders` checks a file, its rows in
    the week its name gives, with a ``restaurant`` column (its directory's name); its order ids
    are checked across files by the caller (:func:`check_order_ids`), as
    :func:`read_batch_files` does."""
    orders, source = read_file(Path(path), batch_week(path))
    orders["restaurant"] = Path(path).parent.name
    return orders, source


def read_batch_files(paths: Iterable[str | Path]) -> tuple[pd.DataFrame, list[Source]]:
    """Read and validate batch files; one frame of order lines with a ``restaurant`` column.

    Each file is checked as :func:`read_orders` does, its rows must fall in the week its name
    gives, and each order id of a restaurant must name one order across all the files read.

    Returns
    -------
    DataFrame
        The order lines of all the files, in the order of ``paths``.
    list of Source
        Where its rows come from, one per file.

    Raises
    ------
    FoodcastError
        Naming the file (and the row and column of a bad value).
    """
    frames, sources = [], []
    for path in paths:
        orders, source = read_batch_file(path)
        frames.append(orders)
        sources.append(source)
    if not frames:
        empty = parse_orders(pd.DataFrame(columns=EXPORT_COLUMNS), "<none>")
        return empty.assign(restaurant=pd.Series(dtype=str)), []
    orders = pd.concat(frames, ignore_index=True)
    check_order_ids(orders, sources, by=["restaurant"])
    return orders, sources


def read_batches(paths: Iterable[str | Path]) -> pd.DataFrame:
    """The order lines of batch files, with a ``restaurant`` column; see :func:`read_batch_files`."""
    return read_batch_files(paths)[0]


def to_export(orders: pd.DataFrame) -> pd.DataFrame:
    """Normalised order lines back to the export schema, ISO dates, rows sorted stably."""
    orders = orders.sort_values(["order_date", "order_id"], kind="stable")
    return pd.DataFrame(
        {
            ORDER_ID: orders["order_id"].to_numpy(),
            ORDER_DATE: orders["order_date"].dt.strftime(DATE_FORMAT).to_numpy(),
            ITEM_NAME: orders["item_name"].to_numpy(),
            QUANTITY: orders["quantity"].to_numpy(),
            PRICE: orders["product_price"].map("{:.2f}".format).to_numpy(),
            TOTAL_PRODUCTS: orders["total_products"].to_numpy(),
        }
    )


def write_batch(export: pd.DataFrame, path: str | Path) -> None:
    """Write a batch atomically as a byte-reproducible gzip (no timestamp or name in the header).

    Raises
    ------
    FoodcastError
        If the file cannot be written (its directory cannot be created, no space, no right).
    """
    write_batch_text(export.to_csv(index=False, lineterminator="\n"), path)


def write_batch_text(text: str, path: str | Path, compresslevel: int = 9) -> None:
    """Write CSV text (header included) as a batch, as :func:`write_batch` does.

    ``compresslevel`` trades size for speed (1: fastest, 9: smallest); the bytes depend on it.

    Raises
    ------
    FoodcastError
        If the file cannot be written (its directory cannot be created, no space, no right).
    """
    path = Path(path)
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=compresslevel) as gz:
        gz.write(text.encode("utf-8"))
    with replacing(path) as f:
        f.write(buffer.getvalue())
