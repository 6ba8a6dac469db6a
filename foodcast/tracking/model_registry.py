"""The model registry: each trained model a version, the challenger, and the champion.

``train`` adds its ``multi_model`` to the registered model as a new version tagged with its
train run, features run and training weeks, and points the alias ``challenger`` at it.
``promote`` moves the alias ``champion`` to the challenger when the gate lets it
(``foodcast.core.gate``, ``foodcast.pipeline.promotion``), and tags it with the version it was
compared with (``replaced_champion``): a version with that tag was champion once.
"""

from __future__ import annotations

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models.model import ModelInfo
from mlflow.tracking import MlflowClient

from foodcast.errors import FoodcastError
from foodcast.tracking.names import CHALLENGER, CHAMPION, FEATURES_RUN_TAG, TRAIN_RUN_TAG, WEEKS_TAG


def mark_challenger(name: str, info: ModelInfo, features_run_id: str, weeks: str, set_alias: bool = False) -> None:
    """Tag the version ``train`` just registered and, if ``set_alias``, point ``challenger`` at it
    (``promote`` points it at the version it gates).

    Parameters
    ----------
    name : str
        The registered model ("" when train registered nothing).
    info : mlflow.models.model.ModelInfo
        What logging the model returned (its ``registered_model_version``).
    features_run_id : str
    weeks : str
        The training weeks, ``start-end``.
    set_alias : bool
    """
    if not name:
        return
    client = MlflowClient()
    version = str(info.registered_model_version)
    tags = {TRAIN_RUN_TAG: info.run_id, FEATURES_RUN_TAG: features_run_id, WEEKS_TAG: weeks}
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    if set_alias:
        point_alias(client, name, CHALLENGER, version)


# How a store reports that another writer inserted the same row first (sqlite, PostgreSQL).
_CONFLICT = ("UNIQUE constraint failed", "duplicate key value violates unique constraint")


def point_alias(client: MlflowClient, name: str, alias: str, version: str) -> None:
    """Point ``alias`` of ``name`` at ``version``.

    The store reads whether the alias exists, then inserts or updates it: two pipelines that
    point the same new alias at once can both read "none", and the second insert fails on the
    alias's key. The alias exists then, so the second writer points it again, as an update.
    """
    try:
        client.set_registered_model_alias(name, alias, version)
    except MlflowException as exc:
        if not any(text in str(exc) for text in _CONFLICT):
            raise
        client.set_registered_model_alias(name, alias, version)


def versions_of_train_run(client: MlflowClient, name: str, train_run_id: str) -> list[ModelVersion]:
    """The versions of ``name`` that train run ``train_run_id`` registered (and that still exist)."""
    return client.search_model_versions(f"name = '{name}' and run_id = '{train_run_id}'")


def version_of_train_run(client: MlflowClient, name: str, train_run_id: str) -> ModelVersion:
    """The version of ``name`` that train run ``train_run_id`` registered.

    Raises
    ------
    FoodcastError
        If it registered none.
    """
    versions = versions_of_train_run(client, name, train_run_id)
    if not versions:
        raise FoodcastError(f"train run {train_run_id} registered no version of model {name!r}")
    return max(versions, key=lambda v: int(v.version))


def champion_of(client: MlflowClient, name: str) -> ModelVersion | None:
    """The version the alias ``champion`` points at, or ``None``."""
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
