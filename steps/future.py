"""future: online feature engineering for the week to forecast."""

from foodcast.application import stages
from foodcast.application.command import stage_command


@stage_command(stages.FUTURE)
def future(next_week, degree, lag_in_week):
    """Build the prediction set of week NEXT_WEEK: its 168 hours with the same features as
    training (weekday one-hot, hour harmonics, weekly lags), the lags read from the batches of
    the LAG_IN_WEEK weeks before NEXT_WEEK in the data directory (FOODCAST_DATA_DIR, default
    data/). Logs prediction_set/x_pred.csv. Week 1 starts Monday 2014-12-29."""
    from foodcast.application import catalog
    from foodcast.application.datasets import log_batches_input
    from foodcast.application.mlflow_utils import mlflow_log_pandas
    from foodcast.domain.forecast import prediction_set
    from foodcast.settings import data_dir

    x_pred = prediction_set(data_dir(), next_week, degree, lag_in_week)
    log_batches_input(x_pred, data_dir(), next_week - lag_in_week, next_week - 1)
    mlflow_log_pandas(x_pred, *catalog.X_PRED)


if __name__ == "__main__":
    future()
