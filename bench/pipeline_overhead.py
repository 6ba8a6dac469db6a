"""Cold pipeline: `mlflow run` of the whole project vs the same work in one Python process,
vs the floor the design allows; and where the difference goes.

Per repeat, side by side (each in a fresh, initialised, empty sqlite store):

* noop  - ``python -m mlflow run <repo> -e noop --env-manager local``
* cold  - ``python -m mlflow run <repo> --env-manager local`` (default parameters: weeks
  180-200, forecast 201); every stage launched, each in a fork of main's fork server
* cold, stages started cold - the same with ``FOODCAST_PREFORK=0`` (each stage command runs
  in its own fresh interpreter), for comparison
* in-process - this file with ``--worker-inprocess`` in a new interpreter: imports what the
  stages and main import, then does main's work (parent run, cache keys and lookups,
  lineage) and runs the step commands' click callbacks one after the other, each resuming a
  child run created under the parent as ``mlflow run`` would (``MLFLOW_RUN_ID``), in one process
* per stage, a bare interpreter importing what that stage needs (``python -c "import ...;
  os._exit(0)"``: starting and importing, without the final clean-up a process can skip)

floor = noop + sum over DAG levels of max(import time of the level's stages)
             + sum over DAG levels of max(in-process work of the level's stages)

Then one extra cold run with the timing probe (bench/_probe/sitecustomize.py) apportions the
cold wall time; it is not one of the timed repeats. ``python -X importtime`` splits the import
time of each stage by top-level package.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _analysis as A
import _common as c

GOAL_FLOOR = 1.2
GOAL_INPROCESS = 2.0


# ============================================================================ in-process worker


def inprocess_worker() -> None:
    """Do the cold pipeline's work inside this one interpreter; print a JSON line of timings.

    Run as a subprocess (cwd = a fresh store's directory, MLFLOW_TRACKING_URI set)."""
    import importlib
    import threading

    t_begin = time.perf_counter()
    sys.path.insert(0, str(c.REPO))
    timings: dict = {"stages": {}, "main_side": {}}

    t = time.perf_counter()
    modules = sorted(
        {m for ms in c.STAGE_IMPORTS.values() for m in ms} | set(c.MAIN_IMPORTS) | {f"steps.{s}" for s in c.STAGES}
    )
    for name in modules:
        importlib.import_module(name)
    timings["imports"] = time.perf_counter() - t

    import mlflow
    from mlflow.entities import Param

    from foodcast.pipeline.cache import find_reusable, pass_cache_key
    from foodcast.pipeline.params import param_texts
    from foodcast.pipeline.plan import Resolution, stage_params
    from foodcast.pipeline.runner import Pipeline, record_lineage
    from foodcast.settings import configure_logging
    from foodcast.tracking import names

    t = time.perf_counter()
    client = mlflow.MlflowClient()
    client.get_experiment("0")
    timings["store_init"] = time.perf_counter() - t

    main_module = importlib.import_module("main")
    defaults = {p.name: p.default for p in c.stages.main_params()}
    t = time.perf_counter()
    options = main_module.check_options({**defaults, **c.MAIN_WEEKS})
    configure_logging()
    parent = mlflow.start_run()
    parent_id, experiment_id = parent.info.run_id, parent.info.experiment_id
    mlflow.log_params({k: (str(v).lower() if isinstance(v, bool) else v) for k, v in options.items()})
    mlflow.set_tags({names.STEP_TAG: names.MAIN, names.NEXT_WEEK_TAG: options["next_week"]})
    pipeline = Pipeline(options)
    timings["main_side"]["setup"] = time.perf_counter() - t

    def run_stage(stage, argv, run_id):
        command = getattr(importlib.import_module(f"steps.{stage}"), stage)
        errors = []

        def target():
            os.environ["MLFLOW_RUN_ID"] = run_id  # what `mlflow run` hands the stage process
            try:
                command.main(argv, standalone_mode=False)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        # MLflow keeps the active run per thread: the parent stays active in the main thread.
        thread = threading.Thread(target=target, name=f"stage-{stage}")
        thread.start()
        thread.join()
        if errors:
            raise errors[0]

    for node in pipeline.nodes.values():  # upstream stages first
        stage = node.stage.name
        t = time.perf_counter()
        params = stage_params(node, options, pipeline.resolved, pipeline.late_values(node))
        key = pipeline.node_key(node, params)
        if find_reusable(client, experiment_id, node.stage, key) is not None:
            raise RuntimeError(f"{stage} unexpectedly cached in a fresh store")
        child = client.create_run(
            experiment_id,
            run_name=stage,
            tags={
                "mlflow.parentRunId": parent_id,
                "mlflow.project.entryPoint": stage,
                "mlflow.source.name": str(c.REPO),
                "mlflow.source.type": "PROJECT",
                "mlflow.project.backend": "local",
            },
        )
        child_id = child.info.run_id
        client.log_batch(child_id, params=[Param(k, str(v)) for k, v in params.items()])
        argv = [a for k, v in params.items() for a in (f"--{k.replace('_', '-')}", str(v))]
        pass_cache_key(stage, param_texts(node.stage.all_params, params), key)  # the stage tags its run, as under main
        before = time.perf_counter()
        run_stage(stage, argv, child_id)
        work = time.perf_counter() - before
        pipeline.resolved[node.key] = Resolution(child_id, "launched", key)
        timings["stages"][stage] = work
        timings["main_side"][stage] = time.perf_counter() - t - work

    t = time.perf_counter()
    record_lineage(client, parent_id, pipeline.nodes, pipeline.resolved)
    mlflow.end_run()
    timings["main_side"]["lineage_end"] = time.perf_counter() - t
    timings["total_inside"] = time.perf_counter() - t_begin
    print("INPROCESS " + json.dumps(timings), flush=True)
    sys.stderr.flush()
    os._exit(0)  # like the floor's bare interpreters: no final clean-up (the stages freeze the GC instead)


# ============================================================================ measurement


def measure(repeats: int) -> dict:
    rows = []
    for i in range(repeats):
        row: dict = {}
        with c.Store() as store:
            row["db_init"] = store.init()
            c.log(f"repeat {i + 1}/{repeats}: noop")
            row["noop"] = c.run(c.mlflow_run_cmd("noop"), store.env(), store.dir).seconds
            c.log(f"repeat {i + 1}/{repeats}: cold mlflow run")
            cold, row["cold_main_reported"] = c.cold_run(store)
            row["cold"] = cold.seconds
        with c.Store() as store:
            store.init()
            c.log(f"repeat {i + 1}/{repeats}: cold mlflow run, stages started cold (FOODCAST_PREFORK=0)")
            row["cold_noprefork"] = c.cold_run(store, extra={"FOODCAST_PREFORK": "0"})[0].seconds
        with c.Store() as store:
            store.init()
            c.log(f"repeat {i + 1}/{repeats}: in-process")
            res = c.run([c.PYTHON, str(Path(__file__).resolve()), "--worker-inprocess"], store.env(), store.dir)
            line = next(ln for ln in res.stdout.splitlines() if ln.startswith("INPROCESS "))
            row["inprocess"] = res.seconds
            row["inprocess_detail"] = json.loads(line[len("INPROCESS ") :])
            c.log(f"repeat {i + 1}/{repeats}: bare interpreters importing each stage's modules")
            env, cwd = store.env(), store.dir
            row["python_bare"] = c.run([c.PYTHON, "-c", "pass"], env, cwd).seconds
            row["import_mlflow"] = c.run(c.import_cmd(["mlflow"]), env, cwd).seconds
            row["import_mlflow_teardown"] = c.run(c.import_cmd(["mlflow"], teardown=True), env, cwd).seconds
            row["imports"] = {s: c.run(c.import_cmd(c.STAGE_IMPORTS[s]), env, cwd).seconds for s in c.STAGES}
            # the same plus opening the tracking store (what every stage process must also do)
            connect = "mlflow.MlflowClient().search_experiments(max_results=1)"
            row["imports_connect"] = {
                s: c.run(c.import_cmd(c.STAGE_IMPORTS[s], then=connect), env, cwd).seconds for s in c.STAGES
            }
        row["floor"] = floor_of(row["noop"], row["imports"], row["inprocess_detail"]["stages"])
        row["floor_connect"] = floor_of(row["noop"], row["imports_connect"], row["inprocess_detail"]["stages"])
        rows.append(row)
    return {"repeats": rows}


def floor_of(noop: float, imports: dict, work: dict) -> dict:
    level_imports = [max(imports[s] for s in level) for level in c.LEVELS]
    level_work = [max(work[s] for s in level) for level in c.LEVELS]
    return {
        "noop": noop,
        "imports": sum(level_imports),
        "work": sum(level_work),
        "total": noop + sum(level_imports) + sum(level_work),
        "serial_total": noop + sum(imports.values()) + sum(work.values()),
    }


# ============================================================================ breakdown (probe)


def importtime_by_package(modules) -> dict:
    """Cumulative import time (s) of each top-level package ``import modules`` loads,
    from ``python -X importtime`` (children attributed to the package that first needs them)."""
    with c.Store() as store:
        res = c.run([c.PYTHON, "-X", "importtime", "-c", "import " + ", ".join(modules)], store.env(), store.dir)
    top: dict[str, float] = {}
    mlflow_parts: dict[str, float] = {}
    for line in res.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)", line)
        if not m:
            continue
        cumulative, indent, name = int(m.group(2)) / 1e6, len(m.group(3)), m.group(4)
        if indent == 1:
            root = name.split(".")[0]
            top[root] = top.get(root, 0.0) + cumulative
        elif indent == 3 and name.startswith("mlflow."):
            part = ".".join(name.split(".")[:2])
            mlflow_parts[part] = mlflow_parts.get(part, 0.0) + cumulative
    return {
        "packages": dict(sorted(top.items(), key=lambda kv: -kv[1])),
        "mlflow_children": dict(sorted(mlflow_parts.items(), key=lambda kv: -kv[1])[:12]),
    }


