"""``predict`` with ``engine=spark``: the long prediction set scored by ``mlflow.pyfunc.spark_udf``
of the one logged model (the many-models pattern's scoring).

The model makes the rows of an hour coherent together (the chain's forecast split among the
restaurants of that hour), so every Arrow batch the UDF receives must hold whole hours: the
rows are range-partitioned by ``order_date`` (equal keys stay in one partition), sorted by hour
and by their position within each partition, and a batch holds a whole number of hours
(``spark.sql.execution.arrow.maxRecordsPerBatch``, every hour having the same rows: one per
restaurant forecast and the chain's). Each output row is its input row's (a pandas UDF returns
its rows in order), put back in the prediction set's order by its position.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from pyspark.sql import functions as F

from foodcast.errors import FoodcastError
from foodcast.spark.engine import session

ORDER_DATE = "order_date"
RESTAURANT = "restaurant"
_ROW = "__row"
HOURS_PER_BATCH = 24


def score_on_spark(model_uri: str, x_pred: pd.DataFrame) -> pd.DataFrame:
    """The long forecast of ``x_pred`` (``restaurant``, ``order_date``, ``fallback``, the
    features) by the model at ``model_uri``, computed on Spark; the columns and rows of
    ``pyfunc.load_model(model_uri).predict(x_pred)``.

    Raises
    ------
    FoodcastError
        If the model refuses the rows (its message, in one line).
    """
    spark = session()
    outputs = mlflow.models.get_model_info(model_uri).signature.outputs.input_names()
    per_hour = x_pred.groupby(ORDER_DATE).size()
    hours = len(per_hour)
    rows_per_hour = int(per_hour.iloc[0]) if per_hour.nunique() == 1 else len(x_pred)
    batch = rows_per_hour * (HOURS_PER_BATCH if rows_per_hour < len(x_pred) else 1)
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(max(batch, 1)))
    frame = x_pred.copy()
    frame[ORDER_DATE] = pd.to_datetime(frame[ORDER_DATE]).dt.strftime("%Y-%m-%d %H:%M:%S")
    frame.insert(0, _ROW, np.arange(len(frame), dtype="int64"))
    result = ", ".join(f"`{c}` string" if c == RESTAURANT else f"`{c}` double" for c in outputs if c != ORDER_DATE)
    udf = mlflow.pyfunc.spark_udf(spark, model_uri, result_type=result, env_manager="local")
    inputs = [c for c in frame.columns if c != _ROW]
    partitions = max(1, min(hours // HOURS_PER_BATCH, spark.sparkContext.defaultParallelism * 2))
    try:
        scored = (
            spark.createDataFrame(frame)
            .repartitionByRange(partitions, ORDER_DATE)
            .sortWithinPartitions(ORDER_DATE, _ROW)
            .select(_ROW, udf(F.struct(*[F.col(f"`{c}`") for c in inputs])).alias("forecast"))
            .select(_ROW, "forecast.*")
            .toPandas()
        )
    except Exception as exc:  # noqa: BLE001 - the model's refusal comes wrapped in Spark's error
        lines = [line for line in str(exc).splitlines() if "invalid feature rows" in line or "Error" in line]
        raise FoodcastError(
            f"the model refuses the prediction set on Spark: {(lines or [str(exc)])[-1].strip()}"
        ) from None
    scored = scored.sort_values(_ROW).drop(columns=_ROW).reset_index(drop=True)
    # the model puts each row's hour after its restaurant (its signature names the other columns)
    scored.insert(1, ORDER_DATE, pd.to_datetime(x_pred[ORDER_DATE]).to_numpy())
    return scored
