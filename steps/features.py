"""features: offline feature engineering on the hourly cash-in a load run produced."""

from foodcast.application import stages
from foodcast.application.command import stage_command


@stage_command(stages.FEATURES)
def features(load_run_id, **settings):
    """Read data/data.csv from the load run LOAD_RUN_ID (through MLflow), build the training
    features (weekday one-hot, hour harmonics, weekly lags, the level of the weeks before, the
    weekday and hour as numbers, the hour's share of a typical week pooled over the weeks
    around) and log training_set/x_train.csv (order_date + features) and
    training_set/y_train.csv (order_date, cash_in). Hours whose lags or level reach before the
    loaded weeks are dropped; a load run with too few weeks for them is refused."""
    import mlflow

    from foodcast.application import catalog
    from foodcast.application.datasets import log_input_frame
    from foodcast.application.mlflow_utils import mlflow_log_pandas
    from foodcast.application.upstream import check_run, read_frame
    from foodcast.domain.feature_engineering import features_offline

    check_run(load_run_id, catalog.LOAD)
    data = read_frame(load_run_id, catalog.DATA, catalog.LOAD)
    log_input_frame(data, load_run_id, catalog.DATA, context="source", targets="cash_in", stage=catalog.LOAD)
    train = features_offline(data, **stages.feature_settings(settings))
    mlflow_log_pandas(train.drop(columns="cash_in"), *catalog.X_TRAIN)
    mlflow_log_pandas(train[["order_date", "cash_in"]], *catalog.Y_TRAIN)
    mlflow.log_metric("n_rows", len(train))


if __name__ == "__main__":
    features()
