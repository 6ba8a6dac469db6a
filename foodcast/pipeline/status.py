"""What ``main`` with some parameters would do, without doing it: each stage reused (which run)
or launched (why), as ``python -m foodcast status`` prints it; and the latest forecast, as
``python -m foodcast show`` prints it.

The plan and the cache keys are ``main``'s own (:class:`~foodcast.pipeline.runner.Pipeline`):
nothing is launched, the store is only read. Why a stage would be launched comes from the
newest FINISHED run of the stage in the experiment (one with the same parameters if there is
one): its parameters, and the fingerprints its cache key was made of (tags ``foodcast.key.*``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from foodcast.errors import FoodcastError
from foodcast.pipeline.cache import KEY_PART_PREFIX, find_reusable
from foodcast.pipeline.main_options import check_options, read_params_file, resolve_weeks
from foodcast.pipeline.params import PARAMS_FILE, keyed_params, param_texts
from foodcast.pipeline.plan import NodeKey, Resolution, stage_params
from foodcast.pipeline.runner import Pipeline
from foodcast.pipeline.stage_table import main_params
from foodcast.settings import data_dir
from foodcast.tracking import names

# A key's fingerprints (cache.cache_tags) and what a user calls each.
PARTS = {"sources": "code", "batches": "data", "environment": "environment", "context": "registry's champion"}
COMPARED = 50  # the newest FINISHED runs of a stage looked at for one with the same parameters


@dataclass(frozen=True)
class StageStatus:
    """What main would do with one node: ``reuse`` (``run_id``), ``launch`` (``reason``), or
    ``skip`` (``reason``)."""

    label: str
    action: str
    run_id: str = ""
    reason: str = ""

    def line(self) -> str:
        if self.action == "reuse":
            return f"{self.label}: reuse run {self.run_id}"
        return f"{self.label}: {self.action} ({self.reason})"


def main_options(pairs: list[str]) -> tuple[dict[str, Any], str]:
    """main's checked options from ``-P name=value`` pairs, a parameters file among them filling
    in (as under ``mlflow run``); and the line saying which weeks.

    Raises
    ------
    FoodcastError
        An unknown name, a value of the wrong type, or what main would refuse.
    """
    known = {p.name: p for p in main_params()}
    given: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in known:
            raise FoodcastError(f"-P {pair}: expected name=value with a parameter of main (see python main.py --help)")
        given[name] = value
    if given.get(PARAMS_FILE.name):
        given = {**read_params_file(given[PARAMS_FILE.name], known), **given}
    try:
        options: dict[str, Any] = {
            name: p.cast(given[name]) if name in given else p.default for name, p in known.items()
        }
    except ValueError as exc:
        raise FoodcastError(str(exc)) from None
    weeks = resolve_weeks(options["start_week"], options["end_week"], options["next_week"], data_dir())
    options.update(start_week=weeks.start, end_week=weeks.end, next_week=weeks.next)
    return check_options(options), weeks.line()


def pipeline_status(options: dict[str, Any], experiment_id: str) -> list[StageStatus]:
    """Each node of ``main`` with ``options``, in DAG order, then the nodes it leaves out."""
    pipeline = Pipeline(options, experiment_id=experiment_id)
    client = pipeline.client
    out: list[StageStatus] = []
    launched: set[NodeKey] = set()
    for key, node in pipeline.nodes.items():  # the plan lists a node after those it waits for
        before = [s for s in node.inputs.values() if isinstance(s, tuple)] + list(node.after)
        waiting = [k for k in before if k in launched]
        if waiting:
            launched.add(key)
            out.append(StageStatus(node.label, "launch", reason=f"after {pipeline.nodes[waiting[0]].label}"))
            continue
        params = stage_params(node, options, pipeline.resolved, pipeline.late_values(node))
        ckey = pipeline.node_key(node, params)
        hit = find_reusable(client, experiment_id, node.stage, ckey) if options["use_cache"] else None
        if hit is not None:
            pipeline.resolved[key] = Resolution(hit.info.run_id, "reused", ckey, params)
            out.append(StageStatus(node.label, "reuse", hit.info.run_id))
            continue
        launched.add(key)
        texts = param_texts(node.stage.all_params, params)
        reason = "use_cache=false" if not options["use_cache"] else None
        if reason is None:
            keyed = keyed_params(texts, node.stage.params)  # engine does not make a run another
            reason = why_launched(client, experiment_id, node.stage.name, keyed, pipeline.key_parts[key])
        out.append(StageStatus(node.label, "launch", reason=reason))
    out += [StageStatus(label, "skip", reason=reason) for label, reason in pipeline.skipped]
    return out


def why_launched(
    client: MlflowClient, experiment_id: str, stage: str, texts: Mapping[str, str], parts: Mapping[str, str]
) -> str:
    """Why no FINISHED run of ``stage`` can be reused: what differs from the newest one with
    the same parameters (code, data, environment...), else from the newest one (parameters)."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{names.STEP_TAG}` = '{stage}' AND attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=COMPARED,
    )
    if not runs:
        return "no run yet"
    same = [r for r in runs if all(_param(r, k) == v for k, v in texts.items())]
    if not same:
        changed = [k for k, v in texts.items() if _param(runs[0], k) != v]
        return "parameters changed: " + ", ".join(f"{k} {_param(runs[0], k)} -> {texts[k]}" for k in changed[:4])
    recorded = [(r, {part: r.data.tags.get(KEY_PART_PREFIX + part) for part in PARTS}) for r in same]
    known = [(r, tags) for r, tags in recorded if None not in tags.values()]
    if not known:
        return f"its cache key changed (run {same[0].info.run_id} predates the record of what changed)"
    # the run that differs least (the newest of those): e.g. last week's, not a run made meanwhile on other data
    differences = [[label for part, label in PARTS.items() if tags[part] != parts.get(part, "")] for _, tags in known]
    changed = min(differences, key=len)
    if changed:
        return " and ".join(changed) + " changed"
    run = known[differences.index(changed)][0]
    return f"the outputs of run {run.info.run_id} are gone or changed"


def _param(run: Run, name: str) -> str | None:
    value = run.data.params.get(name)
    return "" if value == "''" else value  # `mlflow run` logs an empty parameter as ''


def latest_forecast(client: MlflowClient, experiment_id: str, week: int | None = None) -> Run:
    """The newest FINISHED predict run of the experiment (of week ``week`` if given).

    Raises
    ------
    FoodcastError
        If there is none.
    """
    query = f"tags.`{names.STEP_TAG}` = '{names.PREDICT}' AND attributes.status = 'FINISHED'"
    if week is not None:
        query += f" AND tags.`{names.WEEK_TAG}` = '{week}'"
    runs = client.search_runs([experiment_id], query, order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        what = f"of week {week} " if week is not None else ""
        raise FoodcastError(f"no FINISHED forecast {what}in experiment {experiment_id}: run the pipeline first")
    return runs[0]


def forecast_table(y_pred: pd.DataFrame) -> pd.DataFrame:
    """A week's hourly forecast (``order_date``, ``y_pred``) as hours (rows, 0-23, then the day's
    total) by weekdays (columns, Mon-Sun), in whole pounds."""
    frame = y_pred.assign(
        day=y_pred["order_date"].dt.day_name().str[:3], hour=y_pred["order_date"].dt.hour.map("{:02d}h".format)
    )
    table = frame.pivot_table(index="hour", columns="day", values="y_pred", aggfunc="sum", sort=True)
    table = table.reindex(columns=[d for d in WEEKDAYS if d in table.columns])
    table.loc["total"] = table.sum()
    return table.round(0).astype(int)


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
