"""The cache: the key of a stage's result, how a stage run is tagged with it, and the lookup of a
finished run that can be reused.

A key is the entry point, its parameters as ``mlflow run`` passes them (upstream run ids
included), the fingerprint of the code its run executes (``foodcast.pipeline.stage_code``), of
the batch files it reads, and of its environment (Python, the versions of the distributions
its results depend on, the project's dependency files). Content, not git state, so that a key
holds outside git and sees uncommitted edits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from foodcast.digests import files_digest
from foodcast.pipeline.params import REGISTERED_MODEL_NAME
from foodcast.pipeline.stage import Stage
from foodcast.tracking.artifacts import outputs_problem
from foodcast.tracking.model_registry import versions_of_train_run
from foodcast.tracking.runs import logged_models

logger = logging.getLogger("foodcast.main")

DEPENDENCY_FILES = ("pyproject.toml", "conda.yaml")
CACHE_KEY_TAG = "foodcast.cache_key"
CACHE_INDEX_PREFIX = "foodcast.cache."
KEY_PART_PREFIX = "foodcast.key."  # + sources / batches / environment / context: the key's fingerprints
# {launch id: cache key} of the stage commands main launches, in main's environment, which
# mlflow.run passes on to each command: a stage tags its own run with its key from the start.
CACHE_KEYS_ENV = "FOODCAST_CACHE_KEYS"

# ------------------------------------------------------------------------------------ keys


def package_versions(packages: Iterable[str]) -> dict[str, str | None]:
    """``{distribution: installed version}`` (``None`` where it is not installed)."""
    out: dict[str, str | None] = {}
    for name in sorted(set(packages)):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def environment_fingerprint(
    project_dir: str | Path, packages: Iterable[str], versions: Mapping[str, str | None] | None = None
) -> str:
    """SHA-256 over what a stage's result depends on besides its inputs and our sources: the
    Python version, the installed versions of ``packages``, and the project's dependency files.

    Parameters
    ----------
    project_dir : path-like
        Where ``pyproject.toml`` and ``conda.yaml`` are.
    packages : iterable of str
        Distribution names (``scikit-learn``, ``pandas``...).
    versions : dict, optional
        Versions to use instead of the installed ones (what :func:`package_versions` returns).
    """
    root = Path(project_dir).resolve()
    files = [root / name for name in DEPENDENCY_FILES if (root / name).is_file()]
    payload = {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": package_versions(packages) if versions is None else dict(versions),
        "dependency_files": files_digest(root, files),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def cache_key(
    entry_point: str,
    params: Mapping[str, Any],
    sources: str,
    batches: str | None = None,
    environment: str | None = None,
) -> str:
    """The identity of a stage's result: entry point, typed parameters and the fingerprints of
    its inputs (the code it runs, the batches it reads) and of its environment."""
    payload = {
        "entry_point": entry_point,
        "params": dict(params),
        "sources": sources,
        "batches": batches,
        "environment": environment,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def cache_index_tag(key: str) -> str:
    """Tag whose *name* carries a cache key, e.g. ``foodcast.cache.<sha256>``.

    The tracking store indexes tags by name, not by value: a lookup on this tag's name stays
    as fast with 10,000 runs in the experiment as with 100, where one on the value of
    ``foodcast.cache_key`` grows with the number of runs.
    """
    return f"{CACHE_INDEX_PREFIX}{key}"


def cache_tags(key: str, stage: str, parts: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tags that make a run of ``stage`` findable by the cache under ``key``; and the
    fingerprints the key was made of (``parts``: ``sources``, ``batches``, ``environment``,
    ``context``), each as ``foodcast.key.<part>``, which say why a later key differs."""
    tags = {CACHE_KEY_TAG: key, cache_index_tag(key): stage}
    tags.update({f"{KEY_PART_PREFIX}{name}": value for name, value in (parts or {}).items()})
    return tags


# ------------------------------------------------------------ main -> stage command: the key


def _launch_id(stage: str, texts: Mapping[str, str]) -> str:
    """What tells one launch of a stage from another: the stage and its parameters as text
    (as ``mlflow run`` passes them, and as the stage command reads them back)."""
    payload = json.dumps({"stage": stage, "params": dict(texts)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _passed_keys() -> dict[str, Any]:
    keys: dict[str, Any] = json.loads(os.environ.get(CACHE_KEYS_ENV) or "{}")
    return keys


def pass_cache_key(stage: str, texts: Mapping[str, str], key: str, parts: Mapping[str, str] | None = None) -> None:
    """In ``main``, before launching ``stage`` with parameters ``texts``: give that launch's
    command its cache key and the fingerprints it was made of (read back with
    :func:`passed_cache_key`)."""
    keys = _passed_keys()
    keys[_launch_id(stage, texts)] = {"key": key, "parts": dict(parts or {})}
    os.environ[CACHE_KEYS_ENV] = json.dumps(keys)


def passed_cache_key(stage: str, texts: Mapping[str, str]) -> tuple[str, dict[str, str]] | None:
    """In a stage command: the cache key ``main`` passed this launch and its parts, if main
    launched it."""
    passed = _passed_keys().get(_launch_id(stage, texts))
    return None if passed is None else (passed["key"], passed["parts"])


# ---------------------------------------------------------------------------------- reuse


def find_reusable(client: MlflowClient, experiment_id: str, stage: Stage, key: str) -> Run | None:
    """The newest FINISHED run of ``experiment_id`` tagged with cache key ``key`` whose outputs
    all pass the checksum rule, or ``None``.

    One ``search_runs`` query (filtered on the key's index tag and the status, newest first,
    ``max_results=1``) then a look at the hit's artifacts and logged models.
    """
    runs = client.search_runs(
        experiment_ids=[experiment_id],
        filter_string=f"tags.`{cache_index_tag(key)}` = '{stage.name}' AND attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return None
    run = runs[0]
    return run if outputs_present(client, run, stage) else None


def outputs_present(client: MlflowClient, run: Run, stage: Stage) -> bool:
    """Whether every artifact and logged model ``stage`` produces is still stored for ``run``,
    byte for byte as the run recorded it, and the model version it registered still exists."""
    models = {}
    if stage.models:
        # Search results carry no run outputs: fetch the run to see its logged models.
        found = logged_models(client, client.get_run(run.info.run_id))
        if not set(stage.models) <= set(found):
            return False
        models = {name: found[name].artifact_location for name in stage.models}
    reason = outputs_problem(run, stage.artifacts, models)
    if reason is None and stage.registers:
        reason = registration_problem(client, run)
    if reason is not None:
        logger.info("%s: run %s is not reused: %s", stage.name, run.info.run_id, reason)
    return reason is None


def registration_problem(client: MlflowClient, run: Run) -> str | None:
    """Why the model version ``run`` registered cannot be relied on (it was deleted from the
    registry: promote gates that version), or ``None``."""
    name = run.data.params.get(REGISTERED_MODEL_NAME.name, "").strip("'")
    if not name or versions_of_train_run(client, name, run.info.run_id):
        return None
    return f"the version of model {name!r} it registered is gone from the registry"
