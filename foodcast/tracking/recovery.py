"""Runs left RUNNING by a pipeline that is gone: found and marked FAILED, with the reason.

A pipeline killed with ``kill -9`` (or by a power cut) cannot end its runs; they would show as
RUNNING in the UI forever and, for a cache, never be reusable nor clearly dead. ``main`` looks
for such runs in its experiment when it starts, and when it is interrupted, for its own
children.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Set as AbstractSet

from mlflow.entities import Run, RunStatus
from mlflow.tracking import MlflowClient

from foodcast.runtime.processes import HOST_TAG, PID_TAG, owner_alive
from foodcast.tracking.names import ERROR_TAG, PARENT_TAG, STEP_TAG

UNSAID = "its process ended without saying why (killed?): `mlflow run` marked the run FAILED when its command died"


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
