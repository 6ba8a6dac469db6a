"""features_offline / features_online: same feature rows for the same hours (no train/serve skew)."""

import numpy as np
import pandas as pd
import pytest

from fixtures import make_batches
from foodcast.core.features import (
    DEFAULT_FEATURES,
    build_features,
    check_feature_frame,
    day_groups,
    features_offline,
    features_online,
    week_profile,
)
from foodcast.core.forecast import span_future
from foodcast.data.chain import etl
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
    df = df[
        ~df["order_date"].between(WEEK_1 + pd.Timedelta(weeks=2), WEEK_1 + pd.Timedelta(weeks=3), inclusive="left")
    ].reset_index(drop=True)  # week 3 left out

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


@pytest.mark.parametrize(
    "settings",
    [
        {"degree": -1},
        {"lag_in_week": -1},
        {"level_weeks": -2},
        {"level_halflife": -1.0},
        {"profile_weeks": -1},
        {"profile_groups": 0},
        {"profile_groups": 8},
    ],
)
def test_bad_settings_are_errors(settings):
    with pytest.raises(FoodcastError):
        features_offline(hourly(3), **settings)


# --- level and hour-of-day features ----------------------------------------------------------


def test_level_is_the_mean_of_the_weeks_before_the_rows_week():
    df = hourly(5)
    out = features_offline(df, lag_in_week=0, level_weeks=2).set_index("order_date")
    by_hour = df.set_index("order_date")["cash_in"]

    assert list(out.columns) == [*WEEKDAYS, "hour_cos_1", "hour_sin_1", "level_2W", "cash_in"]
    assert len(out) == 3 * 168  # the first two weeks have no level
    for when in ["2015-01-12 00:00", "2015-01-14 19:00", "2015-01-25 23:00"]:
        when = pd.Timestamp(when)
        monday = when.normalize() - pd.Timedelta(days=when.day_of_week)
        weeks_before = by_hour[monday - pd.Timedelta(weeks=2) : monday - pd.Timedelta(hours=1)]
        assert len(weeks_before) == 336
        assert out.loc[when, "level_2W"] == pytest.approx(weeks_before.mean())
    # one value per week: every hour of a week has the same level
    assert (
        out.groupby(out.index.normalize() - pd.to_timedelta(out.index.day_of_week, unit="D"))["level_2W"]
        .nunique()
        .max()
        == 1
    )


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


@pytest.mark.parametrize(
    "settings",
    [
        {"level_weeks": 1},
        {"level_weeks": 3, "lag_in_week": 2, "calendar_index": True},
        {"lag_in_week": 0, "level_weeks": 2, "level_halflife": 1.5, "profile_weeks": 5},
        {"lag_in_week": 0, "level_weeks": 3, "profile_weeks": 5, "profile_groups": 7},
    ],
)
def test_offline_and_online_give_identical_rows_with_level(settings):
    df = hourly(6)
    df["cash_in"] = np.round(np.cos(np.arange(len(df))) * 50 + 60, 2)
    last_week = df["order_date"] >= WEEK_1 + pd.Timedelta(weeks=5)

    offline = features_offline(df, **settings)
    online = features_online(df.loc[last_week, ["order_date"]], df[~last_week], **settings)

    expected = offline[offline["order_date"] >= WEEK_1 + pd.Timedelta(weeks=5)].drop(columns="cash_in")
    assert len(online) == 168
    pd.testing.assert_frame_equal(online.reset_index(drop=True), expected.reset_index(drop=True))


def test_weighted_level_favours_the_latest_weeks():
    df = hourly(5)
    out = features_offline(df, lag_in_week=0, level_weeks=3, level_halflife=1.0).set_index("order_date")
    week_means = df["cash_in"].to_numpy().reshape(5, 168).mean(axis=1)

    # week 4's level: weeks 3, 2, 1 before it weigh 1, 1/2, 1/4
    expected = (week_means[2] + 0.5 * week_means[1] + 0.25 * week_means[0]) / 1.75
    assert out.loc[WEEK_1 + pd.Timedelta(weeks=3, hours=5), "level_3W"] == pytest.approx(expected)


# --- the week profile --------------------------------------------------------------------------

