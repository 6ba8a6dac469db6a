"""A model that predicts a point forecast, a calibrated interval and the bootstrap members.

``MultiModel`` is the tutorial's model: one estimator fitted on all rows (``y_pred_simple``)
and ``n_models`` clones fitted on bootstrap resamples (``y_pred_0`` ...). It also predicts
``y_pred`` (the point forecast) and ``y_lower`` / ``y_upper``, an interval that holds the
truth with probability ``interval_level``, calibrated on rows its models were not fitted on
(conformalized quantile regression, see :meth:`MultiModel.fit`).

It is a scikit-learn regressor: ``predict(X)`` gives the point forecast, and
:meth:`MultiModel.predict_frame` every column. MLflow serves it through
``foodcast.tracking.pyfunc_model``; the tutorial's ``MultiModel``, which MLflow can also log
as a ``PythonModel``, is ``foodcast.domain.multi_model.MultiModel``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.utils.validation import check_is_fitted

from foodcast.core.columns import LOWER_COLUMN, MEMBER_PREFIX, POINT_COLUMN, SIMPLE_COLUMN, UPPER_COLUMN
from foodcast.core.estimators import make_estimator, make_quantile_estimator
from foodcast.core.model_settings import check_model_settings


def quantile_parameter(estimator: Any) -> str:
    """The parameter that sets the quantile a scikit-learn regressor predicts.

    ``alpha`` of ``GradientBoostingRegressor(loss="quantile")``, ``quantile`` of
    ``HistGradientBoostingRegressor(loss="quantile")`` or ``QuantileRegressor``, also nested
    (``estimator__alpha`` of a wrapper).

    Raises
    ------
    ValueError
        If ``estimator`` has no quantile loss.
    """
    params: dict[str, Any] = estimator.get_params(deep=True)
    for name in params:
        prefix, _, last = name.rpartition("__")
        loss = params.get(f"{prefix}__loss" if prefix else "loss")
        if last == "quantile" or (last == "alpha" and loss == "quantile"):
            return name
    raise ValueError(f"{type(estimator).__name__} does not predict a quantile (no quantile loss)")


class MultiModel(RegressorMixin, BaseEstimator):
    """An estimator fitted on all rows, ``n_models`` bootstrap clones, and a calibrated interval.

    Parameters
    ----------
    estimator : scikit-learn regressor
        Template cloned for the single estimator and every member.
    n_models : int
        Number of bootstrap members (``y_pred_0`` ...).
    interval_level : float
        Probability that ``[y_lower, y_upper]`` holds the truth, in (0, 1).
    quantile_estimator : scikit-learn regressor with a quantile loss, optional
        Template of the two models of the interval's bounds (its quantile parameter is set
        by :func:`quantile_parameter`); default
        ``estimators.make_quantile_estimator(max_depth=3, level_scaled=False)``.
    calibration_folds : int
        Consecutive blocks of training rows the interval is calibrated on: each block is
        scored by bound models fitted on the other blocks.

    Attributes
    ----------
    single_estimator : regressor
        Clone of ``estimator`` fitted on every training row (``y_pred_simple``, and the point
        forecast ``y_pred``).
    estimators_ : list of regressor
        Member ``i`` is fitted on a bootstrap resample drawn with ``random_state=i``.
    lower_estimator_, upper_estimator_ : regressor
        The quantile models of the bounds, fitted on every training row.
    interval_correction_ : float
        How much the calibration widened (or narrowed, if negative) both bounds, in units of
        the predicted band's width.
    """

    def __init__(
        self,
        estimator: Any = None,
        n_models: int = 10,
        interval_level: float = 0.8,
        quantile_estimator: Any = None,
        calibration_folds: int = 4,
    ) -> None:
        self.estimator = estimator
        self.n_models = n_models
        self.interval_level = interval_level
        self.quantile_estimator = quantile_estimator
        self.calibration_folds = calibration_folds

    def _check_params(self) -> None:
        if self.estimator is None:
            raise ValueError("MultiModel needs an estimator")
        if int(self.n_models) < 1:
            raise ValueError(f"n_models must be >= 1, got {self.n_models}")
        if not 0 < float(self.interval_level) < 1:
            raise ValueError(f"interval_level must be in (0, 1), got {self.interval_level}")
        if int(self.calibration_folds) < 2:
            raise ValueError(f"calibration_folds must be >= 2, got {self.calibration_folds}")

    def fit(self, X: Any, y: Any) -> MultiModel:
        """Fit the single estimator, the members and the calibrated interval.

        The interval is conformalized quantile regression (Romano, Patterson and Candès,
        2019), cross-conformal: the rows are cut into ``calibration_folds`` consecutive
        blocks (weeks stay together); the models of the quantiles ``(1 -/+ interval_level) / 2``
        fitted on the other blocks score each block, which they have not seen, with
        ``max(lower - y, y - upper) / (upper - lower + eps)``; the widening ``c`` is the
        conformal quantile of those scores, and the bound models are then fitted on every
        row. A prediction's interval is ``[lower - c * width, upper + c * width]``, except
        that a lower bound of 0 stays 0 (see :meth:`_scores`). Rows
        whose band is ``[0, 0]`` (hours the bound models say never sell, such as the night)
        are certain: their interval stays ``[0, 0]`` and they take no part in the
        calibration, which is done on the other rows alone (a Mondrian split). Otherwise the
        hours that cannot sell, nearly half the week, would count as covered whatever ``c``,
        and an interval at level 0.5 would have to cover almost none of the trading hours.
        Scoring every row rather than a last share of them matters here: the
        hours of a day share that day's luck, so a few weeks of rows hold few independent
        draws, and an interval calibrated on 4 weeks covered 74-76 % at level 0.8 in the
        backtest.

        Parameters
        ----------
        X : DataFrame
            Features, rows in time order.
        y : Series or array
            Target.

        Returns
        -------
        MultiModel
            ``self``.
        """
        self._check_params()
        X = pd.DataFrame(X)
        y = np.asarray(y, dtype="float64").ravel()
        self.single_estimator = clone(self.estimator).fit(X, y)
        n = len(X)
        self.estimators_: list[Any] = []
        for i in range(int(self.n_models)):
            rows = np.random.RandomState(i).randint(0, n, n)
            self.estimators_.append(clone(self.estimator).fit(X.iloc[rows], y[rows]))
        self._fit_interval(X, y)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        return self

    def _fit_interval(self, X: pd.DataFrame, y: np.ndarray) -> None:
        folds = int(self.calibration_folds)
        if len(X) < 2 * folds:
            raise ValueError(f"too few rows ({len(X)}) to calibrate an interval on {folds} folds")
        template = self.quantile_estimator
        if template is None:
            template = make_quantile_estimator(max_depth=3, level_scaled=False)
        name = quantile_parameter(template)
        tail = (1 - float(self.interval_level)) / 2
        # Width floor: 1 % of the mean target, so that an hour whose band collapsed to a point
        # still gets a finite score.
        self.width_floor_ = 0.01 * float(np.mean(np.abs(y))) or 1e-9
        parts: list[np.ndarray] = []
        for block in np.array_split(np.arange(len(X)), folds):
            rest = np.setdiff1d(np.arange(len(X)), block)
            self._fit_bounds(template, name, tail, X.iloc[rest], y[rest])
            lower, upper = self._bounds(X.iloc[block])
            truth = y[block]
            uncertain = upper > 0
            parts.append(self._scores(lower, upper, truth)[uncertain])
        scores = np.concatenate(parts)
        # The conformal quantile: the ceil((n + 1) * level)-th smallest of the n scores.
        rank = min(int(np.ceil((len(scores) + 1) * float(self.interval_level))), len(scores))
        self.interval_correction_ = float(np.sort(scores)[rank - 1]) if len(scores) else 0.0
        self._fit_bounds(template, name, tail, X, y)

    def _scores(self, lower: np.ndarray, upper: np.ndarray, truth: np.ndarray) -> np.ndarray:
        """How much the band must widen (in band widths) to hold each truth; negative: inside.

        A lower bound of 0 stays 0 whatever the correction (cash-in is never negative, and an
        hour without orders is a common outcome, not an error), so it never decides a score.
        """
        below = np.where(lower > 0, lower - truth, -np.inf)
        scores: np.ndarray = np.maximum(below, truth - upper) / (upper - lower + self.width_floor_)
        return scores

    def _fit_bounds(self, template: Any, name: str, tail: float, X: pd.DataFrame, y: np.ndarray) -> None:
        self.lower_estimator_ = clone(template).set_params(**{name: tail}).fit(X, y)
        self.upper_estimator_ = clone(template).set_params(**{name: 1 - tail}).fit(X, y)

    def _bounds(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        lower = np.clip(self.lower_estimator_.predict(X), 0, None)
        upper = np.clip(self.upper_estimator_.predict(X), 0, None)
        # Quantile models fitted apart may cross; the band is between them either way.
        return np.minimum(lower, upper), np.maximum(lower, upper)

    def predict_frame(self, X: Any) -> pd.DataFrame:
        """Every prediction of the model for the rows of ``X``.

        Parameters
        ----------
        X : DataFrame
            Feature rows, columns as in training (reordered if needed).

        Returns
        -------
        DataFrame
            Indexed like ``X``: ``y_pred_0`` .. ``y_pred_{n-1}`` (members), ``y_pred_simple``
            (the estimator fitted on all rows), ``y_pred`` (the point forecast: the same as
            ``y_pred_simple``), ``y_lower`` and ``y_upper`` (the interval at
            ``interval_level``); all clipped at 0, with ``y_lower <= y_pred <= y_upper``.
        """
        check_is_fitted(self, "estimators_")
        X = pd.DataFrame(X)[list(self.feature_names_in_)]
        out = {f"{MEMBER_PREFIX}{i}": np.clip(member.predict(X), 0, None) for i, member in enumerate(self.estimators_)}
        point = np.clip(self.single_estimator.predict(X), 0, None)
        out[SIMPLE_COLUMN] = point
        out[POINT_COLUMN] = point
        lower, upper = self._bounds(X)
        # A [0, 0] band is certain (see fit): it is not widened.
        widening = np.where(upper > 0, self.interval_correction_ * (upper - lower + self.width_floor_), 0.0)
        # The point forecast comes from another model than the bounds: the interval is
        # stretched to hold it, so that y_lower <= y_pred <= y_upper always.
        out[LOWER_COLUMN] = np.minimum(np.where(lower > 0, np.clip(lower - widening, 0, None), 0.0), point)
        out[UPPER_COLUMN] = np.maximum(np.clip(upper + widening, 0, None), point)
        return pd.DataFrame(out, index=X.index)

    def predict(self, X: Any) -> np.ndarray:
        """The point forecast ``y_pred`` as a 1-d array, as a scikit-learn regressor gives it
        (so ``score``, ``cross_val_score`` ... work).

        Parameters
        ----------
        X : DataFrame
            Feature rows, columns as in training.

        Returns
        -------
        ndarray
        """
        return self.predict_frame(X)[POINT_COLUMN].to_numpy()


def forecast_model(
    model: str = "gradient_boosting",
    n_estimators: int = 100,
    max_depth: int = 5,
    min_samples_leaf: int = 1,
    level_scaled: bool = True,
    n_models: int = 10,
    interval_level: float = 0.8,
    calibration_folds: int = 4,
    n_bins: int = 5,
) -> MultiModel:
    """The pipeline's ``MultiModel``, from its parameters.

    ``forecast_model(**TUTORIAL_MODEL)`` is the tutorial's
    ``MultiModel(RandomForestRegressor(10, random_state=42), 10)``; the defaults are
    :data:`foodcast.core.estimators.DEFAULT_MODEL`.

    Parameters
    ----------
    model, n_estimators, max_depth, min_samples_leaf, level_scaled, n_bins
        The point model, see :func:`foodcast.core.estimators.make_estimator`; the interval's
        bound models (:func:`foodcast.core.estimators.make_quantile_estimator`) share
        ``max_depth``, ``min_samples_leaf``, ``level_scaled`` and, for ``model="profile"``, the
        kind of model and ``n_bins``.
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
    check_model_settings(model, n_estimators, max_depth, min_samples_leaf, n_bins, n_models, interval_level)
    return MultiModel(
        make_estimator(model, n_estimators, max_depth, min_samples_leaf, level_scaled, n_bins),
        n_models=int(n_models),
        interval_level=float(interval_level),
        quantile_estimator=make_quantile_estimator(max_depth, min_samples_leaf, level_scaled, model, n_bins),
        calibration_folds=int(calibration_folds),
    )
