"""The generated dataset: reproducible to the byte, and realistic enough to forecast."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fixtures import digests
from foodcast.core.weeks import week_start
from foodcast.data.batch_files import list_batches
from foodcast.data.generator import RESTAURANTS, expected_orders, generate, menu
from foodcast.data.orders import read_batches

# Weeks 156-207: 2017-12-18 to 2018-12-16, a full year holding Christmas and New Year's Day.
SAMPLE_WEEKS = (156, 207)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample")
    generate(root, first_week=SAMPLE_WEEKS[0], last_week=SAMPLE_WEEKS[1])
    lines = read_batches([p for weeks in list_batches(root).values() for p in weeks.values()])
    lines["value"] = lines["quantity"] * lines["product_price"]
    return lines


@pytest.fixture(scope="module")
def orders(sample):
    return (
        sample.groupby(["restaurant", "order_id"], sort=False)
        .agg(
            order_date=("order_date", "first"),
            value=("value", "sum"),
            items=("quantity", "sum"),
            total_products=("total_products", "first"),
            n_lines=("item_name", "size"),
        )
        .reset_index()
    )


@pytest.fixture(scope="module")
def daily(orders):
    """Orders per calendar day and restaurant, closed days included as 0."""
    days = pd.date_range(week_start(SAMPLE_WEEKS[0]), week_start(SAMPLE_WEEKS[1] + 1), freq="D", inclusive="left")
    counts = orders.groupby(["restaurant", orders["order_date"].dt.normalize()]).size()
    return {r: counts.loc[r].reindex(days, fill_value=0) for r in counts.index.levels[0]}


def test_same_seed_gives_same_bytes_and_a_subset_matches_the_full_run(tmp_path):
    first = generate(tmp_path / "a", seed=7, first_week=1, last_week=4)
    generate(tmp_path / "b", seed=7, first_week=1, last_week=4)
    generate(tmp_path / "c", seed=7, first_week=3, last_week=4)
    generate(tmp_path / "d", seed=8, first_week=1, last_week=4)
    a, b, c, d = (digests(tmp_path / name) for name in "abcd")
    assert len(first) == len(a) == 8
    assert a == b
    later = {name: digest for name, digest in a.items() if "week_003" in name or "week_004" in name}
    assert c == later
    assert len(c) == 4
    assert not set(a.values()) & set(d.values())


def test_another_process_writes_the_same_bytes(tmp_path):
    # Catches anything tied to the process, such as string hashing or global random state.
    code = "import sys; from foodcast.data.generator import generate; "
    code += "generate(sys.argv[1], first_week=52, last_week=52)"
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "a")], check=True, env=env)
    generate(tmp_path / "b", first_week=52, last_week=52)
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    assert len(digests(tmp_path / "a")) == 2


def test_layout_is_one_gzip_batch_per_restaurant_and_week(tmp_path):
    generate(tmp_path, first_week=259, last_week=260)
    batches = list_batches(tmp_path)
    assert sorted(batches) == sorted(profile.name for profile in RESTAURANTS)
    for weeks in batches.values():
        assert sorted(weeks) == [259, 260]
        assert all(path.name.endswith(".csv.gz") for path in weeks.values())


def test_lines_fall_in_their_batch_week(sample):
    weeks = (sample["order_date"] - week_start(1)).dt.days // 7 + 1
    assert weeks.min() == SAMPLE_WEEKS[0] and weeks.max() == SAMPLE_WEEKS[1]


def test_orders_per_day_are_30_to_60_and_differ_between_restaurants(daily):
    means = {r: counts[counts > 0].mean() for r, counts in daily.items()}
    assert len(means) == 2
    assert all(30 <= m <= 60 for m in means.values()), means
    small, large = sorted(means.values())
    assert large / small > 1.2, means


def test_baskets_average_30_to_35_pounds_over_several_lines(orders, sample):
    assert 30 <= orders["value"].mean() <= 35
    assert orders["n_lines"].mean() >= 3
    assert (orders["items"] == orders["total_products"]).all()
    share = sample["quantity"].value_counts(normalize=True)
    assert share[1] > 0.8
    assert 0.03 < share[[2, 3]].sum() < 0.2


def test_trade_is_in_the_evening_with_a_thin_lunch(sample):
    minute = sample["order_date"].dt.hour * 60 + sample["order_date"].dt.minute
    total = sample["value"].sum()
    evening = sample["value"][(minute >= 16 * 60) & (minute < 23 * 60)].sum() / total
    lunch = sample["value"][(minute >= 11 * 60 + 30) & (minute < 14 * 60 + 30)].sum() / total
    assert evening > 0.8
    assert 0 < lunch < 0.15
    assert not ((minute >= 60) & (minute < 11 * 60)).any()
    assert (sample["order_date"].dt.second == 0).all()


def test_friday_and_saturday_are_1_5_to_2_times_monday(daily):
    for restaurant, counts in daily.items():
        open_days = counts[counts > 0]
        by_weekday = open_days.groupby(open_days.index.day_of_week).mean()
        ratio = (by_weekday[4] + by_weekday[5]) / 2 / by_weekday[0]
        assert 1.5 <= ratio <= 2.0, (restaurant, ratio)
        assert by_weekday[0] < by_weekday[6] < by_weekday[5]


def test_christmas_day_is_closed(daily):
    for counts in daily.values():
        assert counts[pd.Timestamp("2017-12-25")] == 0
        # The other days of the week trade as usual.
        assert (counts["2017-12-18":"2017-12-24"] > 0).all()
    assert sum(int((counts == 0).sum()) for counts in daily.values()) <= 6


def test_daily_counts_are_overdispersed(daily):
    for restaurant, counts in daily.items():
        # Week-on-week differences cancel the weekday profile and the slow trend, leaving
        # twice the day-to-day variance: equal to the mean for Poisson counts.
        both_open = (counts > 0) & (counts.shift(7) > 0)
        diff = (counts - counts.shift(7))[both_open]
        assert diff.var() / 2 > 1.5 * counts[counts > 0].mean(), restaurant


def test_menus_are_sized_priced_and_fixed(sample):
    for index, profile in enumerate(RESTAURANTS):
        items = menu(restaurant=index)
        assert 150 <= len(items) <= 250
        assert items["item_name"].is_unique
        assert items["price"].between(0.5, 20).all()
        mains = items[items["category"] == "mains"]["price"]
        assert mains.between(7, 14).all()
        assert items[items["category"].isin(["breads", "chutneys", "poppadoms"])]["price"].max() < 5
        # A few dishes sell far more than the rest.
        main_weights = items[items["category"] == "mains"]["weight"]
        assert main_weights.max() > 10 * main_weights.median()
        lines = sample[sample["restaurant"] == profile.name]
        assert lines.groupby("item_name")["product_price"].nunique().max() == 1
        assert set(lines["item_name"]) <= set(items["item_name"])
        assert len(set(lines["item_name"])) >= 150
        best_seller = lines["item_name"].value_counts().index[0]
        assert best_seller in {"Pilau Rice", "Plain Naan", "Garlic Naan", "Chicken Tikka Masala"}
    first, second = menu(restaurant=0), menu(restaurant=1)
    assert set(first["item_name"]) != set(second["item_name"])
    common = first.merge(second, on="item_name")
    assert (common["price_x"] != common["price_y"]).mean() > 0.5


def test_order_numbers_are_unique_and_increase_with_time(orders):
    for _, group in orders.groupby("restaurant"):
        numbers = group["order_id"].astype(int)
        assert numbers.is_unique
        assert group["order_date"].iloc[np.argsort(numbers.to_numpy())].is_monotonic_increasing


def test_model_grows_and_peaks_in_winter():
    for index in range(len(RESTAURANTS)):
        first_year = pd.date_range("2015-01-05", periods=364, freq="D")
        last_year = first_year + pd.Timedelta(days=4 * 364)
        level = expected_orders(index, last_year).mean(), expected_orders(index, first_year).mean()
        growth = level[0] / level[1]
        assert 1.15 <= growth <= 1.45
        winter = expected_orders(index, pd.date_range("2016-12-05", periods=28, freq="D")).mean()
        summer = expected_orders(index, pd.date_range("2016-07-04", periods=28, freq="D")).mean()
        assert 1.15 < winter / summer < 1.4
