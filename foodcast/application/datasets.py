"""Record the tables a step consumed as MLflow datasets whose source is the upstream artifact."""

from __future__ import annotations

import time
import warnings
from typing import Any

from mlflow.data.dataset_source import DatasetSource


class RunArtifactDatasetSource(DatasetSource):
    """A dataset stored as an artifact of an MLflow run, addressed as ``runs:/<run_id>/<path>``.

    MLflow's own artifact sources leave out the ``runs:/`` scheme, yet it is the address that
    says which run produced the table; the UI shows it as the dataset's source.
    """

    def __init__(self, uri: str):
        self._uri = uri

    @property
    def uri(self) -> str:
        """The ``runs:/`` URI of the artifact."""
        return self._uri

    @staticmethod
    def _get_source_type() -> str:
        return "mlflow_run_artifact"

    def load(self, dst_path=None) -> str:
        """Download the artifact; returns its local path."""
        import mlflow

        return mlflow.artifacts.download_artifacts(artifact_uri=self._uri, dst_path=dst_path)

    @staticmethod
    def _can_resolve(raw_source: Any) -> bool:
        return isinstance(raw_source, str) and raw_source.startswith("runs:/")

    @classmethod
    def _resolve(cls, raw_source: str) -> "RunArtifactDatasetSource":
        return cls(raw_source)

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self._uri}

    @classmethod
    def from_dict(cls, source_dict: dict[str, Any]) -> "RunArtifactDatasetSource":
        return cls(source_dict["uri"])


def log_input_frame(df, run_id: str, artifact: tuple[str, str], context: str, targets: str | None = None) -> None:
    """Log ``df`` (read from ``artifact`` of run ``run_id``) as an input dataset of the active run.

    Parameters
    ----------
    df : DataFrame
        The table as the step read it (its digest is computed from it).
    run_id : str
        Run that logged the artifact.
    artifact : (str, str)
        ``(directory, file name)`` from :mod:`foodcast.application.catalog`.
    context : str
        ``training``, ``validation``, ``prediction``...
    targets : str, optional
        Name of the target column, if ``df`` has one.
    """
    import mlflow

    path = "/".join(artifact)
    source = RunArtifactDatasetSource(f"runs:/{run_id}/{path}")
    _log_dataset(mlflow.data.from_pandas(df, source=source, targets=targets, name=path), context)


def _log_dataset(dataset, context: str) -> None:
    """``mlflow.log_input``, once more if the first attempt lost a race with another stage."""
    import mlflow

    try:
        mlflow.log_input(dataset, context=context)
    except mlflow.exceptions.MlflowException:
        # Stages running side by side (validate and train) register the same dataset; the
        # store's get-or-create can then lose the race on its unique key. The dataset exists
        # by now, so a second attempt links it.
        time.sleep(0.5)
        mlflow.log_input(dataset, context=context)


def log_batches_input(df, data_dir, first_week: int, last_week: int) -> None:
    """Record the batch files a stage read: ``df`` as a dataset whose source is the data
    directory, and the fingerprint of exactly the files read as tag ``foodcast.batches_sha256``.

    Parameters
    ----------
    df : DataFrame
        The table the stage built from the batches.
    data_dir : str
        The batch directory.
    first_week, last_week : int
        The weeks read.
    """
    import mlflow

    from foodcast.application.fingerprint import batches_fingerprint

    mlflow.set_tag("foodcast.batches_sha256", batches_fingerprint(data_dir, first_week, last_week))
    name = f"batches weeks {first_week}-{last_week}"
    with warnings.catch_warnings():
        # MLflow registers its local-file dataset source twice (for "" and "file" URIs), so it
        # calls any local path ambiguous between two identical candidates: nothing to act on.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple ways")
        dataset = mlflow.data.from_pandas(df, source=str(data_dir), name=name)
    _log_dataset(dataset, context="source")
