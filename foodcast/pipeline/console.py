"""What ``main`` prints: one line per stage, then the result, MLflow's own chatter kept quiet.

By default the console says, per stage, whether it was launched or reused, its run id and its
seconds; then a closing block: the week forecast and where the forecast is (a local path when
the artifact store is local, else the command that downloads it), the scorecards of the weeks
scored, promote's decision and the parent run's page in the UI. MLflow's INFO lines (in main
and in the stages) and the stages' own INFO lines come back with ``-P verbose=true`` or
``FOODCAST_LOG_LEVEL=INFO``; MLflow's "View run" links stay off (the block links the parent run).
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from mlflow.entities import Run

from foodcast.data.batch_files import WEEK_ONE
from foodcast.pipeline.lineage import scorecard_line
from foodcast.settings import LOG_LEVEL_VARIABLE as LOG_LEVEL_ENV
from foodcast.settings import log_level
from foodcast.tracking.ui_links import run_href

UI_DEFAULT = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default


def verbose(option: bool) -> bool:
    """Whether the console shows the log lines: ``-P verbose=true``, or ``FOODCAST_LOG_LEVEL``
    INFO or DEBUG."""
    return option or log_level() in ("INFO", "DEBUG")


def quiet_mlflow(loud: bool) -> None:
    """Set the log levels of this process (MLflow's loggers, the launches' ``mlflow.projects``
    lines) and, through the environment, of the stages it launches: WARNING unless ``loud``.
    MLflow's "View run" lines are never printed (the closing block links the run)."""
    level = "INFO" if loud else "WARNING"
    os.environ.setdefault(LOG_LEVEL_ENV, level)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", level)
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    logging.getLogger("mlflow").setLevel(os.environ["MLFLOW_LOGGING_LEVEL"].upper())
    logging.getLogger("foodcast").setLevel(log_level() or level)


def stage_line(label: str, status: str, run_id: str, seconds: float | None) -> str:
    """``train: launched run <id> (3.2s)`` or ``train: reused run <id> (3.2s saved)``."""
    line = f"{label}: {status} run {run_id}"
    if seconds is not None:
        line += f" ({seconds:.1f}s{' saved' if status == 'reused' else ''})"
    return line


def run_seconds(run: Run) -> float | None:
    """How long a finished run took."""
    start, end = run.info.start_time, run.info.end_time
    return (end - start) / 1000 if start and end else None


def artifact_location(run: Run, path: str) -> str:
    """A local path to artifact ``path`` of ``run`` when the artifact store is a local directory
    and the file is there; else the command that downloads it."""
    root = urlparse(run.info.artifact_uri or "")
    if root.scheme in ("", "file"):
        local = Path(unquote(root.path)) / path
        if local.is_file():
            return str(local)
    return f"mlflow artifacts download --run-id {run.info.run_id} --artifact-path {path} --dst-path ."


def ui_link(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """The run's page: on the tracking server, or on ``mlflow ui`` started on a local store."""
    href = run_href(experiment_id, run_id)
    if tracking_uri.startswith(("http://", "https://")):
        return f"{tracking_uri.rstrip('/')}/{href}"
    return f"{UI_DEFAULT}/{href}  (once `mlflow ui --backend-store-uri {tracking_uri}` runs)"


def closing_block(
    summary: str,
    week_line: str,
    forecast: str | None,
    scores: Sequence[tuple[str, Mapping[str, float] | None, str | None]],
    promote: str | None,
    link: str,
    left_out: Sequence[str] = (),
) -> list[str]:
    """The lines after the stages' (each of ``scores``: a week, its evaluate run's metrics or why
    it was not scored; each of ``left_out``: a restaurant the forecast leaves out, and why)."""
    lines = [summary, f"  week:      {week_line}"]
    if forecast is not None:
        lines.append(f"  forecast:  {forecast}")
    lines += [f"  left out:  {note}" for note in left_out]
    for week, metrics, reason in scores:
        if metrics is not None:
            lines.append(f"  scorecard: {scorecard_line(week, metrics)}")
        else:
            lines.append(f"  scorecard: week {week} not scored: {reason}")
    if promote:
        lines.append(f"  promote:   {promote}")
    lines.append(f"  UI:        {link}")
    return lines


def week_dates(week: int) -> str:
    """``Mon 2019-12-23 to Sun 2019-12-29``."""
    first = WEEK_ONE + datetime.timedelta(weeks=week - 1)
    return f"Mon {first.isoformat()} to Sun {(first + datetime.timedelta(days=6)).isoformat()}"
