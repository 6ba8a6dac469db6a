"""The tables of a forecast per restaurant: predict's, to the cent and coherent; evaluate's
scorecard, each restaurant on its own batches, the chain on their sum, a restaurant without
cash-in in the week said and left out of the summary. The batches of a small synthetic chain;
the evaluate step on a temporary sqlite store."""

from __future__ import annotations

import sys

import mlflow
import numpy as np
import pandas as pd
import pytest

from conftest import PROJECT, Runner
from fixtures import make_batches
from foodcast.core.restaurant_forecasts import to_cents_coherent
from foodcast.core.restaurant_scoring import restaurant_scorecard
from foodcast.core.restaurants import CHAIN
from foodcast.core.weeks import week_start
from foodcast.data.chain import read_restaurants
from foodcast.errors import FoodcastError
from foodcast.tracking import names
from foodcast.tracking.artifacts import mlflow_log_pandas

WEEK = 11
RESTAURANTS = ("alpha", "beta", "gamma", "delta")


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    """alpha, beta and delta with batches of weeks 7-11; gamma closed after week 10."""
    data = make_batches(tmp_path_factory.mktemp("data"), range(WEEK - 4, WEEK + 1), restaurants=RESTAURANTS)
    (data / "gamma" / f"week_{WEEK:03d}.csv.gz").unlink()
    return data


@pytest.fixture(scope="module")
def hourly(batches):
    return read_restaurants(batches, WEEK - 4, WEEK)[0]


def naive_forecast(hourly: pd.DataFrame) -> pd.DataFrame:
    """predict's long table whose forecast is seasonal naive (the same hour a week earlier), its
    interval [0, 2 × forecast] (beta's, fallback hours all, [0, forecast]); the chain's rows the
    sum of the restaurants'."""
    hours = pd.date_range(week_start(WEEK), periods=168, freq="h")
    frames = []
    for name in RESTAURANTS:
        rows = hourly[hourly["restaurant"] == name].set_index("order_date")["cash_in"]
        point = rows.reindex(hours - pd.Timedelta(weeks=1)).to_numpy()
        frames.append(pd.DataFrame({"restaurant": name, "order_date": hours, "fallback": float(name == "beta")}))
        frames[-1]["y_pred"] = point
    chain = pd.concat(frames).groupby("order_date", as_index=False)["y_pred"].sum()
    frames.insert(0, chain.assign(restaurant=CHAIN, fallback=0.0))
    preds = pd.concat(frames, ignore_index=True)[["restaurant", "order_date", "fallback", "y_pred"]]
    return preds.assign(y_lower=0.0, y_upper=np.where(preds["restaurant"] == "beta", 1, 2) * preds["y_pred"])


def test_each_restaurant_is_scored_on_its_own_cash_in_and_the_chain_on_their_sum(hourly):
    preds = naive_forecast(hourly)
    metrics, table, per_restaurant = restaurant_scorecard(preds, hourly, WEEK)

    assert list(per_restaurant["restaurant"]) == [CHAIN, "alpha", "beta", "gamma", "delta"]
    scored = per_restaurant.set_index("restaurant")
    # The forecast is seasonal naive: as good as it, restaurant by restaurant and for the chain
    # (whose naive, week 10's sum, includes gamma's last week).
    assert list(scored.loc[[CHAIN, "alpha", "beta", "delta"], "model_over_naive"]) == pytest.approx([1.0] * 4)
    assert list(scored["fallback"]) == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert scored.loc["gamma", "note"] == "no batch of gamma for week 11 (its last: week 10): not scored"
    assert np.isnan(scored.loc["gamma", "mae_model"])
    chain_actual = hourly[(hourly["order_date"] >= week_start(WEEK))].groupby("order_date")["cash_in"].sum()
    chain_rows = table[table["restaurant"] == CHAIN]
    np.testing.assert_allclose(chain_rows["actual"], chain_actual.to_numpy())
    assert metrics["mae_model"] == pytest.approx(np.mean(np.abs(chain_rows["y_pred"] - chain_rows["actual"])))
    assert metrics["model_over_naive"] == pytest.approx(1.0)
    # The median and worst of the established restaurants: beta's fallback hours set it apart.
    coverage = scored.loc[["alpha", "delta"], "coverage"]
    assert coverage.nunique() == 2 and scored.loc["beta", "coverage"] < coverage.min()
    assert metrics["median_restaurant_coverage"] == pytest.approx(coverage.mean())
    assert metrics["worst_restaurant_coverage"] == coverage.min()
    assert metrics["median_restaurant_model_over_naive"] == metrics["worst_restaurant_model_over_naive"] == 1.0
    assert (metrics["restaurants_scored"], metrics["fallback_restaurants_scored"]) == (3.0, 1.0)
    assert set(table["restaurant"]) == {CHAIN, "alpha", "beta", "delta"}


