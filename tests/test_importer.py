"""Importing raw exports into weekly batches, and the command line around it."""

import hashlib
import multiprocessing
import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner

from fixtures import DAMAGES, csv_bytes
from foodcast.cli import cli
from foodcast.data import generator
from foodcast.data.batch_files import list_batches
from foodcast.data.importer import import_export
from foodcast.data.orders import read_batches
from foodcast.errors import FoodcastError

HEADER = ["Order ID", "Order Date", "Item Name", "Quantity", "Product Price", "Total products"]
# Three weeks: 36 (2015-08-31..09-06), 37 and 39; day-first dates as some tills export them.
RAW_ROWS = [
    ["5001", "06/09/2015 19:05", "Chicken Tikka Masala", "1", "8.95", "4"],
    ["5001", "06/09/2015 19:05", "Pilau Rice", "2", "2.95", "4"],
    ["5001", "06/09/2015 19:05", "Plain Naan", "1", "2.50", "4"],
    ["5002", "07/09/2015 12:41", "Lamb Bhuna", "1", "9.50", "3"],
    # The same dish entered twice in one order: two lines, both kept.
    ["5002", "07/09/2015 12:41", "Garlic Naan", "1", "2.95", "3"],
    ["5002", "07/09/2015 12:41", "Garlic Naan", "1", "2.95", "3"],
    ["5003", "13/09/2015 23:59", "Onion Bhajee", "3", "3.50", "3"],
    ["5004", "21/09/2015 00:10", "Mango Chutney", "1", "0.70", "1"],
]


