"""predict: forecast the week a future run prepared, with a trained or a registered model."""

from foodcast.application import stages
from foodcast.application.command import stage_command


@stage_command(stages.PREDICT)
def predict(future_run_id, train_run_id, model_uri):
    """Forecast the week of the future run FUTURE_RUN_ID (its prediction_set/x_pred.csv, through
    MLflow) with the multi_model of the train run TRAIN_RUN_ID (runs:/<id>/multi_model) or the
    registered model MODEL_URI (e.g. models:/foodcast@champion): exactly one of the two. Logs
    predictions/y_pred.csv (order_date, y_pred_0..y_pred_{n-1}, y_pred_simple, y_pred, y_lower,
    y_upper) and plots/predictions.html; tags the run with the week (foodcast.week) and records
    the LoggedModel it used as an input of the run."""
    import mlflow

    from foodcast.application import catalog
    from foodcast.application.datasets import log_input_frame
    from foodcast.application.mlflow_utils import mlflow_log_pandas, mlflow_log_plotly
    from foodcast.application.models import load_predictor, resolve_model
    from foodcast.application.upstream import check_run, read_frame
    from foodcast.domain.forecast import plotly_predictions

    future = check_run(future_run_id, catalog.FUTURE)
    mlflow.set_tag(catalog.WEEK_TAG, future.data.params["next_week"])
    train = check_run(train_run_id, catalog.TRAIN) if train_run_id else None
    uri, model = resolve_model(train, model_uri)
    predict_with_model = load_predictor(uri, model, f"train run {train_run_id}" if train else model_uri)
    x_pred = read_frame(future_run_id, catalog.X_PRED, catalog.FUTURE)
    log_input_frame(x_pred, future_run_id, catalog.X_PRED, context="prediction", stage=catalog.FUTURE)
    y_pred = predict_with_model(x_pred.set_index("order_date"))
    mlflow_log_pandas(y_pred.reset_index(), *catalog.Y_PRED)
    mlflow_log_plotly(plotly_predictions(y_pred), *catalog.PREDICTIONS_PLOT)


if __name__ == "__main__":
    predict()
