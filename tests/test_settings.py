"""foodcast.settings and the imports the tutorial relies on."""

import importlib
import logging
import logging.config
import os
from pathlib import Path

import pytest
import yaml

import foodcast.settings as settings
from foodcast.errors import FoodcastError

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def restore_logging():
    """dictConfig changes process-wide loggers: put back what the other tests rely on."""
    names = ["", "foodcast"]
    saved = {}
    for name in names:
        lg = logging.getLogger(name)
        saved[name] = (lg.level, list(lg.handlers), lg.propagate, lg.disabled)
    try:
        yield
    finally:
        for name, (level, handlers, propagate, disabled) in saved.items():
            lg = logging.getLogger(name)
            for handler in list(lg.handlers):
                if handler not in handlers:
                    lg.removeHandler(handler)
            for handler in handlers:
                if handler not in lg.handlers:
                    lg.addHandler(handler)
            lg.setLevel(level)
            lg.propagate = propagate
            lg.disabled = disabled


def test_tutorial_imports():
    from foodcast.application.mlflow_utils import mlflow_log_pandas, mlflow_log_plotly
    from foodcast.domain.feature_engineering import features_offline, features_online
    from foodcast.domain.forecast import cross_validate, plotly_predictions, span_future
    from foodcast.domain.multi_model import MultiModel
    from foodcast.domain.transform import etl

    for obj in (
        etl,
        features_offline,
        features_online,
        span_future,
        cross_validate,
        plotly_predictions,
        MultiModel,
        mlflow_log_pandas,
        mlflow_log_plotly,
    ):
        assert callable(obj)
    assert isinstance(settings.DATA_DIR, (str, os.PathLike))


def test_default_data_dir_is_the_repository_data_directory(monkeypatch):
    monkeypatch.delenv("FOODCAST_DATA_DIR", raising=False)
    assert Path(settings.data_dir()) == REPO_ROOT / "data"
    assert os.path.isabs(settings.DATA_DIR)
    if "FOODCAST_DATA_DIR" not in os.environ:
        assert Path(settings.DATA_DIR) == REPO_ROOT / "data"


def test_environment_variable_overrides_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("FOODCAST_DATA_DIR", str(tmp_path / "elsewhere"))
    assert Path(settings.data_dir()) == tmp_path / "elsewhere"


def test_relative_override_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.setenv("FOODCAST_DATA_DIR", "batches")
    assert settings.data_dir() == str(tmp_path / "batches")


def test_environment_variable_sets_DATA_DIR_at_import(monkeypatch, tmp_path):
    monkeypatch.setenv("FOODCAST_DATA_DIR", str(tmp_path / "elsewhere"))
    try:
        reloaded = importlib.reload(settings)
        assert Path(reloaded.DATA_DIR) == tmp_path / "elsewhere"
    finally:
        monkeypatch.undo()
        importlib.reload(settings)


def test_logging_configuration_is_a_dict_config_yaml(restore_logging, capsys):
    path = Path(settings.LOGGING_CONFIGURATION_FILE)
    assert path.is_file() and path.suffix in (".yaml", ".yml")
    with open(path, encoding="utf-8") as f:
        config = yaml.safe_load(f)
    assert isinstance(config, dict) and config["version"] == 1

    logging.config.dictConfig(config)

    logging.getLogger("foodcast.settings_test").info("hello from the test")
    assert "hello from the test" in capsys.readouterr().err


def test_configure_logging_applies_the_file(restore_logging):
    settings.configure_logging()
    assert logging.getLogger("foodcast.domain.transform").isEnabledFor(logging.INFO)


@pytest.mark.parametrize("variable", ["MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID"])
def test_relative_data_dir_is_refused_under_mlflow_run(monkeypatch, tmp_path, variable):
    # mlflow run starts every entry point in the project directory, whatever directory the
    # user ran it from: a relative path would silently name the project's data set. It sets
    # both variables; MLflow deletes MLFLOW_RUN_ID once the stage's run has started.
    monkeypatch.chdir(tmp_path)
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, "0123456789abcdef")
    monkeypatch.setenv("FOODCAST_DATA_DIR", "batches")
    with pytest.raises(FoodcastError) as info:
        settings.data_dir()
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert "FOODCAST_DATA_DIR='batches' is a relative path" in message
    assert 'FOODCAST_DATA_DIR="$PWD/batches"' in message
    with pytest.raises(FoodcastError):
        settings.DATA_DIR  # noqa: B018 - reading the attribute is what refuses

    monkeypatch.setenv("FOODCAST_DATA_DIR", str(tmp_path / "batches"))
    assert settings.data_dir() == str(tmp_path / "batches")
    monkeypatch.delenv("FOODCAST_DATA_DIR")
    assert Path(settings.data_dir()) == REPO_ROOT / "data"


def test_home_relative_data_dir_is_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MLFLOW_RUN_ID", "0123456789abcdef")
    monkeypatch.setenv("FOODCAST_DATA_DIR", "~/batches")
    assert settings.data_dir() == str(tmp_path / "batches")


def test_workers_come_from_foodcast_workers_every_core_by_default(monkeypatch):
    from foodcast.core.pool import resolve_workers

    monkeypatch.delenv(settings.WORKERS_VARIABLE, raising=False)
    assert settings.workers() == 0 and resolve_workers(settings.workers()) >= 1  # 0: every core, the core counts
    monkeypatch.setenv(settings.WORKERS_VARIABLE, "0")
    assert settings.workers() == 0
    monkeypatch.setenv(settings.WORKERS_VARIABLE, "3")
    assert settings.workers() == 3
    for bad in ("two", "-1"):
        monkeypatch.setenv(settings.WORKERS_VARIABLE, bad)
        with pytest.raises(FoodcastError, match=f"FOODCAST_WORKERS='{bad}' must be a whole number"):
            settings.workers()
