"""A generated chain of any size: reproducible to the byte, read by the loader, and its oracle."""

import hashlib
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from fixtures import digests
from foodcast.cli import cli
from foodcast.data.batch_files import list_batches
from foodcast.data.chain import read_chain
from foodcast.data.chain_generator import PARAMETERS_FILE, draw_chain, generate_chain, oracle_cash_in, read_parameters
from foodcast.data.generator import generate
from foodcast.data.orders import read_batches
from foodcast.errors import FoodcastError

# Weeks 156-163: 2017-12-18 to 2018-02-11, with Christmas and New Year. With seed 1, the first
# 8 restaurants hold an opening, a closing and a few days shut for works.
WEEKS = (156, 163)
SEED = 1


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("chain")
    generate_chain(root, 8, seed=SEED, first_week=WEEKS[0], last_week=WEEKS[1])
    return root


@pytest.fixture(scope="module")
def parameters(chain):
    return read_parameters(chain)


@pytest.fixture(scope="module")
def hourly(chain):
    """The chain's hourly cash-in, as load reads it."""
    return read_chain(chain, *WEEKS)[0]


@pytest.fixture(scope="module")
def oracle(parameters):
    """The oracle's hourly cash-in of each restaurant over the span."""
    return {r["name"]: oracle_cash_in(parameters, r["name"], *WEEKS) for r in parameters["restaurants"]}


@pytest.fixture(scope="module")
def lines(chain):
    orders = read_batches([p for weeks in list_batches(chain).values() for p in weeks.values()])
    orders["value"] = orders["quantity"] * orders["product_price"]
    return orders


def test_same_arguments_give_the_same_bytes_in_another_process(tmp_path):
    generate_chain(tmp_path / "a", 5, seed=7, first_week=10, last_week=15)
    # Another process, through the command line, with another string hashing.
    env = {**os.environ, "PYTHONHASHSEED": "123"}
    command = ["generate", "--restaurants", "5", "--weeks", "10-15", "--seed", "7", "--data-dir", str(tmp_path / "b")]
    subprocess.run([sys.executable, "-m", "foodcast", *command], check=True, env=env, capture_output=True)
    a, b = digests(tmp_path / "a"), digests(tmp_path / "b")
    assert a == b
    assert sorted({name.split("/")[0] for name in a}) == [
        "chain_parameters.json",
        "r001",
        "r002",
        "r003",
        "r004",
        "r005",
    ]


def test_another_seed_differs_and_a_smaller_chain_is_the_first_restaurants(tmp_path):
    generate_chain(tmp_path / "a", 3, seed=7, first_week=10, last_week=11)
    generate_chain(tmp_path / "b", 2, seed=7, first_week=10, last_week=11)
    generate_chain(tmp_path / "c", 3, seed=8, first_week=10, last_week=11)
    a, b, c = (digests(tmp_path / name) for name in "abc")
    assert {name: digest for name, digest in a.items() if not name.startswith("r003/")} | {
        PARAMETERS_FILE: b[PARAMETERS_FILE]
    } == b
    assert not set(a.values()) & set(c.values())


def test_the_loader_reads_the_chain_and_openings_and_closings_are_missing_end_weeks(chain, parameters, hourly):
    batches = list_batches(chain)
    restaurants = parameters["restaurants"]
    assert sorted(batches) == [f"r00{i}" for i in range(1, 9)]
    for restaurant in restaurants:
        assert sorted(batches[restaurant["name"]]) == list(range(restaurant["first_week"], restaurant["last_week"] + 1))
    opened = [r for r in restaurants if r["opening_week"] is not None]
    closed = [r for r in restaurants if r["closing_week"] is not None]
    assert opened and closed
    assert all(WEEKS[0] < r["first_week"] == r["opening_week"] for r in opened)
    assert all(r["last_week"] == r["closing_week"] < WEEKS[1] for r in closed)
    # The rule of complete weeks holds: load reads every week of the span.
    assert len(hourly) == 168 * (WEEKS[1] - WEEKS[0] + 1)
    assert hourly["cash_in"].sum() > 0


