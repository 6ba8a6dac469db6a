"""train: the multi-model fitted on a features run's training set, logged and registered."""

from __future__ import annotations

from foodcast.pipeline import params as p
from foodcast.pipeline.stage import SKLEARN_PACKAGES, Stage
from foodcast.tracking import names

TRAIN = Stage(
    names.TRAIN,
    "fits the multi-model on the whole training set and logs it",
    params=(*p.MODEL_PARAMS, p.RESTAURANT_MODEL, p.REGISTERED_MODEL_NAME, p.SET_ALIAS, p.ENGINE),
    upstream=(names.FEATURES,),
    models=(names.SIMPLE_MODEL, names.MULTI_MODEL),
    registers=True,
    packages=(*SKLEARN_PACKAGES, "skops"),
    # under main, promote (which gates the version) points challenger at it
    late=(p.SET_ALIAS.name,),
    late_params=lambda options, runs, client: {p.SET_ALIAS.name: False},
)
