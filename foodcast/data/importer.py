"""Import a restaurant's raw order export into weekly batches.

The export is validated as a whole, split by week (week 1 starts on Monday 2014-12-29) and
written to ``<data_dir>/<restaurant>/week_NNN.csv.gz``, merged with any batch already there.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from foodcast.core.weeks import weeks_of
from foodcast.data.batch_files import batch_name, check_restaurant_name, list_batches, writing
from foodcast.data.orders import check_order_ids, read_batch_files, read_orders, to_export, write_batch
from foodcast.errors import FoodcastError


def import_export(path: str | Path, restaurant: str, data_dir: str | Path) -> list[Path]:
    """Split a raw export into weekly batches of ``restaurant`` under ``data_dir``.

    A week that already has a batch gets the union of its lines and the new ones: a line is
    kept as many times as it appears in whichever of the two holds it more often, so
    importing the same export again, or an export overlapping an earlier one, changes nothing,
    while identical lines within one export (the same dish entered twice in an order) survive.

    Parameters
    ----------
    path : path-like
        CSV export, optionally gzipped, with columns ``Order Number`` (or ``Order ID``),
        ``Order Date`` (ISO or day-first ``dd/mm/yyyy HH:MM``), ``Item Name``, ``Quantity``,
        ``Product Price``, ``Total products``.
    restaurant : str
        Name of the restaurant, used as its directory name.
    data_dir : path-like
        Root of the batches; created if missing.

    Returns
    -------
    list of Path
        The batches written, one per week of the export, by week.

    Raises
    ------
    FoodcastError
        If the restaurant name is invalid, the export cannot be read, a value is missing,
        malformed or implausible, a date falls before week 1, an order id of the export names
        another order (in the export or in any batch of the restaurant), or an existing batch
        is itself invalid (see ``foodcast.data.orders.parse_orders``). Nothing is
        written then.
    """
    restaurant = check_restaurant_name(restaurant)
    path = Path(path)
    if not path.is_file():
        raise FoodcastError(f"{path}: no such file")
    orders, export_source = read_orders(path)
    orders = _as_stored(orders)
    weeks = weeks_of(orders["order_date"]).to_numpy()

    # The lock spans the read of the batches merged with and the writes: another import
    # into this directory meanwhile would otherwise be overwritten by a merge without it.
    with writing(data_dir) as root:
        existing = _existing_batches(root, restaurant)
        # Every batch of the restaurant is read and checked before the first write, so that a bad
        # batch aborts cleanly and an order id of the export cannot name an order of another week.
        stored, sources = read_batch_files(existing.values())
        stored = stored.drop(columns="restaurant")
        stored_weeks = weeks_of(stored["order_date"]).to_numpy()
        check_order_ids(pd.concat([stored, orders], ignore_index=True), [*sources, export_source])
        target_dir = root / restaurant
        plan = []
        for week in sorted(set(weeks.tolist())):
            lines = orders[weeks == week]
            old_path = existing.get(week)
            if old_path is not None:
                lines = _union(_as_stored(stored[stored_weeks == week]), lines)
            plan.append((target_dir / batch_name(week), to_export(lines), old_path))

        written = []
        for target, export, old_path in plan:
            write_batch(export, target)
            # A plain .csv or unpadded name would otherwise be a second batch of the same week.
            if old_path is not None and old_path != target:
                old_path.unlink()
            written.append(target)
    return written


def _existing_batches(data_dir: Path, restaurant: str) -> dict[int, Path]:
    if not (data_dir / restaurant).is_dir():
        return {}
    return list_batches(data_dir).get(restaurant, {})


def _as_stored(lines: pd.DataFrame) -> pd.DataFrame:
    """Lines at the precision a batch keeps (whole seconds, pennies), so merges compare alike."""
    return lines.assign(
        order_date=lines["order_date"].dt.floor("s"),
        # Through the same formatting as to_export: numpy's round can differ on ties.
        product_price=lines["product_price"].map("{:.2f}".format).astype("float64"),
    )


def _union(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Multiset union of two sets of normalised lines, the old ones first."""
    columns = list(old.columns)

    def numbered(lines: pd.DataFrame) -> pd.DataFrame:
        # The n-th copy of a line only matches the n-th copy on the other side.
        copy = lines.groupby(columns, sort=False, dropna=False).cumcount()
        return lines.assign(_copy=copy.to_numpy())

    both = pd.concat([numbered(old), numbered(new)], ignore_index=True)
    both = both.drop_duplicates(subset=[*columns, "_copy"], keep="first")
    return both.drop(columns="_copy").reset_index(drop=True)
