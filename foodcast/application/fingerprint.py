"""Content fingerprints: of the project's sources, of the batch files a stage reads, and of
the environment a stage runs in.

Content, not git state, so that a cache key holds outside git and sees uncommitted edits.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

SOURCE_PATTERNS = ("MLproject", "main.py", "steps/**/*.py", "foodcast/**/*.py", "foodcast/**/*.yaml")
DEPENDENCY_FILES = ("pyproject.toml", "conda.yaml")


def file_digest(path) -> str:
    """SHA-256 of a file's bytes."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def files_digest(root, paths) -> str:
    """SHA-256 over the paths (relative to ``root``) and contents of ``paths``."""
    root = Path(root)
    sha = hashlib.sha256()
    for path in sorted(paths):
        sha.update(Path(path).relative_to(root).as_posix().encode() + b"\0" + file_digest(path).encode())
    return sha.hexdigest()


def source_fingerprint(project_dir) -> str:
    """SHA-256 over the relative paths and contents of MLproject, main.py, steps/ and foodcast/."""
    root = Path(project_dir).resolve()
    paths = {p for pattern in SOURCE_PATTERNS for p in root.glob(pattern)
             if p.is_file() and "__pycache__" not in p.parts}
    return files_digest(root, paths)


def batches_fingerprint(data_dir, start_week: int, end_week: int) -> str:
    """SHA-256 over exactly the batch files a read of weeks ``start_week..end_week`` opens,
    and over each restaurant's span of weeks with orders (which decides whether a week of the
    range is complete, see ``foodcast.domain.transform``)."""
    from foodcast.domain.transform import chain_coverage
    from foodcast.infrastructure.batches import batch_files

    root = Path(data_dir).resolve()
    files = files_digest(root, [p.resolve() for p in batch_files(root, start_week, end_week)])
    spans = chain_coverage(root, start_week, end_week).spans
    return hashlib.sha256(json.dumps([files, spans]).encode()).hexdigest()


def package_versions(packages) -> dict[str, str | None]:
    """``{distribution: installed version}`` (``None`` where it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in sorted(set(packages)):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def environment_fingerprint(project_dir, packages, versions: dict | None = None) -> str:
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
    import platform

    root = Path(project_dir).resolve()
    files = [root / name for name in DEPENDENCY_FILES if (root / name).is_file()]
    payload = {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": package_versions(packages) if versions is None else versions,
        "dependency_files": files_digest(root, files),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def cache_key(entry_point: str, params: dict, sources: str, batches: str | None = None,
              environment: str | None = None) -> str:
    """The identity of a stage's result: entry point, typed parameters and the fingerprints of
    its inputs (sources, batches read) and of its environment."""
    payload = {"entry_point": entry_point, "params": params, "sources": sources, "batches": batches,
               "environment": environment}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


# {launch id: cache key} of the stage commands main launches, in main's environment, which
# mlflow.run passes on to each command: a stage tags its own run with its key from the start.
CACHE_KEYS_ENV = "FOODCAST_CACHE_KEYS"


def _launch_id(stage: str, texts: dict) -> str:
    """What tells one launch of a stage from another: the stage and its parameters as text
    (as ``mlflow run`` passes them, and as the stage command reads them back)."""
    payload = json.dumps({"stage": stage, "params": texts}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _handed_keys() -> dict:
    return json.loads(os.environ.get(CACHE_KEYS_ENV) or "{}")


def hand_over_key(stage: str, texts: dict, key: str) -> None:
    """In ``main``, before launching ``stage`` with parameters ``texts``: give that launch's
    command its cache key (read back with :func:`handed_key`)."""
    keys = _handed_keys()
    keys[_launch_id(stage, texts)] = key
    os.environ[CACHE_KEYS_ENV] = json.dumps(keys)


def handed_key(stage: str, texts: dict) -> str | None:
    """In a stage command: the cache key ``main`` handed this launch, if main launched it."""
    return _handed_keys().get(_launch_id(stage, texts))
