"""evaluate: the weekly scorecard, a forecast against the cash-in its week brought."""

from foodcast.application import stages
from foodcast.application.command import stage_command


@stage_command(stages.EVALUATE)
def evaluate(predict_run_id, allow_missing):
    """Score the forecast of the predict run PREDICT_RUN_ID (predictions/y_pred.csv, through
    MLflow) once the batches of its week are in the data directory (FOODCAST_DATA_DIR, default
    data/): hourly MAE of the point forecast, of seasonal naive (the same hour a week earlier)
    and of the mean of the same hour over the 4 weeks before, read from the batches too, and
    with an interval its coverage and mean width. Logs them as metrics (mae_model, mae_naive,
    mae_mean4, model_over_naive, model_over_mean4, coverage, width),
    evaluation/forecast_vs_actual.csv and plots/evaluation.html. Refuses, in one line, a
    forecast whose week has no data yet; an incomplete week unless ALLOW_MISSING."""
    import mlflow

    from foodcast.application import catalog
    from foodcast.application.datasets import coverage_notes, log_batches_input, log_input_frame
    from foodcast.application.mlflow_utils import mlflow_log_pandas, mlflow_log_plotly
    from foodcast.application.upstream import check_run, forecast_week, read_frame
    from foodcast.domain.forecast import plotly_predictions
    from foodcast.domain.scoring import score_week, split_actuals
    from foodcast.domain.transform import read_chain
    from foodcast.settings import data_dir

    week = forecast_week(check_run(predict_run_id, catalog.PREDICT))
    mlflow.set_tag(catalog.WEEK_TAG, week)
    preds = read_frame(predict_run_id, catalog.Y_PRED, catalog.PREDICT)
    log_input_frame(preds, predict_run_id, catalog.Y_PRED, context="evaluation", stage=catalog.PREDICT)
    hourly, coverage = read_chain(data_dir(), max(1, week - 4), week, allow_missing=allow_missing)
    mlflow.set_tag("foodcast.coverage", coverage.summary())
    truth, history = split_actuals(hourly, week, data_dir())
    log_batches_input(hourly, data_dir(), max(1, week - 4), week, notes=coverage_notes(coverage, allow_missing))
    metrics, table = score_week(preds.set_index("order_date"), truth, history)
    mlflow.log_metrics(metrics)
    mlflow_log_pandas(table, *catalog.EVALUATION)
    mlflow_log_plotly(plotly_predictions(preds.set_index("order_date"), truth), *catalog.EVALUATION_PLOT)


if __name__ == "__main__":
    evaluate()
