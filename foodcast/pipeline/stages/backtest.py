"""backtest: the forecast replayed over many past weeks (rolling origin), on demand."""

from __future__ import annotations

from foodcast.core.windows import backtest_weeks, forecast_history
from foodcast.pipeline import params as p
from foodcast.pipeline.stage import PLOT_PACKAGES, SKLEARN_PACKAGES, Options, Stage
from foodcast.tracking import names


def backtest_batch_weeks(options: Options) -> tuple[int, int]:
    """The weeks of batches a backtest reads (``windows.backtest_weeks``): with
    ``granularity=restaurant``, also the ``closed_weeks`` before each target week that tell an
    open restaurant from a closed one (as ``future`` reads them)."""
    history = forecast_history(**options)
    if options.get(p.GRANULARITY.name, p.GRANULARITY.default) == "restaurant":
        history = max(history, options[p.CLOSED_WEEKS.name])
    return backtest_weeks(options["first_week"], options["last_week"], options["window_weeks"], history)


BACKTEST = Stage(
    names.BACKTEST,
    "replays the forecast over many past weeks, each trained on the weeks before it (rolling "
    "origin), next to seasonal naive and the 4-week same-hour mean",
    params=(
        p.FIRST_WEEK,
        p.LAST_WEEK,
        p.WINDOW_WEEKS,
        *p.FEATURE_PARAMS,
        *p.MODEL_PARAMS,
        p.GRANULARITY,
        p.CLOSED_WEEKS,
        p.RESTAURANT_MODEL,
        p.ALLOW_MISSING,
        p.ENGINE,
    ),
    artifacts=(names.BACKTEST_WEEKS, names.BACKTEST_PLOT),
    packages=(*SKLEARN_PACKAGES, *PLOT_PACKAGES, "joblib"),
    batch_weeks=backtest_batch_weeks,
    in_main=False,
)
