"""predict's table of a forecast per restaurant, to the cent and coherent.

The chain's forecast and its restaurants' add up hour by hour (:mod:`foodcast.core.restaurants`);
written to the cent, each row rounded alone would not add up any more (two restaurants' £1.004
make a chain's £2.008, written £1.00 + £1.00 against £2.01): :func:`to_cents_coherent` rounds
the restaurants' rows and makes the chain's their sum.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from foodcast.core.columns import LOWER_COLUMN, POINT_COLUMN, SIMPLE_COLUMN, UPPER_COLUMN, member_columns
from foodcast.core.restaurants import CHAIN, ORDER_DATE, RESTAURANT


def to_cents_coherent(preds: pd.DataFrame) -> pd.DataFrame:
    """predict's long table with its forecasts to the cent, the chain's still the sum of its
    restaurants'.

    Parameters
    ----------
    preds : DataFrame
        ``restaurant``, ``order_date`` and forecast columns (members ``y_pred_0`` ..,
        ``y_pred_simple``, ``y_pred``, ``y_lower``, ``y_upper``); the chain's rows named
        :data:`CHAIN`, the restaurants' at each of their hours.

    Returns
    -------
    DataFrame
        A copy: every forecast column rounded to the cent; then the chain's members,
        ``y_pred_simple`` and ``y_pred`` replaced by the sums of the restaurants' rounded rows
        of their hour (exact in cents), and its interval stretched to hold ``y_pred``, as
        the model's is.
    """
    out = preds.copy()
    money = [c for c in (*member_columns(out), SIMPLE_COLUMN, POINT_COLUMN, LOWER_COLUMN, UPPER_COLUMN) if c in out]
    out[money] = out[money].astype("float64").round(2)
    chain = (out[RESTAURANT].astype(str) == CHAIN).to_numpy()
    summed = [c for c in money if c not in (LOWER_COLUMN, UPPER_COLUMN)]
    if not chain.any() or not summed:
        return out
    sums = out.loc[~chain].groupby(ORDER_DATE)[summed].sum()
    out.loc[chain, summed] = sums.reindex(out.loc[chain, ORDER_DATE]).round(2).to_numpy()
    if POINT_COLUMN in out:
        point = out.loc[chain, POINT_COLUMN]
        if LOWER_COLUMN in out:
            out.loc[chain, LOWER_COLUMN] = np.minimum(out.loc[chain, LOWER_COLUMN], point)
        if UPPER_COLUMN in out:
            out.loc[chain, UPPER_COLUMN] = np.maximum(out.loc[chain, UPPER_COLUMN], point)
    return out
