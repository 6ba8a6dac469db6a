"""load: read the weekly batches of a range of weeks into the chain's hourly cash-in."""

from foodcast.application import stages
from foodcast.application.command import stage_command


@stage_command(stages.LOAD)
def load(start_week, end_week, allow_missing):
    """Read every restaurant's weekly batches of weeks START_WEEK..END_WEEK from the data
    directory (FOODCAST_DATA_DIR, default data/) and log the chain's hourly cash-in as artifact
    data/data.csv (columns order_date, cash_in; every hour of the weeks held, hours without
    orders = 0). Week 1 starts Monday 2014-12-29. An incomplete week (a restaurant's batch
    missing or empty between weeks it has orders) fails the stage unless ALLOW_MISSING; what
    was read and lacked is recorded in the tag foodcast.coverage."""
    import mlflow

    from foodcast.application import catalog
    from foodcast.application.datasets import coverage_notes, log_batches_input
    from foodcast.application.mlflow_utils import mlflow_log_pandas
    from foodcast.domain.transform import read_chain
    from foodcast.settings import data_dir

    data, coverage = read_chain(data_dir(), start_week, end_week, allow_missing=allow_missing)
    mlflow.set_tag("foodcast.coverage", coverage.summary())
    log_batches_input(data, data_dir(), start_week, end_week, notes=coverage_notes(coverage, allow_missing))
    mlflow_log_pandas(data, *catalog.DATA)
    mlflow.log_metrics({"n_hours": len(data), "total_cash_in": float(data["cash_in"].sum())})


if __name__ == "__main__":
    load()
