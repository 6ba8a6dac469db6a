"""Backtests per restaurant: the champion gate (a configuration per restaurant is backtested per
restaurant and compared on the chain's total and, when both are per restaurant, on the median
established restaurant) and the backtest stage. Small synthetic batches (3 restaurants), one or
two target weeks, 2 members."""

from __future__ import annotations

import sys

import mlflow
import pandas as pd
import pytest

from conftest import PROJECT, Runner
from fixtures import make_batches
from foodcast.core.backtest import backtest
from foodcast.core.features import DEFAULT_FEATURES
from foodcast.core.gate import Configuration, compare, decide
from foodcast.core.restaurant_backtest import backtest_restaurants
from foodcast.core.restaurants import chain_total
from foodcast.core.windows import gate_targets, gate_weeks_read, gate_window
from foodcast.data.chain import read_restaurants
from foodcast.pipeline.params import FEATURE_PARAMS, MODEL_PARAMS
from foodcast.pipeline.promotion import configuration
from foodcast.tracking import names
from foodcast.tracking.runs import check_run

FEATURES = {**DEFAULT_FEATURES, "level_weeks": 2, "profile_weeks": 4}
MODEL = {"model": "profile", "n_estimators": 10, "max_depth": 3, "min_samples_leaf": 1, "level_scaled": True}
START, END, GATE_WEEKS = 5, 14, 1
LOCAL = Configuration(FEATURES, {**MODEL, "n_models": 2}, START, END, {"kind": "local", "closed_weeks": 4})


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    return make_batches(tmp_path_factory.mktemp("data"), range(1, END + 1), restaurants=("alpha", "beta", "gamma"))


@pytest.fixture(scope="module")
def hourly(batches):
    return read_restaurants(batches, *gate_weeks_read(START, END, GATE_WEEKS, 4))[0]


def test_two_models_per_restaurant_are_compared_on_the_chain_and_the_median_restaurant(hourly):
    pooled = Configuration(FEATURES, {**MODEL, "n_models": 3}, START, END, {"kind": "global", "closed_weeks": 4})
    decision = compare(LOCAL, pooled, GATE_WEEKS, 0.0, hourly)

    first, last = gate_targets(END, GATE_WEEKS)
    window = gate_window(START, END, GATE_WEEKS)
    ours, theirs = (
        backtest_restaurants(hourly, first, last, window, c.features, c.model, **c.restaurants).summary
        for c in (LOCAL, pooled)
    )
    assert (decision.challenger_mae, decision.champion_mae) == (ours["chain_mae_model"], theirs["chain_mae_model"])
    assert (decision.challenger_median_ratio, decision.champion_median_ratio) == (
        ours["ratio_naive_median"],
        theirs["ratio_naive_median"],
    )
    chain = decide(ours["chain_mae_model"], theirs["chain_mae_model"], 0.0)
    median = decide(ours["ratio_naive_median"], theirs["ratio_naive_median"], 0.0)
    assert decision.promote == (chain.promote and median.promote)
    if chain.promote:
        assert "median restaurant's MAE over seasonal naive" in decision.reason, decision.reason
    assert "(the chain's total)" in decision.reason
    # Against itself: no backtest, promoted.
    assert compare(LOCAL, LOCAL, GATE_WEEKS, 0.0, hourly).reason.startswith("same features and model parameters")


def test_a_model_per_restaurant_against_the_chain_s_is_compared_on_the_chain_s_total(hourly):
    chain_model = Configuration(FEATURES, {**MODEL, "n_models": 2}, START, END)
    decision = compare(LOCAL, chain_model, GATE_WEEKS, 0.05, hourly)

    first, last = gate_targets(END, GATE_WEEKS)
    window = gate_window(START, END, GATE_WEEKS)
    theirs = backtest(chain_total(hourly), first, last, window, FEATURES, chain_model.model).summary["mae_model"]
    assert decision.champion_mae == theirs and decision.champion_median_ratio is None
    assert decision.promote == decide(decision.challenger_mae, theirs, 0.05).promote
    assert decision.reason.endswith("(the chain's total)"), decision.reason


