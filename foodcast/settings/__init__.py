"""Project settings: where the weekly batches live and how logging is configured.

``DATA_DIR`` is the default dataset shipped with the project (``data/`` at the repository
root), unless the ``FOODCAST_DATA_DIR`` environment variable names another directory.
"""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOGGING_CONFIGURATION_FILE = str(Path(__file__).resolve().parent / "logging.yaml")


def data_dir() -> str:
    """The data directory in force now (re-reads ``FOODCAST_DATA_DIR``)."""
    return os.path.abspath(os.environ.get("FOODCAST_DATA_DIR") or PROJECT_ROOT / "data")


DATA_DIR = data_dir()  # as at import, for the tutorial's `settings.DATA_DIR`


def configure_logging() -> None:
    """Apply ``LOGGING_CONFIGURATION_FILE`` (a ``logging.config.dictConfig`` YAML file)."""
    import logging.config

    import yaml

    with open(LOGGING_CONFIGURATION_FILE, encoding="utf-8") as f:
        logging.config.dictConfig(yaml.safe_load(f))
