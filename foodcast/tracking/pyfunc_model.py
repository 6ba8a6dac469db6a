"""The ``multi_model`` as MLflow loads it: a MultiModel read from its skops file, never unpickled.

``train`` logs the model *from code* (``mlflow.pyfunc.log_model(python_model=<this file>)``):
MLflow stores this file with the model and runs it when the model is loaded, in place of
unpickling a Python object (which can run arbitrary code). The fitted estimators are in a
skops file, loaded trusting only the types recorded beside it when it was written; the
package code the model needs (``foodcast.core.multi_model`` and what it imports) travels
with the model as its code paths.
"""

import json
from typing import Any

import mlflow
import pandas as pd
import skops.io
from mlflow.pyfunc.model import PythonModel, PythonModelContext

MODEL_ARTIFACT = "multi_model"  # the skops file
TRUSTED_ARTIFACT = "trusted_types"  # the JSON list of the types the skops file may hold


class SkopsMultiModel(PythonModel):
    """Predicts with the MultiModel of the skops file among the model's artifacts."""

    def load_context(self, context: PythonModelContext) -> None:
        with open(context.artifacts[TRUSTED_ARTIFACT], encoding="utf-8") as f:
            trusted = json.load(f)
        self.model = skops.io.load(context.artifacts[MODEL_ARTIFACT], trusted=trusted)

    # Exactly ``pd.DataFrame``: MLflow then neither wraps ``predict`` in its type-hint
    # validation nor warns; the logged signature validates the input.
    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Every column of the forecast (``MultiModel.predict_frame``)."""
        frame: pd.DataFrame = self.model.predict_frame(model_input)
        return frame


mlflow.models.set_model(SkopsMultiModel())
