"""The plan of one ``main`` run: a DAG of nodes, each a stage (for a partition) and where its
upstream run ids come from.

A node is a stage with a partition (``None`` for the weekly pipeline's one node per stage; a
week or a restaurant when a stage fans out) and, for each upstream stage, where its run id
comes from: another node of this invocation, or a run chosen beforehand (e.g. an earlier
forecast found in the experiment by its tags).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mlflow.tracking import MlflowClient

from foodcast.pipeline.stage import EarlierRun, Partition, Skipped, Stage
from foodcast.pipeline.stage_table import PIPELINE
from foodcast.tracking import names

NodeKey = tuple[str, str | None]


@dataclass(frozen=True)
class Node:
    """One run to resolve: ``stage`` for ``partition``, its upstream run ids from ``inputs``.

    ``inputs`` maps each upstream stage name to the key of a node of this invocation, or to a
    run id chosen beforehand (an earlier run of the experiment). ``values`` are option values
    of the node's own (e.g. the week a partition scores), over main's.
    """

    stage: Stage
    partition: str | None = None
    inputs: Mapping[str, NodeKey | str] = field(default_factory=dict)
    values: Mapping[str, Any] = field(default_factory=dict)
    after: tuple[NodeKey, ...] = ()  # keys of nodes it waits for besides its inputs

    @property
    def key(self) -> NodeKey:
        return (self.stage.name, self.partition)

    @property
    def label(self) -> str:
        """How lines and descriptions name it: ``predict``, ``evaluate[201]``."""
        return self.stage.name if self.partition is None else f"{self.stage.name}[{self.partition}]"

    @property
    def slug(self) -> str:
        """How tag names name it: ``predict``, ``evaluate.201``."""
        return self.stage.name if self.partition is None else f"{self.stage.name}.{self.partition}"


@dataclass
class Resolution:
    """How a node was resolved in this pipeline run."""

    run_id: str
    status: str  # "reused" or "launched"
    cache_key: str
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = None  # how long its run took (launched) or had taken (reused)


FindEarlier = Callable[[EarlierRun], tuple[str | None, str | None]]


def plan(
    options: Mapping[str, Any],
    pipeline: Iterable[Stage] | None = None,
    find_earlier: FindEarlier | None = None,
    skipped: list[tuple[str, str]] | None = None,
) -> list[Node]:
    """The nodes of one weekly pipeline run: each node of each stage of ``main`` (``pipeline``,
    by default the stage table's); upstream run ids from the nodes of this invocation, or from
    earlier runs of the experiment.

    A node the stage leaves out, whose earlier input cannot be found, or whose upstream node is
    left out, is left out.

    Parameters
    ----------
    options : mapping
        main's checked options.
    pipeline : sequence of Stage, optional
    find_earlier : callable, optional
        ``EarlierRun -> (run id or None, reason)``; without it, nodes needing one are left out.
    skipped : list, optional
        Receives ``(label, reason)`` for each node left out.
    """
    skipped = [] if skipped is None else skipped
    nodes: dict[NodeKey, Node] = {}
    for stage in PIPELINE if pipeline is None else pipeline:
        for spec in stage.plan(options):
            label = Node(stage, spec.name).label
            if isinstance(spec, Skipped):
                skipped.append((label, spec.reason))
                continue
            inputs, reason = _inputs(stage, spec, nodes, find_earlier)
            if reason is not None:
                skipped.append((label, reason))
                continue
            waits = set(stage.waits_for(options)) if stage.waits_for else set()
            after = tuple(key for key in nodes if key[0] in waits)
            node = Node(stage, spec.name, inputs, dict(spec.values), after)
            nodes[node.key] = node
    return list(nodes.values())


def _inputs(
    stage: Stage, spec: Partition, nodes: Mapping[NodeKey, Node], find_earlier: FindEarlier | None
) -> tuple[dict[str, NodeKey | str], str | None]:
    """Where each upstream run id of a node comes from, or why one cannot be found."""
    inputs: dict[str, NodeKey | str] = {}
    for upstream in stage.upstream:
        source = spec.inputs.get(upstream)
        if source is not None:
            run_id, reason = find_earlier(source) if find_earlier else (None, "no store to look in")
            if run_id is None:
                return inputs, reason or f"no earlier {upstream} run"
            inputs[upstream] = run_id
        elif (upstream, None) in nodes:
            inputs[upstream] = (upstream, None)
        else:
            return inputs, f"its upstream {upstream} is left out"
    return inputs, None


def find_earlier_run(client: MlflowClient, experiment_id: str, earlier: EarlierRun) -> tuple[str | None, str | None]:
    """The newest FINISHED run of the experiment matching ``earlier``, unless already used.

    Returns
    -------
    (str or None, str or None)
        The run id and None, or None and why.
    """
    what = " AND ".join(f"tags.`{k}` = '{v}'" for k, v in earlier.tags.items())
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{names.STEP_TAG}` = '{earlier.stage}' AND {what} AND attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    described = ", ".join(f"{k.rsplit('.', 1)[-1]} {v}" for k, v in earlier.tags.items())
    if not runs:
        return None, f"no FINISHED {earlier.stage} run with {described} in the experiment"
    run_id: str = runs[0].info.run_id
    if earlier.unless_used_by:
        used = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{names.STEP_TAG}` = '{earlier.unless_used_by}' AND "
            f"tags.`{names.upstream_tag(earlier.stage)}` = '{run_id}' AND "
            "attributes.status = 'FINISHED'",
            max_results=1,
        )
        if used:
            return None, f"{earlier.stage} run {run_id[:8]} ({described}) has its {earlier.unless_used_by} run already"
    return run_id, None


def stage_params(
    node: Node,
    options: Mapping[str, Any],
    resolved: Mapping[NodeKey, Resolution],
    late: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The node's entry-point parameters: main's option of the same name for each of the
    stage's own parameters (``late`` values for those main works out when the stage is about to
    run), and each upstream run id; cast to the declared types.

    Raises
    ------
    KeyError
        If ``options`` lacks one of the stage's parameters: a parameter renamed on one side
        only is an error, never silently replaced by a default.
    """
    params: dict[str, Any] = {}
    for upstream, source in node.inputs.items():
        run_id = resolved[source].run_id if isinstance(source, tuple) else source
        params[names.run_id_param(upstream)] = run_id
    late = late or {}
    for param in node.stage.params:
        if param.name in node.stage.late:
            if param.name not in late:
                raise KeyError(f"stage {node.stage.name}: no value worked out for {param.name}")
            params[param.name] = param.cast(late[param.name])
            continue
        if param.name not in options:
            raise KeyError(f"stage {node.stage.name} takes {param.name}, which main's options lack")
        params[param.name] = param.cast(options[param.name])
    missing = {p.name for p in node.stage.all_params} - set(params)
    if missing:
        raise KeyError(f"stage {node.stage.name}: no value for {sorted(missing)}")
    return params
