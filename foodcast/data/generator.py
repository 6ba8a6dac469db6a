"""Seeded, deterministic generator of the default dataset: two London Indian takeaways.

The model, per restaurant:

* a menu of about 200 items drawn from a common catalogue (poppadoms and chutneys, starters,
  curries as protein x dish, tandoori grills, sides, rice, breads, drinks, desserts, platters),
  with prices and popularity weights of its own;
* daily order counts ``Poisson(mean * Gamma(k, 1/k))`` (overdispersed), where ``mean`` is a
  level growing exponentially over the five years, times a yearly cosine (winter up), times a
  weekday profile (Friday and Saturday busiest); closed on 25 December, plus restaurant-specific
  closures (1 January, a refurbishment week);
* order times at minute resolution: a thin lunch trade (11:30-14:29) and the bulk of the trade
  in the evening (16:00-00:59, peaking around 19:30);
* baskets built from a party size: one main per person and, per person, a chance of rice,
  bread, starter, side, poppadoms, drink...; identical picks within an order become one line
  with a quantity above 1.

Every random draw comes from a stream keyed on ``(seed, restaurant, week, purpose)``, so a week
is generated identically whether alone or with the others, and :func:`generate` writes
byte-identical files on every run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from foodcast.core.weeks import WEEK_ONE_START
from foodcast.data.batch_files import batch_name, writing
from foodcast.data.orders import to_export, write_batch
from foodcast.errors import FoodcastError

DEFAULT_SEED = 20141229
FIRST_WEEK = 1
LAST_WEEK = 260

# Purposes of the random streams; week 0 holds the restaurant-wide ones.
_MENU_STREAM, _CALENDAR_STREAM, _COUNT_STREAM, _BASKET_STREAM = 0, 1, 2, 3

_MINUTES_PER_DAY = 1440
_FRIDAY, _SATURDAY = 4, 5


@dataclass(frozen=True)
class RestaurantProfile:
    """Fixed traits of one generated restaurant (the random parts come from the seed)."""

    name: str
    mean_orders_per_day: float  # over the whole five years
    growth: float  # relative increase of the level from week 1 to week 260
    seasonal_amplitude: float
    seasonal_peak_day: int  # day of year of the yearly maximum
    dispersion: float  # gamma shape k: the smaller, the noisier the days
    weekday_factors: tuple[float, ...]  # Monday .. Sunday
    lunch_share: float
    price_factor: float
    main_keep: float  # share of the catalogue's curries on this menu
    closed_new_year: bool
    refurbishment_days: int
    order_number_start: int


RESTAURANTS = (
    RestaurantProfile(
        name="spice_garden_hackney",
        mean_orders_per_day=35.0,
        growth=0.38,
        seasonal_amplitude=0.13,
        seasonal_peak_day=350,
        dispersion=14.0,
        weekday_factors=(1.00, 0.97, 1.07, 1.18, 1.72, 1.86, 1.27),
        lunch_share=0.05,
        price_factor=0.97,
        main_keep=0.55,
        closed_new_year=False,
        refurbishment_days=5,
        order_number_start=10001,
    ),
    RestaurantProfile(
        name="royal_tandoori_balham",
        mean_orders_per_day=52.0,
        growth=0.22,
        seasonal_amplitude=0.10,
        seasonal_peak_day=12,
        dispersion=20.0,
        weekday_factors=(1.00, 1.04, 1.09, 1.17, 1.60, 1.71, 1.39),
        lunch_share=0.09,
        price_factor=1.04,
        main_keep=0.65,
        closed_new_year=True,
        refurbishment_days=0,
        order_number_start=200001,
    ),
)

# ---------------------------------------------------------------------------------------------
# Catalogue. Each category: (name, price range after restaurant pricing, items). An item is
# (name, base price, popularity boost); a boost above 1 marks the classics every menu keeps.
# ---------------------------------------------------------------------------------------------

_POPPADOMS = [("Plain Poppadom", 0.70, 6.0), ("Spicy Poppadom", 0.80, 2.0)]
_CHUTNEYS = [
    ("Mango Chutney", 0.70, 5.0),
    ("Mint Sauce", 0.70, 3.0),
    ("Onion Salad", 0.70, 2.5),
    ("Lime Pickle", 0.70, 1.0),
    ("Mixed Pickle", 0.70, 1.0),
    ("Tamarind Sauce", 0.80, 1.0),
    ("Chutney Tray", 2.50, 1.5),
    ("Raita", 1.50, 1.0),
]
_STARTERS = [
    ("Onion Bhajee", 3.50, 8.0),
    ("Vegetable Samosa", 3.50, 3.0),
    ("Lamb Samosa", 3.95, 2.0),
    ("Chicken Pakora", 4.50, 1.5),
    ("Vegetable Pakora", 3.75, 1.0),
    ("Paneer Pakora", 4.25, 1.0),
    ("Chicken Tikka Starter", 4.50, 3.0),
    ("Lamb Tikka Starter", 4.95, 1.0),
    ("Sheek Kebab", 4.50, 2.5),
    ("Shami Kebab", 4.50, 1.0),
    ("Tandoori Chicken Starter", 4.75, 1.0),
    ("Chicken Chaat", 4.50, 1.0),
    ("Aloo Chaat", 3.95, 1.0),
    ("Prawn Puri", 4.95, 1.5),
    ("King Prawn Puri", 6.50, 1.0),
    ("Garlic Mushrooms", 3.95, 1.0),
    ("Hariyali Chicken Tikka", 4.95, 1.0),
    ("Fish Amritsari", 5.50, 1.0),
    ("Chilli Paneer", 4.95, 1.0),
    ("Tandoori King Prawn Starter", 6.95, 1.0),
    ("Mixed Kebab Starter", 5.95, 1.0),
    ("Mixed Starter for Two", 8.95, 1.0),
]
_GRILLS = [
    ("Chicken Tikka", 8.50, 2.0),
    ("Lamb Tikka", 9.50, 1.0),
    ("Tandoori Chicken", 8.95, 1.5),
    ("Chicken Shashlik", 9.95, 1.0),
    ("Lamb Shashlik", 10.50, 1.0),
    ("Paneer Shashlik", 8.95, 1.0),
    ("Tandoori King Prawn", 13.50, 1.0),
    ("Tandoori Salmon", 12.95, 1.0),
]
_SPECIALS = [
    ("Butter Chicken", 9.50, 4.0),
    ("Chicken Chettinad", 9.95, 1.0),
    ("Goan Fish Curry", 11.50, 1.0),
    ("Lamb Shank Rogan", 13.50, 1.0),
    ("Railway Lamb Curry", 10.50, 1.0),
    ("Chicken Naga", 9.50, 1.0),
    ("Lamb Nihari", 11.95, 1.0),
    ("Murgh Makhani", 9.95, 1.0),
    ("Chicken Haryali", 9.50, 1.0),
    ("Kashmiri Lamb", 10.95, 1.0),
]
_PROTEINS = [
    ("Chicken", 8.25),
    ("Chicken Tikka", 8.75),
    ("Lamb", 9.25),
    ("Lamb Tikka", 9.75),
    ("Prawn", 9.25),
    ("King Prawn", 11.95),
    ("Vegetable", 7.25),
    ("Paneer", 8.25),
    ("Keema", 8.95),
]
_DISHES = [
    ("Curry", -0.50),
    ("Korma", 0.00),
    ("Madras", 0.00),
    ("Vindaloo", 0.00),
    ("Phall", 0.25),
    ("Bhuna", 0.25),
    ("Dopiaza", 0.25),
    ("Dhansak", 0.50),
    ("Pathia", 0.50),
    ("Jalfrezi", 0.50),
    ("Rogan Josh", 0.25),
    ("Saag", 0.50),
    ("Balti", 0.75),
    ("Karahi", 0.75),
    ("Tikka Masala", 0.50),
    ("Makhani", 0.75),
    ("Pasanda", 0.75),
    ("Methi", 0.50),
    ("Achari", 0.75),
    ("Garlic Chilli", 0.75),
    ("Biryani", 1.95),
]
# The dishes that sell most, whichever restaurant.
_CLASSIC_MAINS = {
    "Chicken Tikka Masala": 14.0,
    "Chicken Korma": 7.0,
    "Chicken Tikka Jalfrezi": 4.0,
    "Lamb Rogan Josh": 4.0,
    "Chicken Madras": 3.0,
    "Chicken Jalfrezi": 3.0,
    "Chicken Biryani": 3.0,
    "Lamb Bhuna": 2.0,
    "Chicken Tikka Bhuna": 2.0,
    "Vegetable Biryani": 1.5,
    "Prawn Bhuna": 1.5,
}
_SIDES = [
    ("Bombay Aloo", 3.75, 5.0),
    ("Saag Aloo", 3.75, 4.0),
    ("Tarka Dal", 3.75, 3.0),
    ("Dal Makhani", 4.25, 1.0),
    ("Chana Masala", 3.75, 1.5),
    ("Bhindi Bhaji", 3.95, 1.0),
    ("Mushroom Bhaji", 3.75, 1.5),
    ("Cauliflower Bhaji", 3.75, 1.0),
    ("Brinjal Bhaji", 3.75, 1.0),
    ("Aloo Gobi", 3.75, 1.5),
    ("Saag Paneer", 4.50, 2.5),
    ("Matar Paneer", 4.50, 1.0),
    ("Mixed Vegetable Bhaji", 3.75, 1.0),
    ("Saag Bhaji", 3.75, 1.0),
]
_RICE = [
    ("Pilau Rice", 3.25, 20.0),
    ("Plain Rice", 2.95, 5.0),
    ("Mushroom Rice", 3.75, 2.0),
    ("Egg Fried Rice", 3.75, 1.5),
    ("Special Fried Rice", 3.95, 1.5),
    ("Keema Rice", 4.25, 1.0),
    ("Lemon Rice", 3.75, 1.0),
    ("Coconut Rice", 3.75, 1.0),
    ("Vegetable Rice", 3.75, 1.0),
    ("Garlic Rice", 3.75, 1.0),
]
_BREADS = [
    ("Plain Naan", 2.75, 10.0),
    ("Garlic Naan", 3.25, 9.0),
    ("Peshwari Naan", 3.50, 4.0),
    ("Keema Naan", 3.75, 2.0),
    ("Cheese Naan", 3.50, 2.5),
    ("Garlic and Coriander Naan", 3.50, 1.5),
    ("Chilli Naan", 3.25, 1.0),
    ("Cheese and Garlic Naan", 3.75, 1.5),
    ("Tandoori Roti", 2.25, 1.0),
    ("Chapati", 1.25, 2.0),
    ("Paratha", 2.95, 1.5),
    ("Stuffed Paratha", 3.50, 1.0),
]
_EXTRAS = [
    ("Chips", 2.50, 5.0),
    ("Masala Chips", 3.25, 2.0),
    ("Curry Sauce", 2.95, 2.0),
    ("Korma Sauce", 2.95, 1.0),
    ("Tikka Masala Sauce", 2.95, 1.0),
    ("Green Salad", 2.50, 1.0),
    ("Cucumber Raita", 2.25, 1.5),
]
_DRINKS = [
    ("Coca-Cola 330ml", 1.50, 5.0),
    ("Diet Coke 330ml", 1.50, 4.0),
    ("Sprite 330ml", 1.50, 1.0),
    ("Coca-Cola 1.5L", 3.25, 2.0),
    ("Mango Lassi", 3.50, 2.0),
    ("Sweet Lassi", 3.25, 1.0),
    ("Bottled Water 500ml", 1.20, 1.5),
    ("Cobra Beer 660ml", 4.95, 2.5),
    ("Kingfisher Beer 660ml", 4.95, 1.5),
    ("Rubicon Mango 330ml", 1.50, 1.0),
]
_DESSERTS = [
    ("Gulab Jamun", 3.50, 3.0),
    ("Mango Kulfi", 3.50, 2.0),
    ("Pistachio Kulfi", 3.50, 1.5),
    ("Rasmalai", 3.95, 1.0),
    ("Gajar Halwa", 3.95, 1.0),
    ("Chocolate Fudge Cake", 4.50, 1.0),
]
_PLATTERS = [
    ("Set Meal for One", 12.95, 2.0),
    ("Vegetarian Thali", 13.95, 1.0),
    ("Non-Vegetarian Thali", 15.95, 1.0),
    ("Mixed Grill", 16.95, 2.0),
    ("Tandoori Mixed Platter for Two", 18.95, 1.0),
    ("Meal for Two", 19.95, 2.0),
]

# Price bounds of each category once a restaurant's pricing is applied.
_CATEGORY_BOUNDS = {
    "poppadoms": (0.50, 1.50),
    "chutneys": (0.50, 3.00),
    "starters": (2.95, 9.50),
    "mains": (7.00, 14.00),
    "platters": (12.00, 20.00),
    "sides": (2.95, 5.50),
    "rice": (2.50, 4.95),
    "breads": (1.00, 4.50),
    "extras": (1.95, 3.95),
    "drinks": (1.00, 5.50),
    "desserts": (2.50, 5.00),
}
# Receipt order: the order lines of a basket are listed category by category in this order.
_CATEGORIES = list(_CATEGORY_BOUNDS)


def _catalogue() -> dict[str, list[tuple[str, float, float]]]:
    """Every item a menu may hold, by category."""
    mains = [(n, p, b) for n, p, b in _GRILLS + _SPECIALS]
    for protein, base in _PROTEINS:
        for dish, premium in _DISHES:
            if protein == "Keema" and dish in ("Makhani", "Pasanda", "Tikka Masala", "Phall"):
                continue
            if protein == "Chicken Tikka" and dish == "Tikka Masala":
                continue
            name = f"{protein} {dish}"
            mains.append((name, min(base + premium, 13.95), _CLASSIC_MAINS.get(name, 1.0)))
    return {
        "poppadoms": _POPPADOMS,
        "chutneys": _CHUTNEYS,
        "starters": _STARTERS,
        "mains": mains,
        "platters": _PLATTERS,
        "sides": _SIDES,
        "rice": _RICE,
        "breads": _BREADS,
        "extras": _EXTRAS,
        "drinks": _DRINKS,
        "desserts": _DESSERTS,
    }


def _stream(seed: int, restaurant: int, week: int, purpose: int) -> np.random.Generator:
    # A fixed-length key: distinct keys give independent streams.
    return np.random.default_rng([int(seed), int(restaurant), int(week), int(purpose)])


def menu(seed: int = DEFAULT_SEED, restaurant: int = 0) -> pd.DataFrame:
    """The menu of one generated restaurant.

    Parameters
    ----------
    seed : int
        Seed of the dataset.
    restaurant : int
        Index of the restaurant in :data:`RESTAURANTS`.

    Returns
    -------
    DataFrame
        One row per item, in receipt order: ``item_name``, ``category``, ``price`` (GBP) and
        ``weight`` (probability of the item when a dish of its category is picked).
    """
    profile = RESTAURANTS[restaurant]
    return draw_menu(_stream(seed, restaurant, 0, _MENU_STREAM), profile.price_factor, profile.main_keep)


def draw_menu(rng: np.random.Generator, price_factor: float, main_keep: float) -> pd.DataFrame:
    """A menu drawn from the catalogue: see :func:`menu`.

    ``price_factor`` scales the catalogue's prices (within each category's bounds);
    ``main_keep`` is the share of the catalogue's curries kept (the classics always are).
    """
    rows = []
    for category, items in _catalogue().items():
        low, high = _CATEGORY_BOUNDS[category]
        keep_share = main_keep if category == "mains" else 0.85
        # Draws made for every item, kept or not, so the stream does not depend on the choices.
        keep = (rng.random(len(items)) < keep_share) | np.array([b > 1 for _, _, b in items])
        jitter = rng.normal(0.0, 0.04, len(items))
        # Zipf weights on a restaurant-specific ranking: each place has its own favourites.
        ranks = rng.permutation(len(items)) + 1
        for i, (name, base_price, boost) in enumerate(items):
            if not keep[i]:
                continue
            price = np.clip(base_price * price_factor * (1 + jitter[i]), low, high)
            rows.append(
                {
                    "item_name": name,
                    "category": category,
                    "price": round(round(price * 20) / 20, 2),
                    "weight": boost * 3.0 / (ranks[i] + 2.0),
                }
            )
    frame = pd.DataFrame(rows)
    frame["weight"] = frame["weight"] / frame.groupby("category")["weight"].transform("sum")
    return frame


def _closed_days(seed: int, restaurant: int, last_week: int) -> set[np.datetime64]:
    """Days without trade: Christmas Day, and the restaurant's own closures."""
    profile = RESTAURANTS[restaurant]
    first = WEEK_ONE_START.year
    last = (WEEK_ONE_START + pd.Timedelta(days=7 * last_week)).year
    closed = {np.datetime64(f"{year}-12-25") for year in range(first, last + 1)}
    if profile.closed_new_year:
        closed |= {np.datetime64(f"{year}-01-01") for year in range(first, last + 1)}
    if profile.refurbishment_days:
        # A summer week of the third year, starting on the Monday the seed picks.
        week = 132 + int(_stream(seed, restaurant, 0, _CALENDAR_STREAM).integers(0, 8))
        monday = np.datetime64(WEEK_ONE_START.date()) + np.timedelta64(7 * (week - 1), "D")
        closed |= {monday + np.timedelta64(d, "D") for d in range(profile.refurbishment_days)}
    return closed


