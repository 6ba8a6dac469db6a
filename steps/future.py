"""future: online feature engineering for the week to forecast."""

from foodcast.application import stages
from foodcast.application.command import stage_command


@stage_command(stages.FUTURE)
def future(next_week, allow_missing, **settings):
    """Build the prediction set of week NEXT_WEEK: its 168 hours with the same features as
    training, the lags, the level and the profile read from the batches of the weeks before
    NEXT_WEEK in the data directory (FOODCAST_DATA_DIR, default data/). Logs
    prediction_set/x_pred.csv. Week 1 starts Monday 2014-12-29. An incomplete week among those
    fails the stage unless ALLOW_MISSING (recorded in the tag foodcast.coverage)."""
    import mlflow

    from foodcast.application import catalog
    from foodcast.application.datasets import coverage_notes, log_batches_input
    from foodcast.application.mlflow_utils import mlflow_log_pandas
    from foodcast.domain.forecast import week_rows
    from foodcast.domain.transform import read_chain
    from foodcast.settings import data_dir

    features = stages.feature_settings(settings)
    first, last = stages.FUTURE.batch_weeks({"next_week": next_week, **features})
    past, coverage = read_chain(data_dir(), max(first, 1), last, allow_missing=allow_missing)
    mlflow.set_tag("foodcast.coverage", coverage.summary())
    x_pred = week_rows(past, next_week, **features)
    log_batches_input(past, data_dir(), first, last, notes=coverage_notes(coverage, allow_missing))
    mlflow_log_pandas(x_pred, *catalog.X_PRED)


if __name__ == "__main__":
    future()
