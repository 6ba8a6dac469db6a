"""``load`` with ``engine=spark``: the batch files read and checked on Spark, the hourly cash-in
of each restaurant summed there.

The listing of the batches, the rule of complete weeks and its refusals stay the driver's
(``foodcast.data.chain``, as with pandas); only the reading of the files is Spark's
(:func:`spark_reader`, a ``foodcast.data.chain.Reader``):

1. one group per restaurant (``groupBy(restaurant).applyInPandas``): each of its files read and
   checked by the same function as with pandas (``foodcast.data.orders.read_batch_file``: the
   text, the columns, every row's values), then its order ids across its files
   (``check_order_ids``); each order line comes out as its restaurant, the microsecond of its
   hour and its amount (quantity x price), in the schema given (:data:`LINE_SCHEMA`);
2. ``groupBy(restaurant, hour).sum(amount)``: the hourly cash-in per restaurant, in Spark;
3. the driver collects those sums (one row per restaurant-hour with orders) as one line per
   hour (quantity 1, product_price the hour's cash-in), which the pandas code completes (hours
   without orders = 0) and rounds to the cent as it does order lines.

A refusal is the pandas one, word for word: the first file (in the order pandas reads them:
restaurants sorted, weeks ascending) that a check refuses; else the first restaurant whose order
ids are reused. The files are read by the executors from their paths: on a cluster the data
directory must be on a file system every executor sees at the same path.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
from pyspark.sql import functions as F

from foodcast.data.orders import check_order_ids, read_batch_file
from foodcast.errors import FoodcastError
from foodcast.spark.engine import session

RESTAURANT = "restaurant"
#: The order lines as the groups return them; no schema is inferred.
LINE_SCHEMA = "restaurant string, hour long, amount double, stage int, error string"
_FILES_SCHEMA = "restaurant string, position long, path string"
_HOUR_US = 3_600_000_000
_PARSE, _IDS = 0, 1  # which check refused: every file's is reported before any order id's


def _read_restaurant(files: pd.DataFrame) -> pd.DataFrame:
    """One restaurant's files read and checked (as ``read_batch_files`` does), as lines
    ``restaurant, hour, amount``; or one row with the first refusal (``stage``, ``error``)."""
    files = files.sort_values("position")
    name = str(files[RESTAURANT].iloc[0])
    frames, sources = [], []
    for path in files["path"]:
        try:
            orders, source = read_batch_file(path)
        except FoodcastError as exc:
            return _refusal(name, _PARSE, str(exc), int(files["position"].iloc[0]))
        frames.append(orders)
        sources.append(source)
    lines = pd.concat(frames, ignore_index=True)
    try:
        check_order_ids(lines, sources, by=[RESTAURANT])
    except FoodcastError as exc:
        return _refusal(name, _IDS, str(exc), int(files["position"].iloc[0]))
    stamps = lines["order_date"].to_numpy(dtype="datetime64[us]").astype("int64")
    return pd.DataFrame(
        {
            RESTAURANT: name,
            "hour": stamps - stamps % _HOUR_US,
            "amount": (lines["quantity"] * lines["product_price"]).to_numpy(dtype="float64"),
            "stage": -1,
            "error": None,
        }
    )


def _refusal(name: str, stage: int, error: str, position: int) -> pd.DataFrame:
    # ``hour`` carries the restaurant's first file's position: the refusals are put in read order.
    return pd.DataFrame({RESTAURANT: [name], "hour": [position], "amount": [0.0], "stage": [stage], "error": [error]})


def read_batches_on_spark(paths: list[Path]) -> pd.DataFrame:
    """The order lines of batch files, summed per restaurant and hour on Spark (see the module).

    Returns
    -------
    DataFrame
        ``restaurant``, ``order_date`` (an hour with orders), ``quantity`` (1) and
        ``product_price`` (the hour's cash-in, unrounded): the hour's lines summed, one line.

    Raises
    ------
    FoodcastError
        The refusal pandas makes of the same files, word for word.
    """
    spark = session()
    files = pd.DataFrame(
        {
            RESTAURANT: [Path(p).parent.name for p in paths],
            "position": range(len(paths)),
            "path": [str(p) for p in paths],
        }
    )
    if files.empty:
        return pd.DataFrame({RESTAURANT: [], "order_date": [], "quantity": [], "product_price": []})
    partitions = min(files[RESTAURANT].nunique(), 4 * spark.sparkContext.defaultParallelism)
    spark.conf.set("spark.sql.shuffle.partitions", str(max(1, partitions)))
    lines = (
        spark.createDataFrame(files, schema=_FILES_SCHEMA)
        .groupBy(RESTAURANT)
        .applyInPandas(_read_restaurant, schema=LINE_SCHEMA)
        .cache()
    )
    try:
        refusals = lines.filter(F.col("error").isNotNull()).select("stage", "hour", "error").collect()
        if refusals:
            first = min(refusals, key=lambda row: (row["stage"], row["hour"]))
            raise FoodcastError(first["error"])
        sums = (
            lines.groupBy(RESTAURANT, "hour")
            .agg(F.sum("amount").alias("amount"))
            .toPandas()
            .sort_values([RESTAURANT, "hour"], kind="stable")
        )
    finally:
        lines.unpersist()
    return pd.DataFrame(
        {
            RESTAURANT: sums[RESTAURANT].astype(str).to_numpy(),
            "order_date": pd.to_datetime(sums["hour"].to_numpy(dtype="int64"), unit="us"),
            "quantity": 1,
            "product_price": sums["amount"].to_numpy(dtype="float64"),
        }
    ).reset_index(drop=True)


def spark_reader() -> Callable[[list[Path]], pd.DataFrame]:
    """The ``foodcast.data.chain.Reader`` of ``engine=spark``."""
    return read_batches_on_spark
