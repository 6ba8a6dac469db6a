"""predict: forecast the week a future run prepared, with a trained or a registered model."""

from foodcast.pipeline.command import stage_command
from foodcast.pipeline.stages.predict import PREDICT


@stage_command(PREDICT)
def predict(future_run_id: str, train_run_id: str, model_uri: str, engine: str) -> None:
    """Forecast the week of the future run FUTURE_RUN_ID (its prediction_set/x_pred.csv, through
    MLflow) with the multi_model of the train run TRAIN_RUN_ID (runs:/<id>/multi_model) or the
    registered model MODEL_URI (e.g. models:/foodcast@champion): exactly one of the two. Logs
    predictions/y_pred.csv (order_date, y_pred_0..y_pred_{n-1}, y_pred_simple, y_pred, y_lower,
    y_upper), plots/predictions.html and its PNG; tags the run with the week (foodcast.week) and
    records the LoggedModel it used as an input of the run.

    A prediction set per restaurant (granularity=restaurant) needs a model trained per
    restaurant: y_pred.csv is then one long table (restaurant, order_date, fallback and the
    columns above), every restaurant forecast and the chain's total as the rows named chain
    (the sum of its restaurants', hour by hour, to the cent as written); the plot's dropdown
    picks a restaurant, the chain first (the PNG shows the chain). With ENGINE spark, that long
    prediction set is scored on Spark by mlflow.pyfunc.spark_udf of the model, whole hours to a
    batch (the same y_pred.csv)."""
    import mlflow

    from foodcast.core.restaurant_forecasts import to_cents_coherent
    from foodcast.core.restaurants import RESTAURANT
    from foodcast.tracking import names
    from foodcast.tracking.artifacts import mlflow_log_pandas, mlflow_log_plotly, read_frame
    from foodcast.tracking.datasets import log_input_frame
    from foodcast.tracking.models import load_predictor, resolve_model
    from foodcast.tracking.plot_files import png_painter
    from foodcast.tracking.plots import forecast_title, plotly_predictions, plotly_restaurant_predictions
    from foodcast.tracking.runs import check_run

    painter = png_painter()  # its Chromium boots while the model loads and predicts
    future = check_run(future_run_id, names.FUTURE)
    week = future.data.params["next_week"]
    mlflow.set_tag(names.WEEK_TAG, week)
    train = check_run(train_run_id, names.TRAIN) if train_run_id else None
    uri, model = resolve_model(train, model_uri)
    predict_with_model = load_predictor(uri, model, f"train run {train_run_id}" if train else model_uri)
    x_pred = read_frame(future_run_id, names.X_PRED, names.FUTURE)
    log_input_frame(x_pred, future_run_id, names.X_PRED, context="prediction", stage=names.FUTURE)
    if RESTAURANT in x_pred.columns and engine == "spark":  # scored by the model's spark_udf
        from foodcast.spark.score import score_on_spark

        y_pred = score_on_spark(uri, x_pred)
        figure = plotly_restaurant_predictions(y_pred, title=forecast_title(week))
        mlflow_log_pandas(to_cents_coherent(y_pred), *names.Y_PRED)
    elif RESTAURANT in x_pred.columns:  # long: the model takes order_date with each row
        y_pred = predict_with_model(x_pred)
        mlflow_log_pandas(to_cents_coherent(y_pred), *names.Y_PRED)
        figure = plotly_restaurant_predictions(y_pred, title=forecast_title(week))
    else:
        y_pred = predict_with_model(x_pred.set_index("order_date"))
        mlflow_log_pandas(y_pred.reset_index(), *names.Y_PRED)
        figure = plotly_predictions(y_pred, title=forecast_title(week))
    mlflow_log_plotly(figure, *names.PREDICTIONS_PLOT, painter)


if __name__ == "__main__":
    predict()
