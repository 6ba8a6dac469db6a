"""features: offline feature engineering on the hourly cash-in a load run produced."""

import click

from foodcast.application import catalog


@click.command(help="""Read data/data.csv from the load run LOAD_RUN_ID (through MLflow), build
the training features (weekday one-hot, hour harmonics, weekly lags) and log
training_set/x_train.csv (order_date + features) and training_set/y_train.csv
(order_date, cash_in). Hours whose lags fall before the loaded weeks are dropped.""")
@click.option("--load-run-id", required=True, help="Run id of a FINISHED load run.")
@click.option("--degree", type=int, default=1, show_default=True,
              help="Number of hour-of-day harmonics (hour_cos_k, hour_sin_k for k=1..degree).")
@click.option("--lag-in-week", type=int, default=1, show_default=True,
              help="Weekly lags: cash-in at the same hour 1..lag_in_week weeks earlier.")
def features(load_run_id, degree, lag_in_week):
    from foodcast.application.step import step_run

    params = {"load_run_id": load_run_id, "degree": degree, "lag_in_week": lag_in_week}
    with step_run(catalog.FEATURES, params, upstream={catalog.LOAD: load_run_id}):
        import mlflow

        from foodcast.application.datasets import log_input_frame
        from foodcast.application.mlflow_utils import mlflow_log_pandas
        from foodcast.application.upstream import check_run, read_frame
        from foodcast.domain.feature_engineering import features_offline

        check_run(load_run_id, catalog.LOAD)
        data = read_frame(load_run_id, catalog.DATA, catalog.LOAD)
        log_input_frame(data, load_run_id, catalog.DATA, context="source", targets="cash_in")
        train = features_offline(data, degree=degree, lag_in_week=lag_in_week)
        mlflow_log_pandas(train.drop(columns="cash_in"), *catalog.X_TRAIN)
        mlflow_log_pandas(train[["order_date", "cash_in"]], *catalog.Y_TRAIN)
        mlflow.log_metric("n_rows", len(train))


if __name__ == "__main__":
    features()