DAY_FACTORS = np.array([1.0, 0.9, 1.1, 1.2, 1.7, 1.9, 1.3])
EARLY = np.r_[np.zeros(11), [1, 3, 2], np.zeros(3), [4, 8, 10, 8, 5, 3, 1]]  # lunch, then the evening
LATE = np.r_[1.0, np.zeros(10), [1, 3, 2], np.zeros(3), [2, 5, 8, 10, 8, 6, 3]]  # the evening runs past midnight
LATE_DAYS = [4, 5]  # Friday, Saturday


def true_shape():
    days = (
        np.array([(LATE if d in LATE_DAYS else EARLY) / (LATE if d in LATE_DAYS else EARLY).sum() for d in range(7)])
        * DAY_FACTORS[:, None]
    )
    return (days / days.mean()).ravel()


def weeks_of(levels, seed=None):
    """Weeks of cash-in = level x true shape, with multiplicative noise per hour if seeded."""
    weeks = np.outer(levels, true_shape())
    if seed is not None:
        weeks *= np.random.default_rng(seed).gamma(4.0, 0.25, weeks.shape)
    return weeks


def test_week_profile_is_the_shape_whatever_the_level_of_each_week():
    weeks = weeks_of([10.0, 20.0, 15.0, 40.0])
    np.testing.assert_allclose(week_profile(weeks, groups=2), true_shape())
    np.testing.assert_allclose(week_profile(weeks, groups=7), true_shape())
    assert week_profile(weeks, groups=2).mean() == pytest.approx(1.0)


def test_days_are_grouped_by_how_their_trade_spreads_over_the_day():
    shares = true_shape().reshape(7, 24)
    shares = shares / shares.sum(axis=1, keepdims=True)
    labels = day_groups(shares, 2)
    assert labels[4] == labels[5] and len(set(labels[[0, 1, 2, 3, 6]])) == 1 and labels[0] != labels[4]
    assert len(set(day_groups(shares, 7))) == 7 and set(day_groups(shares, 1)) == {0}
    shares[0] = 0.0  # closed on Mondays: no group
    assert day_groups(shares, 2)[0] == -1


def test_pooling_the_days_of_a_group_makes_the_profile_less_noisy():
    weeks = weeks_of(np.linspace(10, 20, 21), seed=0)
    pooled = np.abs(week_profile(weeks, groups=2) - true_shape()).mean()
    alone = np.abs(week_profile(weeks, groups=7) - true_shape()).mean()
    assert pooled < 0.8 * alone


def test_a_closed_day_does_not_lower_its_weekdays_share():
    weeks = weeks_of(np.full(5, 10.0))
    weeks[2, 24:48] = 0.0  # closed on the Tuesday of the third week
    np.testing.assert_allclose(week_profile(weeks, groups=2), true_shape())


def test_a_rows_profile_is_from_the_other_weeks_within_profile_weeks():
    df = hourly(6)
    df["cash_in"] = weeks_of([10, 12, 11, 14, 13, 15], seed=1).ravel()
    out = features_offline(df, lag_in_week=0, profile_weeks=2).set_index("order_date")
    weeks = df["cash_in"].to_numpy().reshape(6, 168)

    assert len(out) == 6 * 168  # every week has neighbours
    for week, neighbours in ((0, [1, 2]), (2, [0, 1, 3, 4]), (5, [3, 4])):
        rows = out.loc[WEEK_1 + pd.Timedelta(weeks=week) : WEEK_1 + pd.Timedelta(weeks=week + 1, hours=-1)]
        np.testing.assert_allclose(rows["profile_2W"].to_numpy(), week_profile(weeks[neighbours]))

    future = pd.DataFrame({"order_date": pd.date_range(WEEK_1 + pd.Timedelta(weeks=6), periods=168, freq="h")})
    online = features_online(future, df, lag_in_week=0, profile_weeks=2)
    np.testing.assert_allclose(online["profile_2W"].to_numpy(), week_profile(weeks[[4, 5]]))


def test_online_profile_needs_all_its_weeks():
    past = hourly(3)
    future = span_future(past["order_date"].max())
    with pytest.raises(FoodcastError, match="profile"):
        features_online(future, past, lag_in_week=0, profile_weeks=4)
    with pytest.raises(FoodcastError, match="profile"):
        features_online(future, past.drop(index=200), lag_in_week=0, profile_weeks=3)  # week 2 incomplete
    assert len(features_online(future, past, lag_in_week=0, profile_weeks=3)) == 168


