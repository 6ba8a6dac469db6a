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
    loaded weeks are dropped; a load run with too few weeks for them is refused. From a load run
    of restaurants (granularity=restaurant: a restaurant column), the rows of every restaurant
    then of the chain's total (restaurant chain), x_train with restaurant, order_date, fallback
    (1.0: a restaurant's history too short for its own features, the chain's profile at its own
    level instead) + features, y_train with restaurant, order_date, cash_in; computed on
    FOODCAST_WORKERS processes (default: every core)."""
    import mlflow

    from foodcast.core import restaurants
    from foodcast.core.features import features_offline
    from foodcast.pipeline.params import feature_settings
    from foodcast.settings import workers
    from foodcast.tracking import names
    from foodcast.tracking.artifacts import mlflow_log_pandas, read_frame
    from foodcast.tracking.datasets import log_input_frame
    from foodcast.tracking.runs import check_run

    check_run(load_run_id, names.LOAD)
    data = read_frame(load_run_id, names.DATA, names.LOAD)
    log_input_frame(data, load_run_id, names.DATA, context="source", targets="cash_in", stage=names.LOAD)
    if restaurants.RESTAURANT in data.columns:
        train = restaurants.training_rows(data, workers(), **feature_settings(settings))
        keys = [restaurants.RESTAURANT, "order_date"]
        mlflow.log_metric("n_restaurants", train[restaurants.RESTAURANT].nunique() - 1)  # the chain's rows apart
        mlflow.log_metric("n_fallback_rows", int(train[restaurants.FALLBACK].sum()))
    else:
        train = features_offline(data, **feature_settings(settings))
        keys = ["order_date"]
    mlflow_log_pandas(train.drop(columns="cash_in"), *names.X_TRAIN)
    mlflow_log_pandas(train[[*keys, "cash_in"]], *names.Y_TRAIN)
    mlflow.log_metric("n_rows", len(train))


if __name__ == "__main__":
    features()
