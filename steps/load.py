"""load: read the weekly batches of a range of weeks into the chain's hourly cash-in."""

from foodcast.pipeline.command import stage_command
from foodcast.pipeline.stages.load import LOAD


@stage_command(LOAD)
def load(start_week: int, end_week: int, allow_missing: bool, granularity: str) -> None:
    """Read every restaurant's weekly batches of weeks START_WEEK..END_WEEK from the data
    directory (FOODCAST_DATA_DIR, default data/) and log the chain's hourly cash-in as artifact
    data/data.csv (columns order_date, cash_in; every hour of the weeks held, hours without
    orders = 0). Week 1 starts Monday 2014-12-29. An incomplete week (a restaurant's batch
    missing or empty between weeks it has orders) fails the stage unless ALLOW_MISSING; what
    was read and lacked is recorded in the tag foodcast.coverage."""
    import mlflow

    from foodcast.errors import FoodcastError
    from foodcast.settings import data_dir
    from foodcast.tracking import names
    from foodcast.tracking.artifacts import mlflow_log_pandas
    from foodcast.tracking.datasets import read_logged_batches

    if granularity != "chain":
        raise FoodcastError("granularity=restaurant: load does not read restaurants yet")
    data, _ = read_logged_batches(data_dir(), start_week, end_week, allow_missing)
    mlflow_log_pandas(data, *names.DATA)
    mlflow.log_metrics({"n_hours": len(data), "total_cash_in": float(data["cash_in"].sum())})


if __name__ == "__main__":
    load()
