"""predict: the week's forecast, with this run's trained model or the registered champion."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from foodcast.errors import FoodcastError
from foodcast.pipeline import params as p
from foodcast.pipeline.stage import PLOT_PACKAGES, SKLEARN_PACKAGES, Options, Stage
from foodcast.tracking import names

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


def predict_model(options: Options, runs: Mapping[str, str], client: MlflowClient) -> dict[str, Any]:
    """The model predict uses: this run's train stage, or the registered champion (as the
    version it is now, so that the cache key names one model)."""
    if options["model"] == "trained":
        return {p.TRAIN_RUN_ID.name: runs[names.TRAIN], p.MODEL_URI.name: ""}
    name = options[p.REGISTERED_MODEL_NAME.name]
    found = client.search_registered_models(filter_string=f"name = '{name}'")
    version = found[0].aliases.get(names.CHAMPION) if found else None
    if version is None:
        raise FoodcastError(
            f"model=champion: the registered model {name!r} has no champion (its alias champion points at "
            "no version, and promote kept the challenger): point the alias at a version, or use model=trained"
        )
    return {p.TRAIN_RUN_ID.name: "", p.MODEL_URI.name: f"models:/{name}/{version}"}


PREDICT = Stage(
    names.PREDICT,
    "forecasts the week with the trained model",
    params=(p.TRAIN_RUN_ID, p.MODEL_URI, p.ENGINE),
    upstream=(names.FUTURE,),
    artifacts=(names.Y_PRED, names.PREDICTIONS_PLOT),
    packages=(*SKLEARN_PACKAGES, "skops", *PLOT_PACKAGES),
    late=(p.TRAIN_RUN_ID.name, p.MODEL_URI.name),
    late_params=predict_model,
    waits_for=lambda o: (names.TRAIN,) if o["model"] == "trained" else (names.PROMOTE,),
)
