"""Warm pipeline: `mlflow run` of the whole project when every stage is reused, against
`mlflow run -e noop` and against the floor noop + one interpreter importing mlflow.

One cold run fills a fresh store; then, per repeat and side by side: the warm run (must print
``main: 0 launched, 8 reused in X s``), the noop run, and ``python -c "import mlflow;
os._exit(0)"`` (starting and importing without the final clean-up, which main skips too by
freezing the GC). floor = noop + import mlflow. Also reported: main's own resolution time (the X above).
One extra warm run and one noop run with the timing probe (bench/_probe) split the warm time
into CLI, main start-up, store opening, resolution, lineage and exit.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _analysis as A
import _common as c

GOAL = 1.4


def warm_once(store, retries=2):
    """One warm run; if a stage was launched (someone edited the sources in between, which
    changes the cache keys), the run has refilled the cache: measure again."""
    for _ in range(retries + 1):
        res = c.run(c.mlflow_run_cmd(), store.env(), store.dir)
        summary = c.main_summary(res.stdout)
        if summary and summary[0] == 0 and summary[1] == c.DEFAULT_RUNS:
            return res.seconds, summary[2]
        c.log(f"warm run launched stages ({summary}); sources changed? measuring again")
    raise RuntimeError("could not get a fully warm run")


def measure(repeats: int) -> dict:
    rows = []
    with c.Store() as store:
        store.init()
        c.log("cold run to fill the store")
        cold = c.cold_run(store)[0].seconds
        for i in range(repeats):
            c.log(f"repeat {i + 1}/{repeats}: warm, noop, import mlflow")
            warm, resolution = warm_once(store)
            noop = c.run(c.mlflow_run_cmd("noop"), store.env(), store.dir).seconds
            imp = c.run(c.import_cmd(["mlflow"]), store.env(), store.dir).seconds
            imp_teardown = c.run(c.import_cmd(["mlflow"], teardown=True), store.env(), store.dir).seconds
            rows.append(
                {
                    "warm": warm,
                    "main_resolution": resolution,
                    "noop": noop,
                    "import_mlflow": imp,
                    "import_mlflow_teardown": imp_teardown,
                    "floor": noop + imp,
                    "floor_teardown": noop + imp_teardown,
                }
            )
        breakdown = None
        if not ARGS.no_breakdown:
            c.log("probe runs (warm and noop, instrumented, not timed)")
            breakdown = probe(store)
    return {"cold_fill": cold, "repeats": rows, "breakdown": breakdown}


def probe(store) -> dict:
    out = {}
    for label, cmd in (("warm", c.mlflow_run_cmd()), ("noop", c.mlflow_run_cmd("noop"))):
        directory = Path(tempfile.mkdtemp(prefix="foodcast-probe-"))
        try:
            res = c.run(cmd, store.env(probe_dir=directory), store.dir)
            kinds = A.by_kind(c.read_probe(directory))
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        cli = kinds["cli"]
        child = kinds.get("main") or kinds.get("noop")
        entry = {"wall": res.seconds, "cli": A.cli_phases(cli, child)}
        if label == "warm":
            entry["main"] = A.main_phases(child)
            entry["main_calls"] = A.client_calls(child)
            entry["summary"] = c.main_summary(res.stdout)
        else:
            entry["noop_child"] = child["exit"] - child["proc_start"]
        out[label] = entry
    return out


def report(data: dict) -> str:
    reps = data["repeats"]
    med = c.median
    rows = []
    for label, key in (
        ("warm mlflow run (every stage reused)", "warm"),
        ("noop mlflow run", "noop"),
        ("python -c 'import mlflow' (exit without teardown)", "import_mlflow"),
        ("  the same with the interpreter's teardown", "import_mlflow_teardown"),
        ("floor = noop + import mlflow", "floor"),
        ("main's own resolution ('in X s')", "main_resolution"),
    ):
        values = [r[key] for r in reps]
        rows.append((label, med(values), c.spread(values), len(values)))
    rows.append(("cold run that filled the store (1 sample)", data["cold_fill"], "", 1))
    out = [
        c.table(
            ["measure", "median s", "range s", "n"],
            rows,
            title="Warm pipeline (default parameters; every stage reused)",
        )
    ]
    r_noop = [r["warm"] / r["noop"] for r in reps]
    r_floor = [r["warm"] / r["floor"] for r in reps]
    r_floor_t = [r["warm"] / r["floor_teardown"] for r in reps]
    out.append("")
    out.append(
        c.table(
            ["ratio (median of per-repeat ratios)", "value", "range", "goal", "status"],
            [
                ("warm / noop", f"{med(r_noop):.2f}x", c.spread(r_noop), "(info)", ""),
                (
                    "warm / floor",
                    f"{med(r_floor):.2f}x",
                    c.spread(r_floor),
                    f"<= {GOAL}",
                    c.verdict(med(r_floor), GOAL),
                ),
                (
                    "warm / floor whose import pays the teardown",
                    f"{med(r_floor_t):.2f}x",
                    c.spread(r_floor_t),
                    "(info)",
                    "",
                ),
            ],
        )
    )
    bd = data.get("breakdown")
    if bd:
        w, n = bd["warm"], bd["noop"]
        m = w["main"]
        rows = [
            (
                "CLI: interpreter + imports (mlflow, mlflow.cli)",
                w["cli"]["interpreter start"] + w["cli"]["imports (mlflow, mlflow.cli)"],
                n["cli"]["interpreter start"] + n["cli"]["imports (mlflow, mlflow.cli)"],
            ),
            (
                "CLI: store init, create run, git, spawn",
                w["cli"]["CLI parsing until projects.run"]
                + w["cli"]["projects.run until main spawned (store init, create run, git)"],
                n["cli"]["CLI parsing until projects.run"]
                + n["cli"]["projects.run until main spawned (store init, create run, git)"],
            ),
            ("child: interpreter start", m["interpreter start"], n["noop_child"]),
            ("main: imports + option checks", m["imports + check_options"], 0.0),
            ("main: store init + resume parent run", m["start_run (store init + resume parent)"], 0.0),
            (
                "main: params/tags + Pipeline init",
                m["log params/tags"] + m["Pipeline.__init__ (MLproject, source fingerprint)"],
                0.0,
            ),
            ("main: resolution (a cache lookup per stage)", m["Pipeline.run (resolve all stages)"], 0.0),
            ("main: record_lineage", m["record_lineage"], 0.0),
            ("main: end_run + atexit", m["end_run + atexit"], 0.0),
            (
                "CLI: child finalise + set_terminated",
                w["cli"]["main exit -> projects.run returns (finalise main, set_terminated)"],
                n["cli"]["main exit -> projects.run returns (finalise main, set_terminated)"],
            ),
        ]
        acc_w = sum(r[1] for r in rows)
        acc_n = sum(r[2] for r in rows)
        rows.append(("rest (CLI spawn and finalisation)", w["wall"] - acc_w, n["wall"] - acc_n))
        rows.append(("total (wall, instrumented run)", w["wall"], n["wall"]))
        out.append("")
        out.append(
            c.table(
                ["where the time goes (probe runs, one sample)", "warm s", "noop s"],
                rows,
                title="Warm vs noop, phase by phase",
            )
        )
        calls = sorted(w["main_calls"].items(), key=lambda kv: -kv[1][1])
        out.append("")
        out.append(
            c.table(
                ["main's MlflowClient calls (warm probe run)", "calls", "s"],
                [(k, v[0], v[1]) for k, v in calls]
                + [("SQL statements (main thread)", m["SQL statements (main thread)"], m["SQL seconds (main thread)"])],
            )
        )
    return "\n".join(out)


def main() -> None:
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="warm repeats (default 5, at least 3 advised)")
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    parser.add_argument("--no-breakdown", action="store_true", help="skip the probe runs")
    ARGS = parser.parse_args()
    repeats = 3 if ARGS.quick else ARGS.repeats
    data = measure(repeats)
    text = report(data)
    c.save("warm_pipeline", data, text)
    print(text)


ARGS = None

if __name__ == "__main__":
    main()
