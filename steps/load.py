"""load: read the weekly batches of a range of weeks into the chain's hourly cash-in (or each restaurant's)."""

from foodcast.pipeline.command import stage_command
from foodcast.pipeline.stages.load import LOAD


@stage_command(LOAD)
def load(start_week: int, end_week: int, allow_missing: bool, granularity: str, engine: str) -> None:
    """Read every restaurant's weekly batches of weeks START_WEEK..END_WEEK from the data
    directory (FOODCAST_DATA_DIR, default data/) and log the chain's hourly cash-in as artifact
    data/data.csv (columns order_date, cash_in; every hour of the weeks held, hours without
    orders = 0). With GRANULARITY restaurant, each restaurant's instead (columns restaurant,
    order_date, cash_in; every hour of the weeks it has orders in; a restaurant directory named
    chain is refused). Week 1 starts Monday 2014-12-29. An incomplete week (a restaurant's batch
    missing or empty between weeks it has orders) fails the stage unless ALLOW_MISSING; what
    was read and lacked is recorded in the tag foodcast.coverage. With ENGINE spark the files are
    read and checked, and the hours summed per restaurant, on Spark (the same checks and
    refusals, the same data.csv)."""
    import mlflow

    from foodcast.data.chain import Reader
    from foodcast.settings import data_dir
    from foodcast.tracking import names
    from foodcast.tracking.artifacts import mlflow_log_pandas
    from foodcast.tracking.datasets import read_logged_batches

    reader: Reader | None = None  # pandas, each restaurant on a task of the stage's processes
    if engine == "spark":  # the files read and checked, the hours summed, on Spark
        from foodcast.spark.load import spark_reader

        reader = spark_reader()
    data, _ = read_logged_batches(data_dir(), start_week, end_week, allow_missing, granularity, reader)
    mlflow_log_pandas(data, *names.DATA)
    mlflow.log_metrics({"n_hours": len(data), "total_cash_in": float(data["cash_in"].sum())})
    if granularity == "restaurant":
        mlflow.log_metric("n_restaurants", data["restaurant"].nunique())


if __name__ == "__main__":
    load()
