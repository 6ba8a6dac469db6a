"""Forecasts per restaurant scored (foodcast/core/per_restaurant.py): pure functions on a small
synthetic chain, no MLflow, no files.

Three restaurants over weeks 100-111, one of them opened in week 106, features that need four
weeks of history and a training window of six: the new one is forecast from its fallback in the
first target weeks and counted apart from the established ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fixtures import SHORT_FEATURES, SHORT_MODEL
from foodcast.core import gate as pr_gate
from foodcast.core import per_restaurant as pr
from foodcast.core import restaurant_backtest, restaurant_validation, restaurants
from foodcast.core.weeks import week_hours

FEATURES, MODEL = SHORT_FEATURES, SHORT_MODEL
# name: (first week, last week, orders an open hour takes on average)
CHAIN = {"big": (100, 111, 8.0), "small": (100, 111, 3.0), "young": (106, 111, 2.0)}
FIRST, LAST, WINDOW = 108, 111, 6


def long_hourly(chain: dict[str, tuple[int, int, float]], seed: int = 0) -> pd.DataFrame:
    """Hourly cash-in per restaurant: orders from 11:00 to 23:00, more at the weekend."""
    rng = np.random.default_rng(seed)
    frames = []
    for name, (first, last, size) in chain.items():
        for week in range(first, last + 1):
            hours = week_hours(week)
            mean = size * ((hours.hour >= 11) & (hours.hour < 23)) * np.where(hours.day_of_week >= 4, 1.4, 1.0)
            cash_in = np.round(rng.poisson(mean) * rng.choice([7.95, 10.5, 12.25], len(hours)), 2)
            frames.append(pd.DataFrame({"restaurant": name, "order_date": hours, "cash_in": cash_in}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def hourly():
    return long_hourly(CHAIN)


@pytest.fixture(scope="module")
def result(hourly):
    return pr.backtest_restaurants(hourly, FIRST, LAST, WINDOW, FEATURES, MODEL, jobs=1)


def test_backtest_scores_every_restaurant_and_the_chain_each_week(result):
    assert list(result.weeks["week"]) == list(range(FIRST, LAST + 1))
    table = result.restaurants.set_index("restaurant")
    assert list(table.index) == ["big", "small", "young"]
    assert (table["weeks"] == LAST - FIRST + 1).all()
    # young holds 2 weeks of a 6-week window in week 108: new in every target week.
    assert table.loc["young", "status"] == "new" and table.loc["young", "new_weeks"] == 4
    assert list(table.loc[["big", "small"], "status"]) == ["established", "established"]
    assert (table["mae_model"] > 0).all() and table["coverage"].between(0, 1).all()
    s = result.summary
    assert s["restaurants"] == 3 and s["restaurants_new"] == 1
    ratios = table.loc[["big", "small"], "ratio_naive"]
    assert s["median_restaurant_ratio_naive"] == pytest.approx(ratios.median())
    assert s["worst_restaurant_ratio_naive"] == pytest.approx(ratios.max())
    assert s["worst_restaurant_coverage"] == pytest.approx(table.loc[["big", "small"], "coverage"].min())
    assert s["n_weeks"] == 4 and s["ratio_naive"] == pytest.approx(s["mae_model"] / s["mae_naive"])


def test_the_backtest_is_the_core_s_backtest_of_each_week(hourly, result):
    """The weeks run apart (on a pool) and put together: the core's backtest of the same weeks."""
    core = restaurant_backtest.backtest_restaurants(hourly, FIRST, LAST, WINDOW, FEATURES, MODEL)
    chain = core.weeks[core.weeks["restaurant"] == "chain"].reset_index(drop=True)
    pd.testing.assert_frame_equal(result.weeks, chain[result.weeks.columns])
    mine = result.restaurant_weeks.set_index(["week", "restaurant"])
    theirs = core.weeks[core.weeks["restaurant"] != "chain"].set_index(["week", "restaurant"])
    pd.testing.assert_frame_equal(mine, theirs[mine.columns])
    assert result.summary["median_restaurant_ratio_naive"] == core.summary["ratio_naive_median"]