def expected_orders(restaurant: int, days: ArrayLike) -> np.ndarray:
    """Mean number of orders of an open day, before the day-to-day noise.

    Parameters
    ----------
    restaurant : int
        Index of the restaurant in :data:`RESTAURANTS`.
    days : array-like of datetime64
        Calendar days.

    Returns
    -------
    ndarray of float
    """
    profile = RESTAURANTS[restaurant]
    days = np.asarray(days, dtype="datetime64[D]")
    elapsed = (days - np.datetime64(WEEK_ONE_START.date())).astype(np.int64)
    span = 7 * LAST_WEEK
    # Normalised so that the five-year average is mean_orders_per_day.
    growth_mean = profile.growth / np.log1p(profile.growth)
    weekday_mean = float(np.mean(profile.weekday_factors))
    level = profile.mean_orders_per_day / growth_mean / weekday_mean
    trend = (1.0 + profile.growth) ** (elapsed / span)
    day_of_year = (days - days.astype("datetime64[Y]")).astype(np.int64) + 1
    season = 1.0 + profile.seasonal_amplitude * np.cos(2 * np.pi * (day_of_year - profile.seasonal_peak_day) / 365.25)
    weekday = np.asarray(profile.weekday_factors)[(elapsed + WEEK_ONE_START.day_of_week) % 7]
    expected: np.ndarray = level * trend * season * weekday
    return expected


