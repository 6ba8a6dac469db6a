"""The columns of a prediction frame, as ``MultiModel.predict_frame`` writes them and the
scoring, the plots and the artifacts read them."""

from __future__ import annotations

import pandas as pd

SIMPLE_COLUMN = "y_pred_simple"  # the estimator fitted on every row (the tutorial's "simple" forecast)
POINT_COLUMN = "y_pred"  # the point forecast
LOWER_COLUMN = "y_lower"  # the interval's bounds
UPPER_COLUMN = "y_upper"
MEMBER_PREFIX = "y_pred_"  # y_pred_0 ...: the bootstrap members
FOLD_COLUMN = "fold"  # cross-validation: the fold a row was predicted in
#: The point forecast's column, by preference (older frames have only the tutorial's).
POINT_COLUMNS = (POINT_COLUMN, SIMPLE_COLUMN)
_NOT_MEMBERS = {SIMPLE_COLUMN, POINT_COLUMN}


def member_columns(preds: pd.DataFrame) -> list[str]:
    """The bootstrap members' prediction columns (``y_pred_0`` ...) of a prediction frame."""
    return [str(c) for c in preds.columns if str(c).startswith(MEMBER_PREFIX) and c not in _NOT_MEMBERS]
