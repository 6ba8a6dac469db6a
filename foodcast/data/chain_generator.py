"""Seeded generator of a chain of any size, and the best forecast possible for it.

``python -m foodcast generate --restaurants N`` writes restaurants ``r001``, ``r002``... with
the shipped generator's menus, order times and baskets (``foodcast.data.generator``), each with
traits of its own drawn from the seed:

* a size (orders per open day at week 1, log-normal around 32), a yearly growth, a weekday
  profile (Friday and Saturday busiest), a yearly cosine (winter up) of its own amplitude and
  peak, a noise level (gamma shape ``dispersion`` of the daily shocks: the smaller, the noisier);
* a menu (share of the curries kept, price level) and a lunch share;
* holidays of England (rules, not a register): closed on Christmas Day, and on New Year's Day
  for some; elsewhere each holiday multiplies the day's orders by an effect of its own
  (Christmas Eve and New Year's Eve quieter, bank holidays busier);
* about 15 % open during the span (their first batch is their opening week; their trade
  ramps up from ``ramp_start`` of their level with a time constant of ``ramp_weeks``), about
  8 % close during it (no batch after their closing week), some shut a few days for works.

The orders of an open day are ``Poisson(mean * Gamma(k, 1/k))``, where ``mean`` is
:func:`expected_orders`. Everything drawn is written to ``<data_dir>/chain_parameters.json``,
rounded as used, so that :func:`oracle_cash_in` computes from that file alone the expected
hourly cash-in of any restaurant and week: the best forecast possible.

A restaurant's traits come from streams keyed on ``(seed, restaurant)``: ``r001`` is the same
in a chain of 5 and of 200, and over any span (only its opening and closing weeks are placed
within the span). Its daily counts come from a stream keyed on ``(seed, restaurant, span)``,
its orders from one stream per quarter of its trade, drawn a quarter at a time and written
restaurant by restaurant: memory stays flat in the number of restaurants and of weeks. Batches
are gzipped at level 1 (fast; the shipped ones at 9).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from foodcast.core.weeks import WEEK_ONE_START, week_start
from foodcast.data.batch_files import batch_name, list_batches, replacing, writing
from foodcast.data.generator import (
    DEFAULT_SEED,
    FIRST_WEEK,
    LAST_WEEK,
    draw_baskets,
    draw_menu,
    expected_basket_values,
    minute_profiles,
)
from foodcast.data.orders import EXPORT_COLUMNS, latest_order_date, write_batch_text
from foodcast.errors import FoodcastError

PARAMETERS_FILE = "chain_parameters.json"
GZIP_LEVEL = 1
_CHUNK_WEEKS = 13

# Keys of the random streams: [seed, _CHAIN_KEY, restaurant, a, b(, quarter's first week)]; the
# shipped generator's keys have 0 or 1 in second place, so no stream is shared.
_CHAIN_KEY = 9973
_TRAITS, _MENU = (0, 0), (0, 1)

_WEEKDAY_BASE = (1.00, 0.97, 1.07, 1.18, 1.72, 1.86, 1.27)  # Monday .. Sunday
_FRIDAY, _SATURDAY = 4, 5
_LUNCH_END_MINUTE = 16 * 60  # draw_baskets: orders before 16:00 have lunch party sizes
# Holidays of England and their typical effect on a takeaway's orders; each restaurant's own
# effect varies around it. Christmas Day closes every restaurant; New Year's Day some.
HOLIDAY_EFFECTS = {
    "new_years_day": 1.20,
    "valentines_day": 1.15,
    "good_friday": 1.15,
    "easter_monday": 1.10,
    "early_may_bank_holiday": 1.08,
    "spring_bank_holiday": 1.08,
    "summer_bank_holiday": 1.05,
    "christmas_eve": 0.75,
    "boxing_day": 0.85,
    "new_years_eve": 0.80,
}
_OPENING_SHARE, _CLOSING_SHARE, _WORKS_SHARE, _CLOSED_NEW_YEAR_SHARE = 0.15, 0.08, 0.15, 0.4


def restaurant_name(index: int, restaurants: int) -> str:
    """Name of the ``index``-th (0-based) restaurant of a chain: ``r001``..., sortable."""
    return f"r{index + 1:0{max(3, len(str(restaurants)))}d}"


def _stream(seed: int, restaurant: int, a: int, b: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), _CHAIN_KEY, int(restaurant), int(a), int(b)])


def _easter(year: int) -> tuple[int, int]:
    """Month and day of Easter Sunday (Gregorian calendar, anonymous algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * l_) // 451
    month, day = divmod(h + l_ - 7 * m + 114, 31)
    return month, day + 1


