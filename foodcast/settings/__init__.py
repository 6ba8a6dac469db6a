"""Project settings: where the weekly batches live and how logging is configured.

``DATA_DIR`` is the default dataset shipped with the project (``data/`` at the repository
root), unless the ``FOODCAST_DATA_DIR`` environment variable names another directory.

A relative ``FOODCAST_DATA_DIR`` is relative to the working directory. ``mlflow run`` starts
every entry point in the project directory, not in the directory it was started from, and
leaves no trace of the latter; so under ``mlflow run`` a relative ``FOODCAST_DATA_DIR`` is
refused rather than silently read from the project directory. ``mlflow run`` gives every
entry point ``MLFLOW_RUN_ID`` and ``MLFLOW_EXPERIMENT_ID``; MLflow deletes the first from the
environment when the run starts, the second stays: either one marks the process.
"""

import logging.config
import os
from pathlib import Path

import yaml

from foodcast.errors import FoodcastError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOGGING_CONFIGURATION_FILE = str(Path(__file__).resolve().parent / "logging.yaml")
DATA_DIR_VARIABLE = "FOODCAST_DATA_DIR"
LOG_LEVEL_VARIABLE = "FOODCAST_LOG_LEVEL"  # level of the foodcast loggers (default: logging.yaml's)
MLFLOW_RUN_VARIABLES = ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID")
WORKERS_VARIABLE = "FOODCAST_WORKERS"  # processes for the per-restaurant work (main's -P workers)


def data_dir() -> str:
    """The data directory in force now (re-reads ``FOODCAST_DATA_DIR``), as an absolute path.

    Raises
    ------
    FoodcastError
        If ``FOODCAST_DATA_DIR`` is a relative path and the process runs under ``mlflow run``
        (or another process that sets ``MLFLOW_RUN_ID`` or ``MLFLOW_EXPERIMENT_ID``).
    """
    value = os.path.expanduser(os.environ.get(DATA_DIR_VARIABLE) or "")
    if not value:
        return str(PROJECT_ROOT / "data")
    if not os.path.isabs(value) and any(os.environ.get(name) for name in MLFLOW_RUN_VARIABLES):
        raise FoodcastError(
            f"{DATA_DIR_VARIABLE}={value!r} is a relative path, but mlflow run starts every "
            f"stage in the project directory ({os.getcwd()}), not where you ran it; give an "
            f'absolute path, e.g. {DATA_DIR_VARIABLE}="$PWD/{value}"'
        )
    return os.path.abspath(value)


def __getattr__(name: str) -> str:
    # DATA_DIR is looked up when read, so that it follows FOODCAST_DATA_DIR and refuses a
    # relative one under mlflow run, like data_dir().
    if name == "DATA_DIR":
        return data_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def workers() -> int:
    """The processes the per-restaurant work may use: ``FOODCAST_WORKERS`` (``main`` sets it from
    its option ``workers``); 0, also when it is unset, for every core, which the core's pool
    counts (``foodcast.core.pool.resolve_workers``: the CPUs this process may use, not
    ``os.cpu_count()``, the machine's, which a container may not have).

    Raises
    ------
    FoodcastError
        If ``FOODCAST_WORKERS`` is not a whole number >= 0.
    """
    text = os.environ.get(WORKERS_VARIABLE, "").strip()
    try:
        value = int(text or 0)
    except ValueError:
        value = -1
    if value < 0:
        raise FoodcastError(f"{WORKERS_VARIABLE}={text!r} must be a whole number of processes (0: every core)")
    return value


def log_level() -> str | None:
    """``FOODCAST_LOG_LEVEL`` as a level name (``INFO``, ``WARNING``...), or ``None`` when it is
    unset or names no level."""
    level = os.environ.get(LOG_LEVEL_VARIABLE, "").strip().upper()
    return level if isinstance(logging.getLevelName(level), int) else None


def configure_logging() -> None:
    """Apply ``LOGGING_CONFIGURATION_FILE`` (a ``logging.config.dictConfig`` YAML file), the
    ``foodcast`` loggers at ``FOODCAST_LOG_LEVEL`` when it is set (``main`` sets WARNING for its
    stages unless told to be verbose)."""
    with open(LOGGING_CONFIGURATION_FILE, encoding="utf-8") as f:
        logging.config.dictConfig(yaml.safe_load(f))
    level = log_level()
    if level is not None:
        logging.getLogger("foodcast").setLevel(level)
