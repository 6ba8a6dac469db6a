"""etl: order lines of every restaurant -> hourly cash-in of the whole chain."""

import logging

import numpy as np
import pandas as pd
import pytest

import foodcast.settings as settings
from fixtures import make_batches
from foodcast.domain.transform import etl
from foodcast.errors import FoodcastError
from foodcast.infrastructure.batches import available_weeks, read_batches, to_export, write_batch

WEEK_1 = pd.Timestamp("2014-12-29")  # Monday 00:00 of week 1
LOGGER = "foodcast.domain.transform"

# Restaurant "alpha" exports day-first dates (plain CSV, as some tills do).
ALPHA_CSV = """Order ID,Order Date,Item Name,Quantity,Product Price,Total products
1,29/12/2014 19:05,Chicken Tikka Masala,2,8.95,3
1,29/12/2014 19:05,Plain Naan,1,2.50,3
2,29/12/2014 19:59,Pilau Rice,1,2.95,1
3,29/12/2014 20:00,Onion Bhajee,3,3.50,3
4,03/01/2015 12:30,Lamb Bhuna,1,9.50,1
"""


def beta_orders():
    """Order lines of restaurant "beta", written as a regular gzipped batch."""
    return pd.DataFrame({
        "order_id": ["b1", "b1", "b2", "b3"],
        "order_date": pd.to_datetime([
            "2014-12-29 19:30:00", "2014-12-29 19:30:00", "2015-01-04 23:59:00", "2014-12-30 00:00:00",
        ]),
        "item_name": ["Korma", "Garlic Naan", "Mango Chutney", "Poppadom"],
        "quantity": [1, 2, 4, 1],
        "product_price": [9.25, 2.95, 0.70, 0.60],
        "total_products": [3, 3, 4, 1],
    })


@pytest.fixture
def tiny_dir(tmp_path):
    """Week 1 of two restaurants, one batch written by hand, one through write_batch."""
    root = tmp_path / "data"
    (root / "alpha").mkdir(parents=True)
    (root / "alpha" / "week_001.csv").write_text(ALPHA_CSV, encoding="utf-8")
    write_batch(to_export(beta_orders()), root / "beta" / "week_001.csv.gz")
    return root


@pytest.fixture
def transform_log(caplog, monkeypatch):
    """caplog for the transform logger, even if an earlier test applied the logging YAML
    (which stops 'foodcast' records from propagating to the root logger caplog listens on)."""
    for name in ("foodcast", "foodcast.domain", LOGGER):
        monkeypatch.setattr(logging.getLogger(name), "propagate", True)
        monkeypatch.setattr(logging.getLogger(name), "disabled", False)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    return caplog


def cash_at(df, when):
    rows = df.loc[df["order_date"] == pd.Timestamp(when), "cash_in"]
    assert len(rows) == 1, f"expected exactly one row for {when}, got {len(rows)}"
    return float(rows.iloc[0])


def test_hand_computed_cash_in_sums_both_restaurants(tiny_dir):
    df = etl(tiny_dir, 1, 1)

    assert list(df.columns) == ["order_date", "cash_in"]
    # alpha: 2 x 8.95 + 1 x 2.50 + 1 x 2.95 (19:59 is still the 19h hour); beta: 9.25 + 2 x 2.95
    assert cash_at(df, "2014-12-29 19:00") == pytest.approx(17.90 + 2.50 + 2.95 + 9.25 + 5.90)
    # 20:00 sharp opens the next hour
    assert cash_at(df, "2014-12-29 20:00") == pytest.approx(3 * 3.50)
    assert cash_at(df, "2014-12-30 00:00") == pytest.approx(0.60)
    assert cash_at(df, "2015-01-04 23:00") == pytest.approx(4 * 0.70)
    assert cash_at(df, "2014-12-29 18:00") == 0.0


def test_day_first_dates_are_read_day_first(tiny_dir):
    df = etl(tiny_dir, 1, 1)
    # "03/01/2015 12:30" is Saturday 3 January (read month-first it would be 1 March, week 9)
    assert cash_at(df, "2015-01-03 12:00") == pytest.approx(9.50)