def holiday_dates(first_day: np.datetime64, last_day: np.datetime64) -> dict[str, list[str]]:
    """The holidays (and Christmas Day) between two days, inclusive: ``{name: [ISO dates]}``."""
    first_year = int(str(first_day)[:4])
    last_year = int(str(last_day)[:4])
    found: dict[str, list[str]] = {name: [] for name in ["christmas_day", *HOLIDAY_EFFECTS]}
    for year in range(first_year, last_year + 1):
        month, day = _easter(year)
        easter = np.datetime64(f"{year}-{month:02d}-{day:02d}")
        may = np.datetime64(f"{year}-05-01")
        june, september = np.datetime64(f"{year}-06-01"), np.datetime64(f"{year}-09-01")
        days = {
            "christmas_day": np.datetime64(f"{year}-12-25"),
            "new_years_day": np.datetime64(f"{year}-01-01"),
            "valentines_day": np.datetime64(f"{year}-02-14"),
            "good_friday": easter - 2,
            "easter_monday": easter + 1,
            "early_may_bank_holiday": np.busday_offset(may, 0, roll="forward", weekmask="Mon"),
            "spring_bank_holiday": np.busday_offset(june - 1, 0, roll="backward", weekmask="Mon"),
            "summer_bank_holiday": np.busday_offset(september - 1, 0, roll="backward", weekmask="Mon"),
            "christmas_eve": np.datetime64(f"{year}-12-24"),
            "boxing_day": np.datetime64(f"{year}-12-26"),
            "new_years_eve": np.datetime64(f"{year}-12-31"),
        }
        for name, date in days.items():
            if first_day <= date <= last_day:
                found[name].append(str(date))
    return found


def _span_days(first_week: int, last_week: int) -> np.ndarray:
    start = np.datetime64(week_start(first_week).date())
    return start + np.arange(7 * (last_week - first_week + 1)).astype("timedelta64[D]")


def _draw_restaurant(seed: int, index: int, restaurants: int, first_week: int, last_week: int) -> dict[str, Any]:
    """Every trait of one restaurant but its menu, rounded as used (see the module's docstring)."""
    rng = _stream(seed, index, *_TRAITS)
    size = float(np.clip(np.exp(rng.normal(np.log(32.0), 0.45)), 10.0, 150.0))
    growth = float(np.clip(rng.normal(0.04, 0.06), -0.15, 0.25))
    weekday = np.asarray(_WEEKDAY_BASE) * np.exp(rng.normal(0.0, 0.06, 7))
    weekday = weekday / weekday.mean()
    amplitude = float(rng.uniform(0.04, 0.18))
    peak = round(355 + float(rng.normal(0.0, 20.0))) % 365
    dispersion = float(rng.uniform(8.0, 30.0))
    lunch_share = float(rng.uniform(0.02, 0.12))
    price_factor = float(rng.uniform(0.92, 1.12))
    main_keep = float(rng.uniform(0.45, 0.75))
    order_number_start = int(rng.integers(1, 100)) * 1000 + 1
    opens, open_at, closes, close_at = rng.random(4)
    ramp_start, ramp_weeks = float(rng.uniform(0.4, 0.7)), float(rng.uniform(3.0, 10.0))
    closed_new_year = bool(rng.random() < _CLOSED_NEW_YEAR_SHARE)
    jitter = rng.normal(0.0, 0.08, len(HOLIDAY_EFFECTS))
    works, works_at, works_days = float(rng.random()), float(rng.random()), int(rng.integers(2, 6))

    # Openings and closings fall inside the span, leaving at least one week of trade.
    weeks = last_week - first_week + 1
    opening = first_week + 1 + int(open_at * (weeks - 2)) if weeks >= 3 and opens < _OPENING_SHARE else None
    closing = first_week + int(close_at * (weeks - 2)) if weeks >= 3 and closes < _CLOSING_SHARE else None
    if closing is not None and closing < (opening or first_week) + 1:
        closing = None
    first, last = opening or first_week, closing or last_week
    works_start = None
    # Not while a new restaurant's trade ramps up: a thin week must not come out empty.
    if works < _WORKS_SHARE and opening is None and last - first >= 5:
        works_week = first + 1 + int(works_at * (last - first - 1))
        works_start = str(week_start(works_week).date())

    return {
        "name": restaurant_name(index, restaurants),
        "first_week": first,
        "last_week": last,
        "opening_week": opening,
        "closing_week": closing,
        "orders_per_day": round(size, 3),
        "growth_per_year": round(growth, 4),
        "weekday_factors": [round(float(f), 4) for f in weekday],
        "yearly_amplitude": round(amplitude, 4),
        "yearly_peak_day": peak,
        "dispersion": round(dispersion, 3),
        "ramp_start": round(ramp_start, 3),
        "ramp_weeks": round(ramp_weeks, 3),
        "closed_days": ["christmas_day", "new_years_day"] if closed_new_year else ["christmas_day"],
        "holiday_effects": {
            name: round(effect * float(np.exp(j)), 3)
            for (name, effect), j in zip(HOLIDAY_EFFECTS.items(), jitter, strict=True)
        },
        "works": None if works_start is None else {"first_day": works_start, "days": works_days},
        "lunch_share": round(lunch_share, 4),
        "price_factor": round(price_factor, 4),
        "main_keep": round(main_keep, 4),
        "order_number_start": order_number_start,
    }


