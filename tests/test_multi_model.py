"""MultiModel: a scikit-learn regressor and an MLflow pyfunc model."""

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_regressor
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import LinearRegression, QuantileRegressor
from sklearn.metrics import r2_score
from sklearn.model_selection import TimeSeriesSplit, cross_val_score
from sklearn.utils import resample

from foodcast.domain.multi_model import MultiModel, quantile_parameter

# Bounds that fit in milliseconds, for the tests that are not about the interval's quality.
QUICK_BOUNDS = GradientBoostingRegressor(loss="quantile", n_estimators=10, max_depth=2, random_state=0)
COLUMNS = ["y_pred_0", "y_pred_1", "y_pred_2", "y_pred_simple", "y_pred", "y_lower", "y_upper"]


def data(n=80, seed=0):
    rng = np.random.default_rng(seed)
    index = pd.date_range("2015-01-05", periods=n, freq="h", name="order_date")
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(size=n)}, index=index)
    y = pd.Series(20 + 5 * X["a"] + 3 * X["b"] + rng.normal(size=n), index=index)
    return X, y


def test_is_a_pyfunc_python_model():
    assert isinstance(MultiModel(LinearRegression()), mlflow.pyfunc.PythonModel)


def test_is_a_scikit_learn_regressor():
    assert is_regressor(MultiModel(LinearRegression(), n_models=3))


def test_get_set_params_and_clone():
    model = MultiModel(LinearRegression(), n_models=4)
    params = model.get_params()
    assert params["n_models"] == 4
    assert isinstance(params["estimator"], LinearRegression)
    assert params["estimator__fit_intercept"] is True

    assert model.set_params(n_models=2, estimator__fit_intercept=False) is model
    assert model.n_models == 2 and model.estimator.fit_intercept is False

    copy = clone(model)
    assert copy is not model and copy.estimator is not model.estimator
    assert copy.get_params()["n_models"] == 2
    assert copy.get_params()["estimator__fit_intercept"] is False


def test_clone_of_a_fitted_model_is_unfitted():
    X, y = data()
    copy = clone(MultiModel(LinearRegression(), quantile_estimator=QUICK_BOUNDS, n_models=2).fit(X, y))
    assert not hasattr(copy, "single_estimator") and not hasattr(copy, "estimators_")


def test_fit_single_estimator_on_all_rows_and_members_on_bootstraps():
    X, y = data()
    model = MultiModel(LinearRegression(), quantile_estimator=QUICK_BOUNDS, n_models=3).fit(X, y)

    reference = LinearRegression().fit(X, y)
    np.testing.assert_allclose(model.single_estimator.coef_, reference.coef_)
    assert len(model.estimators_) == 3
    for i, member in enumerate(model.estimators_):
        Xb, yb = resample(X, y, random_state=i)
        expected = LinearRegression().fit(Xb, yb)
        np.testing.assert_allclose(member.coef_, expected.coef_)
        np.testing.assert_allclose(member.intercept_, expected.intercept_)
    # the members differ from each other (they saw different resamples)
    assert not np.allclose(model.estimators_[0].coef_, model.estimators_[1].coef_)
    assert model.estimator is not model.single_estimator  # the template stays unfitted
    assert not hasattr(model.estimator, "coef_")


def test_predict_columns_index_and_values():
    X, y = data()
    model = MultiModel(LinearRegression(), quantile_estimator=QUICK_BOUNDS, n_models=3).fit(X, y)
    X_new = X.iloc[10:30]

    preds = model.predict(None, X_new)

    assert list(preds.columns) == COLUMNS
    assert preds.index.equals(X_new.index)
    np.testing.assert_allclose(preds["y_pred_simple"], LinearRegression().fit(X, y).predict(X_new))
    np.testing.assert_allclose(preds["y_pred"], preds["y_pred_simple"])
    np.testing.assert_allclose(preds["y_pred_2"], model.estimators_[2].predict(X_new))
    assert (preds["y_lower"] <= preds["y_pred"]).all() and (preds["y_pred"] <= preds["y_upper"]).all()
    assert (preds["y_upper"] > preds["y_lower"]).mean() > 0.9  # a band, not a point


def test_predict_reorders_columns_like_training():
    X, y = data()
    model = MultiModel(LinearRegression(), quantile_estimator=QUICK_BOUNDS, n_models=2).fit(X, y)
    pd.testing.assert_frame_equal(model.predict(None, X[["b", "a"]]), model.predict(None, X))


