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

A restaurant model (``foodcast.core.restaurants.RestaurantModel``, trained on a long feature
table) takes long rows as the future stage writes them: ``restaurant``, ``order_date``,
``fallback`` (0 or 1) and the features, the chain's total as the rows whose restaurant is
``chain``; it answers the long forecast, ``restaurant``, ``order_date`` and ``fallback`` first.
Beyond the feature checks, it refuses a restaurant it was not trained on, in one line naming
it. The rows of one hour are made coherent together (``RestaurantModel.predict_frame``): the
chain's forecast is shared among (or summed from) the restaurant rows of its hour *in the
request*, so a request with chain rows carries every restaurant's rows of those hours, as
future's ``x_pred`` does; a request without chain rows gets each restaurant's own forecast.
"""

import json
from typing import Any

import mlflow
import numpy as np
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
        # The long columns of a restaurant model; none for a chain model, whose code (logged
        # with it) has no restaurants module.
        self.long_columns: list[str] = []
        self.chain = self.order_date = ""
        if hasattr(self.model, "restaurants_"):
            from foodcast.core import restaurants  # noqa: PLC0415 - a restaurant model's code only has it

            self.long_columns = [restaurants.RESTAURANT, restaurants.ORDER_DATE, restaurants.FALLBACK]
            self.chain, self.order_date = restaurants.CHAIN, restaurants.ORDER_DATE

    # Exactly ``pd.DataFrame``: MLflow then neither wraps ``predict`` in its type-hint
    # validation nor warns; check_feature_frame validates the input.
    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        """Every column of the forecast (``MultiModel.predict_frame``) for valid feature rows; of
        a restaurant model, the long forecast (:meth:`_predict_long`).

        Raises
        ------
        MlflowException
            INVALID_PARAMETER_VALUE, naming the column (and row) of what
            :func:`~foodcast.core.features.check_feature_frame` refuses, or the unknown
            restaurant.
        """
        frame = pd.DataFrame(model_input)
        if self.long_columns:
            return self._predict_long(frame)
        try:
            rows = check_feature_frame(frame, list(self.model.feature_names_in_))
        except FoodcastError as exc:
            raise MlflowException(f"invalid feature rows: {exc}", error_code=INVALID_PARAMETER_VALUE) from None
        predicted: pd.DataFrame = self.model.predict_frame(rows)
        return predicted

    def _predict_long(self, frame: pd.DataFrame) -> pd.DataFrame:
        """A restaurant model's forecast of long rows, in their order: ``restaurant``,
        ``order_date``, ``fallback`` and every column of ``RestaurantModel.predict_frame``."""
        try:
            rows = self._check_long(frame)
            predicted: pd.DataFrame = self.model.predict_frame(rows.set_index(self.order_date))
        except FoodcastError as exc:
            raise MlflowException(f"invalid feature rows: {exc}", error_code=INVALID_PARAMETER_VALUE) from None
        predicted.insert(1, self.order_date, predicted.index)
        return predicted.reset_index(drop=True)

    def _check_long(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The long rows as the model takes them: a known restaurant's name (or the chain's), a
        timestamp, a fallback of 0 or 1 and valid features (check_feature_frame); else the
        first problem in one line, naming the column and row, or the unknown restaurant."""
        restaurant, order_date, fallback = self.long_columns
        for column in self.long_columns:
            if column not in frame.columns:
                raise FoodcastError(
                    f"missing column {column!r}: a restaurant model's rows are {', '.join(self.long_columns)} "
                    "and the features"
                )
        names = frame[restaurant]
        not_names = ~names.map(lambda value: isinstance(value, str)).to_numpy(dtype=bool)
        if not_names.any():
            row = int(not_names.argmax())
            raise FoodcastError(f"row {row + 1}, column {restaurant!r}: not a restaurant's name: {names.iloc[row]!r}")
        trained = list(self.model.restaurants_)
        unknown = [name for name in dict.fromkeys(names) if name not in {*trained, self.chain}]
        if unknown:
            listed = ", ".join(trained[:5]) + (f" ... ({len(trained)} restaurants)" if len(trained) > 5 else "")
            raise FoodcastError(
                f"unknown restaurant {unknown[0]!r}: the model forecasts {listed} and {self.chain!r} (their total)"
            )
        stamps = pd.to_datetime(frame[order_date], errors="coerce", format="mixed")
        bad = stamps.isna().to_numpy(dtype=bool)
        if bad.any():
            row = int(bad.argmax())
            value = frame[order_date].iloc[row]
            raise FoodcastError(f"row {row + 1}, column {order_date!r}: not a timestamp: {value!r}")
        flags = pd.to_numeric(frame[fallback], errors="coerce")
        bad = ~flags.isin([0.0, 1.0]).to_numpy(dtype=bool)
        if bad.any():
            row = int(bad.argmax())
            value = frame[fallback].iloc[row]
            value = value.item() if isinstance(value, np.generic) else value
            raise FoodcastError(f"row {row + 1}, column {fallback!r}: not 0 or 1: {value!r}")
        features = check_feature_frame(frame.drop(columns=self.long_columns), list(self.model.feature_names_in_))
        return pd.concat(
            [names.rename(restaurant), stamps.rename(order_date), flags.astype("float64").rename(fallback), features],
            axis=1,
        )


mlflow.models.set_model(SkopsMultiModel())