def _with_menu(seed: int, index: int, restaurant: Mapping[str, Any]) -> dict[str, Any]:
    """A restaurant's traits (:func:`_draw_restaurant`) and its menu, drawn from a stream of its own."""
    menu_frame = draw_menu(_stream(seed, index, *_MENU), restaurant["price_factor"], restaurant["main_keep"])
    lunch_value, evening_value = expected_basket_values(menu_frame)
    return {
        **restaurant,
        "mean_order_value": {"lunch": round(lunch_value, 2), "evening": round(evening_value, 2)},
        "menu": {
            "item_name": menu_frame["item_name"].tolist(),
            "category": menu_frame["category"].tolist(),
            "price": menu_frame["price"].tolist(),
            "weight": [round(float(w), 6) for w in menu_frame["weight"]],
        },
    }


def _menu_frame(restaurant: Mapping[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(restaurant["menu"])


def _find(parameters: Mapping[str, Any], restaurant: str) -> Mapping[str, Any]:
    for entry in parameters["restaurants"]:
        if entry["name"] == restaurant:
            return dict(entry)
    raise FoodcastError(f"restaurant {restaurant!r} is not in the chain's parameters")


def expected_orders(
    parameters: Mapping[str, Any], restaurant: Mapping[str, Any], days: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Mean number of orders of each day before the day-to-day noise, and whether it trades.

    ``level * (1 + growth_per_year) ** years * (1 + amplitude * cos(2 pi (day of year - peak) /
    365.25)) * weekday factor * holiday effect * ramp`` on a day the restaurant trades (between
    its opening and closing weeks, not closed for a holiday or works), else 0. ``years`` count
    from 2014-12-29; the ramp is ``1 - (1 - ramp_start) * exp(-days open / (7 * ramp_weeks))``
    after an opening, else 1.

    Parameters
    ----------
    parameters : mapping
        The chain's parameters (:func:`read_parameters`).
    restaurant : mapping
        One of ``parameters["restaurants"]``.
    days : ndarray of datetime64[D]

    Returns
    -------
    tuple of ndarray
        Mean orders (float) and trading (bool), per day.
    """
    days = np.asarray(days, dtype="datetime64[D]")
    origin = np.datetime64(WEEK_ONE_START.date())
    elapsed = (days - origin).astype(np.int64)
    trading = (days >= np.datetime64(week_start(restaurant["first_week"]).date())) & (
        days < np.datetime64(week_start(restaurant["last_week"] + 1).date())
    )
    holidays = parameters["holidays"]
    for name in restaurant["closed_days"]:
        trading &= ~np.isin(days, np.array(holidays[name], dtype="datetime64[D]"))
    works = restaurant["works"]
    if works is not None:
        start = np.datetime64(works["first_day"])
        trading &= ~((days >= start) & (days < start + np.timedelta64(works["days"], "D")))
    day_of_year = (days - days.astype("datetime64[Y]")).astype(np.int64) + 1
    season = 1.0 + restaurant["yearly_amplitude"] * np.cos(
        2 * np.pi * (day_of_year - restaurant["yearly_peak_day"]) / 365.25
    )
    weekday = np.asarray(restaurant["weekday_factors"])[(elapsed + WEEK_ONE_START.day_of_week) % 7]
    effect = np.ones(len(days))
    for name, value in restaurant["holiday_effects"].items():
        effect[np.isin(days, np.array(holidays[name], dtype="datetime64[D]"))] = value
    ramp = np.ones(len(days))
    if restaurant["opening_week"] is not None:
        since = (days - np.datetime64(week_start(restaurant["opening_week"]).date())).astype(np.int64)
        ramp = 1.0 - (1.0 - restaurant["ramp_start"]) * np.exp(-np.maximum(since, 0) / (7.0 * restaurant["ramp_weeks"]))
    trend = (1.0 + restaurant["growth_per_year"]) ** (elapsed / 365.25)
    mean = restaurant["orders_per_day"] * trend * season * weekday * effect * ramp
    return np.where(trading, mean, 0.0), trading


def _day_kinds(days: np.ndarray, trading_before: np.ndarray) -> np.ndarray:
    """Index of each day's minute profile: 2 * (Friday or Saturday) + (the day before closed)."""
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    late = (weekday == _FRIDAY) | (weekday == _SATURDAY)
    kinds: np.ndarray = 2 * late.astype(np.int64) + (~trading_before).astype(np.int64)
    return kinds


def oracle_cash_in(
    parameters: Mapping[str, Any], restaurant: str, week: int, last_week: int | None = None
) -> pd.DataFrame:
    """Expected hourly cash-in of a generated restaurant in ``week``: the best forecast possible.

    The expectation, over the generator's draws, of each hour's cash-in, computed from the
    parameters the generator wrote (:func:`read_parameters`): it minimises the expected squared
    error of any forecast (the absolute error is minimised by each hour's median instead, a
    little lower as hourly cash-in is skewed). Hours the restaurant does not trade are 0.

    Parameters
    ----------
    parameters : mapping
        The chain's parameters.
    restaurant : str
        Its name, e.g. ``r001``.
    week : int
    last_week : int, optional
        Cover weeks ``week..last_week`` in one call (faster than one call per week).

    Returns
    -------
    DataFrame
        ``order_date`` (every hour of the weeks, ascending) and ``cash_in`` (float, GBP).

    Raises
    ------
    FoodcastError
        If the restaurant is not in the chain.
    """
    entry = _find(parameters, restaurant)
    last_week = week if last_week is None else last_week
    days = _span_days(week, last_week)
    with_eve = np.concatenate([days[:1] - 1, days])
    means, trading = expected_orders(parameters, entry, with_eve)
    kinds = _day_kinds(days, trading[:-1])
    cumulative = minute_profiles(entry["lunch_share"]).reshape(4, -1)
    # Probability of each minute, and the mean value of an order placed in it.
    minute_share = np.diff(cumulative, prepend=0.0, axis=1)
    lunch_value, evening_value = expected_basket_values(_menu_frame(entry))
    value = np.where(np.arange(cumulative.shape[1]) < _LUNCH_END_MINUTE, lunch_value, evening_value)
    hourly_share = (minute_share * value).reshape(4, 24, 60).sum(axis=2)
    hourly = (means[1:, None] * hourly_share[kinds]).ravel()
    hours = days.astype("datetime64[h]")[:, None] + np.arange(24).astype("timedelta64[h]")
    stamps = pd.DatetimeIndex(hours.ravel().astype("datetime64[us]"))
    return pd.DataFrame({"order_date": stamps, "cash_in": hourly})


def read_parameters(data_dir: str | Path) -> dict[str, Any]:
    """The parameters a chain was generated with, from ``<data_dir>/chain_parameters.json``.

    Raises
    ------
    FoodcastError
        If the file is missing or not JSON.
    """
    path = Path(data_dir) / PARAMETERS_FILE
    try:
        parameters: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FoodcastError(f"{path} does not exist: generate the chain with --restaurants") from None
    except (OSError, ValueError) as exc:
        raise FoodcastError(f"{path}: cannot be read ({exc})") from None
    return parameters


def _csv_field(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n\r') else text


def _batch_texts(
    seed: int, index: int, parameters: Mapping[str, Any], restaurant: Mapping[str, Any]
) -> Iterator[tuple[int, str]]:
    """CSV text (header included) of each batch of one restaurant, week by week.

    The daily counts of the whole span come from one stream; the orders, from one stream per
    quarter (13 weeks) of the restaurant's trade, drawn a quarter at a time: memory is bounded
    by a quarter of the largest restaurant, whatever the span.
    """
    first_week, last_week = parameters["first_week"], parameters["last_week"]
    rng = _stream(seed, index, first_week, last_week)
    days = _span_days(first_week, last_week)
    with_eve = np.concatenate([days[:1] - 1, days])
    means, trading = expected_orders(parameters, restaurant, with_eve)
    kinds = _day_kinds(days, trading[:-1])
    shocks = rng.gamma(restaurant["dispersion"], 1.0 / restaurant["dispersion"], len(days))
    counts = rng.poisson(means[1:] * shocks)
    cumulative = minute_profiles(restaurant["lunch_share"]).reshape(4, -1)
    menu_frame = _menu_frame(restaurant)
    items = [f"{_csv_field(name)}," for name in menu_frame["item_name"]]
    prices = [f",{price:.2f}" for price in menu_frame["price"].tolist()]
    header = ",".join(EXPORT_COLUMNS) + "\n"
    number = restaurant["order_number_start"]
    for chunk_first in range(restaurant["first_week"], restaurant["last_week"] + 1, _CHUNK_WEEKS):
        chunk_last = min(chunk_first + _CHUNK_WEEKS - 1, restaurant["last_week"])
        chunk = slice(7 * (chunk_first - first_week), 7 * (chunk_last + 1 - first_week))
        chunk_rng = np.random.default_rng([int(seed), _CHAIN_KEY, index, first_week, last_week, chunk_first])
        chunk_days, chunk_counts = days[chunk], counts[chunk]

        # Order times: each day's orders spread over its minute profile, then sorted.
        day_of_order = np.repeat(np.arange(len(chunk_days)), chunk_counts)
        uniform = chunk_rng.random(len(day_of_order))
        minute = np.empty(len(day_of_order), dtype=np.int64)
        order_kinds = kinds[chunk][day_of_order]
        for kind in range(4):
            mask = order_kinds == kind
            minute[mask] = np.searchsorted(cumulative[kind], uniform[mask], side="right")
        minute = np.minimum(minute, cumulative.shape[1] - 1)
        times = np.sort(chunk_days[day_of_order].astype("datetime64[m]") + minute.astype("timedelta64[m]"))
        order, item, quantity = draw_baskets(chunk_rng, times.astype("datetime64[s]"), menu_frame)

        # Lines as text, the pieces gathered without copying: each order's "number,date," and
        # ",total", each (item, quantity)'s "name,quantity,price".
        total_products = np.bincount(order, weights=quantity, minlength=len(times)).astype(np.int64)
        numbers = (number + np.arange(len(times))).tolist()
        number += len(times)
        stamps = np.datetime_as_string(times.astype("datetime64[s]"), unit="s").tolist()
        heads = np.array([f"{n},{s[:10]} {s[11:]}," for n, s in zip(numbers, stamps, strict=True)] + [""], dtype=object)
        tails = np.array([f",{t}\n" for t in range(int(total_products.max(initial=0)) + 1)], dtype=object)
        span = int(quantity.max(initial=0)) + 1
        middles = np.array(
            [f"{name}{q}{price}" for name, price in zip(items, prices, strict=True) for q in range(span)], dtype=object
        )
        pieces = np.empty(3 * len(order), dtype=object)
        pieces[0::3] = heads[order]
        pieces[1::3] = middles[item * span + quantity]
        pieces[2::3] = tails[total_products[order]]

        week_of_line = ((times.astype("datetime64[D]") - chunk_days[0]).astype(np.int64) // 7 + chunk_first)[order]
        for week in range(chunk_first, chunk_last + 1):
            start, end = np.searchsorted(week_of_line, [week, week + 1])
            yield week, header + "".join(pieces[3 * start : 3 * end].tolist())


def _chain(seed: int, restaurants: int, first_week: int, last_week: int) -> dict[str, Any]:
    """The chain's parameters, each restaurant's without its menu."""
    restaurants, first_week, last_week = int(restaurants), int(first_week), int(last_week)
    if restaurants < 1:
        raise FoodcastError(f"invalid number of restaurants {restaurants}: at least 1")
    if first_week < 1 or last_week < first_week:
        raise FoodcastError(f"invalid week range {first_week}-{last_week}: weeks start at 1")
    if week_start(last_week + 1) > latest_order_date():
        raise FoodcastError(f"week {last_week} has not ended yet: the loader refuses orders dated in the future")
    days = _span_days(first_week, last_week)
    return {
        "seed": int(seed),
        "first_week": first_week,
        "last_week": last_week,
        "week_one_start": str(WEEK_ONE_START.date()),
        "model": (
            "orders of an open day ~ Poisson(mean * Gamma(dispersion, 1 / dispersion)), mean = "
            "foodcast.data.chain_generator.expected_orders; expected hourly cash-in: oracle_cash_in"
        ),
        # From the day before the span: a closed eve changes the first hour of a day.
        "holidays": holiday_dates(days[0] - 1, days[-1]),
        "restaurants": [_draw_restaurant(seed, i, restaurants, first_week, last_week) for i in range(restaurants)],
    }


def draw_chain(seed: int, restaurants: int, first_week: int, last_week: int) -> dict[str, Any]:
    """The parameters of a chain: what :func:`generate_chain` writes to ``chain_parameters.json``.

    Raises
    ------
    FoodcastError
        If there is no restaurant, the week range is empty or starts before week 1, or its last
        week has not ended.
    """
    chain = _chain(seed, restaurants, first_week, last_week)
    chain["restaurants"] = [_with_menu(seed, i, r) for i, r in enumerate(chain["restaurants"])]
    return chain


def generate_chain(
    data_dir: str | Path,
    restaurants: int,
    seed: int = DEFAULT_SEED,
    first_week: int = FIRST_WEEK,
    last_week: int = LAST_WEEK,
) -> list[Path]:
    """Write a generated chain: its batches, restaurant by restaurant, and its parameters.

    Parameters
    ----------
    data_dir : path-like
        Root of the batches, ``<data_dir>/r001/week_NNN.csv.gz``...; may hold only batches of
        this same chain (a previous run of the same command), which are overwritten.
    restaurants : int
        Number of restaurants.
    seed : int
        The same seed, restaurants and weeks give byte-identical files.
    first_week, last_week : int
        Inclusive span of weeks; restaurants opening or closing during it have no batch before
        their opening or after their closing week.

    Returns
    -------
    list of Path
        The batches written, by restaurant then week, then ``chain_parameters.json``.

    Raises
    ------
    FoodcastError
        If the arguments are invalid, ``data_dir`` holds other batches, or a file cannot be written.
    """
    parameters = _chain(seed, restaurants, first_week, last_week)
    with writing(data_dir) as root:
        planned = {
            (r["name"], w) for r in parameters["restaurants"] for w in range(r["first_week"], r["last_week"] + 1)
        }
        foreign = [
            path
            for name, weeks in list_batches(root).items()
            for week, path in weeks.items()
            if (name, week) not in planned
        ]
        if foreign:
            raise FoodcastError(
                f"{root} already holds {len(foreign)} batches that are not of this chain (first: {foreign[0]}): "
                "generate a chain into an empty directory (--data-dir)"
            )
        # The parameters file is written as the restaurants are (one line each, menu included),
        # so that no more than one menu is held at a time; it replaces the old one at the end.
        path = root / PARAMETERS_FILE
        head = json.dumps({k: v for k, v in parameters.items() if k != "restaurants"}, indent=1)
        written = []
        with replacing(path, "w") as f:
            f.write(head[:-2] + ',\n "restaurants": [')
            for index, traits in enumerate(parameters["restaurants"]):
                restaurant = _with_menu(seed, index, traits)
                for week, text in _batch_texts(seed, index, parameters, restaurant):
                    batch = root / restaurant["name"] / batch_name(week)
                    write_batch_text(text, batch, compresslevel=GZIP_LEVEL)
                    written.append(batch)
                f.write(("\n  " if index == 0 else ",\n  ") + json.dumps(restaurant))
            f.write("\n ]\n}\n")
        written.append(path)
    return written