def test_predictions_are_clipped_at_zero():
    X = pd.DataFrame({"a": np.arange(10, dtype="float64")})
    y = 10 - 2 * X["a"]  # a straight line that goes negative from a = 5
    model = MultiModel(LinearRegression(), quantile_estimator=QUICK_BOUNDS, n_models=3).fit(X, y)

    preds = model.predict(None, pd.DataFrame({"a": [0.0, 2.0, 7.0, 20.0]}))

    assert (preds >= 0).all().all()
    assert (
        preds.loc[3, ["y_pred_0", "y_pred_1", "y_pred_2", "y_pred_simple", "y_pred", "y_lower"]].tolist() == [0.0] * 6
    )
    assert preds.loc[0, "y_pred_simple"] == pytest.approx(10.0)
    assert preds.loc[1, "y_pred_simple"] == pytest.approx(6.0)


def test_same_inputs_give_identical_outputs():
    X, y = data()
    model = MultiModel(
        RandomForestRegressor(n_estimators=5, random_state=0), n_models=3, quantile_estimator=QUICK_BOUNDS
    )
    first = model.fit(X, y).predict(None, X)
    second = model.fit(X, y).predict(None, X)
    third = clone(model).fit(X, y).predict(None, X)
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(first, third)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"estimator": None},
        {"estimator": LinearRegression(), "n_models": 0},
        {"estimator": LinearRegression(), "interval_level": 1.0},
        {"estimator": LinearRegression(), "calibration_folds": 1},
        {"estimator": LinearRegression(), "quantile_estimator": LinearRegression()},
    ],
)
def test_bad_configuration_is_refused_at_fit(kwargs):
    X, y = data()
    with pytest.raises(ValueError):
        MultiModel(**kwargs).fit(X, y)


