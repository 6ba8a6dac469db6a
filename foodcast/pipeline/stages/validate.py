"""validate: chronological cross-validation of the multi-model on a features run's training set."""

from __future__ import annotations

from foodcast.pipeline import params as p
from foodcast.pipeline.stage import PLOT_PACKAGES, SKLEARN_PACKAGES, Stage
from foodcast.tracking import names

VALIDATE = Stage(
    names.VALIDATE,
    "cross-validates the multi-model chronologically on the training set",
    params=(p.N_FOLD, *p.MODEL_PARAMS, p.RESTAURANT_MODEL, p.ENGINE),
    upstream=(names.FEATURES,),
    artifacts=(names.CV_PREDICTIONS, names.VALIDATION_PLOT),
    packages=(*SKLEARN_PACKAGES, *PLOT_PACKAGES),
    headline_metrics=("MAE_SIMPLE_MEAN", "MAE_MIN_MEAN", "MAE_MAX_MEAN"),
)
