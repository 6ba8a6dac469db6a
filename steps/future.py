"""future: online feature engineering for the week to forecast."""

from foodcast.application import stages
from foodcast.application.command import stage_command


@stage_command(stages.FUTURE)
def future(next_week, degree, lag_in_week, level_weeks, calendar_index, allow_missing):
    """Build the prediction set of week NEXT_WEEK: its 168 hours with the same features as
    training, the lags and the level read from the batches of the weeks before NEXT_WEEK in the
    data directory (FOODCAST_DATA_DIR, default data/). Logs prediction_set/x_pred.csv. Week 1
    starts Monday 2014-12-29. An incomplete week among those fails the stage unless
    ALLOW_MISSING (recorded in the tag foodcast.coverage)."""
    import mlflow

    from foodcast.application import catalog
    from foodcast.application.datasets import coverage_notes, log_batches_input
    from foodcast.application.mlflow_utils import mlflow_log_pandas
    from foodcast.domain.forecast import past_weeks, week_rows
    from foodcast.domain.transform import read_chain
    from foodcast.settings import data_dir

    first, last = next_week - past_weeks(lag_in_week, level_weeks), next_week - 1
    past, coverage = read_chain(data_dir(), max(first, 1), last, allow_missing=allow_missing)
    mlflow.set_tag("foodcast.coverage", coverage.summary())
    x_pred = week_rows(past, next_week, degree=degree, lag_in_week=lag_in_week, level_weeks=level_weeks,
                       calendar_index=calendar_index)
    log_batches_input(past, data_dir(), first, last, notes=coverage_notes(coverage, allow_missing))
    mlflow_log_pandas(x_pred, *catalog.X_PRED)


if __name__ == "__main__":
    future()
