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
    (granularity=restaurant): the restaurant model (RESTAURANT_MODEL, its fits on
    FOODCAST_WORKERS processes) is cross-validated on N_FOLD folds of whole weeks (every row of
    a week in the same fold); predictions.csv has every row (restaurant, fallback, actual), the
    metrics above are the chain's total's (restaurant chain), metrics/per_restaurant.csv has a
    row per restaurant (status new or established, rows, fallback_rows, mae, mean_cash_in,
    scaled_mae = mae / mean_cash_in, coverage, coverage_open), and the metrics
    median_restaurant_scaled_mae / worst_restaurant_scaled_mae, *_restaurant_coverage (over the established
    restaurants), restaurants and restaurants_new."""
    import click
    import mlflow

    from foodcast.core import per_restaurant, restaurants
    from foodcast.core.columns import member_columns
    from foodcast.core.forecast import cross_validate, fold_maes
    from foodcast.core.multi_model import forecast_model
    from foodcast.pipeline.params import RESTAURANT_MODEL, model_settings
    from foodcast.settings import workers
    from foodcast.tracking import names
    from foodcast.tracking.artifacts import mlflow_log_pandas, mlflow_log_plotly
    from foodcast.tracking.datasets import training_set
    from foodcast.tracking.metrics import log_validation_metrics
    from foodcast.tracking.plot_files import png_painter
    from foodcast.tracking.plots import plotly_predictions, validation_title

    painter = png_painter()  # its Chromium boots while the folds are fitted
    x, y = training_set(features_run_id)
    if restaurants.RESTAURANT in x.columns:
        estimator = restaurants.RestaurantModel(model_settings(model), model[RESTAURANT_MODEL.name], workers())
        every, notes = per_restaurant.cross_validate_restaurants(estimator, x, y, n_fold)
        for note in notes:
            click.echo(f"validate: {note}", err=True)
        mlflow_log_pandas(every.rename_axis("order_date").reset_index(), *names.CV_PREDICTIONS)
        table = per_restaurant.validation_table(every)
        mlflow_log_pandas(table, *names.PER_RESTAURANT)
        mlflow.log_metrics(per_restaurant.validation_summary(table))
        preds, y = per_restaurant.chain_predictions(every)
        maes = fold_maes(preds, y)[member_columns(preds)].to_numpy()
    else:
        maes, preds = cross_validate(forecast_model(**model_settings(model)), x, y, n_fold=n_fold)
        mlflow_log_pandas(preds.rename_axis("order_date").reset_index(), *names.CV_PREDICTIONS)
    headline = log_validation_metrics(maes, preds, y)
    title = validation_title(n_fold, headline["MAE_SIMPLE_MEAN"])
    mlflow_log_plotly(plotly_predictions(preds, y.loc[preds.index], title), *names.VALIDATION_PLOT, painter)


if __name__ == "__main__":
    validate()
