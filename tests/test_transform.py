"""etl: order lines of every restaurant -> hourly cash-in of the whole chain."""

import dataclasses
import logging

import numpy as np
import pandas as pd
import pytest

import foodcast.settings as settings
from fixtures import DAMAGES, csv_bytes, make_batches
from foodcast.data.batch_files import available_weeks
from foodcast.data.chain import etl, read_chain
from foodcast.data.coverage import MissingBatch, chain_coverage
from foodcast.data.orders import MAX_PRICE, MAX_QUANTITY, MAX_TOTAL_PRODUCTS, read_batches, to_export, write_batch
from foodcast.errors import FoodcastError

WEEK_1 = pd.Timestamp("2014-12-29")  # Monday 00:00 of week 1
LOGGER = "foodcast.data.chain"

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
    return pd.DataFrame(
        {
            "order_id": ["b1", "b1", "b2", "b3"],
            "order_date": pd.to_datetime(
                [
                    "2014-12-29 19:30:00",
                    "2014-12-29 19:30:00",
                    "2015-01-04 23:59:00",
                    "2014-12-30 00:00:00",
                ]
            ),
            "item_name": ["Korma", "Garlic Naan", "Mango Chutney", "Poppadom"],
            "quantity": [1, 2, 4, 1],
            "product_price": [9.25, 2.95, 0.70, 0.60],
            "total_products": [3, 3, 4, 1],
        }
    )


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
    for name in ("foodcast", "foodcast.data", LOGGER):
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
        17.90
        + 2.50
        + 2.95
        + 3 * 3.50
        + 9.50  # alpha
        + 9.25
        + 2 * 2.95
        + 4 * 0.70
        + 0.60  # beta
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


def test_missing_week_is_refused_naming_it(tmp_path):
    root = make_batches(tmp_path / "data", weeks=[1, 2, 4])
    with pytest.raises(FoodcastError, match=r"^week 3 is incomplete: restaurant alpha .*beta week 3"):
        etl(root, 1, 4)


def test_missing_week_is_left_out_and_reported_with_allow_missing(tmp_path, transform_log):
    root = make_batches(tmp_path / "data", weeks=[1, 2, 4])

    df = etl(root, 1, 4, allow_missing=True)

    weeks = (pd.DatetimeIndex(df["order_date"]) - WEEK_1).days // 7 + 1
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


@pytest.fixture
def default_data():
    """The shipped dataset's directory (skips when it holds no batches yet)."""
    try:
        held = available_weeks(settings.DATA_DIR)
    except FoodcastError:
        held = []
    if not held:
        pytest.skip(f"the default dataset {settings.DATA_DIR} holds no batches yet (run the generator)")
    return settings.DATA_DIR


def test_default_dataset_weeks_180_to_200(default_data):
    df = etl(default_data, 180, 200)

    assert len(df) == 21 * 168
    hours = pd.DatetimeIndex(df["order_date"])
    assert hours[0] == pd.Timestamp("2018-06-04")  # Monday of week 180
    assert (hours.to_series().diff().dropna() == pd.Timedelta(hours=1)).all()
    assert not df.isna().any().any()
    assert (df["cash_in"] >= 0).all() and df["cash_in"].sum() > 0


# --- the rule of complete weeks -------------------------------------------------------------


def one_line_error(call) -> str:
    with pytest.raises(FoodcastError) as info:
        call()
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    return message


def test_one_restaurant_missing_a_week_inside_the_range_is_refused(tmp_path):
    # Tester's case: beta's batch of week 3 is missing; the chain total of week 3 used to drop
    # by beta's share with a warning only.
    root = make_batches(tmp_path / "data", weeks=range(1, 6))
    (root / "beta" / "week_003.csv.gz").unlink()

    message = one_line_error(lambda: etl(root, 1, 5))

    assert message.startswith("week 3 is incomplete: restaurant beta ")
    assert "no batch" in message and str(root / "beta" / "week_003.csv.gz") in message
    assert "allow_missing" in message


def test_header_only_batch_counts_as_missing(tmp_path):
    root = make_batches(tmp_path / "data", weeks=range(1, 6))
    path = root / "beta" / "week_003.csv.gz"
    write_batch(to_export(beta_orders().iloc[:0]), path)

    message = one_line_error(lambda: etl(root, 2, 4))

    assert message.startswith("week 3 is incomplete: restaurant beta ")
    assert "an empty batch" in message and str(path) in message


