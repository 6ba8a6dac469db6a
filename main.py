"""main: run the foodcast pipeline, reusing every finished stage whose inputs have not changed.

The stages and their DAG come from the stage registry (foodcast.application.stages): load ->
features -> {validate, train}; future; {train, future} -> predict. Each stage is either reused
(a FINISHED run with the same cache key whose outputs are still stored) or launched with
``mlflow.run(..., env_manager="local")`` nested under this run. Independent stages run
concurrently, and their commands hand their work to a server of pre-imported libraries that
forks for each (foodcast.application.prefork).
"""

import click

from foodcast.application import stages
from foodcast.application.command import with_options


@click.command(help=f"""Run the whole foodcast pipeline ({", ".join(s.name for s in stages.PIPELINE)})
as child runs of one MLflow run, training on weeks START_WEEK..END_WEEK and forecasting week
NEXT_WEEK (0: END_WEEK + 1). Week 1 starts Monday 2014-12-29. A stage whose cache key (entry
point, parameters, source code, batch files read, upstream run ids, Python and package versions)
matches a FINISHED run whose outputs are still stored is reused instead of recomputed, unless
--use-cache false. Prints one line per stage (reused or launched, run id) and logs lineage.json
on this run.

\b
Environment:
  FOODCAST_DATA_DIR      batch directory (default: data/ in the project)
  FOODCAST_MAX_PARALLEL  stages run at once (default: the number of cores)
  FOODCAST_PREFORK=0     start each launched stage in a fresh interpreter instead of
                         forking it from main's server of pre-imported libraries""")
@with_options(stages.main_params())
def main(**options):
    from foodcast.errors import FoodcastError

    try:
        options = check_options(options)
    except FoodcastError as exc:
        raise click.ClickException(str(exc)) from None
    from foodcast.application.pipeline import run_pipeline

    run_pipeline(options)


def check_options(options: dict) -> dict:
    """Refuse bad parameters before anything is launched; resolve ``next_week``.

    Options come from the stage registry (an option no stage takes cannot exist, and click
    refuses any other); bounds of single parameters are checked by their click options. This
    checks how they fit together, with the data directory and with MLproject.
    """
    from foodcast.domain.model_settings import check_model_settings
    from foodcast.domain.forecast import past_weeks
    from foodcast.domain.transform import check_week_range
    from foodcast.domain.weeks import describe_weeks
    from foodcast.errors import FoodcastError
    from foodcast.infrastructure.batches import available_weeks
    from foodcast.settings import data_dir

    disagreements = stages.mlproject_disagreements(stages.PROJECT_DIR)
    if disagreements:
        raise FoodcastError(f"MLproject and the stage registry disagree: {disagreements[0]}")
    options = dict(options)
    start, end = options["start_week"], options["end_week"]
    check_week_range(start, end)
    if options["next_week"] == 0:
        options["next_week"] = end + 1
    if options["next_week"] <= end:
        raise FoodcastError(f"next_week {options['next_week']} must come after end_week {end} "
                            f"(e.g. -P next_week={end + 1}, or 0 for end_week + 1)")
    held = set(available_weeks(data_dir()))
    if not held & set(range(start, end + 1)):
        raise FoodcastError(f"no data for weeks {start}-{end} in {data_dir()}; it holds weeks {describe_weeks(held)}")
    history = {k: options[k] for k in ("lag_in_week", "level_weeks", "profile_weeks")}
    before = past_weeks(**history)
    needed = set(range(options["next_week"] - before, options["next_week"]))
    settings = " and ".join(f"{k}={v}" for k, v in history.items())
    if min(needed) < 1:
        raise FoodcastError(f"forecasting week {options['next_week']} with {settings} needs the {before} weeks "
                            f"before it, but week 1 is the first (lower them, or forecast a later week)")
    if needed - held:
        raise FoodcastError(
            f"forecasting week {options['next_week']} with {settings} needs weeks {describe_weeks(needed)}, "
            f"but {data_dir()} lacks {describe_weeks(needed - held)}"
        )
    loaded = end - start + 1
    if loaded <= options["lag_in_week"] or loaded <= options["level_weeks"]:
        raise FoodcastError(
            f"training on weeks {start}-{end} ({loaded} weeks) leaves no hour with all its lags and level: "
            f"lag_in_week={options['lag_in_week']} and level_weeks={options['level_weeks']} need more than "
            f"{max(options['lag_in_week'], options['level_weeks'])} weeks (lower them or an earlier start_week)"
        )
    if options["level_scaled"] and not options["level_weeks"]:
        raise FoodcastError("level_scaled=true divides by the level feature: it needs level_weeks >= 1")
    if options["estimator"] == "profile" and not options["profile_weeks"]:
        raise FoodcastError("estimator=profile forecasts from the profile feature: it needs profile_weeks >= 1")
    check_model_settings(**stages.model_settings(options))  # what the model would refuse, without scikit-learn
    if options["model"] == "champion" and not options["registered_model_name"]:
        raise FoodcastError("model=champion predicts with the registered model's champion: give a registered_model_name")
    return options


if __name__ == "__main__":
    main()
