"""main: run the foodcast pipeline, reusing every finished stage whose inputs have not changed.

The stages form a small DAG: load -> features -> {validate, train}; future (independent of
load); {train, future} -> predict. Each stage is either reused (a FINISHED run with the same
cache key and its outputs still stored) or launched with ``mlflow.run(..., env_manager="local")``
nested under this run. Independent stages run concurrently, and their commands hand their work
to a server of pre-imported libraries that forks for each (foodcast.application.prefork).
"""

import click

YES = {"true", "1", "yes", "y", "on"}
NO = {"false", "0", "no", "n", "off"}


@click.command(help="""Run the whole foodcast pipeline (load, features, validate, train, future,
predict) as child runs of one MLflow run, training on weeks START_WEEK..END_WEEK and forecasting
week NEXT_WEEK (0 = END_WEEK + 1). Week 1 starts Monday 2014-12-29. A stage whose cache key
(entry point, parameters, source code, batch files read, upstream run ids) matches a FINISHED
run whose outputs are still stored is reused instead of recomputed, unless --use-cache false.
Prints one line per stage (reused or launched, run id) and logs lineage.json on this run.

\b
Environment:
  FOODCAST_DATA_DIR      batch directory (default: data/ in the project)
  FOODCAST_MAX_PARALLEL  stages run at once (default: the number of cores)
  FOODCAST_PREFORK=0     start each launched stage in a fresh interpreter instead of
                         forking it from main's server of pre-imported libraries""")
@click.option("--start-week", type=int, default=180, show_default=True, help="First training week.")
@click.option("--end-week", type=int, default=200, show_default=True, help="Last training week (inclusive).")
@click.option("--next-week", type=int, default=0, show_default=True,
              help="Week to forecast, after END_WEEK; 0 means END_WEEK + 1.")
@click.option("--n-fold", type=int, default=10, show_default=True, help="Cross-validation folds (>= 2).")
@click.option("--n-estimators", type=int, default=10, show_default=True, help="Trees per random forest.")
@click.option("--n-models", type=int, default=10, show_default=True, help="Bootstrap members of the multi-model.")
@click.option("--degree", type=int, default=1, show_default=True, help="Hour-of-day harmonics.")
@click.option("--lag-in-week", type=int, default=1, show_default=True, help="Weekly lags.")
@click.option("--use-cache", default="true", show_default=True,
              help="true: reuse finished stages whose inputs have not changed; false: launch all.")
def main(**options):
    from foodcast.errors import FoodcastError

    try:
        options = check_options(options)
        from foodcast.application.access import check_tracking_access; check_tracking_access()  # noqa: E702
    except FoodcastError as exc:
        raise click.ClickException(str(exc)) from None
    from foodcast.application.pipeline import run_pipeline

    run_pipeline(options)


def check_options(options: dict) -> dict:
    """Refuse bad parameters before anything is launched; resolve ``next_week`` and ``use_cache``."""
    from foodcast.domain.transform import check_week_range
    from foodcast.domain.weeks import describe_weeks
    from foodcast.errors import FoodcastError
    from foodcast.infrastructure.batches import available_weeks
    from foodcast.settings import data_dir

    options = dict(options)
    start, end = options["start_week"], options["end_week"]
    check_week_range(start, end)
    if options["next_week"] == 0:
        options["next_week"] = end + 1
    if options["next_week"] <= end:
        raise FoodcastError(f"next_week {options['next_week']} must come after end_week {end}")
    for name, low in (("n_fold", 2), ("n_estimators", 1), ("n_models", 1), ("degree", 1), ("lag_in_week", 1)):
        if options[name] < low:
            raise FoodcastError(f"{name} must be >= {low}, got {options[name]}")
    flag = str(options["use_cache"]).strip().lower()
    if flag not in YES | NO:
        raise FoodcastError(f"use_cache must be true or false, got {options['use_cache']!r}")
    options["use_cache"] = flag in YES
    held = set(available_weeks(data_dir()))
    if not held & set(range(start, end + 1)):
        raise FoodcastError(f"no data for weeks {start}-{end} in {data_dir()}; it holds weeks {describe_weeks(held)}")
    needed = set(range(options["next_week"] - options["lag_in_week"], options["next_week"]))
    if needed - held:
        raise FoodcastError(
            f"forecasting week {options['next_week']} with lag_in_week={options['lag_in_week']} needs "
            f"weeks {describe_weeks(needed)}, but {data_dir()} lacks {describe_weeks(needed - held)}"
        )
    return options


if __name__ == "__main__":
    main()