def probe_run() -> dict:
    """One cold run with the probe; returns the per-process records and the wall time."""
    with c.Store() as store:
        store.init()
        probe_dir = Path(tempfile.mkdtemp(prefix="foodcast-probe-"))
        try:
            res = c.run(c.mlflow_run_cmd(), store.env(probe_dir=probe_dir), store.dir)
            records = c.read_probe(probe_dir)
        finally:
            shutil.rmtree(probe_dir, ignore_errors=True)
    return {"wall": res.seconds, "records": records, "stdout": res.stdout}


def analyse(probe: dict) -> dict:
    """Apportion the probe run's wall time: CLI, main, and per stage launch/start/work/exit."""
    kinds = A.by_kind(probe["records"])
    cli, main = kinds.get("cli"), kinds.get("main")
    if cli is None or main is None:
        raise RuntimeError("probe: cli or main record missing")
    stages = {}
    for stage in c.STAGES:
        if stage in kinds:
            phases = A.stage_phases(main, kinds[stage], stage)
            if phases:
                stages[stage] = phases
    out = {
        "wall": probe["wall"],
        "cli": A.cli_phases(cli, main),
        "main": A.main_phases(main),
        "stages": stages,
        "chain": A.critical_chain(stages),
    }
    # gaps along the chain: main's own work between an upstream's end and the next launch
    window = out["main"]["_window"]
    previous = window[0]
    gaps = []
    for stage in out["chain"]:
        gaps.append(stages[stage]["_window"][0] - previous)
        previous = stages[stage]["_window"][1]
    out["chain_gaps"] = gaps
    out["tail"] = window[1] - previous
    return out