def test_log_and_load_with_mlflow_gives_the_same_predictions(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(uri)
    try:
        experiment = mlflow.create_experiment("multi-model", artifact_location=(tmp_path / "artifacts").as_uri())
        X, y = data()
        model = MultiModel(
            RandomForestRegressor(n_estimators=5, random_state=0), n_models=3, quantile_estimator=QUICK_BOUNDS
        ).fit(X, y)
        expected = model.predict(None, X)

        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.pyfunc.log_model(name="m", python_model=model, pip_requirements=["scikit-learn", "pandas", "mlflow"])
        loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/m")
        got = loaded.predict(X)

        assert isinstance(got, pd.DataFrame)
        assert list(got.columns) == COLUMNS
        pd.testing.assert_frame_equal(got, expected)
    finally:
        mlflow.set_tracking_uri(None)


# --- the scikit-learn call form -----------------------------------------------------------------


def test_predict_with_one_argument_is_the_point_forecast():
    X, y = data()
    model = MultiModel(LinearRegression(), quantile_estimator=QUICK_BOUNDS, n_models=2).fit(X, y)

    point = model.predict(X)

    assert isinstance(point, np.ndarray) and point.shape == (len(X),)
    np.testing.assert_allclose(point, model.predict(None, X)["y_pred"].to_numpy())
    pd.testing.assert_frame_equal(model.predict(model_input=X), model.predict_frame(X))


def test_score_is_the_inherited_r2_of_the_point_forecast():
    X, y = data()
    model = MultiModel(LinearRegression(), quantile_estimator=QUICK_BOUNDS, n_models=2).fit(X, y)
    assert "score" not in MultiModel.__dict__
    assert model.score(X, y) == pytest.approx(r2_score(y, LinearRegression().fit(X, y).predict(X)))


def test_scikit_learn_cross_validation_runs_on_it():
    X, y = data(n=120)
    scores = cross_val_score(
        MultiModel(LinearRegression(), quantile_estimator=QUICK_BOUNDS, n_models=2),
        X,
        y,
        cv=TimeSeriesSplit(3),
        scoring="neg_mean_absolute_error",
    )
    assert scores.shape == (3,) and (scores < 0).all()


# --- the interval ----------------------------------------------------------------------------------


def noisy(n, seed):
    """Heteroscedastic, skewed data: the spread grows with x, as the hourly cash-in's does."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x": rng.uniform(0, 10, size=n)})
    y = rng.gamma(2.0, 1.0 + X["x"].to_numpy())
    return X, pd.Series(y)


@pytest.mark.parametrize("level", [0.5, 0.8, 0.95])
def test_interval_holds_the_truth_as_often_as_its_level_on_new_data(level):
    X, y = noisy(3000, seed=1)
    X_new, y_new = noisy(4000, seed=2)
    model = MultiModel(LinearRegression(), n_models=1, interval_level=level).fit(X, y)

    preds = model.predict_frame(X_new)
    inside = (y_new.to_numpy() >= preds["y_lower"].to_numpy()) & (y_new.to_numpy() <= preds["y_upper"].to_numpy())

    assert abs(inside.mean() - level) < 0.04
    assert (preds["y_lower"] >= 0).all()
    # the band follows the spread: wider where x is large
    wide = preds.loc[X_new["x"] > 8, "y_upper"] - preds.loc[X_new["x"] > 8, "y_lower"]
    narrow = preds.loc[X_new["x"] < 2, "y_upper"] - preds.loc[X_new["x"] < 2, "y_lower"]
    assert wide.mean() > 2 * narrow.mean()


def test_interval_is_calibrated_on_rows_the_scoring_models_did_not_see():
    X, y = noisy(400, seed=3)
    model = MultiModel(
        LinearRegression(),
        n_models=1,
        interval_level=0.8,
        quantile_estimator=QuantileRegressor(alpha=0.0),
        calibration_folds=4,
    ).fit(X, y)

    def bounds(rows):
        lower = QuantileRegressor(alpha=0.0, quantile=0.1).fit(X.iloc[rows], y.iloc[rows])
        upper = QuantileRegressor(alpha=0.0, quantile=0.9).fit(X.iloc[rows], y.iloc[rows])
        return lower, upper

    floor = 0.01 * y.abs().mean()
    scores = []
    for block in (range(100), range(100, 200), range(200, 300), range(300, 400)):
        lower, upper = bounds([i for i in range(400) if i not in block])
        low = np.clip(lower.predict(X.iloc[block]), 0, None)
        high = np.clip(upper.predict(X.iloc[block]), 0, None)
        truth = y.iloc[block].to_numpy()
        # a lower bound of 0 stays 0 (never decides a score); a [0, 0] band is not scored
        below = np.where(low > 0, low - truth, -np.inf)
        scores.extend((np.maximum(below, truth - high) / (high - low + floor))[high > 0])
    # the conformal quantile of 400 scores at 0.8: the ceil(401 * 0.8) = 321st smallest
    assert model.interval_correction_ == pytest.approx(np.sort(scores)[320])
    # the bound models used for predictions are then fitted on every row
    lower, upper = bounds(range(400))
    np.testing.assert_allclose(model.lower_estimator_.coef_, lower.coef_)
    np.testing.assert_allclose(model.upper_estimator_.coef_, upper.coef_)


def closing_hours(n, seed):
    """Hours of a profile feature: 40 % never sell (profile 0, cash-in 0); the others sell
    nothing 30 % of the time, and a skewed amount otherwise."""
    rng = np.random.default_rng(seed)
    profile = np.where(rng.uniform(size=n) < 0.4, 0.0, rng.uniform(0.5, 3.0, size=n))
    y = np.where(rng.uniform(size=n) < 0.3, 0.0, profile * rng.gamma(1.5, 1 / 1.5, size=n))
    return pd.DataFrame({"profile_1W": profile}), pd.Series(y)


@pytest.mark.parametrize("level", [0.5, 0.8, 0.95])
def test_hours_that_never_sell_keep_a_zero_interval_and_the_others_are_calibrated(level):
    from foodcast.core.estimators import ProfileRatioRegressor

    X, y = closing_hours(3000, seed=4)
    X_new, y_new = closing_hours(4000, seed=5)
    model = MultiModel(
        ProfileRatioRegressor(), n_models=1, interval_level=level, quantile_estimator=ProfileRatioRegressor(n_bins=3)
    ).fit(X, y)
    preds = model.predict_frame(X_new)

    closed = X_new["profile_1W"].to_numpy() == 0
    assert (preds.loc[closed, ["y_pred", "y_lower", "y_upper"]] == 0).all().all()
    inside = (y_new.to_numpy() >= preds["y_lower"].to_numpy()) & (y_new.to_numpy() <= preds["y_upper"].to_numpy())
    # the level holds for the hours that can sell, not thanks to the certain ones
    assert abs(inside[~closed].mean() - level) < 0.04


def test_quantile_parameter_of_common_quantile_regressors():
    from sklearn.ensemble import GradientBoostingRegressor, HistGradientBoostingRegressor

    from foodcast.core.estimators import LevelScaledRegressor

    assert quantile_parameter(GradientBoostingRegressor(loss="quantile")) == "alpha"
    assert quantile_parameter(HistGradientBoostingRegressor(loss="quantile")) == "quantile"
    assert quantile_parameter(QuantileRegressor()) == "quantile"
    assert quantile_parameter(LevelScaledRegressor(GradientBoostingRegressor(loss="quantile"))) == "estimator__alpha"
    with pytest.raises(ValueError):
        quantile_parameter(GradientBoostingRegressor())  # squared error: alpha is not a quantile here


def test_environment_drift_names_each_difference_from_the_model_pins():
    import sys
    from importlib.metadata import version

    from foodcast.tracking.models import environment_drift, pip_requirements

    here = ".".join(map(str, sys.version_info[:3]))
    assert environment_drift(pip_requirements(), here) == []
    pins = [f"pandas=={version('pandas')}", "numpy==0.0.1", "no-such-package==1.0", "click", "# comment"]
    assert environment_drift(pins, "2.7.18") == [
        "numpy: model 0.0.1, here " + version("numpy"),
        "no-such-package: model 1.0, here not installed",
        "python: model 2.7.18, here " + ".".join(map(str, sys.version_info[:2])),
    ]
