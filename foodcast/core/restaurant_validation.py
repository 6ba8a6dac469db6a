"""Chronological cross-validation of a model per restaurant (``validate`` with
``granularity=restaurant``).

The training set is long (every restaurant's rows, then the chain's, each hour once per
restaurant): the folds of :func:`foodcast.core.forecast.cross_validate` would cut it by rows,
that is by restaurant. Here they cut the chain's hours, as ``TimeSeriesSplit`` cuts the chain's
series: each fold is a block of hours, predicted for every restaurant and the chain by a model
fitted on every row before it. (Written beside ``foodcast.core.restaurants``, which another
helper owns.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import TimeSeriesSplit

from foodcast.core.columns import FOLD_COLUMN, SIMPLE_COLUMN, member_columns
from foodcast.core.forecast import fold_maes
from foodcast.core.restaurants import CHAIN, RESTAURANT
from foodcast.errors import FoodcastError


def cross_validate_restaurants(
    model: Any, x: pd.DataFrame, y: pd.Series, n_fold: int = 10
) -> tuple[np.ndarray, pd.DataFrame, pd.Series]:
    """Cross-validate a ``RestaurantModel`` on long rows, in folds of hours.

    Parameters
    ----------
    model : RestaurantModel
        Cloned and fitted on each fold's past hours (every restaurant's rows and the chain's).
    x : DataFrame
        ``training_rows`` without ``cash_in``, indexed by ``order_date``: ``restaurant``,
        ``fallback`` and the features.
    y : Series
        ``cash_in``, row by row with ``x``.
    n_fold : int
        Number of folds (>= 2), each a block of the chain's consecutive hours.

    Returns
    -------
    maes : ndarray of shape (n_fold, n_members)
        The MAE of each member on the chain's rows of each fold (as ``cross_validate`` gives the
        chain's).
    preds : DataFrame
        The out-of-fold predictions of every row predicted, indexed by ``order_date``:
        ``restaurant``, ``fallback``, the members, ``y_pred_simple``, ``y_pred``, ``y_lower``,
        ``y_upper``, ``cash_in`` (the truth) and ``fold``. A restaurant first seen in a fold's
        hours is not predicted in that fold (the model fitted before knows nothing of it).
    truth : Series
        The chain's ``cash_in`` at the hours of its predicted rows, indexed by ``order_date``.

    Raises
    ------
    FoodcastError
        If ``n_fold`` < 2 or the chain has no more hours than folds.
    """
    n_fold = int(n_fold)
    if n_fold < 2:
        raise FoodcastError(f"n_fold must be >= 2, got {n_fold}")
    stamps = pd.DatetimeIndex(x.index).to_numpy()
    names = x[RESTAURANT].astype(str).to_numpy()
    # The folds split the chain's hours: a restaurant's rows may start earlier (its fallback
    # needs less history than the chain's features), and every fold's model needs chain rows.
    hours = np.unique(stamps[names == CHAIN])
    if len(hours) <= n_fold:
        raise FoodcastError(f"cannot split {len(hours)} training hours of the chain into {n_fold} folds")
    target = np.asarray(y, dtype="float64")
    frames = []
    for fold, (_, block) in enumerate(TimeSeriesSplit(n_splits=n_fold).split(hours)):
        train = stamps < hours[block].min()  # every row before the fold's hours
        fitted = clone(model).fit(x[train], target[train])
        test = np.isin(stamps, hours[block]) & np.isin(names, [*fitted.restaurants_, CHAIN])
        pred = fitted.predict_frame(x[test])
        pred["cash_in"] = target[test]
        pred[FOLD_COLUMN] = fold
        frames.append(pred)
    preds = pd.concat(frames)
    chain = preds[preds[RESTAURANT] == CHAIN]
    truth = chain["cash_in"]
    maes = fold_maes(chain.drop(columns=[RESTAURANT]), truth.to_numpy())
    members = member_columns(maes) or [SIMPLE_COLUMN]
    return maes[members].to_numpy(), preds, truth
