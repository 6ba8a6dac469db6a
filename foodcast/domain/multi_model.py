"""The tutorial's ``MultiModel``: the core's (:mod:`foodcast.core.multi_model`), which MLflow
can also log as a ``PythonModel`` (``mlflow.pyfunc.log_model(python_model=model)``).

Its ``predict`` takes both call forms: ``model.predict(X)`` (scikit-learn) returns the point
forecast, ``model.predict(context, X)`` (pyfunc, and the tutorial's ``model.predict(None, X)``)
every column (``predict_frame``). MLflow's pyfunc wrapper sees a ``context`` parameter in
``predict``'s signature and so calls ``predict(context, model_input, params=...)``: a loaded or
served model returns the frame. The pipeline logs the core's model through
``foodcast.tracking.pyfunc_model`` instead, without pickle.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from mlflow.pyfunc.model import PythonModel

from foodcast.core.multi_model import MultiModel as CoreMultiModel
from foodcast.core.multi_model import quantile_parameter

__all__ = ["MultiModel", "quantile_parameter"]


class MultiModel(CoreMultiModel, PythonModel):
    """:class:`foodcast.core.multi_model.MultiModel`, loggable as a pyfunc ``PythonModel``."""

    # The hint is exactly ``pd.DataFrame`` (not ``| None``): MLflow, which inspects ``predict``
    # when the class is created, then neither wraps it in its type-hint validation nor warns
    # that hints are missing.
    def predict(self, context: Any = None, model_input: pd.DataFrame = None, params: Any = None) -> Any:  # type: ignore[assignment]
        """The point forecast (scikit-learn form), or every column (pyfunc form).

        Parameters
        ----------
        context : DataFrame, or mlflow.pyfunc.PythonModelContext or None
            The features when called with one argument; otherwise the pyfunc context (unused).
        model_input : DataFrame, optional
            The features, in the pyfunc form.
        params : dict, optional
            Unused; part of the pyfunc signature.

        Returns
        -------
        ndarray or DataFrame
        """
        if model_input is None:
            return super().predict(context)
        return self.predict_frame(model_input)
