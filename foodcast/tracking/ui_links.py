"""Links into the MLflow UI for run descriptions and dataset sources.

The UI (MLflow 3.17) routes pages in the URL fragment: ``#/experiments/<id>/runs/<id>``. A
link written as just that fragment resolves against the page it sits on, so it keeps working
whatever host, port or ``--static-prefix`` serves the UI; ``/#/...`` breaks under a prefix and
``../runs/<id>`` leaves the UI. Links in a run description always open in a new tab (the UI
adds ``target="_blank"``). What each form does on screen is recorded in docs/ui-findings.md
and checked in a browser by tests/test_ui.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from urllib.parse import quote, urlencode

# Opens experiment pages on the "Model training" side of the UI's GenAI / Model training
# switch. The experiment tag mlflow.experimentKind no longer decides it in 3.17: the switch
# is a per-browser preference, which this query parameter overrides for one page.
TRAINING_VIEW = "workflowType=machine_learning"


def run_href(experiment_id: str, run_id: str, artifact_path: str | None = None) -> str:
    """The run's page, or its Artifacts tab with ``artifact_path`` selected and previewed.

    Parameters
    ----------
    experiment_id, run_id : str
    artifact_path : str, optional
        A file under the run's artifact root, e.g. ``predictions/y_pred.csv``.

    Returns
    -------
    str
        ``#/experiments/<experiment_id>/runs/<run_id>[/artifacts/<artifact_path>]``.
    """
    href = f"#/experiments/{experiment_id}/runs/{run_id}"
    if artifact_path:
        href += "/artifacts/" + quote(artifact_path.strip("/"))
    return href


def runs_table_href(experiment_id: str, run_ids: Iterable[str]) -> str:
    """The experiment's runs table showing exactly ``run_ids`` (each under its own parent).

    A run has one parent, so a stage reused from an earlier ``main`` stays nested there; this
    link lists today's stages together wherever they were launched.
    """
    ids = ", ".join(f"'{run_id}'" for run_id in run_ids)
    query = urlencode({"searchFilter": f"attributes.run_id IN ({ids})"}, quote_via=quote)
    return f"#/experiments/{experiment_id}/runs?{TRAINING_VIEW}&{query}"


def compare_href(experiment_id: str, run_ids: Sequence[str]) -> str:
    """The UI's comparison of ``run_ids``: names, ids (links), times, parameters and metrics
    side by side, in the order given."""
    query = urlencode({"runs": json.dumps(list(run_ids)), "experiments": json.dumps([experiment_id])}, quote_via=quote)
    return f"#/compare-runs?{query}"


def md_link(text: str, href: str) -> str:
    """A markdown link; brackets in ``text`` are escaped so they cannot end it early."""
    escaped = text.replace("\\", "\\\\").replace("[", "\\[").replace("]", "\\]")
    return f"[{escaped}]({href})"


def md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A markdown table (GitHub flavour, which the UI renders); ``|`` in a cell is escaped."""

    def line(cells: Iterable[object]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    lines = [line(header), line(["---"] * len(header))]
    lines += [line(row) for row in rows]
    return "\n".join(lines)