def _week_days(week: int) -> np.ndarray:
    start = np.datetime64(WEEK_ONE_START.date()) + np.timedelta64(7 * (week - 1), "D")
    return start + np.arange(7).astype("timedelta64[D]")


def _daily_counts(seed: int, restaurant: int, week: int, closed: set[np.datetime64]) -> np.ndarray:
    """Orders of each day of ``week``: gamma-Poisson around :func:`expected_orders`."""
    profile = RESTAURANTS[restaurant]
    rng = _stream(seed, restaurant, week, _COUNT_STREAM)
    days = _week_days(week)
    shocks = rng.gamma(profile.dispersion, 1.0 / profile.dispersion, 7)
    counts = rng.poisson(expected_orders(restaurant, days) * shocks)
    counts[[day in closed for day in days]] = 0
    return counts


def minute_profiles(lunch_share: float) -> np.ndarray:
    """Cumulative probability of each minute of the day: ``[late Friday/Saturday][after a closed day]``.

    ``lunch_share`` of the orders fall in the lunch trade (11:30-14:29), the rest in the evening.
    """
    minutes = np.arange(_MINUTES_PER_DAY, dtype=float)
    lunch = np.where(
        (minutes >= 11 * 60 + 30) & (minutes < 14 * 60 + 30),
        1.0 - np.abs(minutes - (12 * 60 + 50)) / 120.0,
        0.0,
    ).clip(0.0)
    lunch /= lunch.sum()
    profiles = np.zeros((2, 2, _MINUTES_PER_DAY))
    for late in (0, 1):
        # Hours after midnight continue the previous evening.
        evening_time = np.where(minutes < 60, minutes + _MINUTES_PER_DAY, minutes)
        peak = 19.5 * 60 + 25 * late
        evening = np.exp(-0.5 * ((evening_time - peak) / 100.0) ** 2)
        evening[(minutes >= 60) & (minutes < 16 * 60)] = 0.0
        evening /= evening.sum()
        for after_closed in (0, 1):
            mix = lunch_share * lunch + (1 - lunch_share) * evening
            if after_closed:
                mix[:60] = 0.0
            profiles[late, after_closed] = np.cumsum(mix) / mix.sum()
    return profiles


