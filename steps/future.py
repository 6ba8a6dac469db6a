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
    fails the stage unless ALLOW_MISSING (recorded in the tag foodcast.coverage). With
    GRANULARITY restaurant: the rows of every restaurant, then of the chain's total (restaurant
    chain), with restaurant and fallback columns, computed on FOODCAST_WORKERS processes; a
    restaurant without orders in the CLOSED_WEEKS weeks before NEXT_WEEK (or with fewer than 2
    complete weeks) is left out, each one said in a line on stderr and in the tag
    foodcast.left_out (one line each)."""
    import click
    import mlflow

    from foodcast.core import restaurants
    from foodcast.core.forecast import week_rows
    from foodcast.pipeline.params import feature_settings
    from foodcast.settings import data_dir, workers
    from foodcast.tracking import names
    from foodcast.tracking.artifacts import mlflow_log_pandas
    from foodcast.tracking.datasets import read_logged_batches

    features = feature_settings(settings)
    options = {"next_week": next_week, **features, "granularity": granularity, "closed_weeks": closed_weeks}
    first, last = future_weeks(options)
    past, coverage = read_logged_batches(data_dir(), first, last, allow_missing, granularity)
    if granularity != "restaurant":
        mlflow_log_pandas(week_rows(past, next_week, **features), *names.X_PRED)
        return
    x_pred, notes = restaurants.prediction_rows(past, next_week, closed_weeks, workers(), **features)
    notes += [  # closed before the weeks read: in none of them
        f"restaurant {name}: no orders since week {week} ({next_week - 1 - week} weeks before week {next_week}): "
        "not forecast"
        for name, week in coverage.ended_before(first)
    ]
    notes.sort()
    for note in notes:
        click.echo(note, err=True)
    if notes:
        mlflow.set_tags(
            {names.LEFT_OUT_TAG: "\n".join(notes)[:5000], names.SUMMARY_TAG: ("Left out: " + "; ".join(notes))[:2000]}
        )
    mlflow.log_metrics({"n_restaurants": x_pred[restaurants.RESTAURANT].nunique() - 1, "n_left_out": len(notes)})
    mlflow_log_pandas(x_pred, *names.X_PRED)


if __name__ == "__main__":
    future()
