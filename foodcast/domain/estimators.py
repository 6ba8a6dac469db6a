"""The regressors the pipeline can put inside a ``MultiModel``, and the one that builds them.

:data:`TUTORIAL_MODEL` is the seed's model (a random forest of 10 fully grown trees);
:data:`DEFAULT_MODEL` the pipeline's: gradient boosting of the hourly median, on targets
divided by the recent level (:class:`LevelScaledRegressor`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from foodcast.errors import FoodcastError

MODELS = ("random_forest", "gradient_boosting")

#: The tutorial's model: ``MultiModel(RandomForestRegressor(10, random_state=42), 10)``.
TUTORIAL_MODEL = {"model": "random_forest", "n_estimators": 10, "max_depth": 0, "min_samples_leaf": 1,
                  "level_scaled": False}
#: The pipeline's default model (see bench/forecast_accuracy.py for how it was chosen).
DEFAULT_MODEL = {"model": "gradient_boosting", "n_estimators": 100, "max_depth": 5, "min_samples_leaf": 1,
                 "level_scaled": True}


class LevelScaledRegressor(RegressorMixin, BaseEstimator):
    """Fit ``estimator`` on the target divided by a level column; predict times that level.

    The hourly cash-in is a level (which grows and follows the seasons) times a weekly shape
    (which does not move); dividing by the level of the weeks before lets the inner model
    learn the shape from every week of the window alike, and its quantiles scale with the
    level. The level column itself is not given to ``estimator``.

    Parameters
    ----------
    estimator : scikit-learn regressor
        Fitted on the other columns and ``y / X[level_column]``.
    level_column : str, optional
        The column to divide by; by default the only column whose name starts with
        ``level_`` (as made by ``build_features(level_weeks=L)``).
    """

    def __init__(self, estimator=None, level_column: str | None = None):
        self.estimator = estimator
        self.level_column = level_column

    def _split(self, X):
        X = pd.DataFrame(X)
        column = self.level_column
        if column is None:
            found = [c for c in X.columns if str(c).startswith("level_")]
            if len(found) != 1:
                raise FoodcastError(
                    f"a level-scaled model needs exactly one level_ column in its features, got {found}: "
                    "build the features with level_weeks >= 1 (or use level_scaled=false)"
                )
            column = found[0]
        elif column not in X.columns:
            raise FoodcastError(f"the level column {column!r} is not among the features {list(X.columns)}")
        level = X[column].to_numpy(dtype="float64")
        # An empty level (weeks of closure) would make every ratio infinite: such rows scale by 1.
        return X.drop(columns=column), column, np.where(level > 0, level, 1.0)

    def fit(self, X, y):
        """Fit ``estimator`` on ``y / level``.

        Parameters
        ----------
        X : DataFrame
            Features, with the level column.
        y : array-like
            Target.

        Returns
        -------
        LevelScaledRegressor
            ``self``.
        """
        if self.estimator is None:
            raise ValueError("LevelScaledRegressor needs an estimator")
        features, self.level_column_, level = self._split(X)
        self.estimator_ = clone(self.estimator).fit(features, np.asarray(y, dtype="float64").ravel() / level)
        self.feature_names_in_ = np.asarray(pd.DataFrame(X).columns, dtype=object)
        return self

    def predict(self, X):
        """``estimator``'s prediction on the other columns, times the level.

        Parameters
        ----------
        X : DataFrame
            Features, with the level column.

        Returns
        -------
        ndarray
        """
        check_is_fitted(self, "estimator_")
        X = pd.DataFrame(X)
        level = X[self.level_column_].to_numpy(dtype="float64")
        level = np.where(level > 0, level, 1.0)
        return self.estimator_.predict(X.drop(columns=self.level_column_)) * level


def make_estimator(model: str = "gradient_boosting", n_estimators: int = 100, max_depth: int = 5,
                   min_samples_leaf: int = 1, level_scaled: bool = True):
    """One regressor of the forecast, as the pipeline's parameters describe it.

    Parameters
    ----------
    model : {"random_forest", "gradient_boosting"}
        ``RandomForestRegressor(random_state=42)`` (squared error: predicts the mean) or
        ``GradientBoostingRegressor(loss="absolute_error", random_state=42)`` (predicts the
        median, which minimises the absolute error), started from the mean (see Notes).
    n_estimators : int
        Trees of the forest, or boosting stages.
    max_depth : int
        Depth of each tree; 0 means unlimited (the forest's default; not allowed for boosting).
    min_samples_leaf : int
        Fewest training rows in a leaf: larger values stop trees from learning the noise of
        single hours.
    level_scaled : bool
        Wrap the regressor in :class:`LevelScaledRegressor` (needs a ``level_`` feature).

    Returns
    -------
    scikit-learn regressor

    Raises
    ------
    FoodcastError
        On an unknown model or a value out of range.

    Notes
    -----
    scikit-learn's absolute-error boosting starts from the median of the target; more than
    half the hours take no order, so that median is 0, every residual's subgradient then has
    the same sign and no tree ever splits (the model predicts 0 everywhere). Starting from
    the mean (``init=DummyRegressor()``) avoids that tie.
    """
    from sklearn.dummy import DummyRegressor
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor

    n_estimators, max_depth, min_samples_leaf = int(n_estimators), int(max_depth), int(min_samples_leaf)
    if model not in MODELS:
        raise FoodcastError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    if n_estimators < 1 or min_samples_leaf < 1 or max_depth < 0:
        raise FoodcastError(
            f"n_estimators and min_samples_leaf must be >= 1 and max_depth >= 0, got "
            f"{n_estimators}, {min_samples_leaf} and {max_depth}"
        )
    if model == "random_forest":
        # The seed's forest exactly when min_samples_leaf=1 and max_depth=0.
        estimator = RandomForestRegressor(n_estimators=n_estimators, random_state=42,
                                          max_depth=max_depth or None, min_samples_leaf=min_samples_leaf)
    else:
        if max_depth == 0:
            raise FoodcastError("max_depth=0 (unlimited) is for random_forest; boosting needs a depth >= 1")
        estimator = GradientBoostingRegressor(loss="absolute_error", n_estimators=n_estimators,
                                              max_depth=max_depth, min_samples_leaf=min_samples_leaf,
                                              init=DummyRegressor(), random_state=42)
    return LevelScaledRegressor(estimator) if level_scaled else estimator


def make_quantile_estimator(max_depth: int = 5, min_samples_leaf: int = 1, level_scaled: bool = True):
    """Template of the interval's bound models: ``GradientBoostingRegressor(loss="quantile")``.

    Started from the mean, for the reason :func:`make_estimator` gives: the low quantiles of
    hourly cash-in are 0.

    Parameters
    ----------
    max_depth, min_samples_leaf : int
        As in :func:`make_estimator` (``max_depth=0`` gives the boosting default, 3).
    level_scaled : bool
        Wrap it in :class:`LevelScaledRegressor`, like the point model.

    Returns
    -------
    scikit-learn regressor
        Its quantile is set by ``MultiModel``.
    """
    from sklearn.dummy import DummyRegressor
    from sklearn.ensemble import GradientBoostingRegressor

    estimator = GradientBoostingRegressor(loss="quantile", max_depth=int(max_depth) or 3,
                                          min_samples_leaf=int(min_samples_leaf), init=DummyRegressor(),
                                          random_state=42)
    return LevelScaledRegressor(estimator) if level_scaled else estimator


def forecast_model(model: str = "gradient_boosting", n_estimators: int = 100, max_depth: int = 5,
                   min_samples_leaf: int = 1, level_scaled: bool = True, n_models: int = 10,
                   interval_level: float = 0.8, calibration_folds: int = 4):
    """The pipeline's ``MultiModel``, from its parameters.

    ``forecast_model(**TUTORIAL_MODEL)`` is the tutorial's
    ``MultiModel(RandomForestRegressor(10, random_state=42), 10)``; the defaults are
    :data:`DEFAULT_MODEL`.

    Parameters
    ----------
    model, n_estimators, max_depth, min_samples_leaf, level_scaled
        The point model, see :func:`make_estimator`; the interval's bound models share
        ``max_depth``, ``min_samples_leaf`` and ``level_scaled``.
    n_models : int
        Bootstrap members.
    interval_level : float
        Probability of the interval ``[y_lower, y_upper]``, in (0, 1).
    calibration_folds : int
        Blocks of training rows the interval is calibrated on (see ``MultiModel.fit``).

    Returns
    -------
    MultiModel

    Raises
    ------
    FoodcastError
        On a value out of range.
    """
    from foodcast.domain.multi_model import MultiModel

    if int(n_models) < 1:
        raise FoodcastError(f"n_models must be >= 1, got {n_models}")
    if not 0 < float(interval_level) < 1:
        raise FoodcastError(f"interval_level must be between 0 and 1 (exclusive), got {interval_level}")
    return MultiModel(
        make_estimator(model, n_estimators, max_depth, min_samples_leaf, level_scaled),
        n_models=int(n_models),
        interval_level=float(interval_level),
        quantile_estimator=make_quantile_estimator(max_depth, min_samples_leaf, level_scaled),
        calibration_folds=int(calibration_folds),
    )