def test_one_or_two_processes_give_the_same_backtest(hourly, result):
    two = pr.backtest_restaurants(hourly, FIRST, FIRST + 1, WINDOW, FEATURES, MODEL, jobs=2)
    pd.testing.assert_frame_equal(two.weeks, result.weeks.iloc[:2])
    first = result.restaurant_weeks[result.restaurant_weeks["week"] <= FIRST + 1]
    pd.testing.assert_frame_equal(two.restaurant_weeks, first)


def test_a_backtest_reaching_before_its_data_is_refused(hourly):
    with pytest.raises(Exception, match="needs 6 weeks before it"):
        pr.backtest_restaurants(hourly, 6, 8, WINDOW, FEATURES, MODEL, jobs=1)


def test_two_restaurant_models_sharing_the_chain_model_tie_on_the_chain_and_the_median_restaurant_decides(hourly):
    """local and global differ only in the restaurants' models: the chain's forecast is the chain
    model's for both, so the chain totals tie (up to a float sum's rounding) even at margin 0."""
    local = pr_gate.Configuration(FEATURES, MODEL, 104, 111, {"kind": "local", "closed_weeks": 4})
    pooled = pr_gate.Configuration(FEATURES, MODEL, 104, 111, {"kind": "global", "closed_weeks": 4})
    decision = pr_gate.compare(pooled, local, 1, 0.0, hourly, jobs=1)
    ours = pr.backtest_restaurants(hourly, 111, 111, 8, FEATURES, MODEL, "global", jobs=1).summary
    assert decision.challenger_mae == ours["mae_model"]
    assert decision.challenger_median_ratio == ours["median_restaurant_ratio_naive"]
    assert decision.challenger_mae == pytest.approx(decision.champion_mae, rel=1e-9)
    assert decision.reason.startswith("at least as good: backtest MAE")
    assert decision.promote == (decision.challenger_median_ratio <= decision.champion_median_ratio)
    assert "median restaurant's MAE over seasonal naive" in decision.reason
    assert pr_gate._tied(44.07445388728768, 44.07445388728767) == 44.07445388728767  # seen on the shipped data


@pytest.fixture(scope="module")
def validated(hourly):
    """core's cross-validation of a local model on the chain, 3 folds (weeks 106-107, 108-109, 110-111)."""
    train = restaurants.training_rows(hourly, **FEATURES)
    x, y = train.drop(columns="cash_in").set_index("order_date"), train["cash_in"]
    return restaurant_validation.cross_validate_restaurants(restaurants.RestaurantModel(MODEL), x, y, n_fold=3)[1]


def test_cross_validation_per_restaurant_median_and_worst_established(validated):
    table = restaurant_validation.validation_table(validated).set_index("restaurant")
    assert list(table.index) == ["big", "small", "young"]
    assert list(table["status"]) == ["established", "established", "new"]  # young's level is its fallback's
    small = validated[validated["restaurant"] == "small"]
    mae = (small["y_pred"] - small["cash_in"]).abs().mean()
    assert table.loc["small", "rows"] == 3 * 336 and table.loc["small", "mae"] == pytest.approx(mae)
    assert table.loc["small", "scaled_mae"] == pytest.approx(mae / small["cash_in"].mean())
    inside = (small["cash_in"] >= small["y_lower"]) & (small["cash_in"] <= small["y_upper"])
    assert table.loc["small", "coverage"] == pytest.approx(inside.mean())
    summary = restaurant_validation.validation_summary(table.reset_index())
    assert summary["restaurants"] == 3 and summary["restaurants_new"] == 1
    established = table.loc[["big", "small"]]
    assert summary["worst_restaurant_scaled_mae"] == pytest.approx(established["scaled_mae"].max())
    assert summary["median_restaurant_coverage"] == pytest.approx(established["coverage"].median())
