"""A model that predicts a point forecast and a band: one estimator plus bootstrap clones."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel
from sklearn.base import BaseEstimator, RegressorMixin, clone


class MultiModel(RegressorMixin, BaseEstimator, PythonModel):
    """An estimator fitted on all rows and ``n_models`` clones fitted on bootstrap resamples.

    It is a scikit-learn regressor (``get_params`` / ``set_params`` / ``clone`` work) and an
    ``mlflow.pyfunc.PythonModel``, so it can be logged with ``mlflow.pyfunc.log_model``.

    Parameters
    ----------
    estimator : scikit-learn regressor
        Template cloned for every member.
    n_models : int
        Number of bootstrap members; their spread is the forecast band.

    Attributes
    ----------
    single_estimator : regressor
        Clone of ``estimator`` fitted on every training row (the "simple" prediction).
    estimators_ : list of regressor
        Member ``i`` is fitted on a bootstrap resample drawn with ``random_state=i``.
    """

    def __init__(self, estimator=None, n_models: int = 10):
        self.estimator = estimator
        self.n_models = n_models

    def fit(self, X, y):
        """Fit the single estimator on all rows and each member on its bootstrap resample.

        Parameters
        ----------
        X : DataFrame
            Features.
        y : Series or array
            Target.

        Returns
        -------
        MultiModel
            ``self``.
        """
        if self.estimator is None:
            raise ValueError("MultiModel needs an estimator")
        if int(self.n_models) < 1:
            raise ValueError(f"n_models must be >= 1, got {self.n_models}")
        X = pd.DataFrame(X)
        y = np.asarray(y, dtype="float64").ravel()
        self.single_estimator = clone(self.estimator).fit(X, y)
        n = len(X)
        self.estimators_ = []
        for i in range(int(self.n_models)):
            rows = np.random.RandomState(i).randint(0, n, n)
            member = clone(self.estimator).fit(X.iloc[rows], y[rows])
            self.estimators_.append(member)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def score(self, X, y, sample_weight=None):
        """R² of the single estimator's prediction (``y_pred_simple``) on ``X``.

        ``RegressorMixin.score`` would call ``predict(X)``, but a pyfunc ``predict`` also
        takes the context.
        """
        from sklearn.metrics import r2_score

        return r2_score(y, self.predict(None, X)["y_pred_simple"], sample_weight=sample_weight)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        """Predictions of every member (clipped at 0) and of the single estimator.

        Parameters
        ----------
        context : mlflow.pyfunc.PythonModelContext or None
            Unused; part of the pyfunc signature.
        model_input : DataFrame
            Feature rows, columns as in training.
        params : dict, optional
            Unused; part of the pyfunc signature.

        Returns
        -------
        DataFrame
            Columns ``y_pred_0`` .. ``y_pred_{n-1}`` and ``y_pred_simple``, indexed like
            ``model_input``.
        """
        X = pd.DataFrame(model_input)
        X = X[list(self.feature_names_in_)]
        out = {
            f"y_pred_{i}": np.clip(member.predict(X), 0, None)
            for i, member in enumerate(self.estimators_)
        }
        out["y_pred_simple"] = np.clip(self.single_estimator.predict(X), 0, None)
        return pd.DataFrame(out, index=X.index)


def random_forest_multi_model(n_estimators: int = 10, n_models: int = 10) -> MultiModel:
    """The pipeline's model: ``MultiModel(RandomForestRegressor(n_estimators, random_state=42), n_models)``."""
    from sklearn.ensemble import RandomForestRegressor

    from foodcast.errors import FoodcastError

    if int(n_estimators) < 1 or int(n_models) < 1:
        raise FoodcastError(f"n_estimators and n_models must be >= 1, got {n_estimators} and {n_models}")
    return MultiModel(RandomForestRegressor(n_estimators=int(n_estimators), random_state=42), int(n_models))
