"""The forecast's regressors: the tutorial's forest, the median boosting, the profile model, their factory."""

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from sklearn.base import clone
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression

from fixtures import make_batches, prediction_set
from foodcast.core.estimators import (
    DEFAULT_MODEL,
    TUTORIAL_MODEL,
    LevelScaledRegressor,
    ProfileRatioRegressor,
    make_estimator,
)
from foodcast.core.features import DEFAULT_FEATURES, features_offline
from foodcast.core.multi_model import MultiModel, forecast_model, quantile_parameter
from foodcast.data.chain import etl
from foodcast.errors import FoodcastError
from foodcast.tracking.models import load_predictor, log_models


def test_level_scaled_regressor_fits_the_ratio_and_predicts_times_the_level():
    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0] * 5, "level_2W": np.repeat([10.0, 20.0, 40.0, 5.0, 8.0], 4)})
    y = (1 + X["a"]) * X["level_2W"]  # a shape times a level
    model = LevelScaledRegressor(LinearRegression()).fit(X, y)

    assert model.level_column_ == "level_2W"
    assert list(model.estimator_.feature_names_in_) == ["a"]  # the level is not a feature
    np.testing.assert_allclose(model.estimator_.coef_, [1.0])
    new = pd.DataFrame({"a": [1.0, 2.0], "level_2W": [100.0, 3.0]})
    np.testing.assert_allclose(model.predict(new), [200.0, 9.0])
    assert clone(model).get_params()["estimator__fit_intercept"] is True


def test_level_scaled_regressor_needs_a_level_column():
    with pytest.raises(FoodcastError, match="level_weeks"):
        LevelScaledRegressor(LinearRegression()).fit(pd.DataFrame({"a": [1.0, 2.0]}), [1.0, 2.0])


def test_median_boosting_learns_although_most_targets_are_zero():
    # More than half the hours sell nothing: the median of the target is 0.
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"hour": np.tile(np.arange(24.0), 40)})
    busy = (X["hour"] >= 17) & (X["hour"] <= 22)
    y = np.where(busy, rng.gamma(4.0, 25.0, len(X)), 0.0)
    model = make_estimator("gradient_boosting", n_estimators=50, max_depth=2, level_scaled=False).fit(X, y)

    pred = model.predict(pd.DataFrame({"hour": [3.0, 19.0]}))
    assert pred[0] == pytest.approx(0.0, abs=1.0)
    assert pred[1] == pytest.approx(np.median(y[busy]), rel=0.2)


def test_tutorial_model_is_the_seed_multi_model():
    model = forecast_model(**TUTORIAL_MODEL)
    assert isinstance(model, MultiModel) and model.n_models == 10
    forest = model.estimator
    assert isinstance(forest, RandomForestRegressor)
    assert forest.get_params() == RandomForestRegressor(n_estimators=10, random_state=42).get_params()


def test_default_model_is_the_level_scaled_profile_median():
    model = forecast_model(**DEFAULT_MODEL)
    assert isinstance(model.estimator, LevelScaledRegressor)
    profile = model.estimator.estimator
    assert isinstance(profile, ProfileRatioRegressor) and profile.quantile == 0.5 and profile.n_bins == 5
    # the interval's bounds are quantiles of the same ratio
    bounds = model.quantile_estimator
    assert isinstance(bounds.estimator, ProfileRatioRegressor) and quantile_parameter(bounds) == "estimator__quantile"
    assert model.interval_level == 0.8


def test_boosting_is_level_scaled_median_boosting():
    model = forecast_model(**{**DEFAULT_MODEL, "model": "gradient_boosting"})
    boosting = model.estimator.estimator
    assert isinstance(boosting, GradientBoostingRegressor)
    assert boosting.loss == "absolute_error" and boosting.max_depth == 5
    assert isinstance(model.quantile_estimator.estimator, GradientBoostingRegressor)


def profile_rows(seed=0):
    """Hours of three kinds of profile: never any trade, quiet (skewed: often nothing), busy."""
    rng = np.random.default_rng(seed)
    profile = np.tile([0.0, 0.0, 0.2, 0.3, 2.0, 3.0], 200)
    quiet = profile < 1
    # cash-in = profile x a ratio: quiet hours are often 0, so their median ratio is below 1
    ratio = np.where(quiet, rng.gamma(0.7, 1 / 0.7, profile.size), rng.gamma(20.0, 1 / 20.0, profile.size))
    return pd.DataFrame({"weekday": np.arange(profile.size) % 7.0, "profile_21W": profile}), profile * ratio


def test_profile_model_predicts_the_profile_times_the_median_ratio_of_its_group():
    X, y = profile_rows()
    model = ProfileRatioRegressor(n_bins=2).fit(X, y)
    quiet, busy = X["profile_21W"].between(0.1, 1), X["profile_21W"] > 1

    np.testing.assert_allclose(
        model.ratios_,
        [np.median(y[quiet] / X.loc[quiet, "profile_21W"]), np.median(y[busy] / X.loc[busy, "profile_21W"])],
    )
    assert model.ratios_[0] < 0.8 < 0.95 < model.ratios_[1] < 1.05  # skewed hours: median well below mean
    new = pd.DataFrame({"weekday": [1.0, 2.0, 3.0], "profile_21W": [0.0, 0.25, 2.5]})
    np.testing.assert_allclose(model.predict(new), [0.0, 0.25 * model.ratios_[0], 2.5 * model.ratios_[1]])
    # on the skewed hours, its absolute error is clearly lower than that of the profile itself (the mean)
    error = np.abs(model.predict(X)[quiet] - y[quiet]).mean()
    assert error < 0.9 * np.abs(X.loc[quiet, "profile_21W"] - y[quiet]).mean()


