"""granularity=restaurant end to end on the shipped data (its 2 restaurants, weeks 240-260,
forecast of week 261): ONE `mlflow run` of main shared by every test here (module fixture, about
a minute: only a real run shows the stages chained under main, with their cache), then one more
that must reuse all of it (seconds)."""

from __future__ import annotations

from types import SimpleNamespace

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import Runner, stage_lines
from foodcast.core.restaurants import CHAIN
from foodcast.tracking import names

SHIPPED = ["royal_tandoori_balham", "spice_garden_hackney"]
# The shipped data's Monday run, smaller: 3 members, 3 folds; a pool of 2 processes.
RESTAURANTS = {
    "granularity": "restaurant",
    "start_week": 240,
    "n_fold": 3,
    "n_models": 3,
    "n_estimators": 10,  # (100 by default: what these tests check does not need them)
    "workers": 2,
}


@pytest.fixture(scope="module")
def restaurants(tmp_path_factory):
    root = tmp_path_factory.mktemp("restaurants")
    uri = f"sqlite:///{root}/mlflow.db"
    runner = Runner(root, uri, data_dir=None)
    runner.env.pop("FOODCAST_DATA_DIR", None)
    first = runner.mlflow_run(**RESTAURANTS)
    return SimpleNamespace(runner=runner, uri=uri, first=first, lines=stage_lines(first.stdout))


def table(store, stage: str, artifact: tuple[str, str], run_id: str | None = None) -> pd.DataFrame:
    """An artifact of a run (by default: of ``stage`` in the first pipeline), as a user reads it."""
    mlflow.set_tracking_uri(store.uri)
    try:
        path = names.artifact_path(artifact)
        local = mlflow.artifacts.download_artifacts(run_id=run_id or store.lines[stage][1], artifact_path=path)
    finally:
        mlflow.set_tracking_uri(None)
    return pd.read_csv(local, parse_dates=["order_date"], dtype={"restaurant": str})


def test_every_stage_runs_on_the_restaurants(restaurants):
    launched = {stage for stage, (status, _) in restaurants.lines.items() if status == "launched"}
    assert launched == {"load", "features", "validate", "train", "promote", "future", "predict"}
    data = table(restaurants, "load", names.DATA)
    assert list(data.columns) == ["restaurant", "order_date", "cash_in"]
    assert list(data.groupby("restaurant").size().items()) == [(r, 21 * 168) for r in SHIPPED]
    folds = table(restaurants, "validate", names.CV_PREDICTIONS)  # every restaurant cross-validated, then the chain
    assert list(folds.columns[:3]) == ["restaurant", "order_date", "fallback"] and {"cash_in", "fold"} <= set(folds)
    assert sorted(set(folds["restaurant"])) == sorted([*SHIPPED, CHAIN]) and sorted(set(folds["fold"])) == [0, 1, 2]
    per_restaurant = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            f"runs:/{restaurants.lines['validate'][1]}/metrics/per_restaurant.csv", tracking_uri=restaurants.uri
        )
    )
    assert len(per_restaurant) == 3 * 3 and (per_restaurant["mae"] > 0).all()  # each fold: both restaurants, the chain
    parent = MlflowClient(restaurants.uri).get_run(restaurants.first.stdout.split()[2])
    assert parent.data.params["granularity"] == "restaurant" and parent.data.params["workers"] == "2"
    # the stages' process pools ended with them: no warning of loky's resource tracker
    assert "leaked" not in restaurants.first.stderr, restaurants.first.stderr[-3000:]
    for stage in ("load", "future"):
        params = MlflowClient(restaurants.uri).get_run(restaurants.lines[stage][1]).data.params
        assert params["granularity"] == "restaurant" and "workers" not in params, stage


def test_the_forecast_covers_both_restaurants_and_the_chain_coherent_to_the_cent(restaurants):
    x_pred = table(restaurants, "future", names.X_PRED)
    assert list(x_pred.groupby("restaurant", sort=False).size().items()) == [(r, 168) for r in [*SHIPPED, CHAIN]]
    assert (x_pred["fallback"] == 0.0).all()  # 21 weeks of history each

    y_pred = table(restaurants, "predict", names.Y_PRED)
    assert list(y_pred.groupby("restaurant", sort=False).size().items()) == [(r, 168) for r in [*SHIPPED, CHAIN]]
    hours = pd.date_range("2019-12-23", periods=168, freq="h")
    point = y_pred.pivot(index="order_date", columns="restaurant", values="y_pred")
    assert list(point.index) == list(hours)
    for column in [c for c in y_pred.columns if c.startswith("y_pred")]:  # the point, the members
        cents = (y_pred.pivot(index="order_date", columns="restaurant", values=column) * 100).round().astype("int64")
        assert (cents[CHAIN] == cents[SHIPPED].sum(axis=1)).all(), column  # hour by hour, to the cent as written
    assert (point[SHIPPED].sum(axis=0) > 0).all()
    chain = y_pred[y_pred["restaurant"] == CHAIN]
    assert (chain["y_lower"] <= chain["y_pred"] + 0.005).all() and (chain["y_pred"] <= chain["y_upper"] + 0.005).all()


def test_a_second_run_reuses_every_stage_whatever_the_workers(restaurants):
    """workers is in no cache key: a run with 1 reuses the run with 2."""
    again = restaurants.runner.mlflow_run(**{**RESTAURANTS, "workers": 1})
    lines = stage_lines(again.stdout)
    assert lines == {stage: ("reused", run_id) for stage, (_, run_id) in restaurants.lines.items()}, again.stdout


