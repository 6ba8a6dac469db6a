"""future: online feature engineering for the week to forecast."""

import click

from foodcast.application import catalog


@click.command(help="""Build the prediction set of week NEXT_WEEK: its 168 hours with the same
features as training (weekday one-hot, hour harmonics, weekly lags), the lags read from the
batches of the LAG_IN_WEEK weeks before NEXT_WEEK in the data directory (FOODCAST_DATA_DIR,
default data/). Logs prediction_set/x_pred.csv. Week 1 starts Monday 2014-12-29.""")
@click.option("--next-week", type=int, required=True, help="Week to forecast (>= 2).")
@click.option("--degree", type=int, default=1, show_default=True,
              help="Number of hour-of-day harmonics; must match the features run of the model.")
@click.option("--lag-in-week", type=int, default=1, show_default=True,
              help="Weekly lags; must match the features run of the model.")
def future(next_week, degree, lag_in_week):
    from foodcast.application.step import step_run

    params = {"next_week": next_week, "degree": degree, "lag_in_week": lag_in_week}
    with step_run(catalog.FUTURE, params):
        from foodcast.application.datasets import log_batches_input
        from foodcast.application.mlflow_utils import mlflow_log_pandas
        from foodcast.domain.forecast import prediction_set
        from foodcast.settings import data_dir

        x_pred = prediction_set(data_dir(), next_week, degree, lag_in_week)
        log_batches_input(x_pred, data_dir(), next_week - lag_in_week, next_week - 1)
        mlflow_log_pandas(x_pred, *catalog.X_PRED)


if __name__ == "__main__":
    future()
