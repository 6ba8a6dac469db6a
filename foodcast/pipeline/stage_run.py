"""The frame every stage command runs in: one MLflow run, parameters first, clean user errors."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import click
import mlflow
from joblib import parallel_config
from joblib.externals.loky import reusable_executor
from mlflow.entities import Run
from mlflow.environment_variables import MLFLOW_RUN_ID
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from foodcast.errors import FoodcastError
from foodcast.pipeline.cache import cache_tags, passed_cache_key
from foodcast.pipeline.lineage import stage_description
from foodcast.pipeline.params import ENGINE
from foodcast.pipeline.stage import Stage
from foodcast.runtime.lifeline import die_with_parent
from foodcast.runtime.processes import Interrupted, exit_without_final_collection, interruptible, owner_tags
from foodcast.settings import configure_logging
from foodcast.tracking import names
from foodcast.tracking.access import open_tracking_store, store_failure

logger = logging.getLogger("foodcast.step")
# The warnings of loky's resource tracker (a process of its own, started with joblib's first
# pool; it inherits the environment): as it ends, it removes what the stage's pools left (those
# joblib replaced along the way, whose clean-up waits for the interpreter's exit, which a stage
# forked by main's server skips) and says so in a UserWarning, noise on a pipeline's console.
QUIET_RESOURCE_TRACKER = "ignore:resource_tracker:UserWarning"


@contextmanager
def stage_run(stage: Stage, params: dict[str, str], upstream: dict[str, str] | None = None) -> Iterator[Run]:
    """Run the body of a stage inside its MLflow run.

    The run is the one ``mlflow run`` prepared (``MLFLOW_RUN_ID``) or a new one. Parameters
    are logged first, so a crash still leaves them; the run is tagged
    ``foodcast.step=<stage>``, ``foodcast.upstream.<stage>_run_id=<id>`` per input run, and
    with the process that owns it (host, pid). A :class:`FoodcastError` in the body marks the
    run FAILED with a ``foodcast.error`` tag and ends the command with one line on stderr and
    exit code 1; so does a stop signal (SIGINT, SIGTERM, SIGHUP), with exit code 128 + signal.

    Parameters
    ----------
    stage : Stage
        The stage whose command runs.
    params : dict
        The stage's parameters, as ``mlflow run`` passes them (``Param.text``).
    upstream : dict, optional
        ``{upstream stage: run id}`` of the runs this stage consumes.
    """
    configure_logging()
    upstream = upstream or {}
    run_id = None
    try:
        if MLFLOW_RUN_ID.get() is None:  # run alone (under `mlflow run` the run is in the store already)
            open_tracking_store()  # one that cannot be opened or created: one line, not MLflow's traceback
        with interruptible(), mlflow.start_run() as run:
            run_id = run.info.run_id
            logged = run.data.params  # `mlflow run` logged them already, as it passed them
            mlflow.log_params({k: v for k, v in params.items() if k not in logged})
            tags = {names.STEP_TAG: stage.name, names.NAME_TAG: stage.name, **owner_tags()}
            tags.update({names.upstream_tag(s): rid for s, rid in upstream.items()})
            passed = passed_cache_key(stage.name, params)
            if passed is not None:
                # Launched by main: the run carries its cache key from the start, so that once
                # it ends FINISHED the cache finds it even if main is killed a moment later.
                tags.update(cache_tags(passed[0], stage.name, passed[1]))
            mlflow.set_tags(tags)
            logger.info("%s: run %s started", stage.name, run_id)
            try:
                # joblib's worker processes (the backtest's) end with the stage even when it is
                # killed outright: each asks for its lifeline as it starts (at once if the
                # stage died while it started)
                lifeline = functools.partial(die_with_parent, os.getpid())
                with parallel_config(backend="loky", initializer=lifeline), _pool_ended(), _engine(params):
                    yield run
            except (FoodcastError, Interrupted) as exc:
                if isinstance(exc, Interrupted):  # the run's clean-up starts: say so at once
                    logger.warning("%s: %s: ending run %s FAILED", stage.name, exc, run_id)
                mlflow.set_tag(names.ERROR_TAG, str(exc)[:5000])
                _describe(stage, run_id, str(exc))
                logger.debug("%s failed", stage.name, exc_info=True)
                raise
            except MlflowException:
                raise  # the store failed: the one line below; a tag would fail as well
            except Exception as exc:
                # A bug: its traceback follows in the output, and the run says what it was.
                mlflow.set_tag(names.ERROR_TAG, f"{type(exc).__name__}: {exc}"[:5000])
                raise
            _describe(stage, run_id)
            logger.info("%s: run %s finished", stage.name, run_id)
    except FoodcastError as exc:
        raise click.ClickException(f"{stage.name} (run {run_id or 'not started'}): {exc}") from None
    except Interrupted as exc:
        click.echo(f"Error: {stage.name} (run {run_id or 'not started'}): {exc}; the run is marked FAILED", err=True)
        raise SystemExit(exc.exit_code) from None
    except MlflowException as exc:  # the tracking store failed a request: one line, not a traceback
        raise click.ClickException(f"{stage.name} (run {run_id or 'not started'}): {store_failure(exc)}") from None
    finally:
        exit_without_final_collection()


@contextmanager
def _engine(params: Mapping[str, str]) -> Iterator[None]:
    """Within: the stage's per-restaurant work on the engine its ``engine`` parameter names (a
    stage without one: this process). With ``spark``, the run is tagged with the Spark
    application once its session starts (``foodcast.spark.*``), and the session stopped, its JVM
    ended, as the body ends."""
    if params.get(ENGINE.name, ENGINE.default) != "spark":
        yield
        return
    try:
        # pyspark is an extra (foodcast[spark]): only engine=spark imports it
        from foodcast.spark.engine import spark_engine  # noqa: PLC0415
    except ImportError as exc:
        raise FoodcastError(
            f"engine=spark needs pyspark ({exc}): pip install 'foodcast[spark]', and a Java runtime"
        ) from None
    with spark_engine(started=mlflow.set_tags):
        yield


@contextmanager
def _pool_ended() -> Iterator[None]:
    """End joblib's process pool, if the body started one (the per-restaurant work, the
    backtest), and remove its temporary files, as the body ends: a stage forked by main's server
    ends with ``os._exit``, which skips joblib's own clean-up at exit, and loky's resource tracker
    then warned on the console of leaked semaphores and folders. The tracker, which removes what
    is left as it ends, is started quiet (:data:`QUIET_RESOURCE_TRACKER`)."""
    before = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = ",".join(w for w in dict.fromkeys((before, QUIET_RESOURCE_TRACKER)) if w)
    try:
        yield
    finally:
        executor = getattr(reusable_executor, "_executor", None)  # the pool joblib reuses (no public getter)
        if executor is not None:
            # joblib's memmapping pool removes its folders as it ends; a plain loky pool has none
            getattr(executor, "terminate", executor.shutdown)(kill_workers=True)
        if before is None:
            os.environ.pop("PYTHONWARNINGS", None)
        else:
            os.environ["PYTHONWARNINGS"] = before


def _describe(stage: Stage, run_id: str, error: str | None = None) -> None:
    """Write the run's description (what it did, links to its inputs and outputs)."""
    run = MlflowClient().get_run(run_id)
    mlflow.set_tag(names.NOTE_TAG, stage_description(stage, run, error))
