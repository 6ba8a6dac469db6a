"""features: the training features and target, from a load run's hourly cash-in."""

from __future__ import annotations

from foodcast.pipeline import params as p
from foodcast.pipeline.stage import Stage
from foodcast.tracking import names

FEATURES = Stage(
    names.FEATURES,
    "builds the training features and target from the hourly cash-in",
    params=(*p.FEATURE_PARAMS, p.ENGINE),
    upstream=(names.LOAD,),
    artifacts=(names.X_TRAIN, names.Y_TRAIN),
)
