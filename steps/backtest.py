"""backtest: the forecast replayed over many past weeks (rolling origin), on demand."""

from typing import Any

from foodcast.pipeline.command import stage_command
from foodcast.pipeline.stages.backtest import BACKTEST, backtest_batch_weeks


@stage_command(BACKTEST)
def backtest(
    first_week: int,
    last_week: int,
    window_weeks: int,
    granularity: str,
    closed_weeks: int,
    restaurant_model: str,
    allow_missing: bool,
    **settings: Any,
) -> None:
    """For each target week from FIRST_WEEK to LAST_WEEK, do what a weekly run would: load the
    WINDOW_WEEKS weeks before it from the batches (FOODCAST_DATA_DIR, default data/), build the
    features, fit the multi-model, forecast the week; score it next to seasonal naive and the
    4-week same-hour mean, and the interval's coverage and width. Weeks run in parallel on every
    core; a line per week as it ends. Logs metrics mae_model, mae_naive, mae_mean4, coverage,
    coverage_open (the coverage of the hours that can trade) and width with step = target week,
    their means over the weeks (mean_mae_model, ...), the summary ratio_naive, ratio_mean4,
    share_weeks_beating_naive, backtest/weeks.csv (week, mae_model, mae_naive, mae_mean4,
    coverage, width, coverage_open) and plots/backtest.html (and its PNG). Not a stage of main.

    With GRANULARITY restaurant, each week is a weekly run of restaurants (CLOSED_WEEKS,
    RESTAURANT_MODEL; FOODCAST_WORKERS processes): every restaurant and the chain's total scored.
    The weekly metrics and the plot are the chain's total's; backtest/weeks.csv has a row per
    restaurant (and the chain) per week (week, restaurant, established, fallback, the MAEs,
    coverage, width, coverage_open); metrics/per_restaurant.csv one per established restaurant
    (every week of the window, no fallback hour: its means over weeks, ratio_naive, ratio_mean4,
    n_weeks); the summary metrics are the median and worst established restaurant
    (ratio_naive_median, ratio_naive_worst, ratio_mean4_*, coverage_*, coverage_open_*), the
    fallback rows apart (fallback_*) and the chain (chain_*)."""
    import time

    import click
    import mlflow

    from foodcast.core.backtest import backtest as replay
    from foodcast.pipeline.params import feature_settings, model_settings
    from foodcast.settings import data_dir
    from foodcast.tracking import names
    from foodcast.tracking.artifacts import mlflow_log_pandas, mlflow_log_plotly
    from foodcast.tracking.datasets import read_logged_batches
    from foodcast.tracking.metrics import log_step_metrics
    from foodcast.tracking.plots import plotly_backtest

    features, model = feature_settings(settings), model_settings(settings)
    weeks = backtest_batch_weeks(
        {"first_week": first_week, "last_week": last_week, "window_weeks": window_weeks, **features}
    )
    if granularity == "restaurant":
        backtest_per_restaurant(
            first_week, last_week, window_weeks, closed_weeks, restaurant_model, allow_missing, weeks, settings
        )
        return
    hourly, _ = read_logged_batches(data_dir(), *weeks, allow_missing)
    started = time.perf_counter()

    def progress(done: int, total: int, row: dict[str, Any]) -> None:
        click.echo(
            f"backtest: week {row['week']} ({done}/{total}): MAE model {row['mae_model']:.2f}, "
            f"naive {row['mae_naive']:.2f}, 4-week mean {row['mae_mean4']:.2f}, "
            f"coverage {100 * row['coverage']:.0f} %"
        )

    result = replay(hourly, first_week, last_week, window_weeks, features, model, progress=progress)
    log_step_metrics(result.weeks, step="week")
    # The means over weeks of the weekly metrics are named mean_<metric>: not another step of them.
    weekly = set(result.weeks.columns)
    mlflow.log_metrics(
        {(f"mean_{k}" if k in weekly else k): v for k, v in result.summary.items()}
        | {"seconds": time.perf_counter() - started}
    )
    mlflow_log_pandas(result.weeks, *names.BACKTEST_WEEKS)
    mlflow_log_plotly(plotly_backtest(result.weeks, model["interval_level"]), *names.BACKTEST_PLOT)
    s = result.summary
    click.echo(
        f"backtest: {s['n_weeks']} weeks in {time.perf_counter() - started:.0f}s: model / seasonal naive "
        f"{s['ratio_naive']:.3f}, model / 4-week mean {s['ratio_mean4']:.3f}, model better than naive in "
        f"{100 * s['share_weeks_beating_naive']:.0f} % of weeks, coverage {100 * s['coverage']:.1f} % "
        f"({100 * s['coverage_open']:.1f} % of the open hours; mean width {s['width']:.1f})"
    )


