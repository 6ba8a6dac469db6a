"""The frame every stage script runs in: one MLflow run, parameters first, clean user errors."""

from __future__ import annotations

import logging
from contextlib import contextmanager

import click
import mlflow
from mlflow.exceptions import MlflowException

from foodcast.application import catalog
from foodcast.application.access import store_failure
from foodcast.application.fingerprint import handed_key
from foodcast.application.processes import Interrupted, interruptible, owner_tags
from foodcast.errors import FoodcastError
from foodcast.settings import configure_logging

logger = logging.getLogger("foodcast.step")


@contextmanager
def step_run(stage: str, params: dict, upstream: dict | None = None):
    """Run the body of a stage inside its MLflow run.

    The run is the one ``mlflow run`` prepared (``MLFLOW_RUN_ID``) or a new one. Parameters
    are logged first, so a crash still leaves them; the run is tagged
    ``foodcast.step=<stage>``, ``foodcast.upstream.<stage>_run_id=<id>`` per input run, and
    with the process that owns it (host, pid). A :class:`FoodcastError` in the body marks the
    run FAILED with a ``foodcast.error`` tag and ends the command with one line on stderr and
    exit code 1; so does a stop signal (SIGINT, SIGTERM, SIGHUP), with exit code 128 + signal.

    Parameters
    ----------
    stage : str
        Stage name from :mod:`foodcast.application.catalog`.
    params : dict
        The stage's parameters, as ``mlflow run`` passes them (``Param.text``).
    upstream : dict, optional
        ``{upstream stage: run id}`` of the runs this stage consumes.
    """
    configure_logging()
    upstream = upstream or {}
    run_id = None
    try:
        with interruptible(), mlflow.start_run() as run:
            run_id = run.info.run_id
            logged = run.data.params  # `mlflow run` logged them already, as it passed them
            mlflow.log_params({k: v for k, v in params.items() if k not in logged})
            tags = {catalog.STEP_TAG: stage, "mlflow.runName": stage, **owner_tags()}
            tags.update({catalog.upstream_tag(s): rid for s, rid in upstream.items()})
            key = handed_key(stage, params)
            if key is not None:
                # Launched by main: the run carries its cache key from the start, so that once
                # it ends FINISHED the cache finds it even if main is killed a moment later.
                tags.update(catalog.cache_tags(key, stage))
            mlflow.set_tags(tags)
            logger.info("%s: run %s started", stage, run_id)
            try:
                yield run
            except (FoodcastError, Interrupted) as exc:
                mlflow.set_tag(catalog.ERROR_TAG, str(exc)[:5000])
                _describe(stage, run_id, str(exc))
                logger.debug("%s failed", stage, exc_info=True)
                raise
            _describe(stage, run_id)
            logger.info("%s: run %s finished", stage, run_id)
    except FoodcastError as exc:
        raise click.ClickException(f"{stage} (run {run_id}): {exc}") from None
    except Interrupted as exc:
        click.echo(f"Error: {stage} (run {run_id or 'not started'}): {exc}; the run is marked FAILED", err=True)
        raise SystemExit(exc.exit_code) from None
    except MlflowException as exc:  # the tracking store failed a request: one line, not a traceback
        raise click.ClickException(f"{stage} (run {run_id or 'not started'}): {store_failure(exc)}") from None
    finally:
        exit_without_final_collection()


def _describe(stage: str, run_id: str, error: str | None = None) -> None:
    """Write the run's description (what it did, links to its inputs and outputs)."""
    from foodcast.application.lineage import NOTE_TAG, stage_description
    from foodcast.application.stages import STAGES

    if stage in STAGES:
        run = mlflow.tracking.MlflowClient().get_run(run_id)
        mlflow.set_tag(NOTE_TAG, stage_description(STAGES[stage], run, error))


def exit_without_final_collection() -> None:
    """Let the process end without the garbage collector walking every object first.

    A process that imported MLflow spends about half a second at exit collecting the objects
    of some 3,000 modules, time every stage (and ``main``, which waits for it) would pay.
    Freezing moves them all out of the collector's reach; the OS reclaims the memory anyway.
    Call it when the process's work is done.
    """
    import gc

    gc.freeze()
