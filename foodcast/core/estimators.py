"""The regressors the pipeline can put inside a ``MultiModel``, and the functions that build them.

:data:`TUTORIAL_MODEL` is the seed's model (a random forest of 10 fully grown trees);
:data:`DEFAULT_MODEL` the pipeline's: the recent level (:class:`LevelScaledRegressor`) times
the hour's place in a typical week (the ``profile_`` feature) times the median of that ratio
for hours of a similar place (:class:`ProfileRatioRegressor`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.utils.validation import check_is_fitted

from foodcast.core.model_settings import check_model_settings
from foodcast.errors import FoodcastError

#: The tutorial's model: ``MultiModel(RandomForestRegressor(10, random_state=42), 10)``.
TUTORIAL_MODEL = {
    "model": "random_forest",
    "n_estimators": 10,
    "max_depth": 0,
    "min_samples_leaf": 1,
    "level_scaled": False,
}
#: The pipeline's default model (see bench/forecast_accuracy.py for how it was chosen);
#: ``n_estimators``, ``max_depth`` and ``min_samples_leaf`` are for the tree models.
DEFAULT_MODEL = {
    "model": "profile",
    "n_estimators": 100,
    "max_depth": 5,
    "min_samples_leaf": 1,
    "level_scaled": True,
    "n_bins": 5,
}


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

    def __init__(self, estimator: Any = None, level_column: str | None = None) -> None:
        self.estimator = estimator
        self.level_column = level_column

    def _split(self, X: Any) -> tuple[pd.DataFrame, str, np.ndarray]:
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

    def fit(self, X: Any, y: Any) -> LevelScaledRegressor:
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

    def predict(self, X: Any) -> np.ndarray:
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
        prediction: np.ndarray = self.estimator_.predict(X.drop(columns=self.level_column_))
        return prediction * level


class ProfileRatioRegressor(RegressorMixin, BaseEstimator):
    """Predict the profile times a quantile of ``y / profile`` among hours of a similar profile.

    The ``profile_`` feature (``build_features(profile_weeks=P)``) is an hour's expected share
    of the week; times the level it is the hour's expected cash-in, the mean of a skewed
    distribution (an hour takes a few orders of uneven value, and often none). The absolute
    error is smallest at the median, below the mean the more so the fewer the orders: this
    model learns that ratio. The hours with a positive profile are cut into ``n_bins`` groups
    of equal size by their profile (its quantiles); each group gets the ``quantile`` of its
    rows' ``y / profile``, a few hundred rows each rather than the handful of weeks one hour
    of the week has. Hours whose profile is 0 (never any trade) predict 0.

    Parameters
    ----------
    quantile : float, default 0.5
        The quantile of the ratio predicted: 0.5 (the median) for a point forecast; the
        bounds of an interval set it (``MultiModel`` does, see ``quantile_parameter``).
    n_bins : int, default 5
        Groups of hours by profile.
    profile_column : str, optional
        The profile column; by default the only column whose name starts with ``profile_``.
        Other columns are ignored.

    Attributes
    ----------
    edges_ : ndarray of shape (n_bins - 1,)
        Profile values between the groups.
    ratios_ : ndarray of shape (n_bins,)
        The ``quantile`` of ``y / profile`` of each group.
    """

    def __init__(self, quantile: float = 0.5, n_bins: int = 5, profile_column: str | None = None) -> None:
        self.quantile = quantile
        self.n_bins = n_bins
        self.profile_column = profile_column

    def _column(self, X: pd.DataFrame) -> str:
        if self.profile_column is not None:
            if self.profile_column not in X.columns:
                raise FoodcastError(
                    f"the profile column {self.profile_column!r} is not among the features {list(X.columns)}"
                )
            return self.profile_column
        found = [c for c in X.columns if str(c).startswith("profile_")]
        if len(found) != 1:
            raise FoodcastError(
                f"the profile model needs exactly one profile_ column in its features, got {found}: build the "
                "features with profile_weeks >= 1"
            )
        return found[0]

    def fit(self, X: Any, y: Any) -> ProfileRatioRegressor:
        """Learn the ratio of each group of hours.

        Parameters
        ----------
        X : DataFrame
            Features, with the profile column.
        y : array-like
            Target (non-negative).

        Returns
        -------
        ProfileRatioRegressor
            ``self``.
        """
        if not 0 <= float(self.quantile) <= 1 or int(self.n_bins) < 1:
            raise ValueError(f"need 0 <= quantile <= 1 and n_bins >= 1, got {self.quantile} and {self.n_bins}")
        X = pd.DataFrame(X)
        self.profile_column_ = self._column(X)
        profile = X[self.profile_column_].to_numpy(dtype="float64")
        y = np.asarray(y, dtype="float64").ravel()
        trading = profile > 0
        if not trading.any():
            raise ValueError("every row has a profile of 0: there is no ratio to learn")
        ratio = y[trading] / profile[trading]
        bins = int(self.n_bins)
        self.edges_ = np.quantile(profile[trading], np.linspace(0, 1, bins + 1)[1:-1])
        group = np.searchsorted(self.edges_, profile[trading], side="right")
        # A group left empty (ties at an edge) takes the ratio of all the hours.
        overall = np.quantile(ratio, float(self.quantile))
        self.ratios_ = np.array(
            [
                np.quantile(ratio[group == k], float(self.quantile)) if (group == k).any() else overall
                for k in range(bins)
            ]
        )
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The profile times its group's ratio (0 where the profile is 0).

        Parameters
        ----------
        X : DataFrame
            Features, with the profile column.

        Returns
        -------
        ndarray
        """
        check_is_fitted(self, "ratios_")
        profile = pd.DataFrame(X)[self.profile_column_].to_numpy(dtype="float64")
        ratio = self.ratios_[np.searchsorted(self.edges_, profile, side="right")]
        return np.where(profile > 0, profile * ratio, 0.0)


