"""How good a week's forecast per restaurant was: each restaurant's scorecard and the chain's.

Every restaurant forecast (and the chain's total, :data:`~foodcast.core.restaurants.CHAIN`) is
scored as ``evaluate`` scores the chain (:func:`foodcast.core.scoring.score_week`: the hourly
MAE of the forecast, of seasonal naive and of the 4-week mean, the interval's coverage and
width), on its own actual cash-in: a restaurant's from its batches, the chain's the sum of its
restaurants'. The summary is the chain's scorecard under the chain's metric names (so that a
chain forecast and a restaurant one compare), and the median and worst established restaurant
of each ratio. (``restaurant_backtest.score_restaurants`` scores a backtest's weeks alike,
without the per-hour table and the notes a weekly scorecard logs.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from foodcast.core.restaurants import CASH_IN, CHAIN, FALLBACK, ORDER_DATE, RESTAURANT, chain_total
from foodcast.core.scoring import score_week, split_actuals
from foodcast.core.weeks import weeks_of
from foodcast.errors import FoodcastError

#: The per-restaurant figures summarised: (metric, the worst is its max or min).
SUMMARISED = (("model_over_naive", "max"), ("model_over_mean4", "max"), ("coverage", "min"))
PER_RESTAURANT_COLUMNS = [
    RESTAURANT,
    FALLBACK,
    "mae_model",
    "mae_naive",
    "mae_mean4",
    "model_over_naive",
    "model_over_mean4",
    "coverage",
    "width",
    "note",
]


def _actuals(hourly: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Each restaurant's hourly cash-in (``order_date``, ``cash_in``), and the chain's total."""
    own = hourly[hourly[RESTAURANT].astype(str) != CHAIN]
    series = {str(name): rows[[ORDER_DATE, CASH_IN]] for name, rows in own.groupby(RESTAURANT, sort=True)}
    series[CHAIN] = chain_total(own)
    return series


def restaurant_scorecard(
    preds: pd.DataFrame, hourly: pd.DataFrame, week: int
) -> tuple[dict[str, float], pd.DataFrame, pd.DataFrame]:
    """Score a long forecast of ``week`` against each restaurant's cash-in.

    Parameters
    ----------
    preds : DataFrame
        predict's long table: ``restaurant``, ``order_date``, ``fallback``, a point forecast and
        (if any) ``y_lower`` / ``y_upper``; the chain's total as its :data:`CHAIN` rows.
    hourly : DataFrame
        Long hourly cash-in (``restaurant``, ``order_date``, ``cash_in``) of ``week`` and the
        weeks before it (four for the 4-week mean).
    week : int

    Returns
    -------
    metrics : dict
        The chain's :func:`score_week` metrics (``mae_model`` ... ``coverage``, ``width``);
        over the *established* restaurants scored (no hour forecast with the fallback: a new
        restaurant's first weeks are apart, as in the backtest), ``median_restaurant_<m>`` and
        ``worst_restaurant_<m>`` for ``model_over_naive``, ``model_over_mean4`` (worst: the
        highest) and ``coverage`` (worst: the lowest); ``restaurants_scored`` and
        ``fallback_restaurants_scored`` (those with fallback hours among them).
    table : DataFrame
        ``restaurant`` then :func:`score_week`'s table of each restaurant scored, the chain first.
    per_restaurant : DataFrame
        One row per restaurant forecast, the chain first: ``fallback`` (1.0 if any of its
        hours was forecast with the fallback), the metrics, and a ``note`` saying why a
        restaurant was not scored (empty otherwise; its metrics are then empty).

    Raises
    ------
    FoodcastError
        If the week has no cash-in yet, or the chain's forecast cannot be scored.
    """
    actuals = _actuals(hourly)
    restaurants = [CHAIN, *(str(r) for r in dict.fromkeys(preds[RESTAURANT]) if str(r) != CHAIN)]
    if CHAIN not in set(preds[RESTAURANT].astype(str)):
        raise FoodcastError(f"the forecast has no {CHAIN!r} rows: it is not a forecast per restaurant")
    split_actuals(actuals[CHAIN], week)  # the week has no data yet: said as for the chain
    chain_metrics: dict[str, float] = {}
    rows, tables = [], []
    for name in restaurants:
        forecast = preds[preds[RESTAURANT].astype(str) == name].set_index(ORDER_DATE)
        row: dict[str, object] = {
            RESTAURANT: name,
            FALLBACK: float((forecast[FALLBACK] > 0).any()) if FALLBACK in forecast.columns else 0.0,
        }
        try:
            if name not in actuals:
                raise FoodcastError(f"no batch of {name} in the weeks read: not scored")
            read = weeks_of(actuals[name][ORDER_DATE])
            if name != CHAIN and not (read == week).any():
                # Closed since, or its batch not imported yet: the other restaurants are scored.
                raise FoodcastError(
                    f"no batch of {name} for week {week} (its last: week {int(read.max())}): not scored"
                )
            truth, history = split_actuals(actuals[name], week, f"the batches of {name}")
            metrics, table = score_week(forecast, truth, history)
        except FoodcastError as exc:
            if name == CHAIN:
                raise
            rows.append({**row, "note": str(exc)})
            continue
        if name == CHAIN:
            chain_metrics = metrics
        rows.append({**row, **metrics, "note": ""})
        table.insert(0, RESTAURANT, name)
        tables.append(table)
    per_restaurant = pd.DataFrame(rows).reindex(columns=PER_RESTAURANT_COLUMNS)
    scored = per_restaurant[(per_restaurant[RESTAURANT] != CHAIN) & (per_restaurant["note"] == "")]
    established = scored[scored[FALLBACK] == 0]
    summary = dict(chain_metrics)
    for metric, worst in SUMMARISED:
        values = established[metric].to_numpy(dtype="float64")
        values = values[~np.isnan(values)]
        if len(values):
            summary[f"median_restaurant_{metric}"] = float(np.median(values))
            summary[f"worst_restaurant_{metric}"] = float(values.max() if worst == "max" else values.min())
    summary["restaurants_scored"] = float(len(scored))
    summary["fallback_restaurants_scored"] = float(len(scored) - len(established))
    return summary, pd.concat(tables, ignore_index=True), per_restaurant
