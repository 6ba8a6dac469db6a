"""The ``multi_model`` as MLflow loads it: a MultiModel read from its skops file, never unpickled.

``train`` logs the model *from code* (``mlflow.pyfunc.log_model(python_model=<this file>)``):
MLflow stores this file with the model and runs it when the model is loaded, in place of
unpickling a Python object (which can run arbitrary code). The fitted estimators are in a
skops file, loaded trusting only the types recorded beside it when it was written; the
package code the model needs (``foodcast.core.multi_model`` and what it imports) travels
with the model as its code paths.

The model refuses rows no feature run makes (a NaN level, a weekday of 42, a column it was
not fitted on: :func:`foodcast.core.features.check_feature_frame`) with an MlflowException
of INVALID_PARAMETER_VALUE naming the column, which ``mlflow models serve`` answers with HTTP
400. Its signature declares the outputs only: MLflow drops the columns a declared input
schema lacks before the model sees them, so an input schema would let an unknown column pass.
"""

import json
from typing import Any

import mlflow
import pandas as pd
import skops.io
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc.model import PythonModel, PythonModelContext

from foodcast.core.features import check_feature_frame
from foodcast.errors import FoodcastError

MODEL_ARTIFACT = "multi_model"  # the skops file
TRUSTED_ARTIFACT = "trusted_types"  # the JSON list of the types the skops file may hold


class SkopsMultiModel(PythonModel):
    """Predicts with the MultiModel of the skops file among the model's artifacts."""

    def load_context(self, context: PythonModelContext) -> None:
        with open(context.artifacts[TRUSTED_ARTIFACT], encoding="utf-8") as f:
            trusted = json.load(f)
        self.model = skops.io.load(context.artifacts[MODEL_ARTIFACT], trusted=trusted)

    # Exactly ``pd.DataFrame``: MLflow then neither wraps ``predict`` in its type-hint
    # validation nor warns; check_feature_frame validates the input.
    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Every column of the forecast (``MultiModel.predict_frame``) for valid feature rows.

        Raises
        ------
        MlflowException
            INVALID_PARAMETER_VALUE, naming the column (and row) of what
            :func:`~foodcast.core.features.check_feature_frame` refuses.
        """
        try:
            rows = check_feature_frame(pd.DataFrame(model_input), list(self.model.feature_names_in_))
        except FoodcastError as exc:
            raise MlflowException(f"invalid feature rows: {exc}", error_code=INVALID_PARAMETER_VALUE) from None
        frame: pd.DataFrame = self.model.predict_frame(rows)
        return frame


mlflow.models.set_model(SkopsMultiModel())
