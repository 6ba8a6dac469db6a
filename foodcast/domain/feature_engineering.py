"""The tutorial's feature functions: re-exported from :mod:`foodcast.core.features`."""

from foodcast.core.features import (
    DEFAULT_FEATURES,
    TUTORIAL_FEATURES,
    build_features,
    features_offline,
    features_online,
)

__all__ = ["DEFAULT_FEATURES", "TUTORIAL_FEATURES", "build_features", "features_offline", "features_online"]
