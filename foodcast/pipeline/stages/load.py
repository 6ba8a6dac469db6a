"""load: the chain's hourly cash-in of the training weeks (or each restaurant's), from the weekly batches."""

from __future__ import annotations

from foodcast.pipeline import params as p
from foodcast.pipeline.stage import Stage
from foodcast.tracking import names

LOAD = Stage(
    names.LOAD,
    "reads the weekly batches of the training weeks into the chain's hourly cash-in (or each restaurant's)",
    params=(p.START_WEEK, p.END_WEEK, p.ALLOW_MISSING, p.GRANULARITY, p.ENGINE),
    artifacts=(names.DATA,),
    batch_weeks=lambda o: (o["start_week"], o["end_week"]),
)