def apportion(an: dict) -> list[tuple[str, float]]:
    """The probe run's wall time split into overhead categories along the critical path."""
    cli, main = an["cli"], an["main"]
    crit = [an["stages"][s] for s in an["chain"]]

    def along(*keys):
        return sum(s[k] for s in crit for k in keys)

    rows = [
        ("mlflow CLI: interpreter + imports", cli["interpreter start"] + cli["imports (mlflow, mlflow.cli)"]),
        (
            "mlflow CLI: store init, parent run, spawn main",
            cli["CLI parsing until projects.run"]
            + cli["projects.run until main spawned (store init, create run, git)"],
        ),
        ("main: interpreter + imports + option checks", main["interpreter start"] + main["imports + check_options"]),
        (
            "main: store init, resume parent, params, fingerprint",
            main["start_run (store init + resume parent)"]
            + main["log params/tags"]
            + main["Pipeline.__init__ (MLproject, source fingerprint)"],
        ),
        ("main: cache keys + lookups between stages", sum(an["chain_gaps"]) + an["tail"]),
        ("stages: launch by mlflow.run (create run, git, spawn)", along("launch (main: create run, git, spawn)")),
        ("stages: interpreter + imports", along("interpreter start", "imports")),
        ("stages: store init + run resume + params/tags", along("start_run (store init + resume)", "log params/tags")),
        ("stages: work - compute", along("  compute (rest)")),
        ("stages: work - read upstream artifacts", along("  read upstream artifacts")),
        ("stages: work - log input datasets", along("  log input datasets")),
        ("stages: work - write artifacts (csv, html)", along("  write artifacts (csv/html)")),
        ("stages: work - log/load models", along("  log/load models")),
        ("stages: work - metrics/tags", along("  metrics/tags")),
        (
            "stages: end_run, exit, finalise, status checks",
            along("end_run + atexit", "finalise process + wake main", "main: status checks after exit"),
        ),
        ("main: record lineage, end run, exit", main["record_lineage"] + main["end_run + atexit"]),
        (
            "mlflow CLI: main's finalise, set_terminated, exit",
            cli["main exit -> projects.run returns (finalise main, set_terminated)"]
            + cli["after projects.run (atexit)"],
        ),
    ]
    accounted = sum(v for _, v in rows)
    rows.append(("unaccounted (spawn of the CLI, its finalisation)", an["wall"] - accounted))
    return rows


