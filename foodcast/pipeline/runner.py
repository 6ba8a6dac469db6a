"""The orchestration behind ``main.py``: the plan's DAG of nodes, each reused or launched.

The plan (:mod:`foodcast.pipeline.plan`) comes from the stage table. ``graphlib.TopologicalSorter``
orders the nodes; each ready node is either reused (a FINISHED run with the same cache key whose
outputs are intact) or launched as an ``mlflow.run`` of its entry point, nested under the parent
run, on a pool of ``FOODCAST_MAX_PARALLEL`` threads.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import signal
import time
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import click
import mlflow
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import ExecutionException, MlflowException
from mlflow.tracking import MlflowClient

from foodcast.data.coverage import batches_fingerprint
from foodcast.errors import FoodcastError
from foodcast.pipeline.cache import cache_key, environment_fingerprint, find_reusable, pass_cache_key
from foodcast.pipeline.champion import champion_feature_differences
from foodcast.pipeline.console import (
    artifact_location,
    closing_block,
    quiet_mlflow,
    run_seconds,
    stage_line,
    ui_link,
    verbose,
    week_dates,
)
from foodcast.pipeline.lineage import main_description, main_name, scorecard_line
from foodcast.pipeline.params import keyed_params, param_texts
from foodcast.pipeline.plan import Node, NodeKey, Resolution, find_earlier_run, plan, stage_params
from foodcast.pipeline.stage_code import code_fingerprint, project_imports
from foodcast.pipeline.stage_table import FORECAST, PIPELINE, main_params
from foodcast.runtime.fork_server import SOCKET_ENV, ForkServer
from foodcast.runtime.fork_server import enabled as fork_server_enabled
from foodcast.runtime.processes import (
    Interrupted,
    children,
    exit_without_final_collection,
    interruptible,
    owner_tags,
    signal_all,
    sweep_temp_dirs,
    temp_dir,
)
from foodcast.settings import PROJECT_ROOT, configure_logging, data_dir
from foodcast.tracking import names
from foodcast.tracking.access import check_tracking_access, open_tracking_store, store_failure
from foodcast.tracking.recovery import explain_silent_failures, fail_abandoned_runs

logger = logging.getLogger("foodcast.main")

PARAMS_DIR = "parameters"  # where main logs its parameters file

STOP_GRACE = 10.0  # seconds interrupted stages get to end their runs before they are killed


class StageFailed(Exception):
    """A launched stage ended FAILED; carries its one-line error."""

    def __init__(self, label: str, run_id: str | None, message: str):
        self.run_id = run_id
        super().__init__(f"stage {label} failed (run {run_id or 'unknown'}): {message}")


def max_parallel(workers: int = 0) -> int:
    """How many stages may run at once: ``FOODCAST_MAX_PARALLEL``, else ``workers`` (main's
    option: the processes the pipeline may keep busy, each stage's pool that many too), else
    (0) the number of cores.

    ``workers=1`` is thus one process at a time, stages included: run side by side (``load``
    and ``future``, ``validate`` and ``train``), two stages each with a pool of ``workers`` kept
    two cores busy with ``workers=1`` and four processes on two cores with ``workers=2``
    (bench/restaurant_pipeline.py, docs/restaurants.md).
    """
    value = os.environ.get("FOODCAST_MAX_PARALLEL") or int(workers) or os.cpu_count() or 1
    try:
        return max(1, int(value))
    except ValueError:
        raise click.ClickException(f"FOODCAST_MAX_PARALLEL must be a whole number, got {value!r}") from None


SPARK_PACKAGE = "foodcast.spark"
PLOT_FILES = "foodcast.tracking.plot_files"  # (named, not imported: main draws no plot)


def server_preloads(project_dir: str | Path = PROJECT_ROOT) -> tuple[list[str], list[str]]:
    """What the fork server imports: before serving, the modules the stages without upstream
    and their direct successors import (``stage_code``: each stage's closure, their libraries
    coming with them); then, between commands, those of the later stages. The tracking store's
    client module first, which MLflow would otherwise import at a stage's first request."""
    first = {s.name for s in PIPELINE if not s.upstream}
    early = first | {s.name for s in PIPELINE if set(s.upstream) <= first}
    store = (
        "mlflow.store.tracking.rest_store"
        if mlflow.get_tracking_uri().startswith("http")
        else "mlflow.store.tracking.sqlalchemy_store"
    )
    ready = ["mlflow", store]
    idle: list[str] = []
    imports = project_imports(Path(project_dir).resolve())
    for stage in PIPELINE:
        target = ready if stage.name in early else idle
        # The commands themselves run as __main__ in the fork: their package is not preloaded.
        # Nor the Spark engine: pyspark is an extra, imported by a stage only with engine=spark.
        target.extend(
            m
            for m in imports.stage_modules(stage.name)
            if m.split(".")[0] != "steps" and not m.startswith(SPARK_PACKAGE) and m not in ready and m not in idle
        )
    if PLOT_FILES in ready or PLOT_FILES in idle:
        # plotly.js packed into each plot page: gzipped once for the stages that plot (~0.5 s
        # each), first thing once the first stages are served.
        idle.insert(0, f"{PLOT_FILES}:packed_plotly_js")
    return ready, idle


_FAILED_RUN = re.compile(r"Run \(ID '([0-9a-f]+)'\) failed")


class Pipeline:
    """One resolution of the DAG under the active (parent) run.

    Parameters
    ----------
    options : dict
        Checked ``main`` options (``next_week`` resolved, ``use_cache`` a bool).
    project_dir : Path
        The MLflow project launched for each stage.
    nodes : list of Node, optional
        The DAG; by default :func:`plan` of ``options``, earlier runs looked up in
        ``experiment_id``.
    experiment_id : str, optional
    """

    def __init__(
        self,
        options: dict[str, Any],
        project_dir: str | Path = PROJECT_ROOT,
        nodes: list[Node] | None = None,
        experiment_id: str | None = None,
    ):
        self.options = options
        self.project_dir = Path(project_dir)
        self.client = MlflowClient()
        self.skipped: list[tuple[str, str]] = []
        self.experiment_id = experiment_id
        if nodes is None:
            find = functools.partial(find_earlier_run, self.client, experiment_id) if experiment_id else None
            nodes = plan(options, find_earlier=find, skipped=self.skipped)
        self.nodes = {n.key: n for n in nodes}
        self.resolved: dict[NodeKey, Resolution] = {}
        self.max_parallel = max_parallel(options.get("workers", 0))
        self.storage_dir: str | None = None
        self.verbose = verbose(options.get("verbose", False))
        self._code: dict[str, str] = {}  # stage -> fingerprint of the code its run executes
        self.key_parts: dict[NodeKey, dict[str, str]] = {}  # what each node's last key was made of

    def node_key(self, node: Node, params: Mapping[str, Any]) -> str:
        """The cache key of a node with these parameters."""
        weeks = node.stage.batch_weeks({**self.options, **node.values}) if node.stage.batch_weeks else None
        batches = batches_fingerprint(data_dir(), *weeks) if weeks else None
        environment = environment_fingerprint(self.project_dir, node.stage.packages)
        context = ""
        if node.stage.cache_context is not None:
            context = node.stage.cache_context(self.options, self.client, params)
            environment += "|" + context
        if node.stage.name not in self._code:
            self._code[node.stage.name] = code_fingerprint(self.project_dir, node.stage.name)
        sources = self._code[node.stage.name]
        self.key_parts[node.key] = {
            "sources": sources,
            "batches": batches or "",
            "environment": environment.split("|", 1)[0],
            "context": context,
        }
        # A parameter that says how, not what (engine), is left out: both ways give the same result.
        return cache_key(node.stage.name, keyed_params(params, node.stage.params), sources, batches, environment)

    def late_values(self, node: Node) -> dict[str, Any]:
        """The parameters main works out for ``node`` now that what it waits for has ended."""
        if node.stage.late_params is None:
            return {}
        runs = {key[0]: r.run_id for key, r in self.resolved.items() if key[1] is None}
        return node.stage.late_params(self.options, runs, self.client)

    def run(self, parent_id: str, experiment_id: str) -> dict[NodeKey, Resolution]:
        """Resolve every node, launching ready ones concurrently; raise the first failure once
        the stages already running have ended (so that they can be reused next time)."""
        server = None
        # A server named already in FOODCAST_PREFORK_SOCKET (kept by the caller across
        # pipelines, as the test suite does per project) serves the stages instead.
        if fork_server_enabled() and not os.environ.get(SOCKET_ENV):
            server = ForkServer(*server_preloads(self.project_dir), self.project_dir)
        with temp_dir("launches") as self.storage_dir:
            try:
                resolved = self._resolve(parent_id, experiment_id, server)
            finally:
                if server is not None:
                    server.stop()  # every stage has ended, or was stopped
        return resolved

    def _resolve(self, parent_id: str, experiment_id: str, server: ForkServer | None) -> dict[NodeKey, Resolution]:
        graph = TopologicalSorter(
            {
                key: [s for s in node.inputs.values() if isinstance(s, tuple)] + list(node.after)
                for key, node in self.nodes.items()
            }
        )
        graph.prepare()
        failures: list[StageFailed] = []
        running: dict[Future[Resolution], Node] = {}
        pool = ThreadPoolExecutor(self.max_parallel, thread_name_prefix="foodcast-stage")
        try:
            while graph.is_active():
                started = False
                for key in graph.get_ready() if not failures else ():
                    node = self.nodes[key]
                    try:
                        params = stage_params(node, self.options, self.resolved, self.late_values(node))
                        ckey = self.node_key(node, params)
                        hit = (
                            find_reusable(self.client, experiment_id, node.stage, ckey)
                            if self.options["use_cache"]
                            else None
                        )
                    except MlflowException as exc:
                        failures.append(StageFailed(node.label, None, store_failure(exc)))
                        continue
                    except FoodcastError as exc:  # e.g. no champion to predict with
                        failures.append(StageFailed(node.label, None, str(exc)))
                        continue
                    except Exception as exc:  # noqa: BLE001 - a bug: one line, main goes on recording
                        failures.append(StageFailed(node.label, None, f"{type(exc).__name__}: {exc}"))
                        continue
                    if hit is not None:
                        self.resolved[key] = Resolution(hit.info.run_id, "reused", ckey, params, run_seconds(hit))
                        click.echo(stage_line(node.label, "reused", hit.info.run_id, run_seconds(hit)))
                        graph.done(key)
                        started = True
                        continue
                    if server is not None and server.process is None:
                        server.start()  # only once a stage must run: a fully reused pipeline needs none
                        assert server.process is not None  # start() set it
                        logger.info(
                            "stages start as forks of a server with their libraries imported "
                            "(pid %d); FOODCAST_PREFORK=0 starts them cold",
                            server.process.pid,
                        )
                    if self.verbose:
                        click.echo(f"{node.label}: launching")
                    texts = param_texts(node.stage.all_params, params)
                    # The stage tags its own run with its key, so that the key is there before
                    # the run can end FINISHED.
                    pass_cache_key(node.stage.name, texts, ckey, self.key_parts.get(node.key))
                    future = pool.submit(self._launch, node, texts, params, ckey, parent_id, experiment_id)
                    running[future] = node
                if started:
                    continue  # reused nodes may have made others ready
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    node = running.pop(future)
                    try:
                        self.resolved[node.key] = future.result()
                    except StageFailed as exc:
                        failures.append(exc)
                        continue
                    done = self.resolved[node.key]
                    click.echo(stage_line(node.label, "launched", done.run_id, done.seconds))
                    graph.done(node.key)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            # A stage still waiting for a free worker is cancelled: never started, and never
            # "done" for wait() either (a cancelled future is only reported once a worker has
            # picked it up); wait for the ones that run.
            self._stop([f for f in running if not f.cancelled()], server)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if failures:
            raise failures[0]
        return self.resolved

    @staticmethod
    def _stop(running: list[Future[Resolution]], server: ForkServer | None) -> None:
        """Interrupted: stop the stages still running (SIGTERM to their commands, which pass it
        on; SIGKILL after a grace period) and wait for their ``mlflow.run`` to return.

        A stage whose command was still being started when the signal came is signalled as
        soon as its process appears.
        """
        if not running:
            return
        spare = {server.process.pid} if server is not None and server.process is not None else set()
        signalled: set[int] = set()
        deadline = time.monotonic() + STOP_GRACE
        while time.monotonic() < deadline:
            fresh = set(children()) - spare - signalled
            signal_all(fresh, signal.SIGTERM)
            signalled |= fresh
            if not wait(running, timeout=0.2).not_done:
                return
        signal_all(set(children()) - spare, signal.SIGKILL)
        wait(running, timeout=5)

    def _launch(
        self, node: Node, texts: dict[str, str], params: dict[str, Any], ckey: str, parent_id: str, experiment_id: str
    ) -> Resolution:
        started = time.perf_counter()
        try:
            if mlflow.active_run() is None:
                # MLflow keeps the active run per thread: each worker joins the parent once, so
                # that the runs mlflow.run creates in it nest under the parent.
                mlflow.start_run(run_id=parent_id)
            submitted = mlflow.run(
                str(self.project_dir),
                entry_point=node.stage.name,
                parameters=texts,
                experiment_id=experiment_id,
                env_manager="local",
                synchronous=True,
                # MLflow makes a directory per launch here and leaves it: in ours, removed at the end
                storage_dir=self.storage_dir,
            )
        except ExecutionException as exc:
            found = _FAILED_RUN.search(str(exc))
            run_id = found.group(1) if found else None
            message = "its command ended without saying why (killed, or crashed: see its output above)"
            if run_id is not None:
                try:
                    said = self.client.get_run(run_id).data.tags.get(names.ERROR_TAG)
                    if said is None:  # killed before its run could say why: say it for it
                        self.client.set_tag(run_id, names.ERROR_TAG, message)
                    message = said or message
                except MlflowException as store:
                    message = f"it failed, and then {store_failure(store)}"
            raise StageFailed(node.label, run_id, message) from None
        except MlflowException as exc:
            raise StageFailed(node.label, None, store_failure(exc)) from None
        except Exception as exc:  # a bug: report with its traceback, don't hang main
            logger.exception("%s could not be launched", node.label)
            raise StageFailed(node.label, None, f"{type(exc).__name__}: {exc}") from None
        return Resolution(submitted.run_id, "launched", ckey, params, time.perf_counter() - started)


def record_lineage(
    client: MlflowClient, run_id: str, nodes: Mapping[NodeKey, Node], resolved: Mapping[NodeKey, Resolution]
) -> None:
    """Log lineage.json, the per-stage run id tags and the stages' headline metrics."""
    lineage: dict[str, dict[str, str]] = {}
    tags: dict[str, str] = {}
    metrics: list[Metric] = []
    now = int(time.time() * 1000)
    for key, r in resolved.items():
        node = nodes[key]
        lineage[node.label] = {"run_id": r.run_id, "status": r.status, "cache_key": r.cache_key}
        tags[f"foodcast.{node.slug}_run_id"] = r.run_id
        tags[f"foodcast.{node.slug}_status"] = r.status
        if node.stage.headline_metrics:
            values = client.get_run(r.run_id).data.metrics
            prefix = "" if node.partition is None else f"{node.slug}."
            metrics += [Metric(prefix + m, values[m], now, 0) for m in node.stage.headline_metrics if m in values]
    client.log_batch(run_id, metrics=metrics, tags=[RunTag(k, v) for k, v in tags.items()])
    mlflow.log_dict(lineage, names.LINEAGE_FILE)


def describe_main(
    client: MlflowClient,
    run_id: str,
    experiment_id: str,
    options: Mapping[str, Any],
    nodes: Mapping[NodeKey, Node],
    resolved: Mapping[NodeKey, Resolution],
    error: str | None = None,
) -> None:
    """Name the parent run after its week and write its description: the table of stages."""
    rows = []
    for key in [k for k in nodes if k in resolved]:  # in DAG order
        r, stage = resolved[key], nodes[key].stage
        rows.append(
            {
                "label": nodes[key].label,
                "run_id": r.run_id,
                "status": r.status,
                "params": ", ".join(f"{p.name}={p.text(r.params[p.name])}" for p in stage.params if p.name in r.params),
            }
        )
    output = resolved.get((FORECAST[0], None))
    forecast = plots = None
    if output is not None:
        forecast = (output.run_id, names.artifact_path(FORECAST[1]))
        plots = [
            (r.run_id, names.artifact_path(a))
            for key, r in resolved.items()
            for a in nodes[key].stage.artifacts
            if a[1].endswith(".html")
        ]
    scores = []
    for key in [k for k in nodes if k in resolved and k[0] == names.EVALUATE]:
        values = client.get_run(resolved[key].run_id).data.metrics
        scores.append(scorecard_line(nodes[key].partition, values))
    note = main_description(experiment_id, options, rows, forecast, plots or [], error, scores)
    client.log_batch(run_id, tags=[RunTag(names.NAME_TAG, main_name(options)), RunTag(names.NOTE_TAG, note)])


def result_lines(pipeline: Pipeline, summary: str, parent_id: str, experiment_id: str) -> list[str]:
    """The closing block of a pipeline that ended well: the week, where its forecast is, the
    scorecards (or why a week was not scored), promote's decision, the parent run's page."""
    client, options, resolved = pipeline.client, pipeline.options, pipeline.resolved
    week = options["next_week"]
    output = resolved.get((FORECAST[0], None))
    forecast = None
    if output is not None:
        forecast = artifact_location(client.get_run(output.run_id), names.artifact_path(FORECAST[1]))
    skipped = dict(pipeline.skipped)
    scores: list[tuple[str, Mapping[str, float] | None, str | None]] = []
    for key, node in sorted(pipeline.nodes.items(), key=lambda item: str(item[0][1])):
        if node.stage.name == names.EVALUATE and key in resolved:
            scores.append((str(node.partition), client.get_run(resolved[key].run_id).data.metrics, None))
    last = f"{names.EVALUATE}[{options['end_week']}]"  # last week's scorecard (this week's: a backfill's)
    scores += [(str(options["end_week"]), None, reason) for label, reason in pipeline.skipped if label == last]
    scores.sort(key=lambda score: int(score[0]) if score[0].isdigit() else 0)
    promote = resolved.get((names.PROMOTE, None))
    decision = skipped.get(names.PROMOTE)
    if promote is not None:
        decision = client.get_run(promote.run_id).data.tags.get(names.SUMMARY_TAG)
    link = ui_link(mlflow.get_tracking_uri(), experiment_id, parent_id)
    ahead = resolved.get((names.FUTURE, None))  # restaurants not forecast (closed, too new): future's notes
    notes = client.get_run(ahead.run_id).data.tags.get(names.LEFT_OUT_TAG, "") if ahead is not None else ""
    week_line = f"week {week} ({week_dates(week)})"
    return closing_block(summary, week_line, forecast, scores, decision, link, notes.splitlines())


def check_champion_features(options: Mapping[str, Any]) -> None:
    """With ``model=champion``, refuse feature parameters other than the champion's: its model
    expects the features it was trained on, and predict would fail only after train and promote.

    Raises
    ------
    FoodcastError
        Naming each differing parameter with both values.
    """
    if options["model"] != "champion":
        return
    differences = champion_feature_differences(MlflowClient(), options)
    if differences is not None:
        raise FoodcastError(
            f"model=champion forecasts with the champion, trained with other feature parameters ({differences}): "
            "give the champion's, or model=trained"
        )


def _failure_in_progress(exc: BaseException) -> str | None:
    """The stage failure main was reporting when ``exc`` was raised, if it was."""
    seen = exc.__context__
    while seen is not None and not isinstance(seen, (StageFailed, click.ClickException)):
        seen = seen.__context__
    return None if seen is None else str(seen)


def run_pipeline(options: dict[str, Any], week_line: str = "") -> dict[NodeKey, Resolution]:
    """Start (or resume, under ``mlflow run``) the parent run and resolve the whole DAG.

    Prints a first line (the run, its experiment, ``week_line``: what it forecasts from which
    weeks, and why those), a line per stage, and the closing block
    (:mod:`foodcast.pipeline.console`).

    A tracking server is checked first (reachable, the login right, EDIT on the experiment),
    and runs of the experiment left RUNNING by pipelines that are gone are marked FAILED.
    Interrupted (SIGINT, SIGTERM, SIGHUP), it stops its running stages, marks them and itself
    FAILED, and exits with 128 + the signal's number.

    Raises
    ------
    click.ClickException
        One line naming the failed stage, its run id and its error.
    """
    configure_logging()
    quiet_mlflow(verbose(options.get("verbose", False)))
    try:  # a tracking server: reachable, the login right, allowed to write; before writing anything
        check_tracking_access()
        open_tracking_store()  # a local store: opened, or created when new
    except FoodcastError as exc:
        raise click.ClickException(str(exc)) from None
    parent_id = None
    try:
        with interruptible(), mlflow.start_run() as parent:
            parent_id, experiment_id = parent.info.run_id, parent.info.experiment_id
            texts = param_texts(main_params(), options)
            existing = parent.data.params
            mlflow.log_params({k: v for k, v in texts.items() if k not in existing})
            mlflow.set_tags({names.STEP_TAG: names.MAIN, names.NEXT_WEEK_TAG: options["next_week"], **owner_tags()})
            experiment = MlflowClient().get_experiment(experiment_id).name
            click.echo(f"main: run {parent_id} (experiment {experiment}): {week_line or main_name(options)}")
            if options.get("params"):
                mlflow.log_artifact(options["params"], PARAMS_DIR)
            try:
                check_champion_features(options)
            except FoodcastError as exc:
                mlflow.set_tag(names.ERROR_TAG, str(exc))
                raise click.ClickException(str(exc)) from None
            started = time.perf_counter()
            # The stages run in the project directory: give them the data directory as an
            # absolute path (a relative one is relative to where main was started).
            os.environ["FOODCAST_DATA_DIR"] = data_dir()
            pipeline = Pipeline(options, experiment_id=experiment_id)
            for label, reason in pipeline.skipped if pipeline.verbose else ():
                click.echo(f"{label}: skipped ({reason})")
            for run_id, reason in fail_abandoned_runs(pipeline.client, experiment_id, keep={parent_id}).items():
                click.echo(f"main: marked run {run_id} FAILED: {reason}")
            for run_id in explain_silent_failures(pipeline.client, experiment_id):
                click.echo(f"main: tagged run {run_id}, which had ended FAILED without a reason (killed?)")
            for path in sweep_temp_dirs():
                logger.info("removed %s, left by a process that has ended", path)
            describe = functools.partial(
                describe_main, pipeline.client, parent_id, experiment_id, options, pipeline.nodes, pipeline.resolved
            )
            try:
                resolved = pipeline.run(parent_id, experiment_id)
            except StageFailed as exc:
                mlflow.set_tag(names.ERROR_TAG, str(exc))  # (if the store fails here: see below)
                describe(error=str(exc))
                raise click.ClickException(str(exc)) from None
            except Interrupted as exc:
                mlflow.set_tag(names.ERROR_TAG, str(exc))
                fail_abandoned_runs(pipeline.client, experiment_id, parent_id=parent_id)
                describe(error=str(exc))
                raise
            record_lineage(pipeline.client, parent_id, pipeline.nodes, resolved)
            describe()
            summary = (
                f"main: {sum(r.status == 'launched' for r in resolved.values())} launched, "
                f"{sum(r.status == 'reused' for r in resolved.values())} reused in "
                f"{time.perf_counter() - started:.1f}s"
            )
            for line in result_lines(pipeline, summary, parent_id, experiment_id):
                click.echo(line)
    except Interrupted as exc:
        click.echo(
            f"Error: main (run {parent_id or 'not started'}): {exc}; the stages still running were "
            "stopped, and their runs and this one are marked FAILED",
            err=True,
        )
        raise SystemExit(exc.exit_code) from None
    except MlflowException as exc:  # a request of main's own failed: the tracking store is failing
        cause = _failure_in_progress(exc)
        left = "a run it leaves RUNNING is marked FAILED by the next pipeline" if parent_id else "nothing was written"
        if cause is not None:  # the store failed while main recorded a stage's failure
            raise click.ClickException(f"{cause}; then {store_failure(exc)}; {left}") from None
        raise click.ClickException(f"main (run {parent_id or 'not started'}): {store_failure(exc)}; {left}") from None
    finally:
        exit_without_final_collection()
    return resolved
