"""future: the prediction set of the week to forecast, from the batches of the weeks before it."""

from __future__ import annotations

from foodcast.core.windows import forecast_weeks
from foodcast.pipeline import params as p
from foodcast.pipeline.stage import Options, Stage
from foodcast.tracking import names


def future_weeks(options: Options) -> tuple[int, int]:
    """The weeks of batches the prediction set of ``next_week`` is built from (from week 1): those
    its features reach back to, and with ``granularity=restaurant`` at least the ``closed_weeks``
    weeks that tell an open restaurant from a closed one."""
    first, last = forecast_weeks(**options)
    if options.get(p.GRANULARITY.name, p.GRANULARITY.default) == "restaurant":
        first = min(first, options["next_week"] - options[p.CLOSED_WEEKS.name])
    return max(first, 1), last


FUTURE = Stage(
    names.FUTURE,
    "builds the prediction set of the week to forecast from the weeks before it",
    params=(p.NEXT_WEEK, *p.FEATURE_PARAMS, p.ALLOW_MISSING, p.GRANULARITY, p.CLOSED_WEEKS, p.ENGINE),
    artifacts=(names.X_PRED,),
    batch_weeks=future_weeks,
)