def test_a_week_without_cash_in_yet_is_refused_as_for_the_chain(hourly):
    earlier = hourly[hourly["order_date"] < week_start(WEEK)]
    with pytest.raises(FoodcastError, match=r"^week 11 has no data yet in the data: its forecast can be scored once"):
        restaurant_scorecard(naive_forecast(hourly), earlier, WEEK)


def test_the_evaluate_step_logs_the_chain_s_metrics_the_restaurants_summary_and_table(store, tmp_path, batches, hourly):
    """evaluate run alone (``python -m steps.evaluate``, PNG off) on a predict run made here: the
    cost of one stage process."""
    with mlflow.start_run() as predict:
        mlflow.set_tags({names.STEP_TAG: names.PREDICT, names.WEEK_TAG: str(WEEK)})
        mlflow_log_pandas(naive_forecast(hourly), *names.Y_PRED)
    runner = Runner(tmp_path, store, batches)
    runner.env.update(PYTHONPATH=str(PROJECT), FOODCAST_PLOT_PNG="0")
    runner.run(sys.executable, "-m", "steps.evaluate", "--predict-run-id", predict.info.run_id)

    client = mlflow.MlflowClient()
    [run] = client.search_runs(["0"], filter_string=f"tags.`{names.STEP_TAG}` = '{names.EVALUATE}'")
    metrics = run.data.metrics
    assert metrics["model_over_naive"] == pytest.approx(1.0) and metrics["restaurants_scored"] == 3.0
    assert metrics["worst_restaurant_model_over_naive"] == 1.0
    per_restaurant = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path=names.artifact_path(names.PER_RESTAURANT), dst_path=str(tmp_path)
        ),
        keep_default_na=False,
    )
    assert list(per_restaurant["restaurant"]) == [CHAIN, "alpha", "beta", "gamma", "delta"]
    assert per_restaurant["note"].tolist()[:3] == ["", "", ""] and "gamma" in per_restaurant["note"].iloc[3]


def test_the_table_to_the_cent_keeps_the_chain_the_sum_of_its_restaurants():
    """Two restaurants' £1.004 make a chain's £2.008: rounded row by row, £1.00 + £1.00 ≠ £2.01."""
    hour = pd.Timestamp("2019-12-23 19:00")
    preds = pd.DataFrame(
        {
            "restaurant": ["a", "b", CHAIN],
            "order_date": [hour] * 3,
            "y_pred_0": [1.004, 2.004, 3.008],
            "y_pred": [1.004, 1.004, 2.008],
            "y_lower": [0.5, 0.5, 2.004],
            "y_upper": [1.5, 1.5, 2.9],
        }
    )
    out = to_cents_coherent(preds)
    assert out["y_pred"].tolist() == [1.0, 1.0, 2.0]
    assert out["y_pred_0"].tolist() == [1.0, 2.0, 3.0]
    # The chain's interval (£2.00 to £2.90 once rounded) still holds its point forecast.
    assert out.loc[2, ["y_lower", "y_upper"]].tolist() == [2.0, 2.9]
    assert preds["y_pred"].tolist() == [1.004, 1.004, 2.008]  # a copy
