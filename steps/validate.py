"""validate: chronological cross-validation of the model on a features run's training set."""

from foodcast.application import stages
from foodcast.application.command import stage_command


@stage_command(stages.VALIDATE)
def validate(features_run_id, n_fold, **model):
    """Read training_set/x_train.csv and y_train.csv from the features run FEATURES_RUN_ID,
    cross-validate the multi-model (ESTIMATOR with its parameters, N_MODELS bootstrap members, an
    interval at INTERVAL_LEVEL) with a TimeSeriesSplit of N_FOLD folds, and log
    cross_validation/predictions.csv (out-of-fold predictions), plots/validation.html, and
    metrics: MAE_MIN / MAE_MAX (best and worst member) and MAE{j} per member j with step = fold,
    MAE_SIMPLE (the point forecast) per fold, and their means over folds (MAE_SIMPLE_MEAN,
    MAE_MIN_MEAN, MAE_MAX_MEAN)."""
    from foodcast.application import catalog
    from foodcast.application.metrics import log_validation_metrics
    from foodcast.application.mlflow_utils import mlflow_log_pandas, mlflow_log_plotly
    from foodcast.application.upstream import training_set
    from foodcast.domain.estimators import forecast_model
    from foodcast.domain.forecast import cross_validate, plotly_predictions

    x, y = training_set(features_run_id)
    maes, preds = cross_validate(forecast_model(**stages.model_settings(model)), x, y, n_fold=n_fold)
    mlflow_log_pandas(preds.rename_axis("order_date").reset_index(), *catalog.CV_PREDICTIONS)
    mlflow_log_plotly(plotly_predictions(preds, y.loc[preds.index]), *catalog.VALIDATION_PLOT)
    log_validation_metrics(maes, preds, y)


if __name__ == "__main__":
    validate()
