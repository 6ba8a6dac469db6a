"""The orchestration behind ``main.py``: resolve each stage by cache lookup or by ``mlflow.run``."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import mlflow
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import ExecutionException
from mlflow.tracking import MlflowClient

from foodcast.application import catalog
from foodcast.application.cache import entry_point_params, find_reusable, normalise_params
from foodcast.application.fingerprint import batches_fingerprint, cache_key, source_fingerprint
from foodcast.application.metrics import HEADLINE_METRICS
from foodcast.application.prefork import ForkServer, enabled as prefork_enabled
from foodcast.application.step import exit_without_final_collection
from foodcast.settings import PROJECT_ROOT, configure_logging, data_dir

logger = logging.getLogger("foodcast.main")

MAIN = "main"

# What the fork server imports for the stages. Before serving, what the first stages (load,
# future, features) need: MLflow, its sqlite store, pandas. Then, one at a time while the first
# stages run, train's, validate's and predict's libraries. A stage imports whatever is not
# there yet itself, so these lists are about speed only.
PRELOAD_READY = (
    "mlflow", "mlflow.store.tracking.sqlalchemy_store", "pandas", "mlflow.data.pandas_dataset", "click",
    "foodcast.application.step", "foodcast.application.datasets", "foodcast.application.upstream",
    "foodcast.application.fingerprint", "foodcast.application.mlflow_utils", "foodcast.domain.transform",
    "foodcast.domain.feature_engineering", "foodcast.domain.forecast",
)
PRELOAD_IDLE = (
    "sklearn.ensemble", "foodcast.domain.multi_model", "skops.io", "mlflow.sklearn", "mlflow.pyfunc",
    "mlflow.models", "foodcast.application.models", "sklearn.model_selection", "plotly.graph_objects",
    "plotly.io", "foodcast.application.metrics",
)


@dataclass
class Resolution:
    """How a stage was resolved in this pipeline run."""

    run_id: str
    status: str  # "reused" or "launched"
    cache_key: str


class StageFailed(Exception):
    """A launched stage ended FAILED; carries its one-line error."""

    def __init__(self, stage: str, run_id: str | None, message: str):
        super().__init__(f"stage {stage} failed (run {run_id or 'unknown'}): {message}")


def batch_weeks(stage: str, options: dict):
    """The weeks of batches ``stage`` reads, or ``None`` for stages that read none."""
    if stage == catalog.LOAD:
        return options["start_week"], options["end_week"]
    if stage == catalog.FUTURE:
        return options["next_week"] - options["lag_in_week"], options["next_week"] - 1
    return None


def max_parallel() -> int:
    """How many stages may run at once: ``FOODCAST_MAX_PARALLEL``, else the number of cores."""
    value = os.environ.get("FOODCAST_MAX_PARALLEL") or os.cpu_count() or 1
    try:
        return max(1, int(value))
    except ValueError:
        raise click.ClickException(f"FOODCAST_MAX_PARALLEL must be a whole number, got {value!r}") from None


class Pipeline:
    """One resolution of the stage DAG under the active (parent) run.

    Parameters
    ----------
    options : dict
        Checked ``main`` options (``next_week`` resolved, ``use_cache`` a bool).
    project_dir : Path
        The MLflow project launched for each stage.
    """

    def __init__(self, options: dict, project_dir: Path = PROJECT_ROOT):
        self.options = options
        self.project_dir = Path(project_dir)
        self.client = MlflowClient()
        self.declared = entry_point_params(self.project_dir)
        self.sources = source_fingerprint(self.project_dir)
        self.resolved: dict[str, Resolution] = {}
        self.max_parallel = max_parallel()

    def stage_params(self, stage: str) -> dict:
        """The stage's MLproject parameters: main's options plus its upstream run ids."""
        values = {k: v for k, v in self.options.items() if k in self.declared[stage]}
        values.update({catalog.run_id_param(u): self.resolved[u].run_id for u in catalog.UPSTREAM[stage]})
        return normalise_params(self.declared[stage], values)

    def stage_key(self, stage: str, params: dict) -> str:
        weeks = batch_weeks(stage, self.options)
        batches = batches_fingerprint(data_dir(), *weeks) if weeks else None
        return cache_key(stage, params, self.sources, batches)

    def run(self, parent_id: str, experiment_id: str) -> dict[str, Resolution]:
        """Resolve every stage, launching ready ones concurrently; raise on the first failure
        once the stages already running have ended (so that they can be reused next time)."""
        server = ForkServer(PRELOAD_READY, PRELOAD_IDLE, self.project_dir) if prefork_enabled() else None
        try:
            resolved = self._resolve(parent_id, experiment_id, server)
        except BaseException:
            if server is not None:
                server.stop(grace=10)  # interrupted: let the forks report how they ended
            raise
        if server is not None:
            server.stop()  # every stage has ended
        return resolved

    def _resolve(self, parent_id: str, experiment_id: str, server: ForkServer | None) -> dict[str, Resolution]:
        done: queue.Queue = queue.Queue()
        running: set[str] = set()
        failures: list[StageFailed] = []
        while len(self.resolved) < len(catalog.STAGES):
            for stage in catalog.STAGES:
                if stage in self.resolved or stage in running or failures:
                    continue
                if not all(u in self.resolved for u in catalog.UPSTREAM[stage]):
                    continue
                if len(running) >= self.max_parallel:
                    break
                params = self.stage_params(stage)
                key = self.stage_key(stage, params)
                hit = None
                if self.options["use_cache"]:
                    hit = find_reusable(self.client, experiment_id, stage, key)
                if hit is not None:
                    self.resolved[stage] = Resolution(hit.info.run_id, "reused", key)
                    click.echo(f"{stage}: reused run {hit.info.run_id}")
                    continue
                if server is not None and server.process is None:
                    server.start()  # only once a stage must run: a fully reused pipeline needs none
                    logger.info("stages start as forks of a server with their libraries imported "
                                "(pid %d); FOODCAST_PREFORK=0 starts them cold", server.process.pid)
                running.add(stage)
                click.echo(f"{stage}: launching")
                threading.Thread(
                    target=self._launch, args=(stage, params, key, parent_id, experiment_id, done),
                    name=f"foodcast-{stage}", daemon=True,
                ).start()
            if not running:
                break
            stage, outcome = done.get()
            running.discard(stage)
            if isinstance(outcome, Exception):
                failures.append(outcome)
            else:
                self.resolved[stage] = outcome
                click.echo(f"{stage}: launched run {outcome.run_id}")
        if failures:
            raise failures[0]
        return self.resolved

    def _launch(self, stage, params, key, parent_id, experiment_id, done):
        # MLflow keeps the active run per thread: resuming the parent here makes mlflow.run
        # nest the stage's run under it.
        try:
            mlflow.start_run(run_id=parent_id)
            submitted = mlflow.run(
                str(self.project_dir), entry_point=stage, parameters=params,
                experiment_id=experiment_id, env_manager="local", synchronous=True,
            )
            self.client.log_batch(submitted.run_id, tags=[
                RunTag(catalog.CACHE_KEY_TAG, key), RunTag(catalog.cache_index_tag(key), stage),
            ])
            done.put((stage, Resolution(submitted.run_id, "launched", key)))
        except ExecutionException:
            done.put((stage, self._failure(stage, parent_id, experiment_id)))
        except Exception as exc:  # a bug, or the tracking store failing: report, don't hang main
            logger.exception("%s could not be launched", stage)
            done.put((stage, StageFailed(stage, None, f"{type(exc).__name__}: {exc}")))

    def _failure(self, stage, parent_id, experiment_id) -> StageFailed:
        """The failed child's one-line error, from the tag its step left."""
        runs = self.client.search_runs(
            experiment_ids=[experiment_id],
            filter_string=(f"tags.`mlflow.parentRunId` = '{parent_id}' AND "
                           f"tags.`mlflow.project.entryPoint` = '{stage}'"),
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        if not runs:
            return StageFailed(stage, None, "the run could not be created")
        run = runs[0]
        message = run.data.tags.get(catalog.ERROR_TAG, "it crashed; see its output above")
        return StageFailed(stage, run.info.run_id, message)


def record_lineage(client: MlflowClient, run_id: str, resolved: dict[str, Resolution]) -> None:
    """Log lineage.json, the per-stage run id tags and the validation headline metrics."""
    lineage = {stage: asdict(resolved[stage]) for stage in catalog.STAGES}
    tags = {f"foodcast.{stage}_run_id": r.run_id for stage, r in resolved.items()}
    for stage, r in resolved.items():
        tags[f"foodcast.{stage}_status"] = r.status
    validation = client.get_run(resolved[catalog.VALIDATE].run_id).data.metrics
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric(name, validation[name], now, 0) for name in HEADLINE_METRICS if name in validation],
        tags=[RunTag(name, value) for name, value in tags.items()],
    )
    mlflow.log_dict(lineage, catalog.LINEAGE_FILE)


