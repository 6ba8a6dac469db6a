"""Metrics logged in batches: validation's per fold, a backtest's per week."""

from __future__ import annotations

import time
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from foodcast.core.columns import SIMPLE_COLUMN
from foodcast.core.forecast import fold_maes


def validation_metrics(maes: Any, simple_maes: Any) -> tuple[list[tuple[str, float, int]], dict[str, float]]:
    """Per-fold and headline metrics of a cross-validation.

    Parameters
    ----------
    maes : array of shape (n_fold, n_members)
        ``cross_validate``'s MAE of each member on each fold.
    simple_maes : array of shape (n_fold,)
        The MAE of ``y_pred_simple`` on each fold.

    Returns
    -------
    per_fold : list of (name, value, step)
        ``MAE_MIN`` / ``MAE_MAX`` over members, ``MAE{j}`` per member j, ``MAE_SIMPLE``;
        step = fold.
    headline : dict
        Means over folds: ``MAE_SIMPLE_MEAN``, ``MAE_MIN_MEAN``, ``MAE_MAX_MEAN``.
    """
    maes = np.asarray(maes, dtype="float64")
    simple_maes = np.asarray(simple_maes, dtype="float64")
    per_fold: list[tuple[str, float, int]] = []
    for fold, row in enumerate(maes):
        per_fold.append(("MAE_MIN", float(row.min()), fold))
        per_fold.append(("MAE_MAX", float(row.max()), fold))
        per_fold.extend((f"MAE{j}", float(v), fold) for j, v in enumerate(row))
        per_fold.append(("MAE_SIMPLE", float(simple_maes[fold]), fold))
    headline = {
        "MAE_SIMPLE_MEAN": float(simple_maes.mean()),
        "MAE_MIN_MEAN": float(maes.min(axis=1).mean()),
        "MAE_MAX_MEAN": float(maes.max(axis=1).mean()),
    }
    return per_fold, headline


def log_validation_metrics(maes: np.ndarray, preds: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    """Log :func:`validation_metrics` of ``cross_validate``'s ``maes, preds`` on the active run.

    Returns the headline metrics.
    """
    per_fold, headline = validation_metrics(maes, fold_maes(preds, y)[SIMPLE_COLUMN].to_numpy())
    now = int(time.time() * 1000)
    metrics = [Metric(name, value, now, step) for name, value, step in per_fold]
    metrics += [Metric(name, value, now, 0) for name, value in headline.items()]
    _log(metrics)
    return headline


def log_step_metrics(table: pd.DataFrame, step: str) -> None:
    """Log every numeric column of ``table`` as a metric of the active run, one value per row
    with the row's ``step`` column as the step (e.g. a backtest's weeks)."""
    now = int(time.time() * 1000)
    columns = [c for c in table.columns if c != step and table[c].dtype.kind in "fi"]
    _log([Metric(c, float(row[c]), now, int(row[step])) for _, row in table.iterrows() for c in columns])


def _log(metrics: list[Metric]) -> None:
    client = MlflowClient()
    active = mlflow.active_run()
    if active is None:
        raise RuntimeError("metrics are logged on the active run, and there is none")
    run_id = active.info.run_id
    for start in range(0, len(metrics), 1000):  # log_batch takes at most 1000 metrics
        client.log_batch(run_id, metrics=metrics[start : start + 1000])