def _order_times(
    rng: np.random.Generator,
    counts: np.ndarray,
    days: np.ndarray,
    closed: set[np.datetime64],
    cumulative_profiles: np.ndarray,
) -> np.ndarray:
    """Sorted minute-resolution timestamps of the week's orders."""
    times = []
    for day, n in zip(days, counts, strict=False):
        weekday = int((day.astype(np.int64) + 3) % 7)  # 1970-01-01 was a Thursday
        late = int(weekday in (_FRIDAY, _SATURDAY))
        after_closed = int(day - np.timedelta64(1, "D") in closed)
        cumulative = cumulative_profiles[late, after_closed]
        minute = np.searchsorted(cumulative, rng.random(n), side="right")
        times.append(day.astype("datetime64[m]") + minute.astype("timedelta64[m]"))
    return np.sort(np.concatenate(times)).astype("datetime64[s]")


# Per-person chance of an item of each category (mains: one per person, poppadoms: all or none).
_PER_PERSON = {
    "chutneys": 0.22,
    "starters": 0.28,
    "sides": 0.25,
    "rice": 0.68,
    "breads": 0.55,
    "extras": 0.09,
    "drinks": 0.18,
    "desserts": 0.04,
}
# Per-order chances: poppadoms for the whole party, one main more than people, a platter
# (twice as likely for two or more).
_POPPADOM_CHANCE, _SECOND_MAIN_CHANCE, _PLATTER_CHANCE = 0.4, 0.08, 0.02
_PARTY_SIZES = np.arange(1, 7)
_PARTY_LUNCH = np.array([0.62, 0.28, 0.07, 0.03, 0.0, 0.0])
_PARTY_EVENING = np.array([0.45, 0.37, 0.085, 0.07, 0.02, 0.005])