def make_estimator(
    model: str = "gradient_boosting",
    n_estimators: int = 100,
    max_depth: int = 5,
    min_samples_leaf: int = 1,
    level_scaled: bool = True,
    n_bins: int = 5,
) -> Any:
    """One regressor of the forecast, as the pipeline's parameters describe it.

    Parameters
    ----------
    model : {"random_forest", "gradient_boosting", "profile"}
        ``RandomForestRegressor(random_state=42)`` (squared error: predicts the mean),
        ``GradientBoostingRegressor(loss="absolute_error", random_state=42)`` (predicts the
        median, which minimises the absolute error), started from the mean (see Notes), or
        :class:`ProfileRatioRegressor` (the median of cash-in over the profile, by groups of
        hours; needs a ``profile_`` feature).
    n_estimators : int
        Trees of the forest, or boosting stages (not used by ``profile``).
    max_depth : int
        Depth of each tree; 0 means unlimited (the forest's default; not allowed for boosting;
        not used by ``profile``).
    min_samples_leaf : int
        Fewest training rows in a leaf: larger values stop trees from learning the noise of
        single hours (not used by ``profile``).
    level_scaled : bool
        Wrap the regressor in :class:`LevelScaledRegressor` (needs a ``level_`` feature).
    n_bins : int, default 5
        Groups of hours of ``profile`` (see :class:`ProfileRatioRegressor`).

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
    check_model_settings(model, n_estimators, max_depth, min_samples_leaf, n_bins)
    n_estimators, max_depth, min_samples_leaf = int(n_estimators), int(max_depth), int(min_samples_leaf)
    if model == "profile":
        estimator = ProfileRatioRegressor(n_bins=int(n_bins))
    elif model == "random_forest":
        # The seed's forest exactly when min_samples_leaf=1 and max_depth=0.
        estimator = RandomForestRegressor(
            n_estimators=n_estimators, random_state=42, max_depth=max_depth or None, min_samples_leaf=min_samples_leaf
        )
    else:
        estimator = GradientBoostingRegressor(
            loss="absolute_error",
            n_estimators=n_estimators,
            max_depth=max_depth,
            min_samples_leaf=min_samples_leaf,
            init=DummyRegressor(),
            random_state=42,
        )
    return LevelScaledRegressor(estimator) if level_scaled else estimator


def make_quantile_estimator(
    max_depth: int = 5,
    min_samples_leaf: int = 1,
    level_scaled: bool = True,
    model: str = "gradient_boosting",
    n_bins: int = 5,
) -> Any:
    """Template of the interval's bound models.

    ``GradientBoostingRegressor(loss="quantile")``, started from the mean for the reason
    :func:`make_estimator` gives (the low quantiles of hourly cash-in are 0); for
    ``model="profile"``, a :class:`ProfileRatioRegressor` (a quantile of the ratio by group).

    Parameters
    ----------
    max_depth, min_samples_leaf : int
        As in :func:`make_estimator` (``max_depth=0`` gives the boosting default, 3).
    level_scaled : bool
        Wrap it in :class:`LevelScaledRegressor`, like the point model.
    model : str, default "gradient_boosting"
        The point model: ``"profile"`` gives bounds of the same kind; any other, boosting.
    n_bins : int, default 5
        Groups of hours of the ``profile`` bounds.

    Returns
    -------
    scikit-learn regressor
        Its quantile is set by ``MultiModel``.
    """
    if model == "profile":
        estimator = ProfileRatioRegressor(n_bins=int(n_bins))
        return LevelScaledRegressor(estimator) if level_scaled else estimator
    estimator = GradientBoostingRegressor(
        loss="quantile",
        max_depth=int(max_depth) or 3,
        min_samples_leaf=int(min_samples_leaf),
        init=DummyRegressor(),
        random_state=42,
    )
    return LevelScaledRegressor(estimator) if level_scaled else estimator
