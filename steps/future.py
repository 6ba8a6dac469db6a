"""future: online feature engineering for the week to forecast."""

from typing import Any

from foodcast.pipeline.command import stage_command
from foodcast.pipeline.stages.future import FUTURE, future_weeks


@stage_command(FUTURE)
def future(next_week: int, allow_missing: bool, granularity: str, closed_weeks: int, **settings: Any) -> None:
    """Build the prediction set of week NEXT_WEEK: its 168 hours with the same features as
    training, the lags, the level and the profile read from the batches of the weeks before
    NEXT_WEEK in the data directory (FOODCAST_DATA_DIR, default data/). Logs
    prediction_set/x_pred.csv. Week 1 starts Monday 2014-12-29. An incomplete week among those
    fails the stage unless ALLOW_MISSING (recorded in the tag foodcast.coverage)."""
    from foodcast.core.forecast import week_rows
    from foodcast.errors import FoodcastError
    from foodcast.pipeline.params import feature_settings
    from foodcast.settings import data_dir
    from foodcast.tracking import names
    from foodcast.tracking.artifacts import mlflow_log_pandas
    from foodcast.tracking.datasets import read_logged_batches

    if granularity != "chain":
        raise FoodcastError("granularity=restaurant: future does not read restaurants yet")
    features = feature_settings(settings)
    first, last = future_weeks({"next_week": next_week, **features})
    past, _ = read_logged_batches(data_dir(), first, last, allow_missing)
    mlflow_log_pandas(week_rows(past, next_week, **features), *names.X_PRED)


if __name__ == "__main__":
    future()
