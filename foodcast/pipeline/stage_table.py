"""The stage table: every stage of the pipeline, in DAG order, and what is read from it.

Each stage is defined once, in its module of ``foodcast.pipeline.stages``
(:class:`~foodcast.pipeline.stage.Stage`: its entry point's typed parameters, its upstream
stages, what it leaves behind, which batch weeks it reads, which distributions its results
depend on, whether and when ``main`` runs it). From this table come ``main``'s options, the
DAG, the cache keys and reuse checks, the lineage lines, the tests and ``bench/``.

``MLproject`` stays hand-written and readable; :func:`mlproject_disagreements` (run by ``main``
and ``tests/test_stages.py``) checks that it agrees with this table (names, types, defaults,
commands).

Imports nothing heavy: ``main --help`` reads it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any

import yaml

from foodcast.pipeline.params import MAIN_ONLY, MAIN_OVERRIDES, MLPROJECT_TYPES, Param
from foodcast.pipeline.stage import Stage
from foodcast.pipeline.stages.backtest import BACKTEST
from foodcast.pipeline.stages.evaluate import EVALUATE
from foodcast.pipeline.stages.features import FEATURES
from foodcast.pipeline.stages.future import FUTURE
from foodcast.pipeline.stages.load import LOAD
from foodcast.pipeline.stages.predict import PREDICT
from foodcast.pipeline.stages.promote import PROMOTE
from foodcast.pipeline.stages.train import TRAIN
from foodcast.pipeline.stages.validate import VALIDATE
from foodcast.tracking import names

# In an order in which every stage comes after those it takes from or waits for.
STAGES: dict[str, Stage] = {
    s.name: s for s in (LOAD, FEATURES, VALIDATE, TRAIN, PROMOTE, FUTURE, PREDICT, EVALUATE, BACKTEST)
}
PIPELINE = tuple(s for s in STAGES.values() if s.in_main)
# The pipeline's product, named in main's summary line: (stage, artifact).
FORECAST = (names.PREDICT, names.Y_PRED)


def main_params(pipeline: Iterable[Stage] | None = None) -> tuple[Param, ...]:
    """``main``'s parameters: every parameter its stages consume (once, in stage order, as main
    reads it), then its own. An option no stage consumes cannot be declared.

    Raises
    ------
    ValueError
        If two stages declare a parameter of the same name differently.
    """
    seen: dict[str, Param] = {}
    for stage in PIPELINE if pipeline is None else pipeline:
        for param in stage.params:
            if param.name in stage.late:
                continue  # worked out by main when the stage runs
            mine = MAIN_OVERRIDES.get(param.name, param)
            if param.name in seen and (seen[param.name].type, seen[param.name].default) != (mine.type, mine.default):
                raise ValueError(f"stages disagree on parameter {param.name}: {seen[param.name]} vs {mine}")
            seen.setdefault(param.name, mine)
    for param in MAIN_ONLY:
        if param.name in seen:
            raise ValueError(f"main's own parameter {param.name} is also a stage parameter")
        seen[param.name] = param
    weeks = [p for p in seen.values() if p.name in ("start_week", "end_week", "next_week")]  # what a user sets first
    return tuple(weeks + [p for p in seen.values() if p not in weeks])


def stage(name: str) -> Stage:
    """The registered stage ``name``."""
    try:
        return STAGES[name]
    except KeyError:
        raise KeyError(f"no stage {name!r}; the stage table has {', '.join(STAGES)}") from None


def check_stage_table(table: dict[str, Stage] | None = None) -> None:
    """Refuse an inconsistent stage table: unknown or cyclic upstream stages, parameter clashes.

    Parameters
    ----------
    table : dict, optional
        ``{name: Stage}``; this module's ``STAGES`` by default.

    Raises
    ------
    ValueError
        Saying which stage and what.
    """
    table = STAGES if table is None else table
    for s in table.values():
        for u in s.upstream:
            if u not in table:
                raise ValueError(f"stage {s.name}: unknown upstream stage {u}")
            if s.in_main and not table[u].in_main:
                raise ValueError(f"stage {s.name} runs in main but its upstream {u} does not")
        declared = [p.name for p in s.all_params]
        if len(declared) != len(set(declared)):
            raise ValueError(f"stage {s.name}: a parameter is declared twice: {declared}")
        for p in s.all_params:
            if p.type not in MLPROJECT_TYPES:
                raise ValueError(f"stage {s.name}: parameter {p.name} has unsupported type {p.type}")
    try:
        TopologicalSorter({s.name: s.upstream for s in table.values()}).prepare()
    except CycleError as exc:
        raise ValueError(f"the stages form a cycle: {exc.args[1]}") from None
    main_params([s for s in table.values() if s.in_main])


def mlproject_params(params: Iterable[Param]) -> dict[str, dict[str, Any]]:
    """How MLproject declares ``params``: ``{name: {"type": ..., "default": ...}}``."""
    out = {}
    for p in params:
        spec: dict[str, Any] = {"type": MLPROJECT_TYPES[p.type]}
        if not p.required:
            spec["default"] = p.text(p.default) if p.type is bool else p.default
        out[p.name] = spec
    return out


def mlproject_disagreements(project_dir: str | Path) -> list[str]:
    """Where ``MLproject`` and this stage table disagree, one line each (empty: they agree).

    Checks every stage's entry point: parameter names, types and defaults, and that the command
    passes each parameter as its option (``--name {name}``). ``main`` declares none and its
    command is ``python main.py``: ``mlflow run`` passes each ``-P`` on as an option, so that main
    tells the parameters given from the others (whose defaults may follow from the data).
    """
    with open(os.path.join(project_dir, "MLproject"), encoding="utf-8") as f:
        entry_points = yaml.safe_load(f)["entry_points"]
    expected = {s.name: s.all_params for s in STAGES.values()}
    problems = []
    main = entry_points.get(names.MAIN) or {}
    if main.get("parameters"):
        problems.append("MLproject entry point main declares parameters: main takes them as -P, undeclared")
    if " ".join(str(main.get("command", "")).split()) != "python main.py":
        problems.append("MLproject entry point main: its command must be `python main.py`")
    for name, params in expected.items():
        entry = entry_points.get(name)
        if entry is None:
            problems.append(f"MLproject has no entry point {name}")
            continue
        declared = {}
        for param, spec in (entry.get("parameters") or {}).items():
            declared[param] = spec if isinstance(spec, dict) else {"type": spec}
            declared[param].setdefault("type", "string")
        wanted = mlproject_params(params)
        for param in sorted(set(declared) | set(wanted)):
            if param not in wanted:
                problems.append(f"MLproject entry point {name} declares {param}, which the stage table does not")
            elif param not in declared:
                problems.append(f"MLproject entry point {name} lacks parameter {param}")
            elif declared[param] != wanted[param]:
                problems.append(
                    f"MLproject entry point {name}, parameter {param}: {declared[param]} "
                    f"but the stage table says {wanted[param]}"
                )
        command = " ".join(str(entry.get("command", "")).split())
        for p in params:
            if f"{p.option} {{{p.name}}}" not in command:
                problems.append(f"MLproject entry point {name}: its command does not pass {p.option} {{{p.name}}}")
    return problems


def levels(pipeline: Sequence[Stage] | None = None) -> tuple[tuple[str, ...], ...]:
    """The stages of ``main`` by depth in the DAG, with its default options: a level's stages can
    run at the same time."""
    pipeline = PIPELINE if pipeline is None else tuple(pipeline)
    defaults = {p.name: p.default for p in main_params(pipeline)}
    depth: dict[str, int] = {}
    for s in pipeline:  # the table lists a stage after those it takes from or waits for
        before = set(s.upstream) | set(s.waits_for(defaults) if s.waits_for else ())
        depth[s.name] = 1 + max((depth[u] for u in before if u in depth), default=-1)
    return tuple(tuple(s.name for s in pipeline if depth[s.name] == d) for d in range(max(depth.values()) + 1))