# ============================================================================ report


def report(data: dict) -> str:
    reps = data["repeats"]
    med = c.median
    n = len(reps)

    def col(fn):
        values = [fn(r) for r in reps]
        return med(values), c.spread(values)

    rows = []
    for label, fn in [
        ("noop mlflow run (-e noop)", lambda r: r["noop"]),
        (f"cold mlflow run ({c.DEFAULT_RUNS} stages launched)", lambda r: r["cold"]),
        ("  main's own 'in X s' line (cold)", lambda r: r["cold_main_reported"]),
        ("cold, stages started cold (FOODCAST_PREFORK=0)", lambda r: r.get("cold_noprefork")),
        ("in-process (one interpreter, same work)", lambda r: r["inprocess"]),
        ("  in-process: imports", lambda r: r["inprocess_detail"]["imports"]),
        ("  in-process: store init", lambda r: r["inprocess_detail"]["store_init"]),
        ("  in-process: the stages' work", lambda r: sum(r["inprocess_detail"]["stages"].values())),
        ("floor = noop + level imports + level work", lambda r: r["floor"]["total"]),
        ("  floor: level imports", lambda r: r["floor"]["imports"]),
        ("  floor: level work", lambda r: r["floor"]["work"]),
        ("floor with store connect per level", lambda r: r["floor_connect"]["total"]),
        ("floor with stages serial (no concurrency)", lambda r: r["floor"]["serial_total"]),
        ("bare python -c pass", lambda r: r["python_bare"]),
        ("python -c 'import mlflow' (exit without teardown)", lambda r: r["import_mlflow"]),
        ("  the same with the interpreter's teardown", lambda r: r.get("import_mlflow_teardown")),
        ("empty-store creation (excluded from cold)", lambda r: r["db_init"]),
    ]:
        m, sp = col(fn)
        rows.append((label, m, sp, n))
    out = [
        c.table(
            ["measure", "median s", "range s", "n"],
            rows,
            title="Cold pipeline (default data, weeks 180-200 -> 201; fresh store per repeat)",
        )
    ]
    r_floor = [r["cold"] / r["floor"]["total"] for r in reps]
    r_floor_c = [r["cold"] / r["floor_connect"]["total"] for r in reps]
    r_inproc = [r["cold"] / r["inprocess"] for r in reps]
    r_nopre = [r["cold_noprefork"] / r["floor"]["total"] for r in reps if r.get("cold_noprefork")]
    r_nopre_in = [r["cold_noprefork"] / r["inprocess"] for r in reps if r.get("cold_noprefork")]
    out.append("")
    out.append(
        c.table(
            ["ratio (median of per-repeat ratios)", "value", "range", "goal", "status"],
            [
                (
                    "cold / floor",
                    f"{med(r_floor):.2f}x",
                    c.spread(r_floor),
                    f"<= {GOAL_FLOOR}",
                    c.verdict(med(r_floor), GOAL_FLOOR),
                ),
                ("cold / floor with store connect", f"{med(r_floor_c):.2f}x", c.spread(r_floor_c), "(info)", ""),
                (
                    "cold / in-process",
                    f"{med(r_inproc):.2f}x",
                    c.spread(r_inproc),
                    f"<= {GOAL_INPROCESS}",
                    c.verdict(med(r_inproc), GOAL_INPROCESS),
                ),
            ]
            + (
                [
                    ("stages started cold / floor", f"{med(r_nopre):.2f}x", c.spread(r_nopre), "(info)", ""),
                    ("stages started cold / in-process", f"{med(r_nopre_in):.2f}x", c.spread(r_nopre_in), "(info)", ""),
                ]
                if r_nopre
                else []
            ),
        )
    )
    out.append("")
    rows = []
    for stage in c.STAGES:
        rows.append(
            (
                stage,
                med([r["imports"][stage] for r in reps]),
                med([r["imports_connect"][stage] for r in reps]),
                med([r["inprocess_detail"]["stages"][stage] for r in reps]),
                med([r["inprocess_detail"]["main_side"][stage] for r in reps]),
            )
        )
    out.append(
        c.table(
            ["stage", "bare import s", "import+connect s", "in-process work s", "in-process main-side s"],
            rows,
            title="Floor ingredients per stage (medians; work = the step command's callback)",
        )
    )
    out.append("")
    out.append(
        c.table(
            ["DAG level", "max import s", "max work s"],
            [
                (
                    "+".join(level),
                    med([max(r["imports"][s] for s in level) for r in reps]),
                    med([max(r["inprocess_detail"]["stages"][s] for s in level) for r in reps]),
                )
                for level in c.LEVELS
            ],
            title="Floor per DAG level",
        )
    )

    an = data.get("breakdown")
    if an:
        out.append("")
        rows = [(name, value, f"{100 * value / an['wall']:.0f}%") for name, value in data["apportion"]]
        rows.append(("total (wall of the probe run)", an["wall"], "100%"))
        out.append(
            c.table(
                ["category", "s", "share"],
                rows,
                title=f"Where the cold wall time goes (one instrumented run, not a timed repeat; "
                f"stage categories along the critical path {' -> '.join(an['chain'])})",
            )
        )
        present = [s for s in c.STAGES if s in an["stages"]]
        if present:
            keys = [k for k in an["stages"][present[0]] if not k.startswith("_")]
            rows = [[k] + [_fmt(an["stages"][s].get(k)) for s in present] for k in keys]
            out.append("")
            out.append(c.table(["per stage (probe run), s", *present], rows))
        else:
            out.append("(the probe recorded no stage process: per-stage phases not shown)")
        out.append("")
        out.append(c.table(["mlflow CLI process (probe run)", "value"], [(k, _fmt(v)) for k, v in an["cli"].items()]))
        out.append("")
        out.append(
            c.table(
                ["main.py process (probe run)", "value"],
                [(k, _fmt(v)) for k, v in an["main"].items() if not k.startswith("_")],
            )
        )
    imp = data.get("importtime")
    if imp:
        pkgs = sorted(
            {p for v in imp.values() for p, t in v["packages"].items() if t >= 0.01},
            key=lambda p: -max(v["packages"].get(p, 0) for v in imp.values()),
        )
        rows = [[p] + [_fmt(imp[s]["packages"].get(p, 0.0)) for s in c.STAGES] for p in pkgs]
        out.append("")
        out.append(
            c.table(
                ["-X importtime, cumulative s", *list(c.STAGES)],
                rows,
                title="Import time per stage by top-level package (python -X importtime, one sample)",
            )
        )
        rows = [(k, v) for k, v in imp["train"]["mlflow_children"].items() if v >= 0.01]
        out.append("")
        out.append(c.table(["heaviest parts of `import mlflow` (train's list)", "cumulative s"], rows))
    return "\n".join(out)


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.2f}"
    return "-" if v is None else str(v)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (default 3)")
    parser.add_argument("--quick", action="store_true", help="1 repeat, for a smoke test (not a measurement)")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the probe run and -X importtime")
    parser.add_argument("--worker-inprocess", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_inprocess:
        inprocess_worker()
        return
    repeats = 1 if args.quick else args.repeats
    data = measure(repeats)
    if not args.no_breakdown:
        c.log("probe run (instrumented cold run, not timed)")
        probe = probe_run()
        data["breakdown"] = analyse(probe)
        data["apportion"] = apportion(data["breakdown"])
        c.log("python -X importtime per stage")
        data["importtime"] = {s: importtime_by_package(c.STAGE_IMPORTS[s]) for s in c.STAGES}
    c.save("pipeline_overhead", data, "")  # the measurements kept even if the report fails
    text = report(data)
    c.save("pipeline_overhead", data, text)
    print(text)


if __name__ == "__main__":
    main()
