"""validate with granularity=restaurant, the stage commands run in this process on a small
synthetic chain and a temporary sqlite store: what a user reads in the run (the table per
restaurant, the median and worst restaurant, the chain's figures under today's names). The
backtest stage's test is tests/test_restaurant_backtests.py's.

alpha and beta trade in weeks 1-14, late opens in week 9. Features of 4 weeks, n_models 2.
"""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from fixtures import make_batches
from foodcast.tracking import names

SETTINGS = ["--level-weeks", "4", "--profile-weeks", "4", "--n-models", "2"]


def stage(command, *args):
    """Run a stage command in this process, as a stage run alone; its run."""
    result = CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return MlflowClient().search_runs(["0"], order_by=["attributes.start_time DESC"], max_results=1)[0]


def artifact(run, path: tuple[str, str]) -> pd.DataFrame:
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=names.artifact_path(path))
    return pd.read_csv(local, dtype={"restaurant": str})


@pytest.fixture
def chain(tmp_path, monkeypatch, store):
    root = make_batches(tmp_path / "data", weeks=range(1, 15))
    make_batches(root, weeks=range(9, 15), restaurants=("late",), seed=2)
    monkeypatch.setenv("FOODCAST_DATA_DIR", str(root))
    monkeypatch.setenv("FOODCAST_WORKERS", "1")
    return root


def test_validate_of_restaurants_logs_each_restaurant_and_the_chain_s_metrics(chain):
    from steps.features import features
    from steps.load import load
    from steps.validate import validate

    loaded = stage(load, "--start-week", 2, "--end-week", 14, "--granularity", "restaurant")
    built = stage(features, "--load-run-id", loaded.info.run_id, *SETTINGS[:4])
    run = stage(validate, "--features-run-id", built.info.run_id, "--n-fold", 3, *SETTINGS[4:])
    metrics = run.data.metrics
    assert {"MAE_SIMPLE_MEAN", "MAE_MIN_MEAN", "MAE_MAX_MEAN"} <= set(metrics)  # the chain's rows'
    preds = artifact(run, names.CV_PREDICTIONS)
    # late opened in week 9: fallback rows in the first weeks it is predicted, so new.
    assert metrics["restaurants"] == 3 and metrics["restaurants_new"] == 1
    established = preds[preds["restaurant"].isin(["alpha", "beta"])]
    scaled = [
        (rows["y_pred"] - rows["cash_in"]).abs().mean() / rows["cash_in"].mean()
        for _, rows in established.groupby("restaurant")
    ]
    assert metrics["worst_restaurant_scaled_mae"] == pytest.approx(max(scaled), rel=1e-3)
    assert list(preds.columns[:3]) == ["restaurant", "order_date", "fallback"] and "cash_in" in preds
    assert set(preds["fold"]) == {0, 1, 2}
