"""The rolling-origin backtest replays the pipeline's functions week after week."""

import numpy as np
import pandas as pd
import pytest

from fixtures import make_batches, prediction_set
from foodcast.core import backtest as core
from foodcast.core.backtest import WEEK_COLUMNS, summarise
from foodcast.core.features import features_offline
from foodcast.core.multi_model import forecast_model
from foodcast.core.windows import backtest_weeks, forecast_history
from foodcast.data.chain import etl
from foodcast.errors import FoodcastError
from foodcast.tracking.plots import plotly_backtest

FEATURES = {"degree": 1, "lag_in_week": 0, "level_weeks": 2, "calendar_index": True}
MODEL = {
    "model": "gradient_boosting",
    "n_estimators": 10,
    "max_depth": 3,
    "min_samples_leaf": 5,
    "level_scaled": True,
    "n_models": 2,
    "interval_level": 0.8,
}
# The default's kind of configuration, at the fixture's scale (a profile of the 6 weeks before).
PROFILE_FEATURES = {**FEATURES, "level_halflife": 1.0, "profile_weeks": 6, "profile_groups": 2}
PROFILE_MODEL = {**MODEL, "model": "profile", "n_bins": 3}


def backtest(data_dir, first, last, window_weeks, features, model, jobs, progress=None):
    """The core's backtest on the batches of ``data_dir``, read as the backtest stage reads them."""
    hourly = etl(data_dir, *backtest_weeks(first, last, window_weeks, forecast_history(**features)))
    return core.backtest(hourly, first, last, window_weeks, features, model, jobs=jobs, progress=progress)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_batches(tmp_path_factory.mktemp("data"), range(1, 15))


def test_one_row_per_target_week_and_a_summary(data_dir):
    seen = []
    result = backtest(
        data_dir,
        11,
        14,
        window_weeks=6,
        features=PROFILE_FEATURES,
        model=PROFILE_MODEL,
        jobs=1,
        progress=lambda done, total, row: seen.append((done, total, row["week"])),
    )

    assert list(result.weeks.columns) == WEEK_COLUMNS
    assert result.weeks["week"].tolist() == [11, 12, 13, 14]
    assert seen == [(1, 4, 11), (2, 4, 12), (3, 4, 13), (4, 4, 14)]
    assert (result.weeks[["mae_model", "mae_naive", "mae_mean4", "width"]] > 0).all().all()
    assert result.weeks["coverage"].between(0, 1).all()
    assert result.summary == summarise(result.weeks)
    assert result.summary["ratio_naive"] == pytest.approx(
        result.weeks["mae_model"].mean() / result.weeks["mae_naive"].mean()
    )
    assert result.summary["n_weeks"] == 4


@pytest.mark.parametrize("features, model", [(FEATURES, MODEL), (PROFILE_FEATURES, PROFILE_MODEL)])
def test_a_week_is_what_the_pipeline_would_forecast(data_dir, features, model):
    week = 12
    result = backtest(data_dir, week, week, window_weeks=6, features=features, model=model, jobs=1)

    # the pipeline: load weeks 6-11, features, train; future: prediction set of week 12; predict
    train = features_offline(etl(data_dir, week - 6, week - 1), **features)
    x, y = train.drop(columns="cash_in").set_index("order_date"), train.set_index("order_date")["cash_in"]
    x_pred = prediction_set(data_dir, week, **features).set_index("order_date")
    preds = forecast_model(**model).fit(x, y).predict_frame(x_pred)
    truth = etl(data_dir, week, week)["cash_in"].to_numpy()
    naive = etl(data_dir, week - 1, week - 1)["cash_in"].to_numpy()
    mean4 = etl(data_dir, week - 4, week - 1)["cash_in"].to_numpy().reshape(4, 168).mean(axis=0)

    row = result.weeks.iloc[0]
    assert row["mae_model"] == pytest.approx(np.abs(preds["y_pred"].to_numpy() - truth).mean())
    assert row["mae_naive"] == pytest.approx(np.abs(naive - truth).mean())
    assert row["mae_mean4"] == pytest.approx(np.abs(mean4 - truth).mean())
    inside = (truth >= preds["y_lower"].to_numpy()) & (truth <= preds["y_upper"].to_numpy())
    assert row["coverage"] == pytest.approx(inside.mean())
    assert row["width"] == pytest.approx((preds["y_upper"] - preds["y_lower"]).mean())
    # the open hours: all but those whose interval is [0, 0] and truth 0 (the fixture sells 17:00-22:59)
    certain = (preds["y_upper"].to_numpy() == 0) & (truth == 0)
    assert row["coverage_open"] == pytest.approx(inside[~certain].mean())
    if model["model"] == "profile":
        assert certain.sum() == 7 * 18