def write_raw(path, rows, header=HEADER):
    lines = [",".join(header)] + [",".join(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def digests(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def normalised(lines):
    columns = ["order_id", "order_date", "item_name", "quantity", "product_price", "total_products"]
    return lines[columns].sort_values(columns).reset_index(drop=True)


def expected_lines(rows):
    frame = pd.DataFrame(rows, columns=HEADER)
    return normalised(
        pd.DataFrame(
            {
                "order_id": frame["Order ID"],
                "order_date": pd.to_datetime(frame["Order Date"], format="%d/%m/%Y %H:%M"),
                "item_name": frame["Item Name"],
                "quantity": frame["Quantity"].astype("int64"),
                "product_price": frame["Product Price"].astype(float),
                "total_products": frame["Total products"].astype("int64"),
            }
        )
    )


def test_round_trip_splits_by_week_and_reimport_changes_nothing(tmp_path):
    raw = write_raw(tmp_path / "orders.csv", RAW_ROWS)
    data = tmp_path / "data"
    written = import_export(raw, "curry_house", data)
    assert [p.name for p in written] == ["week_036.csv.gz", "week_037.csv.gz", "week_039.csv.gz"]
    assert sorted(list_batches(data)["curry_house"]) == [36, 37, 39]
    back = read_batches(written)
    assert (back["restaurant"] == "curry_house").all()
    pd.testing.assert_frame_equal(normalised(back), expected_lines(RAW_ROWS), check_dtype=False)
    week_36 = read_batches([written[0]])
    assert set(week_36["order_id"]) == {"5001"}

    before = digests(data)
    import_export(raw, "curry_house", data)
    assert digests(data) == before


def test_overlapping_exports_merge_without_duplicates(tmp_path):
    data = tmp_path / "data"
    import_export(write_raw(tmp_path / "a.csv", RAW_ROWS[:6]), "curry_house", data)
    # The second export repeats order 5002 and adds the later orders, in ISO dates.
    later = [
        [r[0], pd.to_datetime(r[1], format="%d/%m/%Y %H:%M").strftime("%Y-%m-%d %H:%M:%S"), *r[2:]]
        for r in RAW_ROWS[3:]
    ]
    import_export(write_raw(tmp_path / "b.csv", later), "curry_house", data)
    paths = list(list_batches(data)["curry_house"].values())
    pd.testing.assert_frame_equal(normalised(read_batches(paths)), expected_lines(RAW_ROWS), check_dtype=False)
    # Importing the first export again, in the other order, still changes nothing.
    before = digests(data)
    import_export(tmp_path / "a.csv", "curry_house", data)
    assert digests(data) == before


def test_an_existing_plain_csv_batch_is_merged_and_replaced(tmp_path):
    data = tmp_path / "data"
    first = import_export(write_raw(tmp_path / "a.csv", RAW_ROWS[:3]), "curry_house", data)
    plain = first[0].with_name("week_36.csv")
    pd.read_csv(first[0], dtype=str).to_csv(plain, index=False)
    first[0].unlink()
    extra = [["5000", "31/08/2015 18:00", "Plain Rice", "1", "2.75", "1"]]
    import_export(write_raw(tmp_path / "b.csv", extra), "curry_house", data)
    batches = list_batches(data)["curry_house"]
    assert list(batches) == [36] and batches[36].name == "week_036.csv.gz"
    assert not plain.exists()
    assert len(read_batches([batches[36]])) == 4


def test_gzipped_export_and_order_number_column(tmp_path):
    raw = tmp_path / "orders.csv.gz"
    frame = pd.DataFrame(RAW_ROWS, columns=["Order Number", *HEADER[1:]])
    frame.to_csv(raw, index=False)
    written = import_export(raw, "curry_house", tmp_path / "data")
    assert len(read_batches(written)) == len(RAW_ROWS)


def test_generated_batches_reimport_unchanged(tmp_path):
    data = tmp_path / "data"
    generator.generate(data, first_week=10, last_week=10)
    before = digests(data)
    for restaurant, weeks in list_batches(data).items():
        import_export(weeks[10], restaurant, data)
    assert digests(data) == before


def with_row(rows, bad):
    return [*rows, ["5001", *bad]]


QTY_RENAMED = [h if h != "Quantity" else "Qty" for h in HEADER]
AFTER_TOMORROW = "<the day after tomorrow, 00:01>"  # dated when the test runs (a suite may cross midnight)


def dated(rows):
    """``rows`` with the AFTER_TOMORROW placeholder replaced by that moment, as of now."""
    when = (pd.Timestamp.now().normalize() + pd.Timedelta(days=2, minutes=1)).strftime("%d/%m/%Y %H:%M")
    return [[when if cell == AFTER_TOMORROW else cell for cell in row] for row in rows]


REFUSALS = {
    "missing-column": (RAW_ROWS, QTY_RENAMED, None, "Quantity"),
    "bad-date": (
        with_row(RAW_ROWS[:2], ["31/02/2015 19:05", "Plain Naan", "1", "2.50", "4"]),
        HEADER,
        3,
        "Order Date",
    ),
    "negative-quantity": (
        with_row(RAW_ROWS[:4], ["07/09/2015 12:41", "Plain Naan", "-1", "2.50", "3"]),
        HEADER,
        5,
        "Quantity",
    ),
    "negative-price": (
        with_row(RAW_ROWS[:1], ["06/09/2015 19:05", "Plain Naan", "1", "-2.50", "4"]),
        HEADER,
        2,
        "Product Price",
    ),
    "fractional-quantity": (
        with_row(RAW_ROWS[:1], ["06/09/2015 19:05", "Plain Naan", "1.5", "2.50", "4"]),
        HEADER,
        2,
        "Quantity",
    ),
    "before-week-1": (
        with_row(RAW_ROWS[:3], ["28/12/2014 20:00", "Plain Naan", "1", "2.50", "1"]),
        HEADER,
        4,
        "Order Date",
    ),
    # The tester's prices: accepted, then train crashed on every later run.
    "infinite-price": (
        with_row(RAW_ROWS[:3], ["06/09/2015 19:05", "Plain Naan", "1", "inf", "4"]),
        HEADER,
        4,
        "Product Price",
    ),
    "overflowing-price": (
        with_row(RAW_ROWS[:3], ["06/09/2015 19:05", "Plain Naan", "1", "1e308", "4"]),
        HEADER,
        4,
        "Product Price",
    ),
    "price-above-bound": (
        with_row(RAW_ROWS[:3], ["06/09/2015 19:05", "Plain Naan", "1", "1000.01", "4"]),
        HEADER,
        4,
        "Product Price",
    ),
    "nan-quantity": (
        with_row(RAW_ROWS[:3], ["06/09/2015 19:05", "Plain Naan", "NaN", "2.50", "4"]),
        HEADER,
        4,
        "Quantity",
    ),
    "quantity-above-bound": (
        with_row(RAW_ROWS[:3], ["06/09/2015 19:05", "Plain Naan", "5000", "2.50", "4"]),
        HEADER,
        4,
        "Quantity",
    ),
    "infinite-total": (
        with_row(RAW_ROWS[:3], ["06/09/2015 19:05", "Plain Naan", "1", "2.50", "Infinity"]),
        HEADER,
        4,
        "Total products",
    ),
    # The tester's typos for 2018 and 2021: imported without a word, weeks nobody could forecast.
    "dated-2108": (
        with_row(RAW_ROWS[:3], ["06/09/2108 19:05", "Plain Naan", "1", "2.50", "4"]),
        HEADER,
        4,
        "Order Date",
    ),
    "dated-the-day-after-tomorrow": (
        with_row(RAW_ROWS[:1], [AFTER_TOMORROW, "Plain Naan", "1", "2.50", "4"]),
        HEADER,
        2,
        "Order Date",
    ),
    # A zone after the time: pandas' parse of the mixed column ended in a traceback.
    "dated-with-a-time-zone": (
        with_row(RAW_ROWS[:3], ["2015-09-06T19:05:00+01:00", "Plain Naan", "1", "2.50", "4"]),
        HEADER,
        4,
        "Order Date",
    ),
    # Order 5001 again, another day: a second order under the same id.
    "order-id-of-two-orders": (
        with_row(RAW_ROWS, ["20/09/2015 19:05", "Plain Naan", "1", "2.50", "1"]),
        HEADER,
        9,
        "Order ID",
    ),
}


@pytest.mark.parametrize(("rows", "header", "row", "column"), list(REFUSALS.values()), ids=list(REFUSALS))
def test_malformed_export_is_refused_in_one_line_and_writes_nothing(tmp_path, rows, header, row, column):
    raw = write_raw(tmp_path / "orders.csv", dated(rows), header)
    data = tmp_path / "data"
    result = CliRunner().invoke(cli, ["import", str(raw), "--restaurant", "curry_house", "--data-dir", str(data)])
    assert result.exit_code != 0
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "orders.csv" in message and f"'{column}'" in message
    if row is not None:
        assert f"row {row}," in message
    assert "Traceback" not in result.output
    assert not data.exists() or not any(data.rglob("*.gz"))


def test_refusal_leaves_existing_batches_untouched(tmp_path):
    data = tmp_path / "data"
    import_export(write_raw(tmp_path / "good.csv", RAW_ROWS), "curry_house", data)
    before = digests(data)
    bad = [*RAW_ROWS, ["5009", "not a date", "Plain Naan", "1", "2.50", "1"]]
    with pytest.raises(FoodcastError, match=r"row 9, column 'Order Date'"):
        import_export(write_raw(tmp_path / "bad.csv", bad), "curry_house", data)
    assert digests(data) == before


def test_invalid_restaurant_name_is_refused(tmp_path):
    raw = write_raw(tmp_path / "orders.csv", RAW_ROWS)
    with pytest.raises(FoodcastError, match="restaurant name"):
        import_export(raw, "../elsewhere", tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_cli_import_reports_the_weeks(tmp_path):
    raw = write_raw(tmp_path / "orders.csv", RAW_ROWS)
    result = CliRunner().invoke(
        cli, ["import", str(raw), "--restaurant", "curry_house", "--data-dir", str(tmp_path / "d")]
    )
    assert result.exit_code == 0, result.output
    assert "weeks 36-37, 39" in result.output


def test_cli_generate_reports_files_and_size(tmp_path, monkeypatch):
    calls = []
    real = generator.generate

    def two_weeks(data_dir, seed):
        calls.append(seed)
        return real(data_dir, seed=seed, first_week=1, last_week=2)

    monkeypatch.setattr(generator, "generate", two_weeks)
    result = CliRunner().invoke(cli, ["generate", "--data-dir", str(tmp_path), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert calls == [3]
    assert "wrote 4 files" in result.output and "kB" in result.output
    monkeypatch.setenv("FOODCAST_DATA_DIR", str(tmp_path / "env"))
    result = CliRunner().invoke(cli, ["generate"])
    assert result.exit_code == 0, result.output
    assert calls[-1] == generator.DEFAULT_SEED
    assert len(list_batches(tmp_path / "env")) == 2


@pytest.mark.parametrize("command", [[], ["generate"], ["import"]])
def test_help_explains_weeks_and_layout(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    assert "2014-12-29" in result.output and "week_NNN.csv.gz" in result.output


def test_module_entry_point_fails_with_one_line_and_no_traceback(tmp_path):
    bad = with_row([], ["06/09/2015 19:05", "Naan", "x", "2", "1"])
    raw = write_raw(tmp_path / "orders.csv", bad)
    data = tmp_path / "d"
    command = ["import", str(raw), "--restaurant", "r1", "--data-dir", str(data)]
    result = subprocess.run(
        [sys.executable, "-m", "foodcast", *command],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: {raw}: row 1, column 'Quantity': not a number: 'x'"
    assert not data.exists()


def test_implausible_value_is_not_merged_into_an_existing_batch(tmp_path):
    # The tester's case: an `inf` price merged into week 36's batch, and train crashed on every
    # later run until someone edited the file by hand.
    data = tmp_path / "data"
    import_export(write_raw(tmp_path / "good.csv", RAW_ROWS), "curry_house", data)
    before = digests(data)
    for price in ("inf", "1e308"):
        bad = write_raw(tmp_path / "bad.csv", [["5010", "06/09/2015 20:00", "Plain Naan", "1", price, "1"]])
        result = CliRunner().invoke(cli, ["import", str(bad), "--restaurant", "curry_house", "--data-dir", str(data)])
        assert result.exit_code == 1
        assert (
            result.stderr.strip() == f"Error: {bad}: row 1, column 'Product Price': not a finite number: {price!r}"
            or result.stderr.strip()
            == f"Error: {bad}: row 1, column 'Product Price': above the maximum of 1000: {price!r}"
        )
        assert digests(data) == before


def test_order_id_of_another_week_is_refused_at_import(tmp_path):
    # An export whose dates were read month-first once and day-first the next time would add
    # every order a second time, in another week: the id gives it away.
    data = tmp_path / "data"
    import_export(write_raw(tmp_path / "a.csv", RAW_ROWS), "curry_house", data)
    before = digests(data)
    again = write_raw(
        tmp_path / "b.csv",
        [
            ["5004", "09/21/2015 00:10", "Mango Chutney", "1", "0.70", "1"],
            ["5004", "21/10/2015 00:10", "Mango Chutney", "1", "0.70", "1"],
        ][1:],
    )
    with pytest.raises(FoodcastError) as info:
        import_export(again, "curry_house", data)
    week_39 = data / "curry_house" / "week_039.csv.gz"
    assert str(info.value) == (
        f"{again}: row 1, column 'Order ID': order id '5004' already names another order, "
        f"dated 2015-09-21 00:10:00 at {week_39} row 1"
    )
    assert digests(data) == before


def test_existing_batch_with_a_row_outside_its_week_blocks_the_import(tmp_path):
    data = tmp_path / "data"
    written = import_export(write_raw(tmp_path / "a.csv", RAW_ROWS), "curry_house", data)
    week_36 = pd.read_csv(written[0], dtype=str)
    week_36.loc[1, "Order Date"] = "2015-09-07 00:30:00"  # Monday of week 37
    plain = written[0].with_name("week_036.csv")
    week_36.to_csv(plain, index=False)
    written[0].unlink()
    before = digests(data)
    with pytest.raises(FoodcastError, match=rf"^{plain}: row 2, column 'Order Date': date outside week 36 "):
        import_export(write_raw(tmp_path / "b.csv", RAW_ROWS[6:]), "curry_house", data)
    assert digests(data) == before


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_export_is_refused_in_one_line_naming_it(tmp_path, damage):
    # The tester's case: a truncated .csv.gz printed only "Aborted!"; a corrupt stream ended in
    # a zlib.error traceback.
    suffix, make = DAMAGES[damage]
    raw = tmp_path / f"orders{suffix}"
    good = pd.DataFrame(RAW_ROWS, columns=HEADER)
    raw.write_bytes(make(csv_bytes(good)))
    data = tmp_path / "data"
    command = ["import", str(raw), "--restaurant", "curry_house", "--data-dir", str(data)]

    result = CliRunner().invoke(cli, command)

    assert result.exit_code == 1, result.output
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and message.startswith(f"Error: {raw}: "), message
    assert not data.exists()


def test_damaged_existing_batch_is_refused_in_one_line_naming_it(tmp_path):
    data = tmp_path / "data"
    written = import_export(write_raw(tmp_path / "a.csv", RAW_ROWS), "curry_house", data)
    written[1].write_bytes(written[1].read_bytes()[:-20])  # week 37, truncated
    before = digests(data)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "foodcast",
            "import",
            str(write_raw(tmp_path / "b.csv", RAW_ROWS[:1])),
            "--restaurant",
            "curry_house",
            "--data-dir",
            str(data),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == f"Error: {written[1]}: truncated gzip file (the compressed data ends early)\n"
    assert digests(data) == before


def test_import_help_states_the_bounds_the_checks_use():
    from foodcast.data.orders import MAX_PRICE, MAX_QUANTITY, MAX_TOTAL_PRODUCTS

    text = " ".join(CliRunner().invoke(cli, ["import", "--help"]).output.split())
    assert (
        f"at most {MAX_QUANTITY} items on a line, {MAX_PRICE:g} a unit price, {MAX_TOTAL_PRODUCTS} items in an order"
        in text
    )


def test_an_order_dated_tomorrow_is_imported(tmp_path):
    # A till's clock may run ahead: tomorrow's last minute passes, the next one does not.
    tomorrow = (pd.Timestamp.now().normalize() + pd.Timedelta(days=1, hours=23, minutes=59)).strftime("%d/%m/%Y %H:%M")
    raw = write_raw(tmp_path / "orders.csv", [["7001", tomorrow, "Plain Naan", "1", "2.50", "1"]])
    [written] = import_export(raw, "curry_house", tmp_path / "data")
    assert len(read_batches([written])) == 1


def _export_of_one_week(path, first_id, lines):
    """An export of ``lines`` one-line orders in week 36, ids from ``first_id``."""
    rows = [
        [str(first_id + i), f"0{1 + i % 6}/09/2015 {12 + i % 11}:{i % 60:02d}", "Dish", "1", "2.50", "1"]
        for i in range(lines)
    ]
    return write_raw(path, rows)


def _import_when_told(start, raw, data):
    start.wait(timeout=30)
    import_export(raw, "curry_house", data)


def test_two_imports_at_once_into_one_week_keep_every_line(tmp_path):
    # The tester's case: two imports of disjoint exports into the same restaurant and week, in
    # parallel, both said "wrote 1 weekly batches", and the batch held one of the two.
    lines = 300
    fork = multiprocessing.get_context("fork")
    exports = [_export_of_one_week(tmp_path / f"{k}.csv", 10_000 * (k + 1), lines) for k in range(2)]
    for trial in range(10):
        data = tmp_path / f"data{trial}"
        # A batch already there: each import reads it, merges, and writes the merge back.
        import_export(_export_of_one_week(tmp_path / "first.csv", 1, 1), "curry_house", data)
        start = fork.Barrier(2)
        workers = [fork.Process(target=_import_when_told, args=(start, raw, data)) for raw in exports]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert [worker.exitcode for worker in workers] == [0, 0]
        [batch] = list_batches(data)["curry_house"].values()
        assert len(read_batches([batch])) == 1 + 2 * lines, f"trial {trial}"


@pytest.mark.parametrize("command", ["import", "generate"])
@pytest.mark.parametrize("where", ["under-a-file", "in-proc"])
def test_a_data_dir_that_cannot_be_made_is_refused_in_one_line(tmp_path, command, where):
    # The tester's case: `import --data-dir` under a regular file, or in /proc, printed a traceback.
    (tmp_path / "file").write_text("not a directory")
    data = {"under-a-file": tmp_path / "file" / "data", "in-proc": "/proc/foodcast-data"}[where]
    arguments = {"import": [str(write_raw(tmp_path / "orders.csv", RAW_ROWS)), "--restaurant", "r1"], "generate": []}
    result = CliRunner().invoke(cli, [command, *arguments[command], "--data-dir", str(data)])
    assert result.exit_code == 1, result.output
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and str(data) in message, message
    assert isinstance(result.exception, SystemExit)
