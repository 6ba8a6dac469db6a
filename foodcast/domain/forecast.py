"""The tutorial's forecast helpers: re-exported from :mod:`foodcast.core.forecast` and, for the
plot, :mod:`foodcast.tracking.plots`."""

from foodcast.core.forecast import cross_validate, span_future
from foodcast.tracking.plots import plotly_predictions

__all__ = ["cross_validate", "plotly_predictions", "span_future"]
