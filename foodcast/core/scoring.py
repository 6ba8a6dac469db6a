"""How good a week's forecast was, once the week's cash-in is known.

One implementation for the weekly scorecard (the ``evaluate`` stage) and the backtest: the
forecast's mean absolute error next to those of two simple references computed from the weeks
before — seasonal naive (the same hour one week earlier) and the mean of the same hour over the
four previous weeks — and, when the forecast has an interval, how often it held the truth and
how wide it was.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from foodcast.core.columns import LOWER_COLUMN, POINT_COLUMNS, UPPER_COLUMN
from foodcast.core.weeks import weeks_of
from foodcast.core.windows import REFERENCE_WEEKS
from foodcast.errors import FoodcastError


def point_column(preds: pd.DataFrame) -> str:
    """The point forecast's column: ``y_pred``, or the tutorial's ``y_pred_simple``."""
    for column in POINT_COLUMNS:
        if column in preds.columns:
            return column
    raise FoodcastError(f"the predictions have no point forecast column ({' or '.join(POINT_COLUMNS)})")


def references(history: pd.Series, hours: pd.DatetimeIndex) -> pd.DataFrame:
    """Seasonal naive and 4-week same-hour mean forecasts of ``hours``, from ``history``.

    Parameters
    ----------
    history : Series
        Hourly cash-in indexed by timestamp, covering (at least) the week before ``hours``.
    hours : DatetimeIndex
        The hours to forecast (a week).

    Returns
    -------
    DataFrame
        ``naive`` (the same hour a week earlier) and ``mean4`` (mean of the same hour over the
        previous weeks available, up to four), indexed by ``hours``.
    """
    lagged = [history.reindex(hours - pd.Timedelta(weeks=k)).to_numpy() for k in range(1, REFERENCE_WEEKS + 1)]
    naive = lagged[0]
    if np.isnan(naive).any():
        raise FoodcastError("the week before the forecast week is needed for the seasonal naive reference")
    with np.errstate(all="ignore"):
        mean4 = np.nanmean(np.vstack(lagged), axis=0)
    return pd.DataFrame({"naive": naive, "mean4": mean4}, index=hours)


def split_actuals(hourly: pd.DataFrame, week: int, where: str = "the data") -> tuple[pd.Series, pd.Series]:
    """The actual cash-in of ``week`` and of the weeks before it, from an hourly series.

    Parameters
    ----------
    hourly : DataFrame
        ``order_date`` / ``cash_in`` of ``week`` and the weeks before (as ``etl`` gives).
    week : int
    where : str
        Where the data came from, for the message.

    Raises
    ------
    FoodcastError
        If ``week`` has no data yet (its forecast cannot be scored).
    """
    series = pd.Series(hourly["cash_in"].to_numpy(dtype="float64"), index=pd.DatetimeIndex(hourly["order_date"]))
    in_week = (weeks_of(hourly["order_date"]) == week).to_numpy()
    if not in_week.any():
        raise FoodcastError(
            f"week {week} has no data yet in {where}: its forecast can be scored once its batches are imported"
        )
    return series[in_week], series[~in_week]


def score_week(preds: pd.DataFrame, truth: pd.Series, history: pd.Series) -> tuple[dict[str, float], pd.DataFrame]:
    """Score one week's forecast against what happened.

    Parameters
    ----------
    preds : DataFrame
        The forecast indexed by hour: a point column (:func:`point_column`) and, if it has an
        interval, ``y_lower`` and ``y_upper``.
    truth : Series
        The week's actual hourly cash-in, indexed by hour (every hour of the forecast).
    history : Series
        Actual hourly cash-in of the weeks before (one at least, four for the 4-week mean).

    Returns
    -------
    metrics : dict
        ``mae_model``, ``mae_naive``, ``mae_mean4``, ``model_over_naive``, ``model_over_mean4``,
        and with an interval ``coverage`` (share of hours inside it) and ``width`` (mean).
    table : DataFrame
        Per hour: ``order_date``, the forecast columns scored, ``actual``, ``naive``, ``mean4``.
    """
    point = point_column(preds)
    missing = preds.index.difference(truth.index)
    if len(missing):
        raise FoodcastError(f"no actual cash-in for {len(missing)} forecast hours (first: {missing[0]})")
    actual = truth.reindex(preds.index).to_numpy(dtype="float64")
    refs = references(history, pd.DatetimeIndex(preds.index))
    forecast = preds[point].to_numpy(dtype="float64")
    metrics = {
        "mae_model": float(np.mean(np.abs(forecast - actual))),
        "mae_naive": float(np.mean(np.abs(refs["naive"].to_numpy() - actual))),
        "mae_mean4": float(np.mean(np.abs(refs["mean4"].to_numpy() - actual))),
    }
    metrics["model_over_naive"] = metrics["mae_model"] / metrics["mae_naive"] if metrics["mae_naive"] else float("nan")
    metrics["model_over_mean4"] = metrics["mae_model"] / metrics["mae_mean4"] if metrics["mae_mean4"] else float("nan")
    columns = {"order_date": preds.index, point: forecast}
    if {LOWER_COLUMN, UPPER_COLUMN} <= set(preds.columns):
        lower, upper = preds[LOWER_COLUMN].to_numpy(dtype="float64"), preds[UPPER_COLUMN].to_numpy(dtype="float64")
        metrics["coverage"] = float(np.mean((actual >= lower) & (actual <= upper)))
        metrics["width"] = float(np.mean(upper - lower))
        columns.update({LOWER_COLUMN: lower, UPPER_COLUMN: upper})
    columns.update(actual=actual, naive=refs["naive"].to_numpy(), mean4=refs["mean4"].to_numpy())
    return metrics, pd.DataFrame(columns).reset_index(drop=True)