def test_every_hour_of_the_week_is_present_and_nothing_is_lost(tiny_dir):
    df = etl(tiny_dir, 1, 1)

    expected_hours = pd.date_range(WEEK_1, periods=168, freq="h")
    assert len(df) == 168
    assert (pd.DatetimeIndex(df["order_date"]) == expected_hours).all()
    assert not df["cash_in"].isna().any()
    assert (df["cash_in"] == 0).sum() == 168 - 5  # only 5 hours have orders
    total_lines = (
        17.90 + 2.50 + 2.95 + 3 * 3.50 + 9.50  # alpha
        + 9.25 + 2 * 2.95 + 4 * 0.70 + 0.60  # beta
    )
    assert df["cash_in"].sum() == pytest.approx(total_lines)


def test_chain_total_equals_the_sum_of_all_order_lines(tmp_path):
    root = make_batches(tmp_path / "data", weeks=[3, 4])
    df = etl(root, 3, 4)

    orders = read_batches(sorted(root.rglob("week_*.csv*")))
    assert df["cash_in"].sum() == pytest.approx((orders["quantity"] * orders["product_price"]).sum())
    assert len(df) == 2 * 168
    assert pd.DatetimeIndex(df["order_date"])[0] == WEEK_1 + pd.Timedelta(weeks=2)
    assert (pd.DatetimeIndex(df["order_date"]).to_series().diff().dropna() == pd.Timedelta(hours=1)).all()


def test_one_restaurant_alone_gives_its_own_cash_in(tmp_path):
    both = make_batches(tmp_path / "both", weeks=[2])
    only_alpha = make_batches(tmp_path / "alpha", weeks=[2], restaurants=("alpha",))
    only_beta = make_batches(tmp_path / "beta", weeks=[2], restaurants=("alpha", "beta"))
    (only_beta / "alpha" / "week_002.csv.gz").unlink()

    chain = etl(both, 2, 2)["cash_in"].to_numpy()
    alpha = etl(only_alpha, 2, 2)["cash_in"].to_numpy()
    beta = etl(only_beta, 2, 2)["cash_in"].to_numpy()
    np.testing.assert_allclose(chain, alpha + beta)
    assert beta.sum() > 0 and alpha.sum() > 0


def test_missing_week_is_left_out_and_reported(tmp_path, transform_log):
    root = make_batches(tmp_path / "data", weeks=[1, 2, 4])

    df = etl(root, 1, 4)

    weeks = ((pd.DatetimeIndex(df["order_date"]) - WEEK_1).days // 7 + 1)
    assert sorted(set(weeks)) == [1, 2, 4]
    assert len(df) == 3 * 168
    week_3 = pd.date_range(WEEK_1 + pd.Timedelta(weeks=2), periods=168, freq="h")
    assert not pd.DatetimeIndex(df["order_date"]).isin(week_3).any()  # not zero-filled
    warnings = [r for r in transform_log.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert warnings, "no warning about the missing week"
    assert any("3" in r.getMessage() for r in warnings), [r.getMessage() for r in warnings]


def test_complete_range_gives_no_warning(tmp_path, transform_log):
    root = make_batches(tmp_path / "data", weeks=[1, 2])
    etl(root, 1, 2)
    assert not [r for r in transform_log.records if r.name == LOGGER and r.levelno >= logging.WARNING]


def test_no_data_in_range_says_which_weeks_are_held(tmp_path):
    root = make_batches(tmp_path / "data", weeks=[1, 2, 4])
    with pytest.raises(FoodcastError, match=r"1-2, 4"):
        etl(root, 10, 12)


@pytest.mark.parametrize("start, end", [(3, 2), (0, 2), (-1, 1)])
def test_bad_week_range_is_a_foodcast_error_naming_the_held_weeks(tmp_path, start, end):
    root = make_batches(tmp_path / "data", weeks=[1, 2, 4])
    with pytest.raises(FoodcastError) as info:
        etl(root, start, end)
    # The spec: the error says which weeks the data directory holds, for every one of these cases.
    assert "1-2, 4" in str(info.value), str(info.value)


def test_default_dataset_weeks_180_to_200():
    try:
        held = available_weeks(settings.DATA_DIR)
    except FoodcastError:
        held = []
    if not held:
        pytest.skip(f"the default dataset {settings.DATA_DIR} holds no batches yet (run the generator)")

    df = etl(settings.DATA_DIR, 180, 200)

    assert len(df) == 21 * 168
    hours = pd.DatetimeIndex(df["order_date"])
    assert hours[0] == pd.Timestamp("2018-06-04")  # Monday of week 180
    assert (hours.to_series().diff().dropna() == pd.Timedelta(hours=1)).all()
    assert not df.isna().any().any()
    assert (df["cash_in"] >= 0).all() and df["cash_in"].sum() > 0
