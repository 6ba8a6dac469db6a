"""backtest: the forecast replayed over many past weeks (rolling origin), on demand."""

from typing import Any

from foodcast.pipeline.command import stage_command
from foodcast.pipeline.stages.backtest import BACKTEST, backtest_batch_weeks


@stage_command(BACKTEST)
def backtest(first_week: int, last_week: int, window_weeks: int, allow_missing: bool, **settings: Any) -> None:
    """For each target week from FIRST_WEEK to LAST_WEEK, do what a weekly run would: load the
    WINDOW_WEEKS weeks before it from the batches (FOODCAST_DATA_DIR, default data/), build the
    features, fit the multi-model, forecast the week; score it next to seasonal naive and the
    4-week same-hour mean, and the interval's coverage and width. Weeks run in parallel on every
    core; a line per week as it ends. Logs metrics mae_model, mae_naive, mae_mean4, coverage,
    coverage_open (the coverage of the hours that can trade) and width with step = target week,
    their means over the weeks (mean_mae_model, ...), the summary ratio_naive, ratio_mean4,
    share_weeks_beating_naive, backtest/weeks.csv (week, mae_model, mae_naive, mae_mean4,
    coverage, width, coverage_open) and plots/backtest.html (and its PNG). With GRANULARITY
    restaurant, every restaurant's forecast (RESTAURANT_MODEL, those without orders in the
    CLOSED_WEEKS weeks before a target week left out) is scored too, against its own cash-in:
    the weekly metrics and backtest/weeks.csv are then the chain's total's (the sum of the
    restaurants'), backtest/restaurant_weeks.csv has one row per restaurant and week,
    metrics/per_restaurant.csv one per restaurant (status new or established, weeks, MAEs,
    ratio_naive, ratio_mean4, coverage), and the metrics median_restaurant_ratio_naive /
    worst_restaurant_ratio_naive, *_restaurant_ratio_mean4, *_restaurant_coverage (over the
    established restaurants)
    and restaurants, restaurants_new. Weeks run on FOODCAST_WORKERS processes (default: every
    core). Not a stage of main."""
    import time

    import click
    import mlflow

    from foodcast.core.backtest import backtest as replay
    from foodcast.core.per_restaurant import backtest_restaurants
    from foodcast.pipeline import params as p
    from foodcast.pipeline.params import feature_settings, model_settings
    from foodcast.settings import data_dir, workers
    from foodcast.tracking import names
    from foodcast.tracking.artifacts import mlflow_log_pandas, mlflow_log_plotly
    from foodcast.tracking.datasets import read_logged_batches
    from foodcast.tracking.metrics import log_step_metrics
    from foodcast.tracking.plots import plotly_backtest

    features, model = feature_settings(settings), model_settings(settings)
    granularity, closed_weeks = settings[p.GRANULARITY.name], settings[p.CLOSED_WEEKS.name]
    weeks = backtest_batch_weeks(
        {
            "first_week": first_week,
            "last_week": last_week,
            "window_weeks": window_weeks,
            p.GRANULARITY.name: granularity,
            p.CLOSED_WEEKS.name: closed_weeks,
            **features,
        }
    )
    hourly, _ = read_logged_batches(data_dir(), *weeks, allow_missing, granularity)
    started = time.perf_counter()

    def progress(done: int, total: int, row: dict[str, Any]) -> None:
        click.echo(
            f"backtest: week {row['week']} ({done}/{total}): MAE model {row['mae_model']:.2f}, "
            f"naive {row['mae_naive']:.2f}, 4-week mean {row['mae_mean4']:.2f}, "
            f"coverage {100 * row['coverage']:.0f} %"
        )

    if granularity == "restaurant":
        per = backtest_restaurants(
            hourly,
            first_week,
            last_week,
            window_weeks,
            features,
            model,
            kind=settings[p.RESTAURANT_MODEL.name],
            closed_weeks=closed_weeks,
            jobs=workers(),
            progress=progress,
        )
        for note in per.notes:
            click.echo(f"backtest: {note}", err=True)
        mlflow_log_pandas(per.restaurants, *names.PER_RESTAURANT)
        mlflow_log_pandas(per.restaurant_weeks, *names.BACKTEST_RESTAURANT_WEEKS)
        table, summary = per.weeks, per.summary
    else:
        chain = replay(hourly, first_week, last_week, window_weeks, features, model, jobs=workers(), progress=progress)
        table, summary = chain.weeks, chain.summary
    log_step_metrics(table, step="week")
    # The means over weeks of the weekly metrics are named mean_<metric>: not another step of them.
    weekly = set(table.columns)
    mlflow.log_metrics(
        {(f"mean_{k}" if k in weekly else k): v for k, v in summary.items()}
        | {"seconds": time.perf_counter() - started}
    )
    mlflow_log_pandas(table, *names.BACKTEST_WEEKS)
    mlflow_log_plotly(plotly_backtest(table, model["interval_level"]), *names.BACKTEST_PLOT)
    s = summary
    click.echo(
        f"backtest: {s['n_weeks']} weeks in {time.perf_counter() - started:.0f}s: model / seasonal naive "
        f"{s['ratio_naive']:.3f}, model / 4-week mean {s['ratio_mean4']:.3f}, model better than naive in "
        f"{100 * s['share_weeks_beating_naive']:.0f} % of weeks, coverage {100 * s['coverage']:.1f} % "
        f"({100 * s['coverage_open']:.1f} % of the open hours; mean width {s['width']:.1f})"
        + (" for the chain's total" if granularity == "restaurant" else "")
    )
    if granularity == "restaurant":
        click.echo(
            f"backtest: {s['restaurants'] - s['restaurants_new']:.0f} established restaurants, model / seasonal "
            f"naive median {s['median_restaurant_ratio_naive']:.3f}, worst {s['worst_restaurant_ratio_naive']:.3f}; "
            f"model / 4-week mean median {s['median_restaurant_ratio_mean4']:.3f}, worst "
            f"{s['worst_restaurant_ratio_mean4']:.3f}; coverage median "
            f"{100 * s['median_restaurant_coverage']:.1f} %, worst {100 * s['worst_restaurant_coverage']:.1f} % "
            f"({s['restaurants_new']:.0f} new restaurants apart)"
        )


if __name__ == "__main__":
    backtest()
