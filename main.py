"""main: run the foodcast pipeline, reusing every finished stage whose inputs have not changed.

The stages and their DAG come from the stage table (``foodcast.pipeline.stage_table``): load ->
features -> {validate, train} -> promote; future; {train or promote, future} -> predict ->
evaluate. Each stage is either reused (a FINISHED run with the same cache key whose outputs are
still stored) or launched with ``mlflow.run(..., env_manager="local")`` nested under this run.
Independent stages run concurrently, and their commands hand their work to a server of
pre-imported libraries that forks for each (``foodcast.runtime.fork_server``).

MLproject's ``main`` declares no parameter: ``mlflow run`` passes each ``-P name=value`` on as
``--name value``, so that main sees which parameters were given (a parameters file fills in the
others, then the defaults, some of which follow from the data).
"""

from foodcast.runtime.fork_server import run_script_in_fork_server
from foodcast.runtime.lifeline import die_with_parent, hand_down, quiet_interrupts

if __name__ == "__main__":
    # First of all: end with the process that started this one (`mlflow run`), have the stage
    # commands end with this one (foodcast.runtime.lifeline), and Ctrl-C say one line.
    die_with_parent()
    hand_down()
    quiet_interrupts("main")
    # Then, under a fork server its caller keeps across pipelines (FOODCAST_PREFORK_SOCKET set:
    # the test suite's), run in a fork of it, its libraries imported already.
    run_script_in_fork_server("main")

import os
from typing import Any

import click

from foodcast.errors import FoodcastError
from foodcast.pipeline.command import RefusingCommand, record_refusal, with_options
from foodcast.pipeline.main_options import check_options, read_params_file, resolve_weeks
from foodcast.pipeline.params import PARAMS_FILE
from foodcast.pipeline.stage_table import PIPELINE, main_params
from foodcast.settings import WORKERS_VARIABLE, data_dir


class MainCommand(RefusingCommand):
    """main's command: ``--name_with_underscores`` (how ``mlflow run`` passes a ``-P`` that
    MLproject does not declare) read as ``--name-with-underscores``, and the parameters file of
    ``--params`` read as defaults, which the options given override."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        args = [_dashed(a) for a in args]
        try:
            path = _params_file(args)
            if path:
                extra["default_map"] = read_params_file(path, {p.name: p for p in main_params()})
        except FoodcastError as exc:
            record_refusal(self.name, str(exc))
            raise click.ClickException(str(exc)) from None
        return super().make_context(info_name, args, parent=parent, **extra)


def _dashed(arg: str) -> str:
    if not arg.startswith("--"):
        return arg
    name, sep, value = arg.partition("=")
    return name.replace("_", "-") + sep + value


def _params_file(args: list[str]) -> str:
    """The value of ``--params`` among ``args`` ("" if not given)."""
    option = PARAMS_FILE.option
    for i, arg in enumerate(args):
        if arg == option and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(option + "="):
            return arg[len(option) + 1 :]
    return ""


@click.command(
    name="main",
    cls=MainCommand,
    help=f"""Run the whole foodcast pipeline ({", ".join(s.name for s in PIPELINE)})
as child runs of one MLflow run, training on weeks START_WEEK..END_WEEK and forecasting week
NEXT_WEEK. Week 1 starts Monday 2014-12-29. With no week given: the week after the last complete
week of the data, trained on the 21 weeks before it. A stage whose cache key (entry
point, parameters, the code its run executes, batch files read, upstream run ids, Python and
package versions) matches a FINISHED run whose outputs are still stored is reused instead of
recomputed, unless --use-cache false. Prints one line per stage (reused or launched, run id,
seconds) and the result; logs lineage.json on this run. Under mlflow run, each -P name=value
is an option --name value.

\b
Environment:
  FOODCAST_DATA_DIR      batch directory (default: data/ in the project)
  FOODCAST_LOG_LEVEL     INFO: MLflow's and the stages' log lines too (as --verbose true)
  FOODCAST_MAX_PARALLEL  stages run at once (default: --workers, 0: the number of cores)
  FOODCAST_PREFORK=0     start each launched stage in a fresh interpreter instead of
                         forking it from main's server of pre-imported libraries
  FOODCAST_WORKERS       set by main from --workers, for its stages (a stage run alone
                         reads it too; default: every core)""",
)
@with_options(main_params())
def main(**options: Any) -> None:
    # The runner imports MLflow: only once the options are parsed and checked, so that --help
    # and a refused option answer at once (see README, "Layout").
    from foodcast.pipeline.runner import run_pipeline  # noqa: PLC0415

    try:
        weeks = resolve_weeks(options["start_week"], options["end_week"], options["next_week"], data_dir())
        options = check_options({**options, "start_week": weeks.start, "end_week": weeks.end, "next_week": weeks.next})
    except FoodcastError as exc:
        record_refusal("main", str(exc))
        raise click.ClickException(str(exc)) from None
    # The stages read it (foodcast.settings.workers): not a stage parameter, as their results
    # do not depend on it, so that no cache key does either.
    os.environ[WORKERS_VARIABLE] = str(options["workers"])
    run_pipeline(options, weeks.line())


if __name__ == "__main__":
    main()
