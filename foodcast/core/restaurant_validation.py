"""Cross-validation of a restaurant model, and its figures per restaurant.

:func:`cross_validate_restaurants` is ``forecast.cross_validate`` for a
:class:`~foodcast.core.restaurants.RestaurantModel`: the folds cut the hours, every restaurant's
rows of an hour in the same fold. :func:`validation_table` scores its out-of-fold rows per
restaurant, :func:`validation_summary` gives the median and the worst *established* restaurant
(no fallback row predicted). Apart from the backtest's modules on purpose: validate scores no
week against seasonal naive, so an edit of the weekly scoring (``core.scoring``) relaunches
no validate run (the stage's cache key follows the modules it imports).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import TimeSeriesSplit

from foodcast.core.columns import FOLD_COLUMN, LOWER_COLUMN, POINT_COLUMN, UPPER_COLUMN, member_columns
from foodcast.core.forecast import fold_maes
from foodcast.core.restaurants import CASH_IN, CHAIN, FALLBACK, RESTAURANT, RestaurantModel
from foodcast.errors import FoodcastError

ESTABLISHED, NEW = "established", "new"
#: ``metrics/per_restaurant.csv`` of a cross-validation.
VALIDATION_TABLE_COLUMNS = [
    RESTAURANT,
    "status",
    "rows",
    "fallback_rows",
    "mae",
    "mean_cash_in",
    "scaled_mae",
    "coverage",
    "coverage_open",
]


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, NaN when the denominator is 0."""
    return numerator / denominator if denominator else float("nan")


def median_and_worst(values: pd.Series, metric: str, worst: str) -> dict[str, float]:
    """``median_restaurant_<metric>`` and ``worst_restaurant_<metric>`` (the largest, or with
    ``worst="min"`` the smallest); NaN without values."""
    median = float(values.median()) if len(values) else float("nan")
    extreme = float(getattr(values, worst)()) if len(values) else float("nan")
    return {f"median_restaurant_{metric}": median, f"worst_restaurant_{metric}": extreme}