def _run(step: str, params: dict) -> str:
    with mlflow.start_run() as run:
        mlflow.set_tag(names.STEP_TAG, step)
        mlflow.log_params(params)
    return run.info.run_id


def test_promote_reads_a_train_run_s_granularity_and_restaurant_model_from_its_lineage(store):
    features = {p.name: p.default for p in FEATURE_PARAMS}
    model = {p.name: p.default for p in MODEL_PARAMS}
    configurations = []
    for load_params, train_params in (
        ({"granularity": "restaurant"}, {"restaurant_model": "global"}),
        ({"granularity": "chain"}, {"restaurant_model": "local"}),
        ({}, {}),  # runs from before the restaurants
    ):
        load = _run(names.LOAD, {"start_week": START, "end_week": END, **load_params})
        features_run = _run(names.FEATURES, {names.run_id_param(names.LOAD): load, **features})
        train = _run(names.TRAIN, {names.run_id_param(names.FEATURES): features_run, **model, **train_params})
        configurations.append(configuration(check_run(train, names.TRAIN)))
    assert [c.restaurants for c in configurations] == [{"kind": "global", "closed_weeks": 4}, None, None]
    assert configurations[0].features == configurations[2].features
    assert (configurations[0].start_week, configurations[0].end_week) == (START, END)


def test_the_backtest_stage_replays_the_restaurants_and_logs_the_chain_s_weeks_and_the_restaurants(
    store, tmp_path, batches
):
    """backtest run alone (``python -m steps.backtest``, PNG off, one worker): the cost of one
    stage process and two weeks of small fits (the pooled model: fewer fits than local)."""
    runner = Runner(tmp_path, store, batches)
    runner.env.update(PYTHONPATH=str(PROJECT), FOODCAST_PLOT_PNG="0", FOODCAST_WORKERS="1")
    options = {"first-week": END - 1, "last-week": END, "window-weeks": 6, "level-weeks": 2, "profile-weeks": 4}
    options |= {"n-models": 2, "granularity": "restaurant", "restaurant-model": "global"}
    args = [item for name, value in options.items() for item in (f"--{name}", str(value))]
    done = runner.run(sys.executable, "-m", "steps.backtest", *args)

    client = mlflow.MlflowClient()
    [run] = client.search_runs(["0"], filter_string=f"tags.`{names.STEP_TAG}` = '{names.BACKTEST}'")

    def table(artifact):
        path = names.artifact_path(artifact)
        return pd.read_csv(
            mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=path, dst_path=str(tmp_path))
        )

    weeks = table(names.BACKTEST_RESTAURANT_WEEKS)
    assert sorted(set(zip(weeks["week"], weeks["restaurant"], strict=True))) == [
        (week, name) for week in (END - 1, END) for name in ("alpha", "beta", "gamma")
    ]
    # The weekly metrics and backtest/weeks.csv are the chain's total's, as a chain backtest's.
    chain = table(names.BACKTEST_WEEKS).set_index("week")["mae_model"]
    history = client.get_metric_history(run.info.run_id, "mae_model")
    assert {m.step: round(m.value, 2) for m in history} == chain.to_dict()
    metrics = run.data.metrics
    assert metrics["restaurants_established"] == 3
    assert 0 < metrics["median_restaurant_ratio_naive"] <= metrics["worst_restaurant_ratio_naive"]
    per_restaurant = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path=names.artifact_path(names.PER_RESTAURANT), dst_path=str(tmp_path)
        )
    )
    assert list(per_restaurant["restaurant"]) == ["alpha", "beta", "gamma"]
    assert "3 established restaurants, model / seasonal naive median" in done.stdout, done.stdout