def test_restaurants_differ_in_size_and_menu_and_close_on_holidays(parameters, lines):
    # The file holds what was drawn, menus included.
    assert parameters == draw_chain(SEED, 8, *WEEKS)
    restaurants = parameters["restaurants"]
    sizes = [r["orders_per_day"] for r in restaurants]
    assert max(sizes) / min(sizes) > 2
    menus = {frozenset(r["menu"]["item_name"]) for r in restaurants}
    assert len(menus) == len(restaurants)
    assert all(0.5 < effect < 1.6 for r in restaurants for effect in r["holiday_effects"].values())
    days = lines.groupby("restaurant")["order_date"].apply(lambda d: set(d.dt.normalize()))
    assert all(pd.Timestamp("2017-12-25") not in d for d in days)
    shut = {r["name"] for r in restaurants if "new_years_day" in r["closed_days"]}
    assert shut and all((pd.Timestamp("2018-01-01") in days[name]) == (name not in shut) for name in days.index)
    works = next(r for r in restaurants if r["works"])
    first = pd.Timestamp(works["works"]["first_day"])
    assert not any(first <= day < first + pd.Timedelta(days=works["works"]["days"]) for day in days[works["name"]])


def test_the_oracle_gives_the_mean_level_and_profile_of_the_orders(oracle, lines, hourly):
    actual = lines.groupby("restaurant")["value"].sum()
    expected = pd.Series({name: frame["cash_in"].sum() for name, frame in oracle.items()})
    ratios = actual / expected
    assert ratios.between(0.85, 1.15).all(), ratios
    assert 0.96 < actual.sum() / expected.sum() < 1.04
    # Hour by hour, the oracle follows the chain's cash-in, and knows when it is closed.
    total = sum(frame["cash_in"] for frame in oracle.values())
    assert (next(iter(oracle.values()))["order_date"] == hourly["order_date"]).all()
    assert np.corrcoef(hourly["cash_in"], total)[0, 1] > 0.9
    assert (total[hourly["order_date"].dt.normalize() == pd.Timestamp("2017-12-25")] == 0).all()


def test_a_directory_with_other_batches_is_refused_and_nothing_is_written(tmp_path):
    generate_chain(tmp_path / "chain", 2, seed=SEED, first_week=10, last_week=12)
    generate(tmp_path / "shipped", first_week=1, last_week=1)
    before = digests(tmp_path)
    # A shorter span would leave week 12 behind, which the parameters would not describe.
    with pytest.raises(FoodcastError, match="already holds 2 batches that are not of this chain"):
        generate_chain(tmp_path / "chain", 2, seed=SEED, first_week=10, last_week=11)
    # Such as the default data directory, which holds the shipped restaurants.
    result = CliRunner().invoke(cli, ["generate", "--restaurants", "2", "--data-dir", str(tmp_path / "shipped")])
    assert result.exit_code == 1 and "not of this chain" in result.output
    result = CliRunner().invoke(cli, ["generate", "--restaurants", "2", "--weeks", "x-3", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "range of weeks" in result.output
    # Orders dated in the future would be refused by the loader.
    with pytest.raises(FoodcastError, match="week 5000 has not ended yet"):
        generate_chain(tmp_path / "later", 2, first_week=4999, last_week=5000)
    assert digests(tmp_path) == before


def test_without_restaurants_the_shipped_batches_come_out_unchanged(tmp_path):
    result = CliRunner().invoke(cli, ["generate", "--weeks", "259-260", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    shipped = {f"{r}/week_{w}.csv.gz" for r in ("spice_garden_hackney", "royal_tandoori_balham") for w in (259, 260)}
    assert set(digests(tmp_path)) == shipped
    repository = os.path.join(os.path.dirname(__file__), "..", "data")
    for name, digest in digests(tmp_path).items():
        with open(os.path.join(repository, name), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest, name