def test_the_chain_s_rows_are_what_granularity_chain_forecasts_from(restaurants):
    """The chain's rows of the restaurants' prediction set are the chain's prediction set of the
    same week, as future builds it with granularity=chain (to the cent: the restaurants' total is
    rounded hour by hour, the chain's hourly cash-in is rounded once)."""
    from fixtures import prediction_set
    from foodcast.core.features import DEFAULT_FEATURES
    from foodcast.settings import PROJECT_ROOT

    chain_alone = prediction_set(PROJECT_ROOT / "data", 261, **DEFAULT_FEATURES)
    x_pred = table(restaurants, "future", names.X_PRED)
    rows = x_pred[x_pred["restaurant"] == CHAIN].drop(columns=["restaurant", "fallback"]).reset_index(drop=True)
    assert list(rows.columns) == list(chain_alone.columns)
    assert (rows["order_date"] == chain_alone["order_date"]).all()
    features = [c for c in rows.columns if c != "order_date"]
    np.testing.assert_allclose(rows[features].to_numpy(), chain_alone[features].to_numpy(dtype="float64"), atol=0.01)


def test_show_prints_the_chain_s_forecast_or_a_restaurant_s(restaurants, monkeypatch):
    from click.testing import CliRunner

    from foodcast.cli import cli

    y_pred = table(restaurants, "predict", names.Y_PRED)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", restaurants.uri)
    mlflow.set_tracking_uri(restaurants.uri)
    try:
        for name in (None, SHIPPED[0]):
            result = CliRunner().invoke(
                cli, ["show", "--experiment-name", "Default", *(["--restaurant", name] if name else [])]
            )
            assert result.exit_code == 0, result.output
            lines = result.output.splitlines()
            whose = "the chain" if name is None else name
            assert lines[0].startswith(
                f"week 261 (Mon 2019-12-23 to Sun 2019-12-29): hourly cash-in forecast of {whose} in GBP"
            )
            total = y_pred.loc[y_pred["restaurant"] == (name or CHAIN), "y_pred"].sum()
            assert lines[-1] == f"week total: {total:.0f}"  # (not the chain and its restaurants summed)
        result = CliRunner().invoke(cli, ["show", "--experiment-name", "Default", "--restaurant", "nowhere"])
        assert result.exit_code == 1
        assert result.output.strip().endswith(f"has no restaurant 'nowhere'; it has {', '.join([*SHIPPED, CHAIN])}")
    finally:
        mlflow.set_tracking_uri(None)


def test_one_worker_writes_the_files_the_pipeline_s_two_wrote(restaurants, monkeypatch):
    """features, validate and future run alone (in this process) with FOODCAST_WORKERS=1 on the
    pipeline's runs and weeks: the same files, byte for byte (their checksum tags), as its
    stages' with 2."""
    from click.testing import CliRunner

    from foodcast.tracking.names import artifact_tag
    from steps.features import features
    from steps.future import future
    from steps.validate import validate

    client = MlflowClient(restaurants.uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", restaurants.uri)
    monkeypatch.setenv("FOODCAST_WORKERS", "1")
    mlflow.set_tracking_uri(restaurants.uri)
    runs = {
        "features": (features, ["--load-run-id", restaurants.lines["load"][1]], [names.X_TRAIN, names.Y_TRAIN]),
        "validate": (
            validate,
            [
                "--features-run-id",
                restaurants.lines["features"][1],
                "--n-fold",
                "3",
                "--n-models",
                "3",
                "--n-estimators",
                "10",
            ],
            [names.CV_PREDICTIONS, names.PER_RESTAURANT],
        ),
        "future": (future, ["--next-week", "261", "--granularity", "restaurant"], [names.X_PRED]),
    }
    try:
        for stage, (command, args, artifacts) in runs.items():
            result = CliRunner().invoke(command, args, catch_exceptions=False)
            assert result.exit_code == 0, result.output
            alone = client.search_runs(["0"], f"tags.`foodcast.step` = '{stage}'", max_results=1)[0]
            assert alone.info.run_id != restaurants.lines[stage][1]
            piped = client.get_run(restaurants.lines[stage][1])
            for artifact in artifacts:
                tag = artifact_tag(names.artifact_path(artifact))
                assert alone.data.tags[tag] == piped.data.tags[tag], artifact
    finally:
        mlflow.set_tracking_uri(None)


def test_model_champion_of_the_other_granularity_is_refused_before_anything_runs(restaurants):
    """The pipeline's promote made its model per restaurant champion: main with model=champion
    and granularity=chain would predict the chain's rows with it; refused at once, as other
    feature parameters are."""
    from foodcast.pipeline.champion import champion_feature_differences
    from foodcast.pipeline.stage_table import main_params

    options = {**{p.name: p.default for p in main_params()}, **RESTAURANTS}
    client = MlflowClient(restaurants.uri)
    mlflow.set_tracking_uri(restaurants.uri)
    try:
        assert champion_feature_differences(client, options) is None
        differences = champion_feature_differences(client, {**options, "granularity": "chain"})
    finally:
        mlflow.set_tracking_uri(None)
    assert differences == "version 1 of 'foodcast': granularity=chain (the champion's: restaurant)"
