"""A new sqlite tracking store is created once, under a lock.

MLflow creates a sqlite store's tables (and runs its schema migrations) in the first process
that opens it; two processes opening a brand-new store at the same moment both create them, and
one crashes inside the migration (``alembic``: ``duplicate column name``). Two ``mlflow run``
started together on a new store did: the race is in ``mlflow run`` itself, which opens the
store to create the run before ``main.py`` starts, so ``main`` cannot serialise it.

So foodcast registers this module as MLflow's tracking store for the ``sqlite`` scheme (the
``mlflow.tracking_store`` entry point in pyproject.toml: MLflow's plugin interface), in every
process of an environment where foodcast is installed, ``mlflow run`` included. It opens the
store as MLflow does, holding an exclusive ``fcntl.flock`` on ``<database>.lock`` next to the
database file while it does: the first process creates the tables, the others wait, then find
them. Once per process and store (MLflow keeps the store it opened).

Loaded while MLflow imports its store registry: the standard library only at import.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

try:
    import fcntl
except ImportError:  # Windows: no lock (MLflow loads this module there too)
    fcntl = None  # type: ignore[assignment]

LOCK_SUFFIX = ".lock"


def database_path(store_uri: str) -> str | None:
    """The database file of a ``sqlite:///`` URI (relative to the working directory, as for
    SQLAlchemy, or absolute with four slashes); ``None`` for an in-memory database or another
    scheme."""
    if not store_uri.startswith("sqlite:///"):
        return None
    path = unquote(store_uri[len("sqlite:///") :].split("?", 1)[0])
    if not path or path == ":memory:":
        return None
    return path


@contextlib.contextmanager
def creation_lock(store_uri: str) -> Iterator[None]:
    """Hold the store's lock (``<database>.lock``): one process at a time opens it. Without a
    database file, or where the lock file cannot be made (a read-only directory: the store
    says why it cannot be used), nothing is held."""
    path = database_path(store_uri)
    fd = None
    if path is not None and fcntl is not None:
        with contextlib.suppress(OSError):
            fd = os.open(path + LOCK_SUFFIX, os.O_RDWR | os.O_CREAT, 0o666)
    if fd is None or fcntl is None:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def locked_sqlite_store(store_uri: str, artifact_uri: str | None = None, **_: Any) -> Any:
    """MLflow's sqlite tracking store for ``store_uri``, opened (and, new, created) under the
    store's lock."""
    # MLflow's own builder for the scheme (private: the same store, artifact root and
    # workspaces as without this plugin). Imported here: this module loads while MLflow
    # imports its store registry.
    from mlflow.tracking._tracking_service.utils import _get_sqlalchemy_store  # noqa: PLC0415

    with creation_lock(store_uri):
        return _get_sqlalchemy_store(store_uri, artifact_uri)
