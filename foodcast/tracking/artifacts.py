"""Run artifacts: logged with their checksums, and read back only if they still match them.

Each file a stage logs (:func:`mlflow_log_pandas`, :func:`mlflow_log_plotly`) gets a tag
``foodcast.sha256.<artifact path>`` with the SHA-256 of its bytes, and each model a tag
``foodcast.sha256.model.<name>`` with a digest of the files it was logged with, listed in a tag
``foodcast.files.model.<name>`` (:func:`model_checksums`). Only those files count: MLflow adds
files to a logged model's folder after the run (``registered_model_meta``, when the model is
loaded or served by a ``models:/`` URI), and these are not a change of the model; a logged file
changed or gone is.

One rule decides whether an output can be used (:func:`checksum_problem`): its recorded
checksum exists and the stored bytes match it. The cache reuses a run only if all its outputs
pass (:func:`outputs_problem`), and a stage reading an upstream artifact refuses one that does
not (:func:`read_frame`).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import mlflow
import pandas as pd
from mlflow.entities import Run
from mlflow.exceptions import MlflowException

from foodcast.digests import file_digest, files_digest, tree_files
from foodcast.errors import FoodcastError
from foodcast.runtime.processes import temp_dir
from foodcast.tracking.names import (
    MONEY_COLUMN,
    TIMESTAMP_FORMAT,
    Artifact,
    artifact_path,
    artifact_tag,
    model_files_tag,
    model_tag,
)
from foodcast.tracking.plot_files import PNG_SWITCH, PngPainter, offline_html, png_painter
from foodcast.tracking.runs import known_run

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------ logging


def _log_file(write: Callable[[str], object], directory: str, file_name: str) -> None:
    """Write ``file_name`` in a private temporary directory with ``write(path)``, log it under
    ``directory``, and record its checksum."""
    with temp_dir("log") as tmp:
        path = os.path.join(tmp, file_name)
        write(path)
        _log_path(path, directory)


def _log_path(path: str, directory: str) -> None:
    """Log the file at ``path`` under ``directory`` and record its checksum."""
    digest = file_digest(path)
    mlflow.log_artifact(path, directory)
    mlflow.set_tag(artifact_tag(f"{directory}/{os.path.basename(path)}"), digest)


def to_cents(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its money columns (``names.MONEY_COLUMN``: cash-in, lags, predictions,
    interval bounds) rounded to the cent; other columns untouched."""
    money = [c for c in df.columns if re.fullmatch(MONEY_COLUMN, str(c)) and df[c].dtype.kind == "f"]
    return df.round(dict.fromkeys(money, 2)) if money else df


def mlflow_log_pandas(df: pd.DataFrame, artifact_path: str, file_name: str) -> None:
    """Log ``df`` as ``<artifact_path>/<file_name>`` on the active run, with its checksum.

    In a CSV file, money columns are written to the cent (:func:`to_cents`) and timestamps
    in ISO 8601 (``2018-10-29T00:00:00``).

    Parameters
    ----------
    df : DataFrame
        Logged without its index (``reset_index()`` first to keep it).
    artifact_path : str
        Directory inside the run's artifacts.
    file_name : str
        ``*.csv`` or ``*.json`` (records orientation, ISO dates).
    """
    if file_name.endswith(".csv"):
        table = to_cents(df)
        _log_file(
            lambda p: table.to_csv(p, index=False, lineterminator="\n", date_format=TIMESTAMP_FORMAT),
            artifact_path,
            file_name,
        )
    elif file_name.endswith(".json"):
        _log_file(lambda p: df.to_json(p, orient="records", date_format="iso", indent=1), artifact_path, file_name)
    else:
        raise ValueError(f"mlflow_log_pandas writes .csv or .json files, not {file_name!r}")


def mlflow_log_plotly(fig: Any, artifact_path: str, file_name: str, painter: PngPainter | None = None) -> None:
    """Log a plotly figure as an HTML page that opens offline, and a PNG of it beside it, each
    with its checksum.

    The page carries plotly.js packed (:func:`~foodcast.tracking.plot_files.offline_html`,
    about 2 MB). The PNG (same name, ``.png``) is drawn with kaleido and a Chromium; unless
    ``FOODCAST_PLOT_PNG=0``. If it cannot be drawn (no Chromium, one that hangs), a warning
    says why and the run goes on without it.

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
    artifact_path : str
        Directory inside the run's artifacts.
    file_name : str
        ``*.html``.
    painter : PngPainter, optional
        Started earlier with :func:`~foodcast.tracking.plot_files.png_painter`, so that its
        Chromium is up by now; else one is started here.
    """
    if not file_name.endswith(".html"):
        raise ValueError(f"mlflow_log_plotly writes .html files, not {file_name!r}")
    page = offline_html(fig)
    _log_file(lambda p: Path(p).write_text(page, encoding="utf-8"), artifact_path, file_name)
    painter = painter or png_painter()
    if painter is None:
        return
    png_name = f"{file_name.removesuffix('.html')}.png"
    with temp_dir("png") as tmp:
        path = os.path.join(tmp, png_name)
        problem = painter.draw(fig, os.path.join(tmp, "figure.json"), path)
        if problem is None:
            _log_path(path, artifact_path)
        else:
            logger.warning("no %s/%s: %s (%s=0 skips the PNGs)", artifact_path, png_name, problem, PNG_SWITCH)


