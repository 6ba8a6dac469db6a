"""features_offline / features_online: same feature rows for the same hours (no train/serve skew)."""

import numpy as np
import pandas as pd
import pytest

from fixtures import make_batches
from foodcast.domain.feature_engineering import features_offline, features_online
from foodcast.domain.forecast import span_future
from foodcast.domain.transform import etl
from foodcast.errors import FoodcastError

WEEK_1 = pd.Timestamp("2014-12-29")  # a Monday
WEEKDAYS = [f"weekday_{d}" for d in range(1, 7)]


def hourly(n_weeks, start=WEEK_1):
    """Hourly series where cash_in is the hour's position: a lag is then an exact subtraction."""
    hours = pd.date_range(start, periods=168 * n_weeks, freq="h").as_unit("us")
    return pd.DataFrame({"order_date": hours, "cash_in": np.arange(len(hours), dtype="float64")})


def expected_columns(degree, lag):
    hours = [f"hour_{f}_{k}" for k in range(1, degree + 1) for f in ("cos", "sin")]
    return WEEKDAYS + hours + [f"lag_{L}W" for L in range(1, lag + 1)]


@pytest.mark.parametrize("degree, lag", [(1, 1), (3, 2)])
def test_offline_columns_and_dropped_rows(degree, lag):
    df = hourly(4)
    out = features_offline(df, degree=degree, lag_in_week=lag)

    assert set(out.columns) == {"order_date", "cash_in", *expected_columns(degree, lag)}
    assert "weekday_0" not in out.columns  # Monday is the dropped level
    assert len(out) == (4 - lag) * 168  # the first `lag` weeks have no lag
    assert pd.Timestamp(out["order_date"].iloc[0]) == WEEK_1 + pd.Timedelta(weeks=lag)
    assert not out.isna().any().any()


def test_weekday_one_hot():
    out = features_offline(hourly(2)).set_index("order_date")
    monday = out.loc[pd.Timestamp("2015-01-05 10:00")]
    assert (monday[WEEKDAYS] == 0).all()
    for d in range(1, 7):
        row = out.loc[pd.Timestamp("2015-01-05 10:00") + pd.Timedelta(days=d)]
        assert row[f"weekday_{d}"] == 1
        assert row[WEEKDAYS].sum() == 1


def test_hour_harmonics():
    out = features_offline(hourly(2), degree=2).set_index("order_date")
    for hour in (0, 6, 13, 23):
        row = out.loc[pd.Timestamp("2015-01-07") + pd.Timedelta(hours=hour)]
        for k in (1, 2):
            assert row[f"hour_cos_{k}"] == pytest.approx(np.cos(2 * np.pi * k * hour / 24), abs=1e-9)
            assert row[f"hour_sin_{k}"] == pytest.approx(np.sin(2 * np.pi * k * hour / 24), abs=1e-9)


def test_lag_values_equal_the_hand_lookup():
    df = hourly(4)
    df["cash_in"] = np.round(np.sin(np.arange(len(df))) * 100 + 200, 2)
    out = features_offline(df, lag_in_week=3).set_index("order_date")
    by_hour = df.set_index("order_date")["cash_in"]

    for when in ["2015-01-19 00:00", "2015-01-21 19:00", "2015-01-25 23:00"]:
        when = pd.Timestamp(when)
        for L in (1, 2, 3):
            assert out.loc[when, f"lag_{L}W"] == by_hour[when - pd.Timedelta(weeks=L)]
        assert out.loc[when, "cash_in"] == by_hour[when]


def test_lags_follow_the_calendar_across_a_missing_week():
    df = hourly(4)
    df = df[~df["order_date"].between(WEEK_1 + pd.Timedelta(weeks=2), WEEK_1 + pd.Timedelta(weeks=3),
                                       inclusive="left")].reset_index(drop=True)  # week 3 left out

    out = features_offline(df, lag_in_week=1)

    # week 2 (lag: week 1) is kept; week 4 has no week 3 to lag on and is dropped
    assert len(out) == 168
    assert pd.Timestamp(out["order_date"].iloc[-1]) == WEEK_1 + pd.Timedelta(weeks=2) - pd.Timedelta(hours=1)
    np.testing.assert_array_equal(out["lag_1W"].to_numpy(), out["cash_in"].to_numpy() - 168)


@pytest.mark.parametrize("degree, lag", [(1, 1), (2, 1), (1, 2), (3, 3)])
def test_offline_and_online_give_identical_rows(degree, lag):
    df = hourly(5)
    last_week = df["order_date"] >= WEEK_1 + pd.Timedelta(weeks=4)

    offline = features_offline(df, degree=degree, lag_in_week=lag)
    online = features_online(df.loc[last_week, ["order_date"]], df[~last_week], degree=degree, lag_in_week=lag)

    expected = offline[offline["order_date"] >= WEEK_1 + pd.Timedelta(weeks=4)].drop(columns="cash_in")
    assert len(online) == 168
    pd.testing.assert_frame_equal(online.reset_index(drop=True), expected.reset_index(drop=True))