def cross_validate_restaurants(
    model: RestaurantModel, x: pd.DataFrame, y: pd.Series | np.ndarray, n_fold: int = 10
) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Chronological cross-validation of a restaurant model, as ``forecast.cross_validate`` does the chain's.

    scikit-learn's ``TimeSeriesSplit`` cuts the hours of the chain's rows of ``x`` (every row of
    an hour, the restaurants' and the chain's, in the same fold); ``model`` is cloned, fitted on
    every row before the fold (the restaurants' earlier fallback rows too) and predicts the
    fold. A restaurant the fold's model was not fitted with (opened in the fold) is not
    predicted, nor a chain row at an hour left without any restaurant row.

    Parameters
    ----------
    model : RestaurantModel
    x : DataFrame
        :func:`~foodcast.core.restaurants.training_rows` without ``cash_in``, indexed by
        ``order_date`` (``restaurant``, ``fallback``, the features).
    y : Series or array
        ``cash_in``, aligned with ``x`` row by row.
    n_fold : int
        Number of splits (>= 2).

    Returns
    -------
    maes : ndarray of shape (n_fold, n_members)
        The chain rows' MAE of each bootstrap member on each fold (``forecast.cross_validate``'s).
    preds : DataFrame
        Out-of-fold ``predict_frame`` rows with their ``fold`` and the truth ``cash_in``,
        indexed by ``order_date``.
    per_restaurant : DataFrame
        One row per fold and restaurant (the chain's too): ``fold``, ``restaurant``, ``mae``
        (of ``y_pred``), ``rows``.

    Raises
    ------
    FoodcastError
        If ``n_fold`` < 2 or the hours are too few for it.
    """
    n_fold = int(n_fold)
    if n_fold < 2:
        raise FoodcastError(f"n_fold must be >= 2, got {n_fold}")
    stamps = pd.DatetimeIndex(x.index)
    names = x[RESTAURANT].astype(str).to_numpy()
    # The chain's hours are cut: its rows start after the restaurants' fallback rows (its level
    # needs its own weeks), and each fold's model needs chain rows to forecast the chain.
    hours = pd.DatetimeIndex(stamps[names == CHAIN] if (names == CHAIN).any() else stamps).unique().sort_values()
    if len(hours) <= n_fold:
        raise FoodcastError(f"cannot split {len(hours)} training hours into {n_fold} folds")
    target = np.asarray(y, dtype="float64").ravel()
    frames = []
    for fold, (_, test) in enumerate(TimeSeriesSplit(n_splits=n_fold).split(hours)):
        train_rows = np.flatnonzero(stamps < hours[test][0])
        # (fit_rows: the fold's rows cut model by model, not copied whole: most of x, fold after fold)
        fitted = clone(model).fit_rows(x, target, train_rows)
        test_rows = stamps.isin(hours[test]) & np.isin(names, [*fitted.restaurants_, CHAIN])
        served = pd.DatetimeIndex(stamps[test_rows & (names != CHAIN)]).unique()
        test_rows &= (names != CHAIN) | stamps.isin(served)
        rows = np.flatnonzero(test_rows)
        pred = fitted.predict_frame(x.iloc[rows])
        pred[FOLD_COLUMN] = fold
        pred["cash_in"] = target[rows]
        frames.append(pred)
    preds = pd.concat(frames)
    chain = preds[preds[RESTAURANT] == CHAIN]
    maes = fold_maes(chain.drop(columns=[RESTAURANT, FALLBACK, "cash_in"]), chain["cash_in"].to_numpy())
    errors = (preds[POINT_COLUMN] - preds["cash_in"]).abs()
    grouped = errors.groupby([preds[FOLD_COLUMN].to_numpy(), preds[RESTAURANT].to_numpy()], sort=False)
    per_restaurant = pd.DataFrame({"mae": grouped.mean(), "rows": grouped.size()}).rename_axis(
        [FOLD_COLUMN, RESTAURANT]
    )
    return maes[member_columns(maes)].to_numpy(), preds, per_restaurant.reset_index()


def validation_table(preds: pd.DataFrame) -> pd.DataFrame:
    """Per restaurant, its out-of-fold predictions scored (``metrics/per_restaurant.csv``).

    Parameters
    ----------
    preds : DataFrame
        :func:`cross_validate_restaurants`' out-of-fold rows (``restaurant``,
        ``fallback``, ``y_pred``, ``y_lower``, ``y_upper``, the truth ``cash_in``); the chain's
        rows are left out.

    Returns
    -------
    DataFrame
        :data:`VALIDATION_TABLE_COLUMNS`, restaurants sorted: ``status`` ``new`` if some of its
        rows were fallback rows, else ``established``; ``rows`` and ``fallback_rows`` predicted;
        ``mae`` (of ``y_pred``), ``mean_cash_in``, ``scaled_mae`` (``mae / mean_cash_in``,
        comparable between restaurants of any size), ``coverage`` of the interval and
        ``coverage_open`` (among the hours that can trade, as a backtest's).
    """
    rows = []
    for name, mine in preds[preds[RESTAURANT] != CHAIN].groupby(RESTAURANT, sort=True):
        actual = mine[CASH_IN].to_numpy(dtype="float64")
        lower, upper = mine[LOWER_COLUMN].to_numpy(dtype="float64"), mine[UPPER_COLUMN].to_numpy(dtype="float64")
        inside = (actual >= lower) & (actual <= upper)
        open_hours = (upper > 0) | (actual != 0)
        fallback = int((mine[FALLBACK].to_numpy(dtype="float64") > 0).sum())
        mae = float(np.mean(np.abs(mine[POINT_COLUMN].to_numpy(dtype="float64") - actual)))
        mean = float(actual.mean())
        rows.append(
            {
                RESTAURANT: str(name),
                "status": NEW if fallback else ESTABLISHED,
                "rows": len(mine),
                "fallback_rows": fallback,
                "mae": mae,
                "mean_cash_in": mean,
                "scaled_mae": ratio(mae, mean),
                "coverage": float(inside.mean()),
                "coverage_open": float(inside[open_hours].mean()) if open_hours.any() else 1.0,
            }
        )
    return pd.DataFrame(rows, columns=VALIDATION_TABLE_COLUMNS)


def validation_summary(table: pd.DataFrame) -> dict[str, float]:
    """The median and the worst established restaurant of a :func:`validation_table`:
    ``restaurants``, ``restaurants_new``, ``median_restaurant_scaled_mae`` / ``worst_...`` (the
    largest), ``*_restaurant_coverage`` and ``*_restaurant_coverage_open`` (the worst: the
    smallest); NaN without an established restaurant."""
    established = table[table["status"] == ESTABLISHED]
    return {
        "restaurants": float(len(table)),
        "restaurants_new": float(len(table) - len(established)),
        **median_and_worst(established["scaled_mae"].dropna(), "scaled_mae", "max"),
        **median_and_worst(established["coverage"], "coverage", "min"),
        **median_and_worst(established["coverage_open"], "coverage_open", "min"),
    }
