"""granularity=restaurant, the data side: the long form load reads, what features, future and
the tracking helpers make of it. Pure functions and a temporary sqlite store; the pipeline runs
on the shipped data are in tests/test_restaurant_pipeline.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fixtures import make_batches
from foodcast.core.restaurants import CHAIN, chain_total
from foodcast.data.chain import etl, read_restaurants
from foodcast.data.orders import read_batches, to_export, write_batch
from foodcast.errors import FoodcastError


def opening_and_closing(root):
    """alpha trades in weeks 1-4 (its batches of 5-6 header-only: closed), beta opens in week 3."""
    make_batches(root, weeks=range(1, 5), restaurants=("alpha",))
    make_batches(root, weeks=range(3, 7), restaurants=("alpha", "beta"))
    for week in (3, 4):
        (root / "alpha" / f"week_{week:03d}.csv.gz").unlink()
    make_batches(root, weeks=[3, 4], restaurants=("alpha",))
    empty = read_batches([root / "alpha" / "week_001.csv.gz"]).iloc[:0]
    for week in (5, 6):
        write_batch(to_export(empty), root / "alpha" / f"week_{week:03d}.csv.gz")
    return root


def test_the_long_form_holds_each_restaurant_s_weeks_and_sums_to_the_chain(tmp_path):
    root = opening_and_closing(tmp_path / "data")

    long, coverage = read_restaurants(root, 1, 6)

    assert list(long.columns) == ["restaurant", "order_date", "cash_in"]
    assert long.equals(long.sort_values(["restaurant", "order_date"], kind="stable").reset_index(drop=True))
    weeks = {
        name: sorted(set((rows["order_date"] - pd.Timestamp("2014-12-29")).dt.days // 7 + 1))
        for name, rows in long.groupby("restaurant")
    }
    assert weeks == {"alpha": [1, 2, 3, 4], "beta": [3, 4, 5, 6]}  # not before it opened, nor after it closed
    assert (long.groupby("restaurant").size() == 4 * 168).all()  # every hour of those weeks
    orders = read_batches(sorted(root.rglob("week_*.csv*")))
    by_restaurant = (orders["quantity"] * orders["product_price"]).groupby(orders["restaurant"]).sum()
    np.testing.assert_allclose(long.groupby("restaurant")["cash_in"].sum(), by_restaurant)
    chain = etl(root, 1, 6)
    total = chain_total(long)
    assert total["order_date"].tolist() == chain["order_date"].tolist()
    assert (total["cash_in"].to_numpy() * 100).round().tolist() == (chain["cash_in"].to_numpy() * 100).round().tolist()
    assert coverage.complete and coverage.weeks == tuple(range(1, 7))


def test_the_long_form_refuses_what_the_chain_refuses_in_the_same_words(tmp_path):
    root = make_batches(tmp_path / "data", weeks=range(1, 6))
    (root / "beta" / "week_003.csv.gz").unlink()
    with pytest.raises(FoodcastError) as chain_error:
        etl(root, 1, 5)
    with pytest.raises(FoodcastError) as restaurant_error:
        read_restaurants(root, 1, 5)
    assert str(restaurant_error.value) == str(chain_error.value)
    assert str(chain_error.value).startswith("week 3 is incomplete: restaurant beta ")

    long, coverage = read_restaurants(root, 1, 5, allow_missing=True)
    beta = long[long["restaurant"] == "beta"]
    assert len(beta) == 4 * 168 and len(long) == 9 * 168  # beta's missing week: no rows, not zeros
    assert [str(m) for m in coverage.missing] == ["beta week 3 (no batch)"]


def test_a_restaurant_directory_named_chain_is_refused_in_one_line(tmp_path):
    root = make_batches(tmp_path / "data", weeks=[1, 2], restaurants=("alpha", CHAIN))
    with pytest.raises(FoodcastError) as error:
        read_restaurants(root, 1, 2)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{root / CHAIN}: a restaurant cannot be named chain with granularity=restaurant")
    assert len(etl(root, 1, 2)) == 2 * 168  # the chain's own total reads it as any restaurant


def test_a_restaurant_named_with_digits_reads_back_as_its_name(store):
    import mlflow

    from foodcast.tracking.artifacts import mlflow_log_pandas, read_frame

    long = pd.DataFrame(
        {
            "restaurant": ["007", "007"],
            "order_date": pd.date_range("2015-01-05", periods=2, freq="h"),
            "cash_in": [1.5, 0.0],
        }
    )
    with mlflow.start_run() as run:
        mlflow.set_tag("foodcast.step", "load")
        mlflow_log_pandas(long, "data", "data.csv")
    assert read_frame(run.info.run_id, ("data", "data.csv"), "load")["restaurant"].tolist() == ["007", "007"]


SETTINGS = ["--level-weeks", "4", "--profile-weeks", "6", "--lag-in-week", "1"]


def stage(command, *args):
    """Run a stage command in this process, as a stage run alone; its run."""
    from click.testing import CliRunner
    from mlflow.tracking import MlflowClient

    result = CliRunner().invoke(command, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    client = MlflowClient()
    return client.search_runs(["0"], order_by=["attributes.start_time DESC"], max_results=1)[0]


@pytest.fixture
def chain_of_four(tmp_path, monkeypatch, store):
    """alpha and beta trade in weeks 1-14; gamma in weeks 1-4 only (closed for the 10 weeks
    before week 15) and epsilon in 1-10 (for 4); delta opens in week 12 (3 weeks before week 15)."""
    root = make_batches(tmp_path / "data", weeks=range(1, 15))
    make_batches(root, weeks=range(1, 5), restaurants=("gamma",), seed=1)
    make_batches(root, weeks=range(1, 11), restaurants=("epsilon",), seed=3)
    make_batches(root, weeks=range(12, 15), restaurants=("delta",), seed=2)
    monkeypatch.setenv("FOODCAST_DATA_DIR", str(root))
    monkeypatch.setenv("FOODCAST_WORKERS", "1")
    return root


def test_features_of_restaurants_give_aligned_training_rows_per_restaurant_and_for_the_chain(chain_of_four):
    from foodcast.tracking.artifacts import read_frame
    from foodcast.tracking.datasets import training_set
    from steps.features import features
    from steps.load import load

    loaded = stage(load, "--start-week", 2, "--end-week", 14, "--granularity", "restaurant")
    assert loaded.data.metrics["n_restaurants"] == 5
    built = stage(features, "--load-run-id", loaded.info.run_id, *SETTINGS)
    x = read_frame(built.info.run_id, ("training_set", "x_train.csv"), "features")
    y = read_frame(built.info.run_id, ("training_set", "y_train.csv"), "features")
    assert list(x.columns[:3]) == ["restaurant", "order_date", "fallback"] and "cash_in" not in x
    assert list(y.columns) == ["restaurant", "order_date", "cash_in"]
    assert sorted(set(x["restaurant"])) == ["alpha", "beta", "chain", "delta", "epsilon", "gamma"]
    assert x["restaurant"].iloc[-1] == "chain" and set(x["fallback"]) <= {0.0, 1.0}
    assert x.loc[x["restaurant"] == "delta", "fallback"].eq(1.0).all()  # 3 weeks: too short for its own
    assert built.data.metrics["n_rows"] == len(x) and built.data.metrics["n_restaurants"] == 5

    with mlflow_run():
        x_fit, y_fit = training_set(built.info.run_id)
    assert x_fit.index.name == "order_date" and len(x_fit) == len(y_fit) == len(x)
    assert (x_fit.index == y_fit.index).all() and list(x_fit["restaurant"]) == list(y["restaurant"])
    np.testing.assert_array_equal(y_fit.to_numpy(), y["cash_in"].to_numpy())


def mlflow_run():
    import mlflow

    return mlflow.start_run()


def test_future_of_restaurants_forecasts_the_open_ones_and_says_which_are_closed(chain_of_four):
    from click.testing import CliRunner
    from mlflow.tracking import MlflowClient

    from foodcast.tracking.artifacts import read_frame
    from steps.future import future

    args = ["--next-week", "15", "--granularity", "restaurant", "--closed-weeks", "4", *SETTINGS]
    result = CliRunner().invoke(future, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    run = MlflowClient().search_runs(["0"], max_results=1)[0]
    x_pred = read_frame(run.info.run_id, ("prediction_set", "x_pred.csv"), "future")

    assert list(x_pred.columns[:3]) == ["restaurant", "order_date", "fallback"]
    counts = x_pred.groupby("restaurant", sort=False).size()
    assert list(counts.items()) == [(name, 168) for name in ("alpha", "beta", "delta", "chain")]  # in this order
    assert x_pred.loc[x_pred["restaurant"] == "delta", "fallback"].eq(1.0).all()  # 3 weeks old: the chain's profile
    assert x_pred.loc[x_pred["restaurant"] != "delta", "fallback"].eq(0.0).all()
    notes = [
        "restaurant epsilon: no orders since week 10 (4 weeks before week 15): not forecast",
        "restaurant gamma: no orders since week 4 (10 weeks before week 15): not forecast",  # before the weeks read
    ]
    assert [
        line for line in result.stderr.splitlines() if "foodcast.step" not in line
    ] == notes  # (its log lines apart)
    assert run.data.tags["foodcast.left_out"].splitlines() == notes
    assert run.data.metrics["n_left_out"] == 2 and run.data.metrics["n_restaurants"] == 3


def test_future_reads_the_closed_weeks_of_restaurants_and_the_chain_s_weeks_as_before():
    from foodcast.pipeline.stages.future import future_weeks

    options = {"next_week": 30, "lag_in_week": 1, "level_weeks": 0, "profile_weeks": 0, "closed_weeks": 8}
    assert future_weeks({**options, "granularity": "restaurant"}) == (22, 29)
    assert (
        future_weeks({**options, "granularity": "chain"})
        == future_weeks({"next_week": 30, "lag_in_week": 1})
        == (29, 29)
    )
    assert future_weeks({**options, "granularity": "restaurant", "level_weeks": 10}) == (20, 29)


def test_a_training_set_whose_target_rows_are_not_its_features_rows_is_refused(store):
    import mlflow

    from foodcast.tracking.artifacts import mlflow_log_pandas
    from foodcast.tracking.datasets import training_set

    hours = pd.date_range("2015-01-05", periods=2, freq="h")
    x = pd.DataFrame({"restaurant": ["a", "b", "a", "b"], "order_date": hours.repeat(2), "fallback": 0.0, "hour": 1})
    y = x[["restaurant", "order_date"]].assign(cash_in=1.0).iloc[[1, 0, 2, 3]]
    with mlflow.start_run() as run:
        mlflow.set_tag("foodcast.step", "features")
        mlflow_log_pandas(x, "training_set", "x_train.csv")
        mlflow_log_pandas(y, "training_set", "y_train.csv")
    with mlflow.start_run(), pytest.raises(FoodcastError) as error:
        training_set(run.info.run_id)
    assert str(error.value) == (
        f"run {run.info.run_id} (features): training_set/y_train.csv does not hold the rows of "
        "training_set/x_train.csv (restaurant, order_date, in the same order)"
    )


def test_main_refuses_restaurants_without_a_level_in_one_line(small_data, monkeypatch):
    import main as main_module
    from foodcast.pipeline.stage_table import main_params

    monkeypatch.setenv("FOODCAST_DATA_DIR", str(small_data))
    weeks = {"start_week": 2, "end_week": 12, "next_week": 13, "profile_weeks": 4, "level_weeks": 4}
    options = {**{p.name: p.default for p in main_params()}, **weeks, "granularity": "restaurant"}
    assert main_module.check_options(options)["granularity"] == "restaurant"
    chain = {**options, "granularity": "chain", "level_weeks": 0, "level_scaled": False, "estimator": "random_forest"}
    assert main_module.check_options(chain)["level_weeks"] == 0  # the chain's model needs no level
    with pytest.raises(FoodcastError, match=r"^granularity=restaurant pools .* it needs level_weeks >= 1$"):
        main_module.check_options({**chain, "granularity": "restaurant"})


def test_main_s_closing_block_lists_the_restaurants_left_out_after_the_forecast():
    from foodcast.pipeline.console import closing_block

    args = ("main: 7 launched, 0 reused in 30.0s", "week 15 (…)", "/y_pred.csv", [], None, "http://ui")
    notes = ["restaurant gamma: no orders since week 4 (10 weeks before week 15): not forecast"]
    assert closing_block(*args, left_out=notes)[2:4] == ["  forecast:  /y_pred.csv", f"  left out:  {notes[0]}"]
    assert not [line for line in closing_block(*args) if "left out" in line]  # the chain's: as before


def test_the_long_form_is_the_same_on_two_processes(tmp_path):
    """Each restaurant is read on its own, one per task of read_restaurants' pool."""
    root = opening_and_closing(tmp_path / "data")
    make_batches(root, weeks=range(1, 7), restaurants=("gamma", "delta"), seed=3)
    one, coverage_one = read_restaurants(root, 1, 6)
    two, coverage_two = read_restaurants(root, 1, 6, workers=2)
    pd.testing.assert_frame_equal(two, one)
    assert coverage_two == coverage_one
    assert sorted(one["restaurant"].unique()) == ["alpha", "beta", "delta", "gamma"]


