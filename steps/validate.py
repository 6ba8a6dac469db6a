"""validate: chronological cross-validation of the model on a features run's training set."""

from typing import Any

from foodcast.pipeline.command import stage_command
from foodcast.pipeline.stages.validate import VALIDATE


@stage_command(VALIDATE)
def validate(features_run_id: str, n_fold: int, **model: Any) -> None:
    """Read training_set/x_train.csv and y_train.csv from the features run FEATURES_RUN_ID,
    cross-validate the multi-model (ESTIMATOR with its parameters, N_MODELS bootstrap members, an
    interval at INTERVAL_LEVEL) with a TimeSeriesSplit of N_FOLD folds, and log
    cross_validation/predictions.csv (out-of-fold predictions), plots/validation.html (and its
    PNG), and metrics: MAE_MIN / MAE_MAX (best and worst member) and MAE{j} per member j with
    step = fold, MAE_SIMPLE (the point forecast) per fold, and their means over folds
    (MAE_SIMPLE_MEAN, MAE_MIN_MEAN, MAE_MAX_MEAN). A features run of restaurants
    (granularity=restaurant): the restaurant model (RESTAURANT_MODEL, fitted on FOODCAST_WORKERS
    processes) in folds of hours, each predicting every restaurant and the chain from the hours
    before it; the predictions file is long (restaurant first, with cash_in), metrics/per_restaurant.csv
    has the MAE of y_pred per fold and restaurant, the metrics and the plot are the chain's rows',
    with the median and worst established restaurant (no fallback row predicted) over their
    out-of-fold rows: median_restaurant_scaled_mae / worst_restaurant_scaled_mae (MAE over the
    restaurant's mean cash-in), median_restaurant_coverage / worst_restaurant_coverage (and
    _coverage_open), restaurants and restaurants_new."""
    import mlflow

    from foodcast.core.forecast import cross_validate
    from foodcast.core.multi_model import forecast_model
    from foodcast.core.restaurant_validation import cross_validate_restaurants, validation_summary, validation_table
    from foodcast.core.restaurants import CHAIN, FALLBACK, RESTAURANT, RestaurantModel
    from foodcast.pipeline.params import model_settings
    from foodcast.settings import workers
    from foodcast.tracking import names
    from foodcast.tracking.artifacts import mlflow_log_pandas, mlflow_log_plotly
    from foodcast.tracking.datasets import training_set
    from foodcast.tracking.metrics import log_validation_metrics
    from foodcast.tracking.plot_files import png_painter
    from foodcast.tracking.plots import plotly_predictions, validation_title

    painter = png_painter()  # its Chromium boots while the folds are fitted
    x, y = training_set(features_run_id)
    if RESTAURANT in x.columns:
        estimator = RestaurantModel(model=model_settings(model), kind=model["restaurant_model"], workers=workers())
        maes, long, per_restaurant = cross_validate_restaurants(estimator, x, y, n_fold=n_fold)
        table = long.rename_axis("order_date").reset_index()
        mlflow_log_pandas(table[[RESTAURANT, *table.columns.drop(RESTAURANT)]], *names.CV_PREDICTIONS)
        mlflow_log_pandas(per_restaurant, *names.PER_RESTAURANT)
        mlflow.log_metrics(validation_summary(validation_table(long)))
        chain = long[long[RESTAURANT] == CHAIN]
        preds, y = chain.drop(columns=[RESTAURANT, FALLBACK, "cash_in"]), chain["cash_in"]
    else:
        maes, preds = cross_validate(forecast_model(**model_settings(model)), x, y, n_fold=n_fold)
        mlflow_log_pandas(preds.rename_axis("order_date").reset_index(), *names.CV_PREDICTIONS)
    headline = log_validation_metrics(maes, preds, y)
    title = validation_title(n_fold, headline["MAE_SIMPLE_MEAN"])
    mlflow_log_plotly(plotly_predictions(preds, y.loc[preds.index], title), *names.VALIDATION_PLOT, painter)


if __name__ == "__main__":
    validate()
