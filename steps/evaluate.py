"""evaluate: the weekly scorecard, a forecast against the cash-in its week brought."""

from foodcast.pipeline.command import stage_command
from foodcast.pipeline.stages.evaluate import EVALUATE


@stage_command(EVALUATE)
def evaluate(predict_run_id: str, allow_missing: bool) -> None:
    """Score the forecast of the predict run PREDICT_RUN_ID (predictions/y_pred.csv, through
    MLflow) once the batches of its week are in the data directory (FOODCAST_DATA_DIR, default
    data/): hourly MAE of the point forecast, of seasonal naive (the same hour a week earlier)
    and of the mean of the same hour over the 4 weeks before, read from the batches too, and
    with an interval its coverage and mean width. Logs them as metrics (mae_model, mae_naive,
    mae_mean4, model_over_naive, model_over_mean4, coverage, width),
    evaluation/forecast_vs_actual.csv and plots/evaluation.html (and its PNG), titled with them.
    Refuses, in one line, a forecast whose week has no data yet; an incomplete week unless
    ALLOW_MISSING.

    A forecast per restaurant (predict's long table) is scored per restaurant, each on its own
    batches, the chain on their sum: metrics/per_restaurant.csv (one row per restaurant, the
    chain first: fallback, the figures above, a note when a restaurant could not be scored);
    the run's metrics are the chain's (the names above) and, over the established restaurants
    scored (no fallback hour), median_restaurant_* and worst_restaurant_* of model_over_naive,
    model_over_mean4 (worst: highest) and coverage (worst: lowest), and restaurants_scored,
    fallback_restaurants_scored. forecast_vs_actual.csv is long (a restaurant column first);
    the plot's dropdown picks a restaurant, the chain first."""
    import mlflow

    from foodcast.core.restaurant_scoring import restaurant_scorecard
    from foodcast.core.restaurants import RESTAURANT
    from foodcast.core.scoring import score_week, split_actuals
    from foodcast.core.windows import scored_weeks
    from foodcast.settings import data_dir
    from foodcast.tracking import names
    from foodcast.tracking.artifacts import mlflow_log_pandas, mlflow_log_plotly, read_frame
    from foodcast.tracking.datasets import log_input_frame, read_logged_batches
    from foodcast.tracking.plot_files import png_painter
    from foodcast.tracking.plots import forecast_title, plotly_predictions, plotly_restaurant_predictions
    from foodcast.tracking.runs import check_run, forecast_week

    painter = png_painter()  # its Chromium boots while the batches are read and scored
    week = forecast_week(check_run(predict_run_id, names.PREDICT))
    mlflow.set_tag(names.WEEK_TAG, week)
    preds = read_frame(predict_run_id, names.Y_PRED, names.PREDICT)
    log_input_frame(preds, predict_run_id, names.Y_PRED, context="evaluation", stage=names.PREDICT)
    if RESTAURANT in preds.columns:  # a forecast per restaurant
        hourly, _ = read_logged_batches(data_dir(), *scored_weeks(week), allow_missing, granularity="restaurant")
        metrics, table, per_restaurant = restaurant_scorecard(preds, hourly, week)
        mlflow.log_metrics(metrics)
        mlflow_log_pandas(table, *names.EVALUATION)
        mlflow_log_pandas(per_restaurant, *names.PER_RESTAURANT)
        actuals = table[[RESTAURANT, "order_date", "actual"]].rename(columns={"actual": "cash_in"})
        figure = plotly_restaurant_predictions(preds, actuals, forecast_title(week, metrics))
    else:
        preds = preds.set_index("order_date")
        hourly, _ = read_logged_batches(data_dir(), *scored_weeks(week), allow_missing)
        truth, history = split_actuals(hourly, week, data_dir())
        metrics, table = score_week(preds, truth, history)
        mlflow.log_metrics(metrics)
        mlflow_log_pandas(table, *names.EVALUATION)
        figure = plotly_predictions(preds, truth, forecast_title(week, metrics))
    mlflow_log_plotly(figure, *names.EVALUATION_PLOT, painter)


if __name__ == "__main__":
    evaluate()