def test_same_result_with_one_or_two_workers(data_dir):
    one = backtest(data_dir, 11, 13, window_weeks=6, features=PROFILE_FEATURES, model=PROFILE_MODEL, jobs=1)
    two = backtest(data_dir, 11, 13, window_weeks=6, features=PROFILE_FEATURES, model=PROFILE_MODEL, jobs=2)
    pd.testing.assert_frame_equal(one.weeks, two.weeks)


def test_the_tutorial_configuration_backtests_too(data_dir):
    tutorial_features = {"degree": 1, "lag_in_week": 1, "level_weeks": 0, "calendar_index": False}
    tutorial_model = {
        "model": "random_forest",
        "n_estimators": 5,
        "max_depth": 0,
        "min_samples_leaf": 1,
        "level_scaled": False,
        "n_models": 2,
    }
    result = backtest(data_dir, 13, 14, window_weeks=5, features=tutorial_features, model=tutorial_model, jobs=1)
    assert len(result.weeks) == 2


@pytest.mark.parametrize("first, last, window", [(3, 5, 6), (8, 7, 3), (8, 9, 0)])
def test_impossible_weeks_are_refused(data_dir, first, last, window):
    with pytest.raises(FoodcastError):
        backtest(data_dir, first, last, window_weeks=window, features=FEATURES, model=MODEL, jobs=1)


def test_a_target_week_without_data_is_refused(data_dir):
    with pytest.raises(FoodcastError):
        backtest(data_dir, 14, 15, window_weeks=6, features=PROFILE_FEATURES, model=PROFILE_MODEL, jobs=1)


def test_plot_draws_the_three_maes_and_the_coverage():
    weeks = pd.DataFrame(
        {
            "week": [10, 11, 12],
            "mae_model": [1.0, 2.0, 3.0],
            "mae_naive": [2.0, 3.0, 4.0],
            "mae_mean4": [1.5, 2.5, 3.5],
            "coverage": [0.7, 0.8, 0.9],
            "width": [5.0, 6.0, 7.0],
        }
    )
    fig = plotly_backtest(weeks, interval_level=0.8)
    assert fig.layout.title.text == "Backtest of weeks 10–12 (3 weeks)"
    assert fig.layout.title.subtitle.text == (
        "mean MAE £2.00 an hour vs seasonal naive £3.00 (×0.67) · interval coverage 80 % (target 80 %)"
        " · model better than naive in 3 of 3 weeks"
    )
    drawn = {trace.name: list(trace.y) for trace in fig.data}
    assert drawn == {
        "seasonal naive": [2.0, 3.0, 4.0],
        "4-week mean": [1.5, 2.5, 3.5],
        "model": [1.0, 2.0, 3.0],
        "interval coverage": [0.7, 0.8, 0.9],
    }
    weeks["coverage_open"] = [0.6, 0.7, 0.8]
    drawn = {trace.name: list(trace.y) for trace in plotly_backtest(weeks).data}
    assert drawn["interval coverage, open hours"] == [0.6, 0.7, 0.8]
    assert all(list(trace.x) == [10, 11, 12] for trace in fig.data)