def test_no_skew_with_the_default_features_on_real_batches(tmp_path):
    from foodcast.core.features import DEFAULT_FEATURES

    settings = {**DEFAULT_FEATURES, "level_weeks": 2, "profile_weeks": 4}
    root = make_batches(tmp_path / "data", weeks=range(1, 6))
    past = etl(root, 1, 4)
    horizon = span_future(past["order_date"].max())
    online = features_online(horizon, past, **settings)
    offline = features_offline(etl(root, 1, 5), **settings)
    expected = offline[offline["order_date"].isin(horizon["order_date"])].drop(columns="cash_in")

    assert len(expected) == 168 and "profile_4W" in online.columns
    pd.testing.assert_frame_equal(online.reset_index(drop=True), expected.reset_index(drop=True))


def _rows_to_check():
    hours = pd.Series(pd.date_range("2018-06-04", periods=48, freq="h"))
    history = pd.DataFrame({"order_date": hours - pd.Timedelta(weeks=30), "cash_in": 1.0})
    settings = {**DEFAULT_FEATURES, "lag_in_week": 1, "degree": 2}
    rows = build_features(hours, history, **settings).drop(columns="order_date").fillna(3.0)
    return rows, list(rows.columns)


def test_a_feature_frame_as_build_features_writes_it_passes_the_check():
    rows, columns = _rows_to_check()
    shuffled = rows[columns[::-1]].astype(object)  # any order, any numeric type
    checked = check_feature_frame(shuffled, columns)
    pd.testing.assert_frame_equal(checked, rows.astype("float64"))


BAD_FEATURES = {
    # The tester's requests, which a served model answered with HTTP 200 and a forecast.
    "nan-level": ("level_8W", np.nan, r"row 2, column 'level_8W': missing value"),
    "weekday-42": ("weekday", 42, r"row 2, column 'weekday': outside 0 to 6: 42"),
    "hour-24": ("hour", 24, r"row 2, column 'hour': outside 0 to 23"),
    "fractional-hour": ("hour", 1.5, r"row 2, column 'hour': not a whole number: 1.5"),
    "infinite-profile": ("profile_21W", np.inf, r"row 2, column 'profile_21W': not a finite number: inf"),
    "negative-level": ("level_8W", -1.0, r"row 2, column 'level_8W': outside 0 or more: -1.0"),
    "negative-lag": ("lag_1W", -0.5, r"row 2, column 'lag_1W': outside 0 or more"),
    "negative-profile": ("profile_21W", -0.1, r"row 2, column 'profile_21W': outside 0 or more"),
    "one-hot-2": ("weekday_3", 2.0, r"row 2, column 'weekday_3': outside 0 to 1"),
    "harmonic-beyond-1": ("hour_sin_2", 1.5, r"row 2, column 'hour_sin_2': outside -1 to 1"),
    "text": ("hour", "noon", r"row 2, column 'hour': not a number: 'noon'"),
}


@pytest.mark.parametrize(("column", "value", "message"), list(BAD_FEATURES.values()), ids=list(BAD_FEATURES))
def test_a_feature_value_no_row_can_hold_is_refused_naming_its_column(column, value, message):
    rows, columns = _rows_to_check()
    if isinstance(value, str):
        rows = rows.astype(object)
    rows.loc[1, column] = value
    with pytest.raises(FoodcastError, match=f"^{message}"):
        check_feature_frame(rows, columns)


def test_an_unknown_a_missing_or_a_doubled_column_or_no_row_is_refused():
    rows, columns = _rows_to_check()
    with pytest.raises(FoodcastError, match=r"^unknown column 'extra': the model's features are \['weekday_1'"):
        check_feature_frame(rows.assign(extra=1.0), columns)
    with pytest.raises(FoodcastError, match=r"^missing column 'hour': the model's features are"):
        check_feature_frame(rows.drop(columns="hour"), columns)
    with pytest.raises(FoodcastError, match=r"^column 'hour' is given twice"):
        check_feature_frame(pd.concat([rows, rows[["hour"]]], axis=1), columns)
    with pytest.raises(FoodcastError, match=r"^no rows to predict$"):
        check_feature_frame(rows.head(0), columns)