def run_pipeline(options: dict) -> dict[str, Resolution]:
    """Start (or resume, under ``mlflow run``) the parent run and resolve the whole DAG.

    Raises
    ------
    click.ClickException
        One line naming the failed stage, its run id and its error.
    """
    configure_logging()
    with mlflow.start_run() as parent:
        parent_id, experiment_id = parent.info.run_id, parent.info.experiment_id
        given = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in options.items()}
        existing = parent.data.params
        mlflow.log_params({k: v for k, v in given.items() if k not in existing})
        mlflow.set_tags({catalog.STEP_TAG: MAIN, "foodcast.next_week": options["next_week"]})
        click.echo(f"main: run {parent_id} (experiment {experiment_id})")
        started = time.perf_counter()
        pipeline = Pipeline(options)
        try:
            resolved = pipeline.run(parent_id, experiment_id)
        except StageFailed as exc:
            mlflow.set_tag(catalog.ERROR_TAG, str(exc))
            raise click.ClickException(str(exc)) from None
        record_lineage(pipeline.client, parent_id, resolved)
        click.echo(
            f"main: {sum(r.status == 'launched' for r in resolved.values())} launched, "
            f"{sum(r.status == 'reused' for r in resolved.values())} reused in "
            f"{time.perf_counter() - started:.1f}s; predictions: runs:/{resolved[catalog.PREDICT].run_id}/"
            f"{catalog.artifact_path(catalog.Y_PRED)}"
        )
    exit_without_final_collection()
    return resolved

