"""Small synthetic batch directories for tests (the default dataset is for end-to-end runs)."""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from foodcast.core.weeks import week_start
from foodcast.data.batch_files import batch_name
from foodcast.data.orders import to_export, write_batch
from foodcast.errors import FoodcastError

# Features and model for a few weeks of synthetic restaurants (the per-restaurant core's tests):
# a level and a profile of 4 weeks, the profile model, 3 members.
SHORT_FEATURES = {
    "degree": 1,
    "lag_in_week": 0,
    "level_weeks": 4,
    "calendar_index": True,
    "level_halflife": 2.0,
    "profile_weeks": 4,
    "profile_groups": 2,
}
SHORT_MODEL = {"model": "profile", "level_scaled": True, "n_models": 3}


def orders_for_week(week: int, restaurant_index: int, rng: np.random.Generator) -> pd.DataFrame:
    """A few evening orders a day with a weekday pattern: enough structure to learn from."""
    rows = []
    start = week_start(week)
    for day in range(7):
        n_orders = int(rng.poisson(6 + 2 * (day >= 4) + restaurant_index))
        for k in range(n_orders):
            when = start + pd.Timedelta(days=day, hours=int(rng.integers(17, 23)), minutes=int(rng.integers(0, 60)))
            n_lines = int(rng.integers(1, 4))
            for line in range(n_lines):
                rows.append(
                    {
                        "order_id": f"{week}-{day}-{k}",
                        "order_date": when,
                        "item_name": f"Dish {line}",
                        "quantity": int(rng.integers(1, 3)),
                        "product_price": float(rng.choice([2.5, 7.95, 10.5])),
                        "total_products": n_lines,
                    }
                )
    return pd.DataFrame(rows)


def prediction_set(data_dir, next_week: int, **features) -> pd.DataFrame:
    """Feature rows of the 168 hours of ``next_week``, read from the batches as the future stage
    reads them: the hourly cash-in of the weeks before it (``windows.forecast_weeks``), then
    ``forecast.week_rows``."""
    from foodcast.core.forecast import week_rows
    from foodcast.core.windows import forecast_weeks
    from foodcast.data.chain import etl

    first, last = forecast_weeks(next_week, **features)
    if first < 1:
        raise FoodcastError(
            f"next_week {next_week} has no {last - first + 1} week(s) of past data before it (week 1 is the first)"
        )
    return week_rows(etl(data_dir, first, last), next_week, **features)


def make_batches(data_dir, weeks, restaurants=("alpha", "beta"), seed=0) -> Path:
    """Write one batch per restaurant per week under ``data_dir``; returns it."""
    data_dir = Path(data_dir)
    for r, restaurant in enumerate(restaurants):
        for week in weeks:
            rng = np.random.default_rng([seed, r, week])
            write_batch(to_export(orders_for_week(week, r, rng)), data_dir / restaurant / batch_name(week))
    return data_dir


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _flip_until_zlib_error(data: bytes) -> bytes:
    """The gzip stream with one byte of its deflate data flipped, at the first place where
    that makes zlib itself fail (other places give a CRC error or still decompress)."""
    stream = _gzip(data)
    for offset in range(20, len(stream) - 8):
        damaged = stream[:offset] + bytes([stream[offset] ^ 0xFF]) + stream[offset + 1 :]
        try:
            gzip.decompress(damaged)
        except zlib.error:
            return damaged
        except (OSError, EOFError):
            continue
    raise AssertionError("no single flipped byte makes zlib fail")


def _latin_1(data: bytes) -> bytes:
    """The CSV as a till set to Latin-1 writes it, a pound sign ending its first row."""
    lines = data.split(b"\n")
    lines[1] += " £".encode("latin-1")
    return b"\n".join(lines)


# Ways a file can be damaged: name -> (file suffix, damaged bytes from the good CSV bytes).
DAMAGES = {
    "truncated-gzip": (".csv.gz", lambda data: _gzip(data)[: len(_gzip(data)) // 2]),
    "corrupt-deflate-stream": (".csv.gz", _flip_until_zlib_error),
    "bad-gzip-header": (".csv.gz", lambda data: b"PK\x03\x04" + _gzip(data)[4:]),
    "gzip-crc-mismatch": (".csv.gz", lambda data: _gzip(data)[:-8] + b"\0\0\0\0" + _gzip(data)[-4:]),
    "zero-bytes": (".csv.gz", lambda data: b""),
    "latin-1-text": (".csv", lambda data: _latin_1(data)),
    "latin-1-text-gzipped": (".csv.gz", lambda data: _gzip(_latin_1(data))),
    "binary-garbage": (".csv", lambda data: np.random.default_rng(7).bytes(4096)),
    "nul-filled": (".csv", lambda data: b"\0" * len(data)),
    "ragged-rows": (
        ".csv",
        lambda data: (
            b"\n".join(line if i == 0 else b"x," + line for i, line in enumerate(data.strip().split(b"\n"))) + b"\n"
        ),
    ),
}


def csv_bytes(export: pd.DataFrame) -> bytes:
    """A frame in the export schema as the bytes of a CSV file."""
    return export.to_csv(index=False, lineterminator="\n").encode("utf-8")


def digests(root):
    """``{relative path: sha256}`` of every file under ``root``: a directory's bytes, compared whole."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }
