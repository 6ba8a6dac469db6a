"""Validation metrics, logged in one batch."""

from __future__ import annotations

import time

import mlflow
from mlflow.entities import Metric

from foodcast.domain.forecast import SIMPLE_COLUMN, member_columns


def validation_metrics(maes) -> tuple[list[tuple[str, float, int]], dict[str, float]]:
    """Per-fold and headline metrics from the fold x prediction MAE table of ``cross_validate``.

    Returns
    -------
    per_fold : list of (name, value, step)
        ``MAE_MIN`` / ``MAE_MAX`` over members, ``MAE{j}`` per member j, ``MAE_SIMPLE``;
        step = fold.
    headline : dict
        Means over folds: ``MAE_SIMPLE_MEAN``, ``MAE_MIN_MEAN``, ``MAE_MAX_MEAN``.
    """
    members = maes[member_columns(maes)]
    per_fold = []
    for fold in range(len(maes)):
        row = members.iloc[fold]
        per_fold.append(("MAE_MIN", float(row.min()), fold))
        per_fold.append(("MAE_MAX", float(row.max()), fold))
        per_fold.extend((f"MAE{j}", float(v), fold) for j, v in enumerate(row))
        per_fold.append(("MAE_SIMPLE", float(maes[SIMPLE_COLUMN].iloc[fold]), fold))
    headline = {
        "MAE_SIMPLE_MEAN": float(maes[SIMPLE_COLUMN].mean()),
        "MAE_MIN_MEAN": float(members.min(axis=1).mean()),
        "MAE_MAX_MEAN": float(members.max(axis=1).mean()),
    }
    return per_fold, headline


def log_validation_metrics(maes) -> dict[str, float]:
    """Log :func:`validation_metrics` on the active run; returns the headline metrics."""
    per_fold, headline = validation_metrics(maes)
    now = int(time.time() * 1000)
    metrics = [Metric(name, value, now, step) for name, value, step in per_fold]
    metrics += [Metric(name, value, now, 0) for name, value in headline.items()]
    client = mlflow.tracking.MlflowClient()
    run_id = mlflow.active_run().info.run_id
    for start in range(0, len(metrics), 1000):  # log_batch takes at most 1000 metrics
        client.log_batch(run_id, metrics=metrics[start:start + 1000])
    return headline
