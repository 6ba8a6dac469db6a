"""Weekly batches on disk: where they are, how to read, validate and write them.

Layout: ``<data_dir>/<restaurant>/week_<NNN>.csv.gz`` (plain ``.csv`` is read too), one file
per restaurant per week, each holding that week's order lines in the export schema:
``Order Number`` (or ``Order ID``), ``Order Date``, ``Item Name``, ``Quantity``,
``Product Price``, ``Total products``. Every sub-directory holding batches is a restaurant of
the chain.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from foodcast.errors import FoodcastError

BATCH_PATTERN = re.compile(r"^week_(\d+)\.csv(\.gz)?$")
RESTAURANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

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


def batch_name(week: int) -> str:
    """File name of a restaurant's batch for ``week``."""
    return f"week_{int(week):03d}.csv.gz"


def list_batches(data_dir) -> dict[str, dict[int, Path]]:
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


def available_weeks(data_dir) -> list[int]:
    """Sorted week numbers for which at least one restaurant has a batch."""
    return sorted({w for weeks in list_batches(data_dir).values() for w in weeks})


def batch_files(data_dir, start_week: int, end_week: int) -> list[Path]:
    """Exactly the batch files a read of weeks ``start_week..end_week`` opens, sorted."""
    return sorted(
        path
        for weeks in list_batches(data_dir).values()
        for week, path in weeks.items()
        if start_week <= week <= end_week
    )


def parse_orders(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate export rows and normalise them.

    Parameters
    ----------
    raw : DataFrame
        Rows as read from an export or a batch (all columns as strings).
    source : str
        File name used in error messages.

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
    id_column = next((c for c in ORDER_ID_ALIASES if c in raw.columns), None)
    if id_column is None:
        raise FoodcastError(f"{source}: missing column '{ORDER_ID}' (or 'Order ID')")
    for column in EXPORT_COLUMNS[1:]:
        if column not in raw.columns:
            raise FoodcastError(f"{source}: missing column '{column}'")

    def fail(mask, column, what):
        row = int(np.flatnonzero(np.asarray(mask))[0])
        value = raw[column].iloc[row]
        raise FoodcastError(f"{source}: row {row + 1}, column '{column}': {what} {value!r}")

    for column in (id_column, ORDER_DATE, ITEM_NAME):
        missing = raw[column].isna()
        if missing.any():
            fail(missing, column, "empty value")
    dates = _parse_dates(raw[ORDER_DATE])
    if dates.isna().any():
        fail(dates.isna(), ORDER_DATE, "unparseable date")
    numbers = {}
    for column in (QUANTITY, PRICE, TOTAL_PRODUCTS):
        values = pd.to_numeric(raw[column], errors="coerce")
        if values.isna().any():
            fail(values.isna(), column, "not a number:")
        if (values < 0).any():
            fail(values < 0, column, "negative value")
        if column != PRICE and (values != values.round()).any():
            # Counts of items: a fraction would be silently truncated by the integer cast.
            fail(values != values.round(), column, "not a whole number:")
        numbers[column] = values
    return pd.DataFrame(
        {
            "order_id": raw[id_column].astype(str).to_numpy(),
            "order_date": dates.to_numpy(),
            "item_name": raw[ITEM_NAME].astype(str).to_numpy(),
            "quantity": numbers[QUANTITY].astype("int64").to_numpy(),
            "product_price": numbers[PRICE].astype("float64").to_numpy(),
            "total_products": numbers[TOTAL_PRODUCTS].astype("int64").to_numpy(),
        }
    )


def _parse_dates(text: pd.Series) -> pd.Series:
    """ISO dates (``2018-06-12 19:22:00``) or day-first ones (``03/08/2019 20:25``), row by row."""
    text = text.astype(str).str.strip()
    iso = pd.to_datetime(text, format="ISO8601", errors="coerce")
    todo = iso.isna()
    if todo.any():
        iso[todo] = pd.to_datetime(text[todo], format=DAY_FIRST_FORMAT, errors="coerce")
    return iso


def read_export(path) -> pd.DataFrame:
    """Read and validate one CSV (optionally gzipped) in the export schema; see :func:`parse_orders`."""
    path = Path(path)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise FoodcastError(f"{path}: cannot be read as CSV ({exc})") from None
    return parse_orders(raw, str(path))


def read_batches(paths) -> pd.DataFrame:
    """Read and validate batch files; one frame of order lines with a ``restaurant`` column."""
    frames = []
    for path in paths:
        orders = read_export(path)
        orders["restaurant"] = Path(path).parent.name
        frames.append(orders)
    if not frames:
        return parse_orders(pd.DataFrame(columns=EXPORT_COLUMNS), "<none>").assign(restaurant="")
    return pd.concat(frames, ignore_index=True)


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


def write_batch(export: pd.DataFrame, path) -> None:
    """Write a batch atomically as a byte-reproducible gzip (no timestamp or name in the header)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = export.to_csv(index=False, lineterminator="\n").encode("utf-8")
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as gz:
        gz.write(text)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".gz")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getvalue())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def check_restaurant_name(name: str) -> str:
    """A restaurant name is a directory name: letters, digits, ``_ . -``."""
    if not RESTAURANT_PATTERN.match(name or ""):
        raise FoodcastError(
            f"restaurant name {name!r} must start with a letter or digit and use only letters, "
            "digits, '_', '.' and '-'"
        )
    return name
