"""Record the tables a step consumed as MLflow datasets whose source the UI shows.

A table read from an upstream run is a dataset whose source is that run's artifact: its
``runs:/<run_id>/<path>`` address for the API, and a link the MLflow UI follows to the run's
Artifacts tab with the file selected (the UI displays the source of ``http`` / ``external``
datasets as a link, and nothing for custom types). A table built from the weekly batches is a
dataset whose source is the data directory. Names say what the table is (file, weeks, stage,
run), and extra profile lines (which the UI lists as ``key: value``) say how it was read.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.dataset_source_registry import register_dataset_source, resolve_dataset_source
from mlflow.data.pandas_dataset import PandasDataset
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from foodcast.data.chain import Reader, read_chain, read_restaurants
from foodcast.data.coverage import Coverage, batches_fingerprint
from foodcast.data.orders import read_batches
from foodcast.errors import FoodcastError
from foodcast.settings import workers
from foodcast.tracking import names
from foodcast.tracking.artifacts import read_frame
from foodcast.tracking.runs import check_run, known_run
from foodcast.tracking.ui_links import run_href


class RunArtifactDatasetSource(DatasetSource):
    """A dataset stored as an artifact of an MLflow run, addressed as ``runs:/<run_id>/<path>``.

    Its type is ``external`` so that the UI shows it as a link (to the run's artifact); the
    ``runs:/`` URI is kept beside the link for the API (``mlflow.data.get_source``).

    Parameters
    ----------
    uri : str
        ``runs:/<run_id>/<artifact path>``.
    experiment_id : str
        The experiment of that run (part of the UI link).
    """

    def __init__(self, uri: str, experiment_id: str):
        self._uri = uri
        self._experiment_id = str(experiment_id)

    @property
    def uri(self) -> str:
        """The ``runs:/`` URI of the artifact."""
        return self._uri

    @property
    def url(self) -> str:
        """The link to the artifact in the MLflow UI (relative: any host, port or prefix)."""
        run_id, path = self._uri[len("runs:/") :].split("/", 1)
        return run_href(self._experiment_id, run_id, path)

    @staticmethod
    def _get_source_type() -> str:
        return "external"

    def load(self, dst_path: str | None = None) -> str:
        """Download the artifact; returns its local path."""
        return mlflow.artifacts.download_artifacts(artifact_uri=self._uri, dst_path=dst_path)

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return isinstance(raw_source, str) and raw_source.startswith("runs:/")

    @classmethod
    def _resolve(cls, raw_source: str) -> RunArtifactDatasetSource:
        run_id = raw_source[len("runs:/") :].split("/", 1)[0]
        return cls(raw_source, MlflowClient().get_run(run_id).info.experiment_id)

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self._uri, "url": self.url, "experiment_id": self._experiment_id}

    @classmethod
    def from_dict(cls, source_dict: dict[str, Any]) -> RunArtifactDatasetSource:
        return cls(source_dict["uri"], source_dict.get("experiment_id", "0"))


register_dataset_source(RunArtifactDatasetSource)  # type: ignore[arg-type]  # MLflow's hint is wrong: it registers classes


class _NotedDataset(PandasDataset):
    """A pandas dataset whose profile carries notes (the UI lists each as ``key: value``)."""

    def __init__(self, *args: Any, notes: dict[str, Any] | None = None, **kwargs: Any):
        self._notes = dict(notes or {})
        super().__init__(*args, **kwargs)

    @property
    def profile(self) -> Any | None:
        return {**(super().profile or {}), **{k: str(v) for k, v in self._notes.items()}}


def log_input_frame(
    df: pd.DataFrame,
    run_id: str,
    artifact: names.Artifact,
    context: str,
    targets: str | None = None,
    stage: str | None = None,
    notes: dict[str, Any] | None = None,
) -> None:
    """Log ``df`` (read from ``artifact`` of run ``run_id``) as an input dataset of the active run.

    Parameters
    ----------
    df : DataFrame
        The table as the step read it (its digest is computed from it).
    run_id : str
        Run that logged the artifact.
    artifact : (str, str)
        ``(directory, file name)`` from :mod:`foodcast.tracking.names`.
    context : str
        ``training``, ``validation``, ``prediction``...
    targets : str, optional
        Name of the target column, if ``df`` has one.
    stage : str, optional
        The stage that logged the artifact, for the name.
    notes : dict, optional
        Extra profile lines (e.g. which weeks).
    """
    path = names.artifact_path(artifact)
    experiment_id = known_run(run_id).info.experiment_id
    source = RunArtifactDatasetSource(f"runs:/{run_id}/{path}", experiment_id)
    # The store keeps one dataset per (name, digest) and the first source logged wins: the
    # upstream run's id in the name keeps the same table from two runs apart.
    name = f"{artifact[1]} · {stage + ' ' if stage else ''}{run_id[:8]}"
    dataset = _NotedDataset(
        df=df, source=source, targets=targets, name=name, notes={"artifact": f"{path} of run {run_id}", **(notes or {})}
    )
    _log_dataset(dataset, context)


def _log_dataset(dataset: PandasDataset, context: str) -> None:
    """``mlflow.log_input``, once more if the first attempt lost a race with another stage."""
    try:
        mlflow.log_input(dataset, context=context)
    except MlflowException:
        # Stages running side by side (validate and train) register the same dataset; the
        # store's get-or-create can then lose the race on its unique key. The dataset exists
        # by now, so a second attempt links it.
        time.sleep(0.5)
        mlflow.log_input(dataset, context=context)


def coverage_notes(coverage: Coverage, allow_missing: bool) -> dict[str, str]:
    """Profile lines saying how the batches were read: ``allow_missing`` and what was missing."""
    missing = ", ".join(map(str, coverage.missing)) or "none"
    return {
        "restaurants": ", ".join(coverage.restaurants),
        "allow_missing": str(allow_missing).lower(),
        "missing": missing,
    }


def log_batches_input(
    df: pd.DataFrame, data_dir: str | Path, first_week: int, last_week: int, notes: dict[str, Any] | None = None
) -> None:
    """Record the batch files a stage read: ``df`` (the hourly cash-in read from them) as a
    dataset whose source is the data directory, and the fingerprint of exactly the files read
    as tag ``foodcast.batches_sha256``.

    Parameters
    ----------
    df : DataFrame
        The hourly cash-in the stage read from the batches.
    data_dir : str
        The batch directory.
    first_week, last_week : int
        The weeks read.
    notes : dict, optional
        Extra profile lines (e.g. ``allow_missing``, what was missing).
    """
    mlflow.set_tag(names.BATCHES_TAG, batches_fingerprint(data_dir, first_week, last_week))
    weeks = f"{first_week}" if first_week == last_week else f"{first_week}-{last_week}"
    with warnings.catch_warnings():
        # MLflow registers its local-file dataset source twice (for "" and "file" URIs), so it
        # calls any local path ambiguous between two identical candidates: nothing to act on.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple ways")
        source = resolve_dataset_source(str(data_dir))
    dataset = _NotedDataset(
        df=df,
        source=source,
        targets="cash_in",
        name=f"batches · weeks {weeks} · hourly cash-in",
        notes={"weeks": weeks, "data directory": str(data_dir), **(notes or {})},
    )
    _log_dataset(dataset, context="source")


def read_logged_batches(
    data_dir: str | Path,
    first_week: int,
    last_week: int,
    allow_missing: bool,
    granularity: str = "chain",
    reader: Reader | None = None,
) -> tuple[pd.DataFrame, Coverage]:
    """Read the chain's hourly cash-in of weeks ``first_week..last_week`` from the batches
    (``data.chain.read_chain``), or with ``granularity="restaurant"`` each restaurant's (the long
    form, ``data.chain.read_restaurants``), and record the read on the active run: what it held
    and lacked (tag ``foodcast.coverage``) and the batches as an input dataset
    (:func:`log_batches_input`). ``reader`` reads and checks the batch files (``data.chain.Reader``:
    Spark's with ``engine=spark``); without one, pandas does, each restaurant on a task of the
    stage's processes (``FOODCAST_WORKERS``).

    Raises
    ------
    FoodcastError
        As ``read_chain``: an incomplete week without ``allow_missing``, an invalid batch...
    """
    if granularity == "restaurant":  # a restaurant per task of the stage's processes, or the engine's reader
        hourly, coverage = read_restaurants(
            data_dir,
            first_week,
            last_week,
            allow_missing=allow_missing,
            workers=workers(),
            reader=reader,
        )
    else:
        hourly, coverage = read_chain(
            data_dir, first_week, last_week, allow_missing=allow_missing, reader=reader or read_batches
        )
    mlflow.set_tag(names.COVERAGE_TAG, coverage.summary())
    log_batches_input(hourly, data_dir, first_week, last_week, notes=coverage_notes(coverage, allow_missing))
    return hourly, coverage


def training_set(features_run_id: str) -> tuple[pd.DataFrame, pd.Series]:
    """Check a features run, read its training set and log it as this run's input.

    Returns
    -------
    x : DataFrame
        Features indexed by ``order_date`` (with ``restaurant`` and ``fallback`` columns for a
        features run of restaurants).
    y : Series
        ``cash_in`` indexed by ``order_date``, row by row with ``x``.

    Raises
    ------
    FoodcastError
        If the run's ``x_train`` and ``y_train`` do not list the same rows in the same order.
    """
    # The per-restaurant core loads scikit-learn: imported here, not by load, which reads batches.
    from foodcast.core.restaurants import RESTAURANT  # noqa: PLC0415

    check_run(features_run_id, names.FEATURES)
    x = read_frame(features_run_id, names.X_TRAIN, names.FEATURES)
    y = read_frame(features_run_id, names.Y_TRAIN, names.FEATURES)
    keys = [k for k in (RESTAURANT, "order_date") if k in x.columns]
    if list(y.columns) != [*keys, "cash_in"] or not x[keys].equals(y[keys]):
        raise FoodcastError(
            f"run {features_run_id} (features): {names.artifact_path(names.Y_TRAIN)} does not hold the rows of "
            f"{names.artifact_path(names.X_TRAIN)} ({', '.join(keys)}, in the same order)"
        )
    log_input_frame(
        x.merge(y, on=keys),
        features_run_id,
        names.X_TRAIN,
        context="training",
        targets="cash_in",
        stage=names.FEATURES,
    )
    return x.set_index("order_date"), y.set_index("order_date")["cash_in"]
