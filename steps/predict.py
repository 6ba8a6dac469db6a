"""predict: forecast the week a future run prepared with the model a train run logged."""

from foodcast.application import stages
from foodcast.application.command import stage_command


@stage_command(stages.PREDICT)
def predict(train_run_id, future_run_id):
    """Load the multi_model of the train run TRAIN_RUN_ID (runs:/<id>/multi_model) and
    prediction_set/x_pred.csv of the future run FUTURE_RUN_ID, both through MLflow, predict the
    week's hourly cash-in and log predictions/y_pred.csv (order_date, y_pred_0..y_pred_{n-1},
    y_pred_simple) and plots/predictions.html. The model is recorded as an input of the run."""
    from foodcast.application import catalog
    from foodcast.application.datasets import log_input_frame
    from foodcast.application.mlflow_utils import mlflow_log_pandas, mlflow_log_plotly
    from foodcast.application.models import multi_model_predictor
    from foodcast.application.upstream import check_run, read_frame
    from foodcast.domain.forecast import plotly_predictions

    import mlflow

    future = check_run(future_run_id, catalog.FUTURE)
    mlflow.set_tag(catalog.WEEK_TAG, future.data.params["next_week"])
    predict_with_model = multi_model_predictor(check_run(train_run_id, catalog.TRAIN))
    x_pred = read_frame(future_run_id, catalog.X_PRED, catalog.FUTURE)
    log_input_frame(x_pred, future_run_id, catalog.X_PRED, context="prediction", stage=catalog.FUTURE)
    y_pred = predict_with_model(x_pred.set_index("order_date"))
    mlflow_log_pandas(y_pred.reset_index(), *catalog.Y_PRED)
    mlflow_log_plotly(plotly_predictions(y_pred), *catalog.PREDICTIONS_PLOT)


if __name__ == "__main__":
    predict()
