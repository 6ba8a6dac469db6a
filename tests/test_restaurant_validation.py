"""validate with granularity=restaurant: the restaurant model cross-validated in folds of hours
(foodcast.core.restaurant_validation). Pure functions on a synthetic chain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from foodcast.core import restaurants
from foodcast.core.forecast import fold_maes
from foodcast.core.restaurant_validation import cross_validate_restaurants
from foodcast.core.weeks import week_hours
from foodcast.errors import FoodcastError

FEATURES = {"degree": 1, "lag_in_week": 0, "level_weeks": 4, "profile_weeks": 4}
MODEL = {"model": "profile", "level_scaled": True, "n_models": 3}
# name: (first week, last week, orders an open hour takes on average)
CHAIN = {"r1": (100, 111, 3.0), "r2": (100, 111, 8.0), "new": (108, 111, 2.0)}


def long_hourly(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for name, (first, last, size) in CHAIN.items():
        for week in range(first, last + 1):
            hours = week_hours(week)
            mean = size * ((hours.hour >= 11) & (hours.hour < 23)) * np.where(hours.day_of_week >= 4, 1.4, 1.0)
            cash_in = np.round(rng.poisson(mean) * rng.choice([7.95, 10.5, 12.25], len(hours)), 2)
            frames.append(pd.DataFrame({"restaurant": name, "order_date": hours, "cash_in": cash_in}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def folds():
    train = restaurants.training_rows(long_hourly(), **FEATURES)
    x = train.drop(columns="cash_in").set_index("order_date")
    y = pd.Series(train["cash_in"].to_numpy(), index=x.index)
    return x, y, cross_validate_restaurants(restaurants.RestaurantModel(MODEL), x, y, n_fold=3)


def test_each_fold_is_a_block_of_hours_after_those_its_model_was_fitted_on(folds):
    x, y, (maes, preds, truth) = folds
    assert sorted(set(preds["fold"])) == [0, 1, 2]
    ends = [preds.index[preds["fold"] == f] for f in range(3)]
    assert all(ends[f].max() < ends[f + 1].min() for f in range(2))  # chronological, never overlapping
    for fold in range(3):  # every row of a fold's hours: each restaurant the model knew, and the chain
        rows = preds[preds["fold"] == fold]
        assert set(rows.groupby(level=0)["restaurant"].count()) <= {3, 4}
        assert "chain" in set(rows["restaurant"])
    # "new" opens in week 108: in no training hour of the first fold, so not predicted there
    assert "new" not in set(preds.loc[preds["fold"] == 0, "restaurant"])
    assert "new" in set(preds.loc[preds["fold"] == 2, "restaurant"])


def test_the_truth_is_each_row_s_and_the_chain_s_errors_are_its_maes(folds):
    x, y, (maes, preds, truth) = folds
    key = pd.MultiIndex.from_arrays([x.index, x["restaurant"]])
    expected = pd.Series(y.to_numpy(), index=key)
    assert (
        preds["cash_in"].to_numpy() == expected.loc[list(zip(preds.index, preds["restaurant"], strict=True))].to_numpy()
    ).all()
    chain = preds[preds["restaurant"] == "chain"]
    assert truth.index.equals(chain.index) and (truth.to_numpy() == chain["cash_in"].to_numpy()).all()
    assert maes.shape == (3, 3)
    by_hand = fold_maes(chain[["y_pred_0", "y_pred_1", "y_pred_2", "fold"]], chain["cash_in"].to_numpy())
    np.testing.assert_allclose(maes, by_hand[["y_pred_0", "y_pred_1", "y_pred_2"]].to_numpy())


def test_the_restaurants_add_up_to_the_chain_in_every_fold(folds):
    x, y, (maes, preds, truth) = folds
    shops = preds[preds["restaurant"] != "chain"].groupby(level=0)["y_pred"].sum()
    chain = preds.loc[preds["restaurant"] == "chain", "y_pred"]
    np.testing.assert_allclose(shops.loc[chain.index].to_numpy(), chain.to_numpy(), atol=1e-6)


def test_too_few_hours_for_the_folds_are_refused_in_one_line(folds):
    x, y, _ = folds
    first = x.index[x["restaurant"] == "chain"][:3]
    rows = x.index <= first.max()
    with pytest.raises(FoodcastError, match=r"^cannot split 3 training hours of the chain into 3 folds$"):
        cross_validate_restaurants(restaurants.RestaurantModel(MODEL), x[rows], y[rows], n_fold=3)
