"""features: offline feature engineering on the hourly cash-in a load run produced."""

from typing import Any

from foodcast.pipeline.command import stage_command
from foodcast.pipeline.stages.features import FEATURES


@stage_command(FEATURES)
def features(load_run_id: str, **settings: Any) -> None:
    """Read data/data.csv from the load run LOAD_RUN_ID (through MLflow), build the training
    features (weekday one-hot, hour harmonics, weekly lags, the level of the weeks before, the
    weekday and hour as numbers, the hour's share of a typical week pooled over the weeks
    around) and log training_set/x_train.csv (order_date + features) and
    training_set/y_train.csv (order_date, cash_in). Hours whose lags or level reach before the
    loaded weeks are dropped; a load run with too few weeks for them is refused."""
    import mlflow

    from foodcast.core.features import features_offline
    from foodcast.pipeline.params import feature_settings
    from foodcast.tracking import names
    from foodcast.tracking.artifacts import mlflow_log_pandas, read_frame
    from foodcast.tracking.datasets import log_input_frame
    from foodcast.tracking.runs import check_run

    check_run(load_run_id, names.LOAD)
    data = read_frame(load_run_id, names.DATA, names.LOAD)
    log_input_frame(data, load_run_id, names.DATA, context="source", targets="cash_in", stage=names.LOAD)
    train = features_offline(data, **feature_settings(settings))
    mlflow_log_pandas(train.drop(columns="cash_in"), *names.X_TRAIN)
    mlflow_log_pandas(train[["order_date", "cash_in"]], *names.Y_TRAIN)
    mlflow.log_metric("n_rows", len(train))


if __name__ == "__main__":
    features()