# ---------------------------------------------------------------------------------- checksums


def _local(uri: str) -> Path | None:
    """The local path of a ``file:`` URI (or of a plain path), else ``None``."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    return None


@contextmanager
def _stored(uri: str, tree: bool) -> Iterator[Path | None]:
    """The artifact (``tree``: the directory) at ``uri`` as a local path, ``None`` if it is
    missing: in place when the artifact store is a local directory, else downloaded for the
    duration of the block."""
    local = _local(uri)
    if local is not None:
        yield local if (local.is_dir() if tree else local.is_file()) else None
        return
    with temp_dir("digest") as tmp:
        try:
            downloaded = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
        except Exception:  # noqa: BLE001 - whatever the store raises, the artifact is not there
            downloaded = None
        yield None if downloaded is None else Path(downloaded)


def digest_at(uri: str, tree: bool = False, files: Sequence[str] | None = None) -> str | None:
    """Checksum of the artifact (``tree``: the directory) at ``uri``; ``None`` if it is missing.

    ``files``: of the directory, only these files (paths relative to it; one that is gone makes
    a digest that differs from the one with it there). Default: every file in it.
    """
    with _stored(uri, tree) as local:
        if local is None:
            return None
        if not tree:
            return file_digest(local)
        return files_digest(local, [local / name for name in (tree_files(local) if files is None else files)])


def model_checksums(name: str, location: str) -> dict[str, str]:
    """The tags that record logged model ``name``, stored at ``location``, as it was logged: the
    list of its files and their digest.

    Raises
    ------
    FoodcastError
        If nothing is stored there.
    """
    with _stored(location, tree=True) as local:
        if local is None:
            raise FoodcastError(f"the logged model {name} has no files at {location}")
        files = tree_files(local)
        digest = files_digest(local, [local / f for f in files])
    return {model_tag(name): digest, model_files_tag(name): json.dumps(files)}


def model_problem(tags: Mapping[str, str], name: str, location: str) -> str | None:
    """The checksum rule for logged model ``name`` stored at ``location``, whose run has
    ``tags``: only the files it was logged with count (every file, for a run logged before the
    list was recorded)."""
    listed = tags.get(model_files_tag(name))
    files = json.loads(listed) if listed else None
    return checksum_problem(f"model {name}", tags.get(model_tag(name)), digest_at(location, tree=True, files=files))


def checksum_problem(what: str, recorded: str | None, actual: str | None) -> str | None:
    """The checksum rule, for an output called ``what``: why it cannot be used, or ``None``.

    An output is used only if its run recorded a checksum and the stored bytes still match it
    (``actual`` is ``None`` when nothing is stored there).
    """
    if recorded is None:
        return f"{what} has no recorded checksum"
    if actual is None:
        return f"{what} is missing"
    if actual != recorded:
        return f"{what} has changed since the run finished (its checksum differs from the one recorded)"
    return None


def outputs_problem(
    run: Run, artifacts: Iterable[Artifact] = (), models: Mapping[str, str] | None = None
) -> str | None:
    """Why ``run``'s outputs are not those it recorded, or ``None`` if they all are.

    Parameters
    ----------
    run : mlflow.entities.Run
        With its tags (a search result will do).
    artifacts : iterable of (str, str)
        ``(directory, file)`` of run artifacts to check.
    models : dict, optional
        ``{name: artifact location}`` of logged models to check.
    """
    tags = run.data.tags
    for artifact in artifacts:
        path = artifact_path(artifact)
        problem = checksum_problem(path, tags.get(artifact_tag(path)), digest_at(f"{run.info.artifact_uri}/{path}"))
        if problem is not None:
            return problem
    for name, location in (models or {}).items():
        problem = model_problem(tags, name, location)
        if problem is not None:
            return problem
    return None


# ---------------------------------------------------------------------------------- reading


def read_frame(
    run_id: str, artifact: Artifact, stage: str, parse_dates: Iterable[str] = ("order_date",)
) -> pd.DataFrame:
    """Download a CSV artifact of a checked ``stage`` run and read it, if its checksum matches.

    Raises
    ------
    FoodcastError
        If the run has no such artifact, it fails the checksum rule (:func:`checksum_problem`),
        or it is not a CSV file.
    """
    path = artifact_path(artifact)
    recorded = known_run(run_id).data.tags.get(artifact_tag(path))
    with temp_dir("read") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=tmp)
        except (MlflowException, OSError):
            raise FoodcastError(f"run {run_id} ({stage}) has no artifact {path}") from None
        if not os.path.isfile(local):
            raise FoodcastError(f"run {run_id} ({stage}) has no artifact {path}")
        problem = checksum_problem(f"artifact {path}", recorded, file_digest(local))
        if problem is not None:
            raise FoodcastError(f"run {run_id} ({stage}): {problem}")
        try:
            # A restaurant's name is a directory name, 007 as well as r007: text, never a number.
            return pd.read_csv(local, parse_dates=list(parse_dates), dtype={"restaurant": str})
        except (ValueError, pd.errors.ParserError) as exc:
            raise FoodcastError(
                f"run {run_id} ({stage}): artifact {path} cannot be read as CSV ({' '.join(str(exc).split())[:200]})"
            ) from None