def draw_baskets(
    rng: np.random.Generator, order_times: np.ndarray, menu_frame: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Order lines of the week: (order index, item index, quantity) sorted in receipt order."""
    n = len(order_times)
    minute_of_day = (order_times.astype("datetime64[m]").astype(np.int64)) % _MINUTES_PER_DAY
    lunch = minute_of_day < 16 * 60
    party = np.where(
        lunch,
        rng.choice(_PARTY_SIZES, size=n, p=_PARTY_LUNCH),
        rng.choice(_PARTY_SIZES, size=n, p=_PARTY_EVENING),
    )
    draws = {
        "poppadoms": party * (rng.random(n) < _POPPADOM_CHANCE),
        "mains": party + (rng.random(n) < _SECOND_MAIN_CHANCE),
        "platters": (rng.random(n) < _PLATTER_CHANCE + _PLATTER_CHANCE * (party >= 2)).astype(np.int64),
    }
    for category, chance in _PER_PERSON.items():
        draws[category] = rng.binomial(party, chance)
    categories = menu_frame["category"].to_numpy()
    weights = menu_frame["weight"].to_numpy()
    orders, items = [], []
    for category in _CATEGORIES:
        index = np.flatnonzero(categories == category)
        count = draws[category]
        cumulative = np.cumsum(weights[index])
        uniform = rng.random(int(count.sum()))
        picks = np.searchsorted(cumulative / cumulative[-1], uniform, side="right")
        orders.append(np.repeat(np.arange(n), count))
        items.append(index[np.minimum(picks, len(index) - 1)])
    # The same item picked twice in an order is one line with quantity 2.
    keys = np.concatenate(orders) * len(menu_frame) + np.concatenate(items)
    keys, quantity = np.unique(keys, return_counts=True)
    return keys // len(menu_frame), keys % len(menu_frame), quantity


def expected_basket_values(menu_frame: pd.DataFrame) -> tuple[float, float]:
    """Mean value (GBP) of an order drawn by :func:`draw_baskets` from ``menu_frame``.

    Returns
    -------
    tuple of float
        For an order placed before 16:00 (the lunch party sizes) and for one from 16:00 on.
    """
    weights = menu_frame["weight"].to_numpy(dtype="float64")
    prices = menu_frame["price"].to_numpy(dtype="float64")
    categories = menu_frame["category"].to_numpy()
    # Mean price of a pick in each category: items are picked in proportion to their weight.
    mean_price = {}
    for category in _CATEGORIES:
        mask = categories == category
        mean_price[category] = float(np.sum(weights[mask] * prices[mask]) / np.sum(weights[mask]))
    values = []
    for party_share in (_PARTY_LUNCH, _PARTY_EVENING):
        people = float(np.sum(_PARTY_SIZES * party_share))
        items = {
            "poppadoms": people * _POPPADOM_CHANCE,
            "mains": people + _SECOND_MAIN_CHANCE,
            "platters": _PLATTER_CHANCE + _PLATTER_CHANCE * float(party_share[1:].sum()),
            **{category: people * chance for category, chance in _PER_PERSON.items()},
        }
        values.append(sum(items[category] * mean_price[category] for category in _CATEGORIES))
    return values[0], values[1]


def _week_lines(
    seed: int,
    restaurant: int,
    week: int,
    counts: np.ndarray,
    first_order_number: int,
    closed: set[np.datetime64],
    menu_frame: pd.DataFrame,
    profiles: np.ndarray,
) -> pd.DataFrame:
    """The week's order lines as a normalised frame (see ``parse_orders``)."""
    rng = _stream(seed, restaurant, week, _BASKET_STREAM)
    times = _order_times(rng, counts, _week_days(week), closed, profiles)
    order, item, quantity = draw_baskets(rng, times, menu_frame)
    total_products = np.bincount(order, weights=quantity, minlength=len(times)).astype(np.int64)
    order_numbers = (first_order_number + np.arange(len(times))).astype(str)
    return pd.DataFrame(
        {
            "order_id": order_numbers[order],
            "order_date": times[order],
            "item_name": menu_frame["item_name"].to_numpy()[item],
            "quantity": quantity.astype(np.int64),
            "product_price": menu_frame["price"].to_numpy()[item],
            "total_products": total_products[order],
        }
    )


def generate(
    data_dir: str | Path, seed: int = DEFAULT_SEED, first_week: int = FIRST_WEEK, last_week: int = LAST_WEEK
) -> list[Path]:
    """Write the generated batches of weeks ``first_week..last_week`` for every restaurant.

    Parameters
    ----------
    data_dir : path-like
        Root of the batches; ``<data_dir>/<restaurant>/week_NNN.csv.gz`` is (over)written.
    seed : int
        Seed of the dataset; the same seed gives byte-identical files.
    first_week, last_week : int
        Inclusive range of weeks (week 1 starts on Monday 2014-12-29).

    Returns
    -------
    list of Path
        The files written, by restaurant then week.

    Raises
    ------
    FoodcastError
        If the week range is empty or starts before week 1, or a batch cannot be written.
    """
    first_week, last_week = int(first_week), int(last_week)
    if first_week < 1 or last_week < first_week:
        raise FoodcastError(f"invalid week range {first_week}-{last_week}: weeks start at 1")
    # Under the data directory's lock: an import meanwhile would merge with batches being replaced.
    with writing(data_dir) as root:
        written = []
        for restaurant, profile in enumerate(RESTAURANTS):
            closed = _closed_days(seed, restaurant, last_week)
            menu_frame = menu(seed, restaurant)
            profiles = minute_profiles(profile.lunch_share)
            # Counts from week 1 on, so that order numbers run on from the weeks not regenerated.
            counts = {w: _daily_counts(seed, restaurant, w, closed) for w in range(1, last_week + 1)}
            order_number = profile.order_number_start
            for week in range(1, last_week + 1):
                if week >= first_week:
                    lines = _week_lines(
                        seed, restaurant, week, counts[week], order_number, closed, menu_frame, profiles
                    )
                    path = root / profile.name / batch_name(week)
                    write_batch(to_export(lines), path)
                    written.append(path)
                order_number += int(counts[week].sum())
    return written
