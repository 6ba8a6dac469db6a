"""Every command explains itself: `python steps/<stage>.py --help` and `python main.py --help`."""

import subprocess
import sys

import pytest

from conftest import PROJECT
from foodcast.pipeline import stage_table as stages

EXPECTED = {
    "load": ["--start-week", "--end-week", "data/data.csv"],
    "features": [
        "--load-run-id",
        "--degree",
        "--lag-in-week",
        "--level-weeks",
        "--calendar-index",
        "training_set/x_train.csv",
    ],
    "validate": [
        "--features-run-id",
        "--n-fold",
        "--estimator",
        "--n-estimators",
        "--n-models",
        "--interval-level",
        "cross_validation/predictions.csv",
        "MAE_MIN",
    ],
    "train": [
        "--features-run-id",
        "--estimator",
        "--n-estimators",
        "--max-depth",
        "--n-models",
        "--interval-level",
        "simple_model",
        "multi_model",
        "y_lower",
    ],
    "future": ["--next-week", "--degree", "--lag-in-week", "prediction_set/x_pred.csv"],
    "predict": [
        "--train-run-id",
        "--model-uri",
        "--future-run-id",
        "predictions/y_pred.csv",
        "plots/predictions.html",
        "y_lower",
    ],
    "promote": ["--train-run-id", "--registered-model-name", "--gate-weeks", "--gate-margin", "champion"],
    "evaluate": ["--predict-run-id", "--allow-missing", "evaluation/forecast_vs_actual.csv", "mae_naive"],
    "backtest": [
        "--first-week",
        "--last-week",
        "--window-weeks",
        "--estimator",
        "backtest/weeks.csv",
        "plots/backtest.html",
    ],
}


@pytest.mark.parametrize("stage", stages.STAGES)
def test_step_help_explains_every_option(stage):
    proc = subprocess.run(
        [sys.executable, f"steps/{stage}.py", "--help"], cwd=PROJECT, capture_output=True, text=True, check=True
    )
    text = " ".join(proc.stdout.split())
    for needle in EXPECTED[stage]:
        assert needle in text, (stage, needle)


def test_main_help_lists_every_parameter():
    proc = subprocess.run(
        [sys.executable, "main.py", "--help"], cwd=PROJECT, capture_output=True, text=True, check=True
    )
    for param in stages.main_params():
        assert param.option in proc.stdout, param.name