def test_allow_missing_reads_the_week_without_the_restaurant_and_reports_it(tmp_path, transform_log):
    root = make_batches(tmp_path / "data", weeks=range(1, 6))
    (root / "beta" / "week_003.csv.gz").unlink()
    write_batch(to_export(beta_orders().iloc[:0]), root / "alpha" / "week_004.csv.gz")
    alpha_alone = make_batches(tmp_path / "alpha", weeks=[3], restaurants=("alpha",))
    beta_alone = make_batches(tmp_path / "beta", weeks=[4], restaurants=("alpha", "beta"))
    (beta_alone / "alpha" / "week_004.csv.gz").unlink()

    df, coverage = read_chain(root, 1, 5, allow_missing=True)

    assert len(df) == 5 * 168  # no week left out: each still has one restaurant
    assert coverage.weeks == (1, 2, 3, 4, 5) and coverage.left_out == ()
    assert not coverage.complete
    assert coverage.missing == (
        MissingBatch("beta", 3, "no batch", str(root / "beta" / "week_003.csv.gz")),
        MissingBatch("alpha", 4, "empty batch", str(root / "alpha" / "week_004.csv.gz")),
    )
    week = pd.DatetimeIndex(df["order_date"]).isocalendar().week.to_numpy()
    first_week = week[0]
    cash = df["cash_in"].to_numpy()
    np.testing.assert_allclose(cash[week == first_week + 2], etl(alpha_alone, 3, 3)["cash_in"])
    np.testing.assert_allclose(cash[week == first_week + 3], etl(beta_alone, 4, 4)["cash_in"])
    pd.testing.assert_frame_equal(etl(root, 1, 5, allow_missing=True), df)
    warnings = " ".join(r.getMessage() for r in transform_log.records if r.levelno == logging.WARNING)
    assert "beta week 3 (no batch)" in warnings and "alpha week 4 (empty batch)" in warnings
    # What a stage records on its run: one line; and what the coverage holds.
    assert "incomplete: beta week 3 (no batch), alpha week 4 (empty batch)" in coverage.summary()
    assert {r: [first, last] for r, first, last in coverage.spans} == {"alpha": [1, 5], "beta": [1, 5]}
    assert dataclasses.asdict(coverage.missing[0]) == {
        "restaurant": "beta",
        "week": 3,
        "reason": "no batch",
        "path": str(root / "beta" / "week_003.csv.gz"),
    }


def test_a_restaurant_is_only_required_between_its_first_and_last_orders(tmp_path, transform_log):
    # beta opens in week 3 and alpha closes after week 4 (its later batches are header-only):
    # no week lacks a restaurant that was trading.
    root = make_batches(tmp_path / "data", weeks=range(1, 5), restaurants=("alpha",))
    make_batches(root, weeks=range(3, 7), restaurants=("alpha", "beta"))
    for week in (3, 4):
        (root / "alpha" / f"week_{week:03d}.csv.gz").unlink()
    make_batches(root, weeks=[3, 4], restaurants=("alpha",))
    for week in (5, 6):
        write_batch(to_export(beta_orders().iloc[:0]), root / "alpha" / f"week_{week:03d}.csv.gz")

    df, coverage = read_chain(root, 1, 6)

    assert coverage.complete and coverage.weeks == tuple(range(1, 7))
    assert len(df) == 6 * 168
    # Were alpha's empty weeks a late export, the user would learn it from the coverage.
    assert coverage.spans == (("alpha", 1, 4), ("beta", 3, 6))
    assert coverage.summary().endswith("; alpha has orders in weeks 1-4 only, beta has orders in weeks 3-6 only")
    assert not [r for r in transform_log.records if r.levelno >= logging.WARNING]


def test_chain_coverage_needs_only_the_listing_and_first_lines(tmp_path):
    root = make_batches(tmp_path / "data", weeks=range(1, 6))
    (root / "alpha" / "week_002.csv.gz").unlink()
    # A damaged batch is the reader's business: coverage counts it as holding orders.
    (root / "beta" / "week_004.csv.gz").write_bytes(b"\x1f\x8b garbage")

    coverage = chain_coverage(root, 1, 5)

    assert coverage.missing == (MissingBatch("alpha", 2, "no batch", str(root / "alpha" / "week_002.csv.gz")),)
    assert coverage.restaurants == ("alpha", "beta")


# --- every batch read is checked, and refused in one line naming file, row and column ----------


def batch_with(root, week, restaurant, edit):
    """Rewrite ``restaurant``'s batch of ``week`` as plain CSV after ``edit(export frame)``."""
    path = root / restaurant / f"week_{week:03d}.csv.gz"
    export = pd.read_csv(path, dtype=str)
    path.unlink()
    plain = path.with_name(f"week_{week:03d}.csv")
    edit(export).to_csv(plain, index=False)
    return plain


@pytest.mark.parametrize("price", ["inf", "1e308", "-inf", "nan", "1000.01"])
def test_implausible_price_in_a_batch_is_refused(tmp_path, price):
    root = make_batches(tmp_path / "data", weeks=range(1, 4))

    def edit(export):
        export.loc[4, "Product Price"] = price
        return export

    path = batch_with(root, 2, "alpha", edit)
    message = one_line_error(lambda: etl(root, 1, 3))
    assert message.startswith(f"{path}: row 5, column 'Product Price': ")
    assert price in message