def test_the_long_form_reports_errors_in_the_chain_s_order(tmp_path):
    """Read one restaurant at a time (on one process or two), the errors still come as read_chain
    gives them: a bad file (of any restaurant) before an order id given to two orders (of an
    earlier restaurant), before an incomplete week."""

    def chain_with(name, bad_file, reused_id):
        root = make_batches(tmp_path / name, weeks=range(1, 5), restaurants=("alpha", "beta", "gamma"))
        (root / "gamma" / "week_002.csv.gz").unlink()  # incomplete week 2
        if reused_id:
            lines = read_batches([root / "alpha" / "week_003.csv.gz"])
            lines.loc[lines["order_id"] == lines["order_id"].iloc[-1], "order_id"] = lines["order_id"].iloc[0]
            write_batch(to_export(lines), root / "alpha" / "week_003.csv.gz")
        if bad_file:
            (root / "beta" / "week_004.csv.gz").write_bytes(b"not gzip")
        return root

    expected = {
        "all three": "beta/week_004.csv.gz",
        "a reused id": "already names another order",
        "the week": "week 2 is incomplete: restaurant gamma ",
    }
    for name, bad_file, reused_id in (
        ("all three", True, True),
        ("a reused id", False, True),
        ("the week", False, False),
    ):
        root = chain_with(name, bad_file, reused_id)
        with pytest.raises(FoodcastError) as chain_error:
            etl(root, 1, 4)
        assert expected[name] in str(chain_error.value)
        for workers in (1, 2):
            with pytest.raises(FoodcastError) as restaurant_error:
                read_restaurants(root, 1, 4, workers=workers)
            assert str(restaurant_error.value) == str(chain_error.value)
