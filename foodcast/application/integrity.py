"""Checksums of what a stage logs, recorded when it is written and verified before it is used.

Each artifact a stage logs gets a tag ``foodcast.sha256.<artifact path>`` with the SHA-256 of
its bytes, and each model a tag ``foodcast.sha256.model.<name>`` with a digest of its files. The
cache reuses a run only if every output still matches (an artifact truncated or edited after
the run finished is relaunched, not reused), and a stage reading an upstream artifact refuses
one that does not match.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from foodcast.application.catalog import artifact_path
from foodcast.application.fingerprint import file_digest, files_digest

PREFIX = "foodcast.sha256."


def artifact_tag(path: str) -> str:
    """Tag holding the checksum of run artifact ``path`` (``dir/file``)."""
    return f"{PREFIX}{path}"


def model_tag(name: str) -> str:
    """Tag holding the digest of logged model ``name``'s files."""
    return f"{PREFIX}model.{name}"


def tree_digest(root) -> str:
    """SHA-256 over the relative paths and contents of every file under ``root``."""
    return files_digest(root, (p for p in Path(root).rglob("*") if p.is_file()))


def _local(uri: str) -> Path | None:
    """The local path of a ``file:`` URI (or of a plain path), else ``None``."""
    parsed = urlparse(uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path))
    return None


def digest_at(uri: str, tree: bool = False) -> str | None:
    """Checksum of the artifact (``tree``: the directory) at ``uri``; ``None`` if it is missing.

    Read in place when the artifact store is a local directory; downloaded otherwise.
    """
    import mlflow

    local = _local(uri)
    if local is not None:
        if not (local.is_dir() if tree else local.is_file()):
            return None
        return tree_digest(local) if tree else file_digest(local)
    from foodcast.application.processes import temp_dir

    with temp_dir("digest") as tmp:
        try:
            downloaded = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
        except Exception:  # noqa: BLE001 - whatever the store raises, the artifact is not there
            return None
        return tree_digest(downloaded) if tree else file_digest(downloaded)


def mismatch(run, artifacts=(), models: dict | None = None) -> str | None:
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
        expected = tags.get(artifact_tag(path))
        if expected is None:
            return f"{path} has no recorded checksum"
        if digest_at(f"{run.info.artifact_uri}/{path}") != expected:
            return f"{path} is missing or changed since the run finished"
    for name, location in (models or {}).items():
        expected = tags.get(model_tag(name))
        if expected is None:
            return f"model {name} has no recorded checksum"
        if digest_at(location, tree=True) != expected:
            return f"model {name} is missing or changed since the run finished"
    return None
