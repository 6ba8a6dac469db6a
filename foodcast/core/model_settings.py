"""What makes a set of model parameters valid, without importing scikit-learn: ``main`` checks
its options with it before launching anything, and :mod:`foodcast.core.estimators` before
building the model."""

from __future__ import annotations

from foodcast.errors import FoodcastError

MODELS = ("random_forest", "gradient_boosting", "profile")


def check_model_settings(
    model: str = "gradient_boosting",
    n_estimators: int = 100,
    max_depth: int = 5,
    min_samples_leaf: int = 1,
    n_bins: int = 5,
    n_models: int = 10,
    interval_level: float = 0.8,
    **_ignored: object,
) -> None:
    """Refuse model parameters no model can be built from.

    Parameters
    ----------
    model, n_estimators, max_depth, min_samples_leaf, n_bins, n_models, interval_level
        As :func:`foodcast.core.multi_model.forecast_model` takes them; other keywords
        (``level_scaled``, ``calibration_folds``) are accepted and not checked here.

    Raises
    ------
    FoodcastError
        On an unknown model, a value out of range, or an unlimited depth for boosting.
    """
    if model not in MODELS:
        raise FoodcastError(f"model must be one of {', '.join(MODELS)}, got {model!r}")
    if int(n_estimators) < 1 or int(min_samples_leaf) < 1 or int(max_depth) < 0 or int(n_bins) < 1:
        raise FoodcastError(
            f"n_estimators, min_samples_leaf and n_bins must be >= 1 and max_depth >= 0, got "
            f"{n_estimators}, {min_samples_leaf}, {n_bins} and {max_depth}"
        )
    if model == "gradient_boosting" and int(max_depth) == 0:
        raise FoodcastError("max_depth=0 (unlimited) is for random_forest; boosting needs a depth >= 1")
    if int(n_models) < 1:
        raise FoodcastError(f"n_models must be >= 1, got {n_models}")
    if not 0 < float(interval_level) < 1:
        raise FoodcastError(f"interval_level must be between 0 and 1 (exclusive), got {interval_level}")
