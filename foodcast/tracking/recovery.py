"""Runs left RUNNING by a pipeline that is gone: found and marked FAILED, with the reason.

A pipeline killed with ``kill -9`` (or by a power cut) cannot end its runs; they would show as
RUNNING in the UI forever and, for a cache, never be reusable nor clearly dead. ``main`` looks
for such runs in its experiment when it starts, and when it is interrupted, for its own
children. So is a run ``mlflow run`` made and then died before its command started (e.g. it
failed to build the conda environment): it names no owner; RUNNING for over an hour with no
child run, it is taken for dead.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from collections.abc import Set as AbstractSet

from mlflow.entities import Run, RunStatus
from mlflow.tracking import MlflowClient

from foodcast.runtime.processes import HOST_TAG, PID_TAG, owner_alive
from foodcast.tracking.names import ERROR_TAG, PARENT_TAG, STEP_TAG

UNSAID = "its process ended without saying why (killed?): `mlflow run` marked the run FAILED when its command died"

ENTRY_POINT_TAG = "mlflow.project.entryPoint"  # on the runs `mlflow run` makes
NEVER_STARTED_AFTER = 3600.0  # seconds a run made by `mlflow run` may wait for its command


def never_started(run: Run, now: float | None = None) -> bool:
    """Whether ``run`` (RUNNING) looks like one ``mlflow run`` made and never started a command
    in: no owner named (every command of ours names itself at once), no parent, made by
    ``mlflow run``, started over ``NEVER_STARTED_AFTER`` seconds ago. (That no run nests under
    it is checked in the store: :func:`fail_abandoned_runs`.)"""
    tags = run.data.tags
    age = (now if now is not None else time.time()) - run.info.start_time / 1000
    return PID_TAG not in tags and PARENT_TAG not in tags and ENTRY_POINT_TAG in tags and age > NEVER_STARTED_AFTER


def abandoned_runs(runs: Iterable[Run], keep: AbstractSet[str] = frozenset()) -> dict[str, str]:
    """Which of these RUNNING runs no process will ever end, and why.

    A run is abandoned when the process its tags name as owner is gone (same host), or, when
    its owner is not known to be alive, when its parent run has ended or is itself abandoned.

    Parameters
    ----------
    runs : list of Run
        The RUNNING runs of an experiment.
    keep : set of str
        Run ids never to report (e.g. the current pipeline's own run).

    Returns
    -------
    dict
        ``{run id: reason}``.
    """
    running = {r.info.run_id: r for r in runs}
    abandoned: dict[str, str] = {}
    for run_id, run in running.items():
        tags = run.data.tags
        if run_id not in keep and owner_alive(tags) is False:
            abandoned[run_id] = (
                f"left RUNNING by process {tags[PID_TAG]} on {tags[HOST_TAG]}, which has ended (killed?)"
            )
    changed = True
    while changed:  # a stage of an abandoned pipeline, of a stage of it...
        changed = False
        for run_id, run in running.items():
            parent = run.data.tags.get(PARENT_TAG)
            if run_id in abandoned or run_id in keep or parent is None or owner_alive(run.data.tags):
                continue
            if parent in abandoned:
                abandoned[run_id] = f"its pipeline (run {parent}) was left RUNNING by a process that has ended"
            elif parent not in running:
                abandoned[run_id] = f"its pipeline (run {parent}) ended while it was still RUNNING"
            else:
                continue
            changed = True
    return abandoned


def fail_abandoned_runs(
    client: MlflowClient, experiment_id: str, keep: AbstractSet[str] = frozenset(), parent_id: str | None = None
) -> dict[str, str]:
    """Mark FAILED, with a ``foodcast.error`` tag saying why, the abandoned RUNNING runs of an
    experiment (or only the children of ``parent_id``).

    Returns
    -------
    dict
        ``{run id: reason}`` of the runs marked.
    """
    query = "attributes.status = 'RUNNING'"
    if parent_id is not None:
        query += f" AND tags.`{PARENT_TAG}` = '{parent_id}'"
    runs = client.search_runs([experiment_id], filter_string=query, max_results=1000)
    if parent_id is not None:  # its children are abandoned by it: it is ending
        found = {
            r.info.run_id: "its pipeline was interrupted before it ended" for r in runs if not owner_alive(r.data.tags)
        }
    else:
        found = abandoned_runs(runs, keep)
        for run in runs:
            if run.info.run_id in keep or not never_started(run):
                continue
            nested = client.search_runs([experiment_id], f"tags.`{PARENT_TAG}` = '{run.info.run_id}'", max_results=1)
            if not nested:
                found[run.info.run_id] = (
                    f"RUNNING for over {NEVER_STARTED_AFTER / 3600:.0f} h with no owner and no stage: "
                    "its `mlflow run` ended before its command started"
                )
    for run_id, reason in found.items():
        client.set_tag(run_id, ERROR_TAG, reason)
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
    return found


def explain_silent_failures(client: MlflowClient, experiment_id: str) -> list[str]:
    """Tag with ``foodcast.error`` the FAILED runs of foodcast that carry no reason: a process
    killed outright (``kill -9`` of ``main.py``) cannot say why, and ``mlflow run`` marks its
    run FAILED and nothing more. Returns their ids."""
    query = f"attributes.status = 'FAILED' AND tags.`{STEP_TAG}` IS NOT NULL AND tags.`{ERROR_TAG}` IS NULL"
    runs = client.search_runs([experiment_id], filter_string=query, max_results=1000)
    for run in runs:
        client.set_tag(run.info.run_id, ERROR_TAG, UNSAID)
    return [run.info.run_id for run in runs]
