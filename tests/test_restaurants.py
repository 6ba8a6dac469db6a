"""Forecasts per restaurant (foodcast/core/restaurants.py): pure functions on small synthetic chains.

No MLflow, no files: a chain of four restaurants over twelve weeks, features that need four
weeks of history, so that one restaurant opened three weeks ago needs the fallback and one
without orders for ten weeks is left out.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import skops.io

from fixtures import SHORT_FEATURES, SHORT_MODEL
from foodcast.core import restaurants
from foodcast.core.columns import LOWER_COLUMN, POINT_COLUMN, SIMPLE_COLUMN, UPPER_COLUMN, member_columns
from foodcast.core.weeks import week_hours
from foodcast.errors import FoodcastError

FEATURES, MODEL = SHORT_FEATURES, SHORT_MODEL
NEXT_WEEK = 112
# name: (first week, last week, orders an open hour takes on average)
CHAIN = {
    "r1": (100, 111, 3.0),
    "r2": (100, 111, 8.0),
    "new": (109, 111, 2.0),  # three weeks of history: shorter than the four the level needs
    "closed": (100, 101, 4.0),  # last orders in week 101: ten weeks before week 112
}


def long_hourly(chain: dict[str, tuple[int, int, float]], seed: int = 0) -> pd.DataFrame:
    """Hourly cash-in per restaurant: orders from 11:00 to 23:00, more at the weekend."""
    rng = np.random.default_rng(seed)
    frames = []
    for name, (first, last, size) in chain.items():
        for week in range(first, last + 1):
            hours = week_hours(week)
            open_hour = (hours.hour >= 11) & (hours.hour < 23)
            mean = size * open_hour * np.where(hours.day_of_week >= 4, 1.4, 1.0)
            cash_in = np.round(rng.poisson(mean) * rng.choice([7.95, 10.5, 12.25], len(hours)), 2)
            frames.append(pd.DataFrame({"restaurant": name, "order_date": hours, "cash_in": cash_in}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def chain():
    """The hourly frame, its training rows, prediction rows and notes, and a fitted local model."""
    hourly = long_hourly(CHAIN)
    train = restaurants.training_rows(hourly, **FEATURES)
    x_pred, notes = restaurants.prediction_rows(hourly, NEXT_WEEK, closed_weeks=4, **FEATURES)
    x = train.drop(columns="cash_in").set_index("order_date")
    model = restaurants.RestaurantModel(MODEL).fit(x, train["cash_in"])
    return hourly, train, x_pred.set_index("order_date"), notes, model


@pytest.mark.parametrize("reconciliation", ["proportions", "quantiles", "bottom_up"])
def test_chain_rows_are_the_sum_of_the_restaurants_to_the_cent(chain, reconciliation):
    hourly, train, x_pred, notes, model = chain
    preds = clone_with(model, reconciliation=reconciliation).predict_frame(x_pred)
    assert list(preds["restaurant"].unique()) == ["new", "r1", "r2", "chain"]
    columns = [*member_columns(preds), SIMPLE_COLUMN, POINT_COLUMN]
    assert len(columns) == MODEL["n_models"] + 2
    own = preds[preds["restaurant"] != "chain"]
    summed = own[columns].groupby(own.index).sum()
    total = preds.loc[preds["restaurant"] == "chain", columns]
    assert len(total) == 168
    assert (total - summed.loc[total.index]).abs().to_numpy().max() < 0.005
    # Every interval holds its point; the chain's is its own model's, moved to hold the bottom-up point.
    assert (preds[LOWER_COLUMN] <= preds[POINT_COLUMN]).all()
    assert (preds[POINT_COLUMN] <= preds[UPPER_COLUMN]).all()
    assert preds.loc[preds["restaurant"] == "chain", UPPER_COLUMN].sum() > total[POINT_COLUMN].sum()
    # proportions: the chain's forecast is the chain model's, split among the restaurants.
    chain_model = model.chain_model_.predict_frame(
        x_pred[x_pred["restaurant"] == "chain"].drop(columns=["restaurant", "fallback"])
    )
    same = np.allclose(total[columns], chain_model[columns])
    assert same == (reconciliation != "bottom_up")
    if reconciliation == "bottom_up":
        alone = model.local_models_["r1"].predict_frame(x_pred[x_pred["restaurant"] == "r1"].iloc[:, 2:])
        pd.testing.assert_frame_equal(preds.loc[preds["restaurant"] == "r1", columns], alone[columns])


def clone_with(model, **params):
    """The fitted ``model`` with other prediction settings (``reconciliation`` needs no new fit)."""
    return copy.deepcopy(model).set_params(**params)


def test_training_rows_hold_every_restaurant_then_the_chain(chain):
    hourly, train, x_pred, notes, model = chain
    assert list(train["restaurant"].unique()) == ["closed", "new", "r1", "r2", "chain"]
    assert list(train.columns[:3]) == ["restaurant", "order_date", "fallback"]
    assert train.columns[-1] == "cash_in"
    # r1 has its own level from its fifth week on; before, the fallback (its first week dropped).
    r1 = train[train["restaurant"] == "r1"]
    assert len(r1) == 11 * 168
    assert r1["fallback"].sum() == 3 * 168
    assert not train.drop(columns="restaurant").isna().any().any()
    assert model.restaurants_ == ["closed", "new", "r1", "r2"]
    assert sorted(model.local_models_) == ["r1", "r2"]


def test_workers_one_and_two_give_identical_frames(chain):
    """Two real processes (joblib's loky pool): most of this test's time is the pool's start
    (~2 s, more on a loaded machine), paid once for the three comparisons."""
    hourly, train, x_pred, notes, model = chain
    pd.testing.assert_frame_equal(restaurants.training_rows(hourly, workers=2, **FEATURES), train)
    x_pred_2, notes_2 = restaurants.prediction_rows(hourly, NEXT_WEEK, closed_weeks=4, workers=2, **FEATURES)
    pd.testing.assert_frame_equal(x_pred_2.set_index("order_date"), x_pred)
    assert notes_2 == notes
    x = train.drop(columns="cash_in").set_index("order_date")
    model_2 = restaurants.RestaurantModel(MODEL, workers=2).fit(x, train["cash_in"])
    pd.testing.assert_frame_equal(model_2.predict_frame(x_pred), model.predict_frame(x_pred))


def test_new_restaurant_gets_the_chain_profile_at_its_own_level(chain):
    hourly, train, x_pred, notes, model = chain
    rows = x_pred[x_pred["restaurant"] == "new"]
    assert len(rows) == 168
    assert (rows["fallback"] == 1.0).all()
    assert (x_pred.loc[x_pred["restaurant"].isin(["r1", "r2"]), "fallback"] == 0.0).all()
    # Its level is the mean hour of its three weeks (the most recent weighing most), its profile the chain's.
    own = hourly[hourly["restaurant"] == "new"]
    weekly = own.groupby(own["order_date"].dt.isocalendar().week)["cash_in"].mean().to_numpy()
    weights = 0.5 ** (np.arange(3) / FEATURES["level_halflife"])
    np.testing.assert_allclose(rows["level_4W"], weights @ weekly[::-1] / weights.sum())
    chain_rows = x_pred[x_pred["restaurant"] == "chain"]
    np.testing.assert_array_equal(rows["profile_4W"].to_numpy(), chain_rows["profile_4W"].to_numpy())
    preds = model.predict_frame(x_pred)
    new = preds[preds["restaurant"] == "new"]
    assert np.isfinite(new[[POINT_COLUMN, LOWER_COLUMN, UPPER_COLUMN]].to_numpy()).all()
    assert (new["fallback"] == 1.0).all()
    # Scaled to its own size: about its own weekly cash-in, far from r2's (four times larger).
    ratio = new[POINT_COLUMN].sum() / (own["cash_in"].sum() / 3)
    assert 0.6 < ratio < 1.3
    r2 = preds.loc[preds["restaurant"] == "r2", POINT_COLUMN].sum()
    assert r2 > 2.5 * new[POINT_COLUMN].sum()


def test_closed_restaurant_is_left_out_in_one_line(chain):
    hourly, train, x_pred, notes, model = chain
    assert "closed" not in set(x_pred["restaurant"])
    assert notes == ["restaurant closed: no orders since week 101 (10 weeks before week 112): not forecast"]
    # With a longer tolerance it is forecast again (from its fallback).
    x_pred_20, notes_20 = restaurants.prediction_rows(hourly, NEXT_WEEK, closed_weeks=20, **FEATURES)
    assert notes_20 == []
    assert (x_pred_20.loc[x_pred_20["restaurant"] == "closed", "fallback"] == 1.0).all()


def test_unknown_restaurant_is_refused_naming_it(chain):
    hourly, train, x_pred, notes, model = chain
    np.testing.assert_array_equal(model.predict(x_pred), model.predict_frame(x_pred)[POINT_COLUMN].to_numpy())
    rows = x_pred[x_pred["restaurant"] == "r1"].assign(restaurant="r9")
    with pytest.raises(FoodcastError, match=r"^unknown restaurant 'r9': the model knows 4 restaurants \(closed, new"):
        model.predict_frame(rows)


def test_restaurant_model_round_trips_through_skops(chain):
    hourly, train, x_pred, notes, model = chain
    data = skops.io.dumps(model)
    loaded = skops.io.loads(data, trusted=skops.io.get_untrusted_types(data=data))
    pd.testing.assert_frame_equal(loaded.predict_frame(x_pred), model.predict_frame(x_pred))
    assert loaded.restaurants_ == model.restaurants_


def test_global_model_pools_every_restaurant(chain):
    hourly, train, x_pred, notes, model = chain
    x = train.drop(columns="cash_in").set_index("order_date")
    pooled = restaurants.RestaurantModel(MODEL, kind="global").fit(x, train["cash_in"])
    assert pooled.local_models_ == {}
    preds = pooled.predict_frame(x_pred)
    assert np.isfinite(preds[POINT_COLUMN]).all()
    # both: a restaurant's own model averaged with the pooled one (before the reconciliation).
    both = restaurants.RestaurantModel(MODEL, kind="both", reconciliation="bottom_up").fit(x, train["cash_in"])
    r1 = x_pred[x_pred["restaurant"] == "r1"]
    own = both.local_models_["r1"].predict_frame(r1.iloc[:, 2:])[POINT_COLUMN]
    pooled_r1 = both.pooled_model_.predict_frame(r1.iloc[:, 2:])[POINT_COLUMN]
    np.testing.assert_allclose(both.predict_frame(r1)[POINT_COLUMN], (own + pooled_r1) / 2)
    with pytest.raises(FoodcastError, match="kind must be one of local, global, both"):
        restaurants.RestaurantModel(MODEL, kind="all").fit(x, train["cash_in"])


def test_restaurant_of_one_week_waits_for_its_second():
    """A training hour needs a complete week before its own: a restaurant of one week has no
    training row, so the model would refuse it as unknown; it is left out in one line instead."""
    hourly = long_hourly({"r1": CHAIN["r1"], "one": (111, 111, 3.0)})
    x_pred, notes = restaurants.prediction_rows(hourly, NEXT_WEEK, closed_weeks=4, **FEATURES)
    assert notes == ["restaurant one: 1 complete week(s) before week 112, 2 needed: not forecast"]
    assert set(x_pred["restaurant"]) == {"r1", "chain"}
    assert "one" not in set(restaurants.training_rows(hourly, **FEATURES)["restaurant"])


def test_backtest_scores_every_restaurant_and_the_chain():
    """Two target weeks of the synthetic chain: the new restaurant waits for its second week,
    then is scored among the fallback rows."""
    from foodcast.core.restaurant_backtest import backtest_restaurants

    hourly = long_hourly(CHAIN)
    result = backtest_restaurants(hourly, 110, 111, window_weeks=6, features=FEATURES, model=MODEL)
    weeks = result.weeks
    assert list(weeks.loc[weeks["week"] == 110, "restaurant"]) == ["r1", "r2", "chain"]
    assert list(weeks.loc[weeks["week"] == 111, "restaurant"]) == ["new", "r1", "r2", "chain"]
    assert weeks.set_index(["week", "restaurant"]).loc[(111, "new"), "fallback"]
    # The closed restaurant has no row in the 4 weeks the forecasts read: it is not even named.
    assert result.notes == ["week 110: restaurant new: 1 complete week(s) before week 110, 2 needed: not forecast"]
    summary = result.summary
    assert summary["n_established"] == 2
    assert summary["fallback_weeks"] == 1
    assert summary["chain_weeks"] == 2
    assert 0 < summary["ratio_naive_median"] <= summary["ratio_naive_worst"] < 2
    assert 0 <= summary["chain_coverage_open"] <= 1
    assert list(result.restaurants.index) == ["r1", "r2"]


def test_cross_validation_folds_the_hours_of_every_restaurant_together(chain):
    from foodcast.core.restaurant_validation import cross_validate_restaurants

    hourly, train, x_pred, notes, model = chain
    x = train.drop(columns="cash_in").set_index("order_date")
    maes, preds, per_restaurant = cross_validate_restaurants(model, x, train["cash_in"], n_fold=3)
    assert maes.shape == (3, MODEL["n_models"])
    # The folds cut the chain's hours (weeks 104-111: its level needs four weeks) in 4 blocks, the
    # first for training only; "new" (training rows from week 110) is unknown to the last fold's
    # past, so never predicted, and "closed" (week 101) has no row in any tested fold.
    assert sorted(preds["restaurant"].unique()) == ["chain", "r1", "r2"]
    assert sorted(preds["fold"].unique()) == [0, 1, 2]
    assert len(preds) == 3 * 2 * 168 * 3
    chain_rows = preds[preds["restaurant"] == "chain"]
    summed = preds[preds["restaurant"] != "chain"].groupby(["fold", preds.index[preds["restaurant"] != "chain"]])
    np.testing.assert_allclose(
        chain_rows[POINT_COLUMN].to_numpy(), summed[POINT_COLUMN].sum().to_numpy(), rtol=0, atol=0.005
    )
    assert (maes > 0).all()
    assert list(per_restaurant.columns) == ["fold", "restaurant", "mae", "rows"]
    assert per_restaurant.groupby("restaurant")["rows"].sum().to_dict() == {"chain": 1008, "r1": 1008, "r2": 1008}


def test_fit_rows_is_fit_on_those_rows(chain):
    """What a cross-validation's folds use: the rows cut model by model, the model the same."""
    hourly, train, x_pred, notes, model = chain
    x = train.drop(columns="cash_in").set_index("order_date")
    rows = np.flatnonzero(x.index < x.index.max() - pd.Timedelta(weeks=2))
    copied = restaurants.RestaurantModel(MODEL).fit(x.iloc[rows], train["cash_in"].to_numpy()[rows])
    cut = restaurants.RestaurantModel(MODEL).fit_rows(x, train["cash_in"], rows)
    assert cut.restaurants_ == copied.restaurants_ and sorted(cut.local_models_) == sorted(copied.local_models_)
    seen = x.iloc[rows]
    pd.testing.assert_frame_equal(cut.predict_frame(seen), copied.predict_frame(seen), check_exact=True)