def test_profile_model_quantiles_bound_the_ratio():
    X, y = profile_rows()
    low = ProfileRatioRegressor(quantile=0.1, n_bins=2).fit(X, y).predict(X)
    high = ProfileRatioRegressor(quantile=0.9, n_bins=2).fit(X, y).predict(X)
    trading = X["profile_21W"] > 0
    inside = (y[trading] >= low[trading]) & (y[trading] <= high[trading])
    assert 0.75 < inside.mean() < 0.85
    assert (low[~trading] == 0).all() and (high[~trading] == 0).all()


def test_profile_model_needs_a_profile_column():
    with pytest.raises(FoodcastError, match="profile_weeks"):
        ProfileRatioRegressor().fit(pd.DataFrame({"a": [1.0, 2.0]}), [1.0, 2.0])
    with pytest.raises(FoodcastError, match="profile_weeks"):
        make_estimator("profile", level_scaled=True).fit(pd.DataFrame({"level_2W": [1.0, 2.0]}), [1.0, 2.0])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model": "svm"},
        {"n_estimators": 0},
        {"max_depth": -1},
        {"min_samples_leaf": 0},
        {"model": "gradient_boosting", "max_depth": 0},
        {"n_models": 0},
        {"interval_level": 1.5},
        {"model": "profile", "n_bins": 0},
    ],
)
def test_bad_model_settings_are_refused(kwargs):
    with pytest.raises(FoodcastError):
        forecast_model(**kwargs)


@pytest.mark.parametrize(
    "model_settings", [{"n_estimators": 20, "max_depth": 3, "n_models": 2}, {**DEFAULT_MODEL, "n_models": 2}]
)
def test_models_log_and_load_with_mlflow(tmp_path, store, model_settings):
    data_dir = make_batches(tmp_path / "data", range(1, 12))
    small = {**DEFAULT_FEATURES, "level_weeks": 2, "profile_weeks": 8}
    train = features_offline(etl(data_dir, 3, 10), **small)
    x, y = train.drop(columns="cash_in").set_index("order_date"), train.set_index("order_date")["cash_in"]
    x_pred = prediction_set(data_dir, 11, **small).set_index("order_date")
    model = forecast_model(**model_settings).fit(x, y)
    expected = model.predict_frame(x_pred)

    with mlflow.start_run() as run:
        info = log_models(model, x)  # as the train stage logs it: from code, skops inside
    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/multi_model")
    got = loaded.predict(x_pred.reset_index(drop=True))

    pd.testing.assert_frame_equal(got, expected.reset_index(drop=True))
    assert list(got.columns) == ["y_pred_0", "y_pred_1", "y_pred_simple", "y_pred", "y_lower", "y_upper"]
    assert (got["y_lower"] <= got["y_pred"]).all() and (got["y_pred"] <= got["y_upper"]).all()
    assert (got["y_lower"] >= 0).all()
    assert got["y_pred"].sum() > 0
    # The tester's requests, answered with a forecast: refused, naming the column.
    x = x_pred.reset_index(drop=True)
    level = next(c for c in x.columns if c.startswith("level_"))
    for bad, column in (
        (x.assign(**{level: np.nan}), level),
        (x.assign(weekday=42.0), "weekday"),
        (x.assign(surplus=1.0), "surplus"),
    ):
        with pytest.raises(MlflowException, match=f"column '{column}'") as refusal:
            loaded.predict(bad)
        assert refusal.value.error_code == "INVALID_PARAMETER_VALUE"
    # predict's own use: the columns compared with the model's, its refusals one line.
    with mlflow.start_run():
        logged = mlflow.MlflowClient().get_logged_model(info.model_id)
        predict = load_predictor(f"runs:/{run.info.run_id}/multi_model", logged, "train run t")
        pd.testing.assert_frame_equal(predict(x_pred), expected)
        with pytest.raises(FoodcastError, match=r"but the model of train run t expects .* same feature parameters"):
            predict(x_pred.drop(columns=level))
        with pytest.raises(FoodcastError, match=rf"^the model of train run t refuses .*row 1, column '{level}'"):
            predict(x_pred.assign(**{level: -1.0}))


def test_default_single_estimator_logs_and_loads_in_the_skops_format(tmp_path, store):
    import mlflow.sklearn
    import skops.io

    data_dir = make_batches(tmp_path / "data", range(1, 12))
    small = {**DEFAULT_FEATURES, "level_weeks": 2, "profile_weeks": 8}
    train = features_offline(etl(data_dir, 3, 10), **small)
    x, y = train.drop(columns=["order_date", "cash_in"]), train["cash_in"]
    estimator = forecast_model(**{**DEFAULT_MODEL, "n_models": 1}).fit(x, y).single_estimator

    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(
            estimator,
            name="simple_model",
            serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
            skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(estimator)),
        )
    loaded = mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/simple_model")
    np.testing.assert_array_equal(loaded.predict(x), estimator.predict(x))