def backtest_per_restaurant(
    first_week: int,
    last_week: int,
    window_weeks: int,
    closed_weeks: int,
    kind: str,
    allow_missing: bool,
    weeks: tuple[int, int],
    settings: dict[str, Any],
) -> None:
    """The backtest of a forecast per restaurant (see backtest's help)."""
    import time

    import click
    import mlflow
    import pandas as pd

    from foodcast.core.restaurant_backtest import backtest_restaurants
    from foodcast.core.restaurants import CHAIN, RESTAURANT
    from foodcast.pipeline.params import feature_settings, model_settings
    from foodcast.settings import data_dir, workers
    from foodcast.tracking import names
    from foodcast.tracking.artifacts import mlflow_log_pandas, mlflow_log_plotly
    from foodcast.tracking.datasets import read_logged_batches
    from foodcast.tracking.metrics import log_step_metrics
    from foodcast.tracking.plots import plotly_backtest

    features, model = feature_settings(settings), model_settings(settings)
    hourly, _ = read_logged_batches(data_dir(), *weeks, allow_missing, granularity="restaurant")
    started = time.perf_counter()

    def progress(done: int, total: int, rows: pd.DataFrame) -> None:
        chain = rows[rows[RESTAURANT] == CHAIN]
        ratios = (rows["mae_model"] / rows["mae_naive"])[rows[RESTAURANT] != CHAIN]
        figures = [f"{len(ratios)} restaurants scored"]
        if len(chain):
            row = chain.iloc[0]
            figures.insert(0, f"chain MAE {row['mae_model']:.2f} (naive {row['mae_naive']:.2f})")
        if len(ratios):
            figures.append(f"median restaurant / naive {ratios.median():.3f}")
        click.echo(f"backtest: week {int(rows['week'].iloc[0])} ({done}/{total}): {', '.join(figures)}")

    result = backtest_restaurants(
        hourly,
        first_week,
        last_week,
        window_weeks,
        features,
        model,
        kind=kind,
        closed_weeks=closed_weeks,
        workers=workers(),
        progress=progress,
    )
    for note in result.notes:
        click.echo(f"backtest: {note}", err=True)
    chain = result.weeks[result.weeks[RESTAURANT] == CHAIN].drop(columns=[RESTAURANT, "established", "fallback"])
    log_step_metrics(chain, step="week")
    mlflow.log_metrics(
        {k: float(v) for k, v in result.summary.items() if pd.notna(v)} | {"seconds": time.perf_counter() - started}
    )
    mlflow_log_pandas(result.weeks, *names.BACKTEST_WEEKS)
    mlflow_log_pandas(result.restaurants.reset_index(), *names.PER_RESTAURANT)
    mlflow_log_plotly(plotly_backtest(chain, model["interval_level"]), *names.BACKTEST_PLOT)
    s = result.summary
    click.echo(
        f"backtest: {last_week - first_week + 1} weeks of restaurants in {time.perf_counter() - started:.0f}s: "
        f"{s['n_established']} established restaurants, model / seasonal naive median {s['ratio_naive_median']:.3f} "
        f"(worst {s['ratio_naive_worst']:.3f}), coverage median {100 * s['coverage_median']:.1f} % "
        f"(worst {100 * s['coverage_worst']:.1f} %); the chain's total: model / seasonal naive "
        f"{s['chain_ratio_naive']:.3f}, coverage {100 * s['chain_coverage']:.1f} %"
    )


if __name__ == "__main__":
    backtest()
