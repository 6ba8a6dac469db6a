"""Command line of foodcast: ``foodcast generate``, ``foodcast import``, ``foodcast status``,
``foodcast show`` and ``foodcast server``.

Also run as ``python -m foodcast``. The data commands import pandas inside them, so that
``--help`` answers at once (see README, "Layout").
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import click

from foodcast.core.windows import describe_weeks
from foodcast.data.batch_files import batch_week
from foodcast.errors import FoodcastError
from foodcast.settings import data_dir as default_data_dir
from foodcast.teamserver import server as teamserver

LAYOUT_HELP = (
    "Batches live in DATA_DIR/<restaurant>/week_NNN.csv.gz, one file per restaurant per "
    "week. Week 1 starts on Monday 2014-12-29; week N covers Monday 00:00 to Sunday 23:59 "
    "of the seven days starting 2014-12-29 + 7*(N-1) days."
)


def _user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a FoodcastError into one line on stderr and exit status 1, without traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except FoodcastError as exc:
            # Some messages quote a parser error that spans lines; keep to one line.
            raise click.ClickException(" ".join(str(exc).split())) from None

    return wrapper


def _data_dir_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Root of the batches (default: $FOODCAST_DATA_DIR, else data/ in the repository).",
    )(command)


def _size_text(size: int) -> str:
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"


@click.group(help=f"Weekly cash-in forecast of a chain of takeaway restaurants.\n\n{LAYOUT_HELP}")
def cli() -> None:
    """Entry point of the ``foodcast`` console script."""


def _week_range(_context: click.Context, _parameter: click.Parameter, value: str | None) -> tuple[int, int] | None:
    """``A-B`` (or ``A``) as a pair of week numbers."""
    if value is None:
        return None
    first, _, last = value.strip().partition("-")
    try:
        weeks = int(first), int(last or first)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a range of weeks such as 150-209") from None
    if weeks[0] < 1 or weeks[1] < weeks[0]:
        raise click.BadParameter(f"{value!r}: weeks start at 1 and the range must not be empty")
    return weeks


@cli.command(
    short_help="Write the default synthetic dataset (2 restaurants, weeks 1-260), or a chain of N.",
    help=(
        "Write the default synthetic dataset: two London Indian takeaways, weeks 1-260 "
        "(2014-12-29 to 2019-12-22), about 35 and 52 orders a day. The same seed gives "
        "byte-identical files; existing batches of those weeks are overwritten.\n\n"
        "With --restaurants N: a chain of N restaurants r001, r002... of different sizes, "
        "menus, weekly and yearly profiles and holiday effects, some opening or closing during "
        "the weeks, into a directory holding no other batches; the parameters drawn go to "
        f"DATA_DIR/chain_parameters.json (docs/data.md, 'A chain of any size').\n\n{LAYOUT_HELP}"
    ),
)
@_data_dir_option
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=None,
    help="Seed of the random streams (default: the seed of the committed dataset).",
)
@click.option(
    "--restaurants",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Generate a chain of N restaurants instead of the default dataset.",
)
@click.option(
    "--weeks",
    callback=_week_range,
    default=None,
    metavar="A-B",
    help="Weeks to write, inclusive (default: 1-260).",
)
@_user_errors
def generate(data_dir: str | None, seed: int | None, restaurants: int | None, weeks: tuple[int, int] | None) -> None:
    """Generate the default dataset, or a chain."""
    from foodcast.data import chain_generator, generator  # noqa: PLC0415 - pandas: only once the command runs

    root = data_dir or default_data_dir()
    seed = generator.DEFAULT_SEED if seed is None else seed
    first_week, last_week = weeks or (generator.FIRST_WEEK, generator.LAST_WEEK)
    if restaurants is None:
        span = {} if weeks is None else {"first_week": first_week, "last_week": last_week}
        files = generator.generate(root, seed=seed, **span)
        what = ""
    else:
        files = chain_generator.generate_chain(root, restaurants, seed=seed, first_week=first_week, last_week=last_week)
        what = f" (a chain of {restaurants} restaurants, weeks {first_week}-{last_week}; parameters in {files[-1]})"
    size = sum(path.stat().st_size for path in files)
    click.echo(f"wrote {len(files)} files ({_size_text(size)}) under {root} with seed {seed}{what}")


@cli.command(
    name="import",
    short_help="Import a raw order export as weekly batches.",
    help=(
        "Import ORDERS, a restaurant's raw order export (CSV, optionally .gz), as weekly "
        "batches of restaurant NAME. Columns: 'Order Number' (or 'Order ID'), 'Order Date' "
        "(ISO 'YYYY-MM-DD HH:MM:SS' or day-first 'DD/MM/YYYY HH:MM'), 'Item Name', "
        "'Quantity', 'Product Price', 'Total products'; UTF-8 text. The whole file, and every "
        "batch the restaurant already has, is checked before anything is written: values "
        "present and plausible (finite, not negative, at most 1000 items on a line, 1000 a "
        "unit price, 10000 items in an order), each order id naming one order (one date). A "
        "week that already has a batch is merged with it, so importing the same file twice "
        f"changes nothing.\n\n{LAYOUT_HELP}"
    ),
)
@click.argument("orders", type=click.Path(dir_okay=False))
@click.option(
    "--restaurant",
    required=True,
    metavar="NAME",
    help="Restaurant (directory) name: letters, digits, '_', '.', '-'.",
)
@_data_dir_option
@_user_errors
def import_command(orders: str, restaurant: str, data_dir: str | None) -> None:
    """Import a raw export."""
    from foodcast.data.importer import import_export  # noqa: PLC0415 - pandas: only once the command runs

    root = data_dir or default_data_dir()
    written = import_export(orders, restaurant, root)
    weeks = [batch_week(path) for path in written]
    click.echo(f"{restaurant}: wrote {len(written)} weekly batches (weeks {describe_weeks(weeks)}) under {root}")


EXPERIMENT_HELP = (
    "Experiment of the runs (default: $MLFLOW_EXPERIMENT_NAME, else foodcast, where `mlflow run .` puts them); "
    "the store is $MLFLOW_TRACKING_URI's, as for mlflow run."
)


def _experiment_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--experiment-name", envvar="MLFLOW_EXPERIMENT_NAME", default="foodcast", help=EXPERIMENT_HELP)(
        command
    )


def _experiment_id(name: str) -> str | None:
    """The id of experiment ``name`` in the tracking store (``None``: there is none)."""
    from mlflow.tracking import MlflowClient  # noqa: PLC0415 - MLflow: only once the command runs

    found = MlflowClient().get_experiment_by_name(name)
    return None if found is None else str(found.experiment_id)


@cli.command(
    short_help="Say which stages main would reuse or launch, and why; launch nothing.",
    help="Say what `mlflow run . -P NAME=VALUE ...` would do now, without doing it: for each stage "
    "of main, the run it would reuse, or that it would launch it and why (no run yet, parameters, "
    "code, data or environment changed, after a stage it waits for that is launched, outputs gone); "
    "then the stages it would leave out. Reads the tracking store only. -P takes main's parameters "
    f"(python main.py --help), params=FILE included.\n\n{EXPERIMENT_HELP}",
)
@click.option(
    "-P", "--param", "pairs", multiple=True, metavar="NAME=VALUE", help="A parameter of main, as for mlflow run."
)
@_experiment_option
@_user_errors
def status(pairs: tuple[str, ...], experiment_name: str) -> None:
    """What main would reuse and launch."""
    from foodcast.pipeline import status as planning  # noqa: PLC0415 - MLflow: only once the command runs

    options, weeks = planning.main_options(list(pairs))
    experiment_id = _experiment_id(experiment_name)
    click.echo(f"main with these parameters: {weeks}, in experiment {experiment_name}")
    if experiment_id is None:
        click.echo(f"no experiment {experiment_name} yet: main would launch every stage")
        return
    for line in planning.pipeline_status(options, experiment_id):
        click.echo(line.line())


@cli.command(
    short_help="Print the latest forecast as a table.",
    help="Print the latest FINISHED forecast of the experiment (of week WEEK with --week): the "
    "hourly cash-in forecast (predictions/y_pred.csv, column y_pred) in whole pounds, hours by "
    "weekdays, with each day's total; of a forecast per restaurant (granularity=restaurant), the "
    f"chain's rows, or RESTAURANT's with --restaurant.\n\n{EXPERIMENT_HELP}",
)
@click.option(
    "--week", type=click.IntRange(min=1), default=None, help="The week forecast (default: the latest forecast)."
)
@click.option(
    "--restaurant",
    default=None,
    help="Of a forecast per restaurant: this restaurant's rows (default: the chain's, rows chain).",
)
@_experiment_option
@_user_errors
def show(week: int | None, restaurant: str | None, experiment_name: str) -> None:
    """The latest forecast as a table."""
    import mlflow  # noqa: PLC0415 - MLflow and pandas: only once the command runs
    import pandas as pd  # noqa: PLC0415

    from foodcast.core.restaurants import CHAIN, RESTAURANT  # noqa: PLC0415
    from foodcast.pipeline import status as planning  # noqa: PLC0415
    from foodcast.pipeline.console import week_dates  # noqa: PLC0415
    from foodcast.tracking import names  # noqa: PLC0415
    from foodcast.tracking.runs import forecast_week  # noqa: PLC0415

    experiment_id = _experiment_id(experiment_name)
    if experiment_id is None:
        raise FoodcastError(f"no experiment {experiment_name} in {mlflow.get_tracking_uri()}: run the pipeline first")
    run = planning.latest_forecast(mlflow.tracking.MlflowClient(), experiment_id, week)
    path = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=names.artifact_path(names.Y_PRED))
    y_pred = pd.read_csv(path, parse_dates=["order_date"], dtype={RESTAURANT: str})
    week = forecast_week(run)
    whose = ""
    if RESTAURANT in y_pred.columns:
        name = restaurant or CHAIN
        held = list(dict.fromkeys(y_pred[RESTAURANT]))
        if name not in held:
            raise FoodcastError(
                f"the forecast of week {week} (predict run {run.info.run_id}) has no restaurant {name!r}; "
                f"it has {', '.join(held[:10])}{', ...' if len(held) > 10 else ''}"
            )
        y_pred, whose = y_pred[y_pred[RESTAURANT] == name], f" of {'the chain' if name == CHAIN else name}"
    elif restaurant:
        raise FoodcastError(
            f"the forecast of week {week} (predict run {run.info.run_id}) is the chain's alone: no --restaurant"
        )
    click.echo(
        f"week {week} ({week_dates(week)}): hourly cash-in forecast{whose} in GBP, "
        f"predict run {run.info.run_id} ({path}; its interval in y_lower, y_upper)"
    )
    click.echo(planning.forecast_table(y_pred).to_string())
    click.echo(f"week total: {y_pred['y_pred'].sum():.0f}")


SERVER_HELP = (
    "A local team tracking server in one directory: a PostgreSQL cluster (Debian's `postgresql` "
    "package; run as user postgres when started by root) and `mlflow server --app-name "
    "basic-auth` on 127.0.0.1, storing runs in PostgreSQL and proxying artifacts to DIR/artifacts. "
    "DIR holds the logs (mlflow.log, postgresql.log), the pid file and credentials.json (0600: the "
    "admin login, generated on the first start unless MLFLOW_AUTH_ADMIN_USERNAME / "
    "MLFLOW_AUTH_ADMIN_PASSWORD are set then). Needs the server extra: pip install -e '.[server]'."
)


def _server_dir_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--dir",
        "directory",
        type=click.Path(file_okay=False),
        envvar="FOODCAST_SERVER_DIR",
        default="teamserver",
        show_default=True,
        help="Directory of the server (also $FOODCAST_SERVER_DIR).",
    )(command)


@cli.group(short_help="Start, stop or inspect a local team tracking server.", help=SERVER_HELP)
def server() -> None:
    """The ``server`` command group."""


@server.command(
    name="start",
    short_help="Start the team server (initialising DIR on first use).",
    help=f"Start the team server of DIR, initialising it on first use, and wait until it "
    f"answers; print its tracking URI and admin login.\n\n{SERVER_HELP}",
)
@_server_dir_option
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port of the MLflow server on 127.0.0.1 (default: the last one used in DIR, else 5731).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="MLflow server worker processes (default: 1; more cost ~40 ms per request on "
    "a kept-alive connection: see docs/team-setup.md).",
)
@click.option(
    "--auth-cache-seconds",
    type=click.IntRange(min=0),
    default=None,
    help="How long a worker trusts a login it checked, sparing a password hash per "
    "request (default: 60; 0 hashes on every request).",
)
@_user_errors
def server_start(directory: str, port: int | None, workers: int | None, auth_cache_seconds: int | None) -> None:
    """Start the team server."""
    state, already = teamserver.start(directory, port=port, workers=workers, auth_cache_seconds=auth_cache_seconds)
    username, password = teamserver.admin_login(directory)
    root = os.path.abspath(directory)
    click.echo(f"team server {'already running' if already else 'started'} in {root}")
    click.echo(f"tracking URI: {state.tracking_uri}")
    click.echo(f"admin login:  {username} / {password}  (stored in {os.path.join(root, 'credentials.json')})")
    click.echo(f"logs:         {os.path.join(root, 'mlflow.log')}, {os.path.join(root, 'postgresql.log')}")
    click.echo(
        f"use it:       export MLFLOW_TRACKING_URI={state.tracking_uri} "
        f"MLFLOW_TRACKING_USERNAME=<user> MLFLOW_TRACKING_PASSWORD=<password>"
    )


@server.command(
    name="stop",
    short_help="Stop the team server (idempotent).",
    help="Stop what `start` started in DIR: the MLflow server and its workers, then "
    "PostgreSQL. Stopping a stopped server does nothing and succeeds.",
)
@_server_dir_option
@_user_errors
def server_stop(directory: str) -> None:
    """Stop the team server."""
    stopped = teamserver.stop(directory)
    root = os.path.abspath(directory)
    click.echo(f"stopped {' and '.join(stopped)} in {root}" if stopped else f"nothing was running in {root}")


@server.command(
    name="status",
    short_help="Say what runs (exit 0 when all runs, 3 otherwise).",
    help="Say whether PostgreSQL and the MLflow server of DIR run and answer. "
    "Exit status 0 when both run and the server answers, 3 otherwise.",
)
@_server_dir_option
@click.pass_context
@_user_errors
def server_status(ctx: click.Context, directory: str) -> None:
    """Report the team server's state."""
    state = teamserver.status(directory)
    root = os.path.abspath(directory)
    click.echo(f"team server in {root}")
    click.echo(f"PostgreSQL:    {'running' if state.postgres_running else 'stopped'}")
    if state.mlflow_pid is None:
        strays = teamserver.stray_processes(teamserver.Layout(directory)) if os.path.isdir(directory) else []
        left = f" (its process ended; processes {', '.join(map(str, strays))} of it still run: `server stop` ends them)"
        click.echo(f"mlflow server: stopped{left if strays else ''}")
    else:
        answer = "answering" if state.answering else "not answering yet"
        click.echo(f"mlflow server: running (pid {state.mlflow_pid}), {answer} at {state.tracking_uri}")
        click.echo(f"admin login:   {state.admin_username} (password in {os.path.join(root, 'credentials.json')})")
    if not (state.postgres_running and state.answering):
        ctx.exit(3)
