"""MultiModel: a scikit-learn regressor and an MLflow pyfunc model."""

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_regressor
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression
from sklearn.utils import resample

from foodcast.domain.multi_model import MultiModel


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
    copy = clone(MultiModel(LinearRegression(), n_models=2).fit(X, y))
    assert not hasattr(copy, "single_estimator") and not hasattr(copy, "estimators_")


def test_fit_single_estimator_on_all_rows_and_members_on_bootstraps():
    X, y = data()
    model = MultiModel(LinearRegression(), n_models=3).fit(X, y)

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
    model = MultiModel(LinearRegression(), n_models=3).fit(X, y)
    X_new = X.iloc[10:30]

    preds = model.predict(None, X_new)

    assert list(preds.columns) == ["y_pred_0", "y_pred_1", "y_pred_2", "y_pred_simple"]
    assert preds.index.equals(X_new.index)
    np.testing.assert_allclose(preds["y_pred_simple"], LinearRegression().fit(X, y).predict(X_new))
    np.testing.assert_allclose(preds["y_pred_2"], model.estimators_[2].predict(X_new))


def test_predict_reorders_columns_like_training():
    X, y = data()
    model = MultiModel(LinearRegression(), n_models=2).fit(X, y)
    pd.testing.assert_frame_equal(model.predict(None, X[["b", "a"]]), model.predict(None, X))


def test_predictions_are_clipped_at_zero():
    X = pd.DataFrame({"a": np.arange(10, dtype="float64")})
    y = 10 - 2 * X["a"]  # a straight line that goes negative from a = 5
    model = MultiModel(LinearRegression(), n_models=3).fit(X, y)

    preds = model.predict(None, pd.DataFrame({"a": [0.0, 2.0, 7.0, 20.0]}))

    assert (preds >= 0).all().all()
    assert preds.loc[3].tolist() == [0.0] * 4
    assert preds.loc[0, "y_pred_simple"] == pytest.approx(10.0)
    assert preds.loc[1, "y_pred_simple"] == pytest.approx(6.0)


def test_same_inputs_give_identical_outputs():
    X, y = data()
    model = MultiModel(RandomForestRegressor(n_estimators=5, random_state=0), n_models=3)
    first = model.fit(X, y).predict(None, X)
    second = model.fit(X, y).predict(None, X)
    third = clone(model).fit(X, y).predict(None, X)
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(first, third)


@pytest.mark.parametrize("kwargs", [{"estimator": None}, {"estimator": LinearRegression(), "n_models": 0}])
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
        model = MultiModel(RandomForestRegressor(n_estimators=5, random_state=0), n_models=3).fit(X, y)
        expected = model.predict(None, X)

        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.pyfunc.log_model(name="m", python_model=model,
                                    pip_requirements=["scikit-learn", "pandas", "mlflow"])
        loaded = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/m")
        got = loaded.predict(X)

        assert isinstance(got, pd.DataFrame)
        pd.testing.assert_frame_equal(got, expected)
    finally:
        mlflow.set_tracking_uri(None)


def test_environment_drift_names_each_difference_from_the_model_pins():
    import sys
    from importlib.metadata import version

    from foodcast.application.models import environment_drift, pip_requirements

    here = ".".join(map(str, sys.version_info[:3]))
    assert environment_drift(pip_requirements(), here) == []
    pins = [f"pandas=={version('pandas')}", "numpy==0.0.1", "no-such-package==1.0", "click", "# comment"]
    assert environment_drift(pins, "2.7.18") == [
        "numpy: model 0.0.1, here " + version("numpy"),
        "no-such-package: model 1.0, here not installed",
        "python: model 2.7.18, here " + ".".join(map(str, sys.version_info[:2])),
    ]
