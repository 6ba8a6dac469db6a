"""The forecast's regressors: the tutorial's forest, the level-scaled median boosting, their factory."""

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression

from fixtures import make_batches
from foodcast.domain.estimators import (
    DEFAULT_MODEL,
    TUTORIAL_MODEL,
    LevelScaledRegressor,
    forecast_model,
    make_estimator,
)
from foodcast.domain.feature_engineering import DEFAULT_FEATURES, features_offline
from foodcast.domain.forecast import prediction_set
from foodcast.domain.multi_model import MultiModel
from foodcast.domain.transform import etl
from foodcast.errors import FoodcastError


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


def test_default_model_is_level_scaled_median_boosting():
    model = forecast_model(**DEFAULT_MODEL)
    assert isinstance(model.estimator, LevelScaledRegressor)
    boosting = model.estimator.estimator
    assert isinstance(boosting, GradientBoostingRegressor)
    assert boosting.loss == "absolute_error" and boosting.max_depth == 5
    assert model.interval_level == 0.8


@pytest.mark.parametrize("kwargs", [{"model": "svm"}, {"n_estimators": 0}, {"max_depth": -1},
                                    {"min_samples_leaf": 0}, {"model": "gradient_boosting", "max_depth": 0},
                                    {"n_models": 0}, {"interval_level": 1.5}])
def test_bad_model_settings_are_refused(kwargs):
    with pytest.raises(FoodcastError):
        forecast_model(**kwargs)


def test_default_model_logs_and_loads_with_mlflow(tmp_path, store):
    data_dir = make_batches(tmp_path / "data", range(1, 12))
    small = {**DEFAULT_FEATURES, "level_weeks": 2}
    train = features_offline(etl(data_dir, 2, 10), **small)
    x, y = train.drop(columns="cash_in").set_index("order_date"), train.set_index("order_date")["cash_in"]
    x_pred = prediction_set(data_dir, 11, **small).set_index("order_date")
    model = forecast_model(n_estimators=20, max_depth=3, n_models=2).fit(x, y)
    expected = model.predict(None, x_pred)

    with mlflow.start_run() as run:
        mlflow.pyfunc.log_model(name="multi_model", python_model=model,
                                pip_requirements=["scikit-learn", "pandas", "mlflow"])
    loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/multi_model")
    got = loaded.predict(x_pred.reset_index(drop=True))

    pd.testing.assert_frame_equal(got, expected.reset_index(drop=True))
    assert list(got.columns) == ["y_pred_0", "y_pred_1", "y_pred_simple", "y_pred", "y_lower", "y_upper"]
    assert (got["y_lower"] <= got["y_pred"]).all() and (got["y_pred"] <= got["y_upper"]).all()
    assert (got["y_lower"] >= 0).all()