@pytest.mark.parametrize("degree, lag", [(1, 1), (2, 2)])
def test_no_skew_on_real_batches_through_span_future(tmp_path, degree, lag):
    root = make_batches(tmp_path / "data", weeks=range(1, 5))
    everything = etl(root, 1, 4)
    past = etl(root, 1, 3)

    horizon = span_future(past["order_date"].max())
    online = features_online(horizon, past, degree=degree, lag_in_week=lag)
    offline = features_offline(everything, degree=degree, lag_in_week=lag)
    expected = offline[offline["order_date"].isin(horizon["order_date"])].drop(columns="cash_in")

    assert len(expected) == 168
    pd.testing.assert_frame_equal(online.reset_index(drop=True), expected.reset_index(drop=True))


def test_online_lags_come_from_past():
    past = hourly(2)
    future = pd.DataFrame({"order_date": pd.date_range(WEEK_1 + pd.Timedelta(weeks=2), periods=168, freq="h")})
    out = features_online(future, past, lag_in_week=2)
    assert "cash_in" not in out.columns
    np.testing.assert_array_equal(out["lag_1W"].to_numpy(), np.arange(168, 336, dtype="float64"))
    np.testing.assert_array_equal(out["lag_2W"].to_numpy(), np.arange(0, 168, dtype="float64"))


def test_online_missing_lag_is_an_error():
    past = hourly(2).drop(index=200)  # one hour of week 2 missing
    future = span_future(past["order_date"].max())
    with pytest.raises(FoodcastError):
        features_online(future, past, lag_in_week=1)
    with pytest.raises(FoodcastError):
        features_online(future, hourly(1), lag_in_week=2)  # a whole week short


def test_offline_without_any_complete_row_is_an_error():
    with pytest.raises(FoodcastError):
        features_offline(hourly(1), lag_in_week=1)


@pytest.mark.parametrize("settings", [{"degree": -1}, {"lag_in_week": -1}, {"level_weeks": -2}])
def test_bad_settings_are_errors(settings):
    with pytest.raises(FoodcastError):
        features_offline(hourly(3), **settings)


# --- level and hour-of-day features ----------------------------------------------------------

def test_level_is_the_mean_of_the_weeks_before_the_rows_week():
    df = hourly(5)
    out = features_offline(df, lag_in_week=0, level_weeks=2).set_index("order_date")
    by_hour = df.set_index("order_date")["cash_in"]

    assert list(out.columns) == WEEKDAYS + ["hour_cos_1", "hour_sin_1", "level_2W", "cash_in"]
    assert len(out) == 3 * 168  # the first two weeks have no level
    for when in ["2015-01-12 00:00", "2015-01-14 19:00", "2015-01-25 23:00"]:
        when = pd.Timestamp(when)
        monday = when.normalize() - pd.Timedelta(days=when.day_of_week)
        weeks_before = by_hour[monday - pd.Timedelta(weeks=2):monday - pd.Timedelta(hours=1)]
        assert len(weeks_before) == 336
        assert out.loc[when, "level_2W"] == pytest.approx(weeks_before.mean())
    # one value per week: every hour of a week has the same level
    assert out.groupby(out.index.normalize() - pd.to_timedelta(out.index.day_of_week, unit="D"))["level_2W"].nunique().max() == 1


def test_level_needs_complete_weeks():
    df = hourly(4).drop(index=170)  # one hour of week 2 missing: no level from week 2
    out = features_offline(df, lag_in_week=0, level_weeks=1)
    weeks = sorted(set(out["order_date"].dt.normalize() - pd.to_timedelta(out["order_date"].dt.day_of_week, unit="D")))
    assert weeks == [WEEK_1 + pd.Timedelta(weeks=1), WEEK_1 + pd.Timedelta(weeks=3)]
    future = span_future(df["order_date"].max())
    with pytest.raises(FoodcastError, match="level"):
        features_online(future, df[df["order_date"] < WEEK_1 + pd.Timedelta(weeks=2)], lag_in_week=0, level_weeks=2)


def test_calendar_index_column():
    out = features_offline(hourly(2), calendar_index=True).set_index("order_date")
    assert "hour" in out.columns
    np.testing.assert_array_equal(out["hour"].to_numpy(), out.index.hour.to_numpy().astype("float64"))


def test_calendar_only_features_keep_every_row():
    out = features_offline(hourly(2), degree=0, lag_in_week=0, calendar_index=True)
    assert len(out) == 2 * 168
    assert list(out.columns) == ["order_date", *WEEKDAYS, "weekday", "hour", "cash_in"]


@pytest.mark.parametrize("settings", [{"level_weeks": 1}, {"level_weeks": 3, "lag_in_week": 2, "calendar_index": True}])
def test_offline_and_online_give_identical_rows_with_level(settings):
    df = hourly(6)
    df["cash_in"] = np.round(np.cos(np.arange(len(df))) * 50 + 60, 2)
    last_week = df["order_date"] >= WEEK_1 + pd.Timedelta(weeks=5)

    offline = features_offline(df, **settings)
    online = features_online(df.loc[last_week, ["order_date"]], df[~last_week], **settings)

    expected = offline[offline["order_date"] >= WEEK_1 + pd.Timedelta(weeks=5)].drop(columns="cash_in")
    assert len(online) == 168
    pd.testing.assert_frame_equal(online.reset_index(drop=True), expected.reset_index(drop=True))
