"""evaluate: the weekly scorecard, a week's forecast against the cash-in the week brought."""

from __future__ import annotations

from foodcast.core.windows import scored_weeks
from foodcast.data.coverage import chain_coverage
from foodcast.pipeline import params as p
from foodcast.pipeline.stage import BASE_PACKAGES, PLOT_PACKAGES, EarlierRun, Options, Partition, Skipped, Stage
from foodcast.settings import data_dir
from foodcast.tracking import names


def actuals_missing(options: Options, week: int) -> str | None:
    """Why week ``week``'s actual cash-in cannot be scored against yet (``None``: it can)."""
    coverage = chain_coverage(data_dir(), week, week)
    if week not in coverage.weeks:
        return f"week {week} has no data yet"
    if coverage.missing and not options.get("allow_missing"):
        return f"week {week} is incomplete ({', '.join(map(str, coverage.missing))})"
    return None


def evaluate_nodes(options: Options) -> list[Partition | Skipped]:
    """This run's forecast once its week's batches exist (backfills), and the latest forecast
    of ``end_week`` made by an earlier run, if nobody has scored it yet (each Monday's run
    says how last week's forecast did)."""
    this, last = options["next_week"], options["end_week"]
    reason = actuals_missing(options, this)
    earlier = EarlierRun(names.PREDICT, {names.WEEK_TAG: str(last)}, unless_used_by=names.EVALUATE)
    return [
        Partition(str(this), {"week": this}) if reason is None else Skipped(str(this), reason),
        Partition(str(last), {"week": last}, {names.PREDICT: earlier}),
    ]


EVALUATE = Stage(
    names.EVALUATE,
    "scores a week's forecast against the cash-in that week brought, next to seasonal naive "
    "and the 4-week same-hour mean",
    params=(p.ALLOW_MISSING,),
    upstream=(names.PREDICT,),
    artifacts=(names.EVALUATION, names.EVALUATION_PLOT),
    packages=(*BASE_PACKAGES, *PLOT_PACKAGES),
    batch_weeks=lambda o: scored_weeks(o["week"]),
    nodes=evaluate_nodes,
    headline_metrics=("mae_model", "mae_naive", "mae_mean4", "coverage", "width"),
)
