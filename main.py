"""main: run the foodcast pipeline, reusing every finished stage whose inputs have not changed.

The stages and their DAG come from the stage table (``foodcast.pipeline.stage_table``): load ->
features -> {validate, train} -> promote; future; {train or promote, future} -> predict ->
evaluate. Each stage is either reused (a FINISHED run with the same cache key whose outputs are
still stored) or launched with ``mlflow.run(..., env_manager="local")`` nested under this run.
Independent stages run concurrently, and their commands hand their work to a server of
pre-imported libraries that forks for each (``foodcast.runtime.fork_server``).
"""

from foodcast.runtime.lifeline import die_with_parent, hand_down, quiet_interrupts

if __name__ == "__main__":
    # First of all: end with the process that started this one (`mlflow run`), have the stage
    # commands end with this one (foodcast.runtime.lifeline), and Ctrl-C say one line.
    die_with_parent()
    hand_down()
    quiet_interrupts("main")

from typing import Any

import click

from foodcast.errors import FoodcastError
from foodcast.pipeline.command import with_options
from foodcast.pipeline.main_options import check_options
from foodcast.pipeline.stage_table import PIPELINE, main_params


@click.command(
    help=f"""Run the whole foodcast pipeline ({", ".join(s.name for s in PIPELINE)})
as child runs of one MLflow run, training on weeks START_WEEK..END_WEEK and forecasting week
NEXT_WEEK (0: END_WEEK + 1). Week 1 starts Monday 2014-12-29. A stage whose cache key (entry
point, parameters, the code its run executes, batch files read, upstream run ids, Python and
package versions) matches a FINISHED run whose outputs are still stored is reused instead of
recomputed, unless --use-cache false. Prints one line per stage (reused or launched, run id) and
logs lineage.json on this run.

\\b
Environment:
  FOODCAST_DATA_DIR      batch directory (default: data/ in the project)
  FOODCAST_MAX_PARALLEL  stages run at once (default: the number of cores)
  FOODCAST_PREFORK=0     start each launched stage in a fresh interpreter instead of
                         forking it from main's server of pre-imported libraries"""
)
@with_options(main_params())
def main(**options: Any) -> None:
    # The runner imports MLflow: only once the options are parsed and checked, so that --help
    # and a refused option answer at once (see README, "Layout").
    from foodcast.pipeline.runner import run_pipeline  # noqa: PLC0415

    try:
        options = check_options(options)
    except FoodcastError as exc:
        raise click.ClickException(str(exc)) from None
    run_pipeline(options)


if __name__ == "__main__":
    main()
