"""SHA-256 digests of files and directory trees: one way to fingerprint content, used by the
cache keys, the batch fingerprints and the checksums of logged artifacts alike."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

_BLOCK = 1 << 20


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            sha.update(block)
    return sha.hexdigest()


def files_digest(root: str | Path, paths: Iterable[str | Path]) -> str:
    """SHA-256 over the paths (relative to ``root``) and contents of ``paths``, in sorted order
    (a path that is not a file counts as missing: the digest differs from any with it there)."""
    root = Path(root)
    sha = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        content = file_digest(path) if path.is_file() else "missing"
        sha.update(path.relative_to(root).as_posix().encode() + b"\0" + content.encode())
    return sha.hexdigest()


def tree_files(root: str | Path) -> list[str]:
    """The relative paths (POSIX) of every file under ``root``, sorted."""
    return sorted(p.relative_to(root).as_posix() for p in Path(root).rglob("*") if p.is_file())
