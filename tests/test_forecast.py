"""span_future, cross_validate, plotly_predictions and the prediction set."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.ensemble import GradientBoostingRegressor
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error
from sklearn.model_selection import TimeSeriesSplit

from fixtures import make_batches, prediction_set
from foodcast.core.features import features_offline
from foodcast.core.forecast import cross_validate, fold_maes, span_future
from foodcast.core.multi_model import MultiModel
from foodcast.data.chain import etl
from foodcast.errors import FoodcastError
from foodcast.tracking.plots import forecast_title, plotly_predictions

WEEK_1 = pd.Timestamp("2014-12-29")
# Bounds that fit in milliseconds: these tests are about the folds, not the interval's quality.
QUICK_BOUNDS = GradientBoostingRegressor(loss="quantile", n_estimators=10, max_depth=2, random_state=0)


# --- span_future ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "last", ["2015-01-04 23:00", "2015-01-04 13:37", "2015-01-04 00:00", pd.Timestamp("2015-01-04 18:00")]
)
def test_span_future_is_the_168_hours_of_the_next_seven_days(last):
    out = span_future(last)

    assert list(out.columns) == ["order_date"]
    expected = pd.date_range("2015-01-05 00:00", "2015-01-11 23:00", freq="h")
    assert len(out) == 168
    assert (pd.DatetimeIndex(out["order_date"]) == expected).all()


def test_span_future_crosses_month_and_year():
    out = pd.DatetimeIndex(span_future("2018-12-31 12:00")["order_date"])
    assert out[0] == pd.Timestamp("2019-01-01 00:00")
    assert out[-1] == pd.Timestamp("2019-01-07 23:00")


# --- cross_validate ---------------------------------------------------------------------------


def regression_data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    index = pd.date_range(WEEK_1, periods=n, freq="h", name="order_date")
    x = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(size=n)}, index=index)
    y = pd.Series(50 + 3 * x["a"] - 4 * x["b"] + rng.normal(scale=2, size=n), index=index, name="cash_in")
    return x, y


def test_cross_validate_shapes_and_index():
    x, y = regression_data()
    maes, preds = cross_validate(
        MultiModel(LinearRegression(), quantile_estimator=QUICK_BOUNDS, n_models=3), x, y, n_fold=4
    )

    assert isinstance(maes, np.ndarray)
    assert maes.shape == (4, 3)  # folds x members
    assert list(preds.columns) == [
        "y_pred_0",
        "y_pred_1",
        "y_pred_2",
        "y_pred_simple",
        "y_pred",
        "y_lower",
        "y_upper",
        "fold",
    ]
    test_size = len(x) // 5
    assert len(preds) == 4 * test_size
    assert (preds.index == x.index[-4 * test_size :]).all()  # out-of-fold, indexed by timestamp
    assert (preds["fold"].to_numpy() == np.repeat(np.arange(4), test_size)).all()
    assert (maes > 0).all()


def test_cross_validate_maes_iterate_as_the_tutorial_logs_them():
    x, y = regression_data()
    maes, _ = cross_validate(
        MultiModel(LinearRegression(), quantile_estimator=QUICK_BOUNDS, n_models=3), x, y, n_fold=3
    )
    logged = []
    for i, mae in enumerate(maes):
        logged.append(("MAE_MIN", float(mae.min()), i))
        logged.append(("MAE_MAX", float(mae.max()), i))
        for j, result in enumerate(mae):
            logged.append((f"MAE{j}", float(result), i))
    assert len(logged) == 3 * (2 + 3)
    assert all(isinstance(value, float) and value > 0 for _, value, _ in logged)
    assert logged[0] == ("MAE_MIN", float(maes[0].min()), 0)


def test_cross_validate_mae_equals_a_manual_computation():
    x, y = regression_data()
    maes, preds = cross_validate(
        MultiModel(LinearRegression(), quantile_estimator=QUICK_BOUNDS, n_models=2), x, y, n_fold=3
    )
    simple_maes = fold_maes(preds, y)["y_pred_simple"]

    splits = list(TimeSeriesSplit(n_splits=3).split(x))
    for fold in (0, 2):
        train, test = splits[fold]
        simple = np.clip(LinearRegression().fit(x.iloc[train], y.iloc[train]).predict(x.iloc[test]), 0, None)
        assert simple_maes[fold] == pytest.approx(mean_absolute_error(y.iloc[test], simple))
        np.testing.assert_allclose(preds.loc[x.index[test], "y_pred_simple"].to_numpy(), simple)
        rows = np.random.RandomState(1).randint(0, len(train), len(train))
        member = LinearRegression().fit(x.iloc[train].iloc[rows], y.iloc[train].iloc[rows])
        expected = mean_absolute_error(y.iloc[test], np.clip(member.predict(x.iloc[test]), 0, None))
        assert maes[fold, 1] == pytest.approx(expected)


def test_cross_validate_accepts_a_plain_regressor():
    x, y = regression_data()
    maes, preds = cross_validate(LinearRegression(), x, y, n_fold=3)

    assert maes.shape == (3, 1)
    assert list(preds.columns) == ["y_pred_simple", "fold"]
    train, test = list(TimeSeriesSplit(n_splits=3).split(x))[2]
    expected = LinearRegression().fit(x.iloc[train], y.iloc[train]).predict(x.iloc[test])
    np.testing.assert_allclose(preds.loc[x.index[test], "y_pred_simple"].to_numpy(), expected)
    assert maes[2, 0] == pytest.approx(mean_absolute_error(y.iloc[test], expected))
    assert fold_maes(preds, y)["y_pred_simple"].to_numpy() == pytest.approx(maes[:, 0])


def test_cross_validate_leaves_the_model_unfitted():
    x, y = regression_data()
    model = MultiModel(LinearRegression(), quantile_estimator=QUICK_BOUNDS, n_models=2)
    cross_validate(model, x, y, n_fold=2)
    assert not hasattr(model, "single_estimator")


@pytest.mark.parametrize("n_fold", [1, 0, -3])
def test_cross_validate_needs_two_folds(n_fold):
    x, y = regression_data()
    with pytest.raises(FoodcastError):
        cross_validate(MultiModel(LinearRegression(), quantile_estimator=QUICK_BOUNDS, n_models=2), x, y, n_fold=n_fold)


# --- plotly_predictions -----------------------------------------------------------------------


def prediction_frame():
    index = pd.date_range("2015-01-05", periods=24, freq="h", name="order_date")
    rng = np.random.default_rng(3)
    members = rng.uniform(0, 100, size=(24, 4))
    preds = pd.DataFrame(members, index=index, columns=[f"y_pred_{i}" for i in range(4)])
    preds["y_pred_simple"] = members.mean(axis=1) + 1.5
    truth = pd.Series(rng.uniform(0, 100, size=24), index=index, name="cash_in")
    return preds, truth


def trace_values(fig):
    return [np.asarray(trace.y, dtype="float64") for trace in fig.data]


def holds(values, expected):
    return any(len(v) == len(expected) and np.allclose(v, expected) for v in values)


def test_plot_with_truth_has_truth_simple_and_band():
    preds, truth = prediction_frame()
    fig = plotly_predictions(preds, truth)

    values = trace_values(fig)
    members = preds[[f"y_pred_{i}" for i in range(4)]]
    assert holds(values, truth.to_numpy())
    assert holds(values, preds["y_pred_simple"].to_numpy())
    assert holds(values, members.max(axis=1).to_numpy())
    assert holds(values, members.min(axis=1).to_numpy())
    assert len(fig.data) == 4
    # The band is a filled area between the min and max traces.
    filled = [i for i, t in enumerate(fig.data) if t.fill in ("tonexty", "tonextx")]
    assert len(filled) == 1
    i = filled[0]
    band = {tuple(np.round(values[i], 9)), tuple(np.round(values[i - 1], 9))}
    assert band == {
        tuple(np.round(members.min(axis=1).to_numpy(), 9)),
        tuple(np.round(members.max(axis=1).to_numpy(), 9)),
    }
    for trace in fig.data:
        assert (pd.DatetimeIndex(trace.x) == preds.index).all()


def test_plot_without_truth():
    preds, truth = prediction_frame()
    fig = plotly_predictions(preds)

    values = trace_values(fig)
    assert len(fig.data) == 3
    assert not holds(values, truth.to_numpy())
    assert holds(values, preds["y_pred_simple"].to_numpy())


def test_plot_draws_the_point_forecast_and_its_interval():
    preds, truth = prediction_frame()
    preds["y_pred"] = preds["y_pred_simple"]
    preds["y_lower"] = preds["y_pred"] * 0.5
    preds["y_upper"] = preds["y_pred"] * 1.7
    fig = plotly_predictions(preds, truth)

    values = trace_values(fig)
    assert len(fig.data) == 4
    assert holds(values, truth.to_numpy())
    assert holds(values, preds["y_pred"].to_numpy())
    filled = [i for i, t in enumerate(fig.data) if t.fill in ("tonexty", "tonextx")]
    assert len(filled) == 1
    band = {tuple(np.round(values[filled[0]], 9)), tuple(np.round(values[filled[0] - 1], 9))}
    assert band == {tuple(np.round(preds["y_lower"].to_numpy(), 9)), tuple(np.round(preds["y_upper"].to_numpy(), 9))}
    assert "interval" in fig.data[filled[0]].name


# --- prediction_set: serving features equal training features ---------------------------------


def test_prediction_set_matches_training_features(tmp_path):
    root = make_batches(tmp_path / "data", weeks=range(1, 6))
    online = prediction_set(root, next_week=5, degree=2, lag_in_week=2)
    offline = features_offline(etl(root, 1, 5), degree=2, lag_in_week=2)
    expected = offline[offline["order_date"] >= WEEK_1 + pd.Timedelta(weeks=4)].drop(columns="cash_in")
    pd.testing.assert_frame_equal(online.reset_index(drop=True), expected.reset_index(drop=True))


def test_prediction_set_with_the_level_matches_training_features(tmp_path):
    root = make_batches(tmp_path / "data", weeks=range(1, 7))
    settings = {"degree": 1, "lag_in_week": 0, "level_weeks": 3, "calendar_index": True}
    online = prediction_set(root, next_week=6, **settings)
    offline = features_offline(etl(root, 1, 6), **settings)
    expected = offline[offline["order_date"] >= WEEK_1 + pd.Timedelta(weeks=5)].drop(columns="cash_in")
    assert len(expected) == 168
    pd.testing.assert_frame_equal(online.reset_index(drop=True), expected.reset_index(drop=True))


def test_prediction_set_without_the_lag_weeks_is_an_error(tmp_path):
    root = make_batches(tmp_path / "data", weeks=[1, 2, 4])
    with pytest.raises(FoodcastError):
        prediction_set(root, next_week=4, lag_in_week=1)  # week 3 is missing


def test_cross_validate_on_multi_model_clone_is_reproducible():
    x, y = regression_data(n=60)
    model = MultiModel(LinearRegression(), quantile_estimator=QUICK_BOUNDS, n_models=2)
    first = cross_validate(model, x, y, n_fold=2)
    second = cross_validate(clone(model), x, y, n_fold=2)
    np.testing.assert_array_equal(first[0], second[0])
    pd.testing.assert_frame_equal(first[1], second[1])


def test_plot_title_names_the_week_and_its_errors_and_hover_shows_the_interval():
    preds, truth = prediction_frame()
    preds["y_pred"] = preds["y_pred_simple"]
    preds["y_lower"] = preds["y_pred"] * 0.5
    preds["y_upper"] = preds["y_pred"] * 1.7
    scores = {"mae_model": 6.4, "mae_naive": 9.1, "coverage": 0.81}
    fig = plotly_predictions(preds, truth, forecast_title(201, scores))

    assert fig.layout.title.text == "Week 201: forecast and cash-in"
    assert fig.layout.title.subtitle.text == (
        "MAE £6.40 an hour vs seasonal naive £9.10 (×0.70) · interval coverage 81 %"
    )
    # Hovering an hour: the forecast with its interval, and the cash-in; the band's edges say nothing.
    hover = {t.name: t for t in fig.data if t.hoverinfo != "skip"}
    assert sorted(hover) == ["cash-in", "forecast"]
    assert "customdata[0]" in hover["forecast"].hovertemplate and "customdata[1]" in hover["forecast"].hovertemplate
    np.testing.assert_allclose(
        np.asarray(hover["forecast"].customdata), preds[["y_lower", "y_upper"]].to_numpy(), rtol=1e-12
    )

    unscored = plotly_predictions(preds, title=forecast_title(201))
    assert unscored.layout.title.text == "Forecast of week 201"
    assert "not scored yet" in unscored.layout.title.subtitle.text