@pytest.mark.parametrize(("column", "value"), [("Quantity", "1001"), ("Total products", "1e9"), ("Quantity", "inf")])
def test_implausible_counts_in_a_batch_are_refused(tmp_path, column, value):
    root = make_batches(tmp_path / "data", weeks=range(1, 4))

    def edit(export):
        export.loc[0, column] = value
        return export

    path = batch_with(root, 2, "beta", edit)
    message = one_line_error(lambda: etl(root, 1, 3))
    assert message.startswith(f"{path}: row 1, column '{column}': ") and value in message


def test_bounds_admit_the_largest_plausible_values(tmp_path):
    root = make_batches(tmp_path / "data", weeks=range(1, 4))

    def edit(export):
        export.loc[0, ["Quantity", "Product Price", "Total products"]] = [
            str(MAX_QUANTITY),
            f"{MAX_PRICE:.2f}",
            str(MAX_TOTAL_PRODUCTS),
        ]
        return export

    batch_with(root, 2, "beta", edit)
    assert etl(root, 1, 3)["cash_in"].max() >= MAX_QUANTITY * MAX_PRICE


def test_row_dated_outside_its_batch_week_is_refused(tmp_path):
    root = make_batches(tmp_path / "data", weeks=range(1, 4))

    def edit(export):
        export.loc[2, "Order Date"] = "2015-01-12 19:00:00"  # Monday of week 3, in week 2's batch
        return export

    path = batch_with(root, 2, "alpha", edit)
    message = one_line_error(lambda: etl(root, 1, 3))
    assert message == (
        f"{path}: row 3, column 'Order Date': date outside week 2 of this batch "
        "(2015-01-05 to 2015-01-11): '2015-01-12 19:00:00'"
    )
    # Reading week 2 alone refuses it too (it used to drop the row silently).
    assert one_line_error(lambda: etl(root, 2, 2)) == message


def test_an_order_id_naming_two_orders_across_batches_is_refused(tmp_path):
    root = make_batches(tmp_path / "data", weeks=range(1, 4))
    week_1 = pd.read_csv(root / "alpha" / "week_001.csv.gz", dtype=str)
    reused = week_1.loc[0, "Order Number"]

    def edit(export):
        export.loc[3, "Order Number"] = reused
        return export

    path = batch_with(root, 2, "alpha", edit)
    message = one_line_error(lambda: etl(root, 1, 3))
    first_date = week_1.loc[0, "Order Date"]
    assert message == (
        f"{path}: row 4, column 'Order Number': order id {reused!r} already names "
        f"another order, dated {first_date} at {root / 'alpha' / 'week_001.csv.gz'} row 1"
    )


def test_order_ids_are_per_restaurant_and_lines_of_one_order_share_them(tmp_path):
    root = make_batches(tmp_path / "data", weeks=range(1, 4))

    def same_ids_as_alpha(export):
        # beta numbers its orders like alpha: legitimate, each restaurant has its own till.
        alpha = pd.read_csv(root / "alpha" / "week_002.csv.gz", dtype=str)
        export["Order Number"] = alpha["Order Number"].iloc[0]
        export["Order Date"] = export["Order Date"].iloc[0]
        return pd.concat([export, export.iloc[[0]]])  # and an identical line twice

    batch_with(root, 2, "beta", same_ids_as_alpha)
    etl(root, 1, 3)


def test_two_batches_of_one_week_are_refused(tmp_path):
    root = make_batches(tmp_path / "data", weeks=range(1, 4))
    (root / "beta" / "week_2.csv").write_bytes((root / "beta" / "week_002.csv.gz").read_bytes())
    message = one_line_error(lambda: etl(root, 1, 3))
    assert message == f"two batches for week 2 in {root / 'beta'}"


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_batch_is_refused_naming_the_file(tmp_path, damage):
    root = make_batches(tmp_path / "data", weeks=range(1, 4))
    good = root / "beta" / "week_002.csv.gz"
    suffix, make = DAMAGES[damage]
    path = good.with_name("week_002" + suffix)
    data = csv_bytes(pd.read_csv(good, dtype=str))
    good.unlink()
    path.write_bytes(make(data))

    message = one_line_error(lambda: etl(root, 1, 3))

    assert message.startswith(f"{path}: "), message


def test_default_dataset_passes_every_check(default_data):
    """All 260 weeks of both restaurants: complete, plausible, each row in its batch's week,
    each order id naming one order (the generator must not produce what the rules refuse)."""
    df, coverage = read_chain(default_data, 1, 260)

    assert coverage.complete and coverage.left_out == ()
    assert len(coverage.restaurants) == 2
    assert len(df) == 260 * 168
