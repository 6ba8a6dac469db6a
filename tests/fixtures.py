"""Small synthetic batch directories for tests (the default dataset is for end-to-end runs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from foodcast.domain.weeks import week_start
from foodcast.infrastructure.batches import batch_name, to_export, write_batch


def orders_for_week(week: int, restaurant_index: int, rng: np.random.Generator) -> pd.DataFrame:
    """A few evening orders a day with a weekday pattern: enough structure to learn from."""
    rows = []
    start = week_start(week)
    for day in range(7):
        n_orders = int(rng.poisson(6 + 2 * (day >= 4) + restaurant_index))
        for k in range(n_orders):
            when = start + pd.Timedelta(days=day, hours=int(rng.integers(17, 23)),
                                        minutes=int(rng.integers(0, 60)))
            n_lines = int(rng.integers(1, 4))
            for line in range(n_lines):
                rows.append({
                    "order_id": f"{week}-{day}-{k}",
                    "order_date": when,
                    "item_name": f"Dish {line}",
                    "quantity": int(rng.integers(1, 3)),
                    "product_price": float(rng.choice([2.5, 7.95, 10.5])),
                    "total_products": n_lines,
                })
    return pd.DataFrame(rows)


def make_batches(data_dir, weeks, restaurants=("alpha", "beta"), seed=0) -> Path:
    """Write one batch per restaurant per week under ``data_dir``; returns it."""
    data_dir = Path(data_dir)
    for r, restaurant in enumerate(restaurants):
        for week in weeks:
            rng = np.random.default_rng([seed, r, week])
            write_batch(to_export(orders_for_week(week, r, rng)), data_dir / restaurant / batch_name(week))
    return data_dir
