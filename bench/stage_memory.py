"""Peak memory of each stage: ``/usr/bin/time -v python -m steps.<stage> ...`` (cwd = the
repository, MLFLOW_TRACKING_URI = a temporary sqlite store whose artifacts live in the temporary
directory), default parameters, upstream run ids from the previous stages of the same store.
Reports the maximum resident set size per stage (median of --repeats, default 3), and main's
own peak during a warm run (``python main.py`` with every stage cached, and the whole warm
``mlflow run`` whose figure is the largest of the CLI and main).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

STARTED = re.compile(r"(\w+): run ([0-9a-f]{32}) started")


def stage_cmd(stage: str, ids: dict) -> list[str]:
    """The stage's command with default parameters, on the upstream runs ``ids``."""
    args = []
    for p in c.stages.STAGES[stage].all_params:
        value = ids.get(p.name[: -len("_run_id")], "") if p.name.endswith("_run_id") else p.default
        args += [p.option, str(value)]
    return [c.PYTHON, "-m", f"steps.{stage}", *args]


ORDER = c.STAGES  # upstream stages first


def measure(repeats: int) -> dict:
    out = {"stages": {s: [] for s in ORDER}, "seconds": {s: [] for s in ORDER}}
    with c.Store() as store:
        store.init()  # from the temporary directory: the default experiment's artifacts go there
        env = store.env()
        ids: dict[str, str] = {}
        for i in range(repeats):
            for stage in ORDER:
                c.log(f"repeat {i + 1}/{repeats}: {stage}")
                res, rss = c.run_time_v(stage_cmd(stage, ids), env, c.REPO)
                match = STARTED.search(res.stderr)
                if not match:
                    raise RuntimeError(f"{stage}: no run id in its output\n{res.stderr[-2000:]}")
                if i == 0:
                    ids[stage] = match.group(2)  # later repeats reuse the first round's upstream runs
                out["stages"][stage].append(rss)
                out["seconds"][stage].append(res.seconds)
        c.log("baseline: python -c 'import mlflow'")
        out["import_mlflow"] = [c.run_time_v(c.import_cmd(["mlflow"]), env, store.dir)[1] for _ in range(repeats)]
        c.log("cold mlflow run (fills the cache; peak over all its processes)")
        res, rss = c.run_time_v(c.mlflow_run_cmd(), env, store.dir)
        out["cold_mlflow_run"] = rss
        out["main_warm"], out["mlflow_run_warm"] = [], []
        for i in range(repeats):
            c.log(f"repeat {i + 1}/{repeats}: warm python main.py, warm mlflow run")
            res, rss = c.run_time_v([c.PYTHON, "main.py"], env, c.REPO)
            summary = c.main_summary(res.stdout)
            if summary and summary[0] == 0:
                out["main_warm"].append(rss)
            res, rss = c.run_time_v(c.mlflow_run_cmd(), env, store.dir)
            summary = c.main_summary(res.stdout)
            if summary and summary[0] == 0:
                out["mlflow_run_warm"].append(rss)
    return out


def report(data: dict) -> str:
    mib = 1024.0
    rows = []
    for stage in ORDER:
        values = data["stages"][stage]
        rows.append(
            (
                stage,
                c.median(values) / mib,
                f"{min(values) / mib:.0f}-{max(values) / mib:.0f}",
                c.median(data["seconds"][stage]),
                len(values),
            )
        )
    out = [
        c.table(
            ["stage (python -m steps.<stage>)", "max RSS MiB", "range MiB", "wall s", "n"],
            rows,
            title="Peak resident memory per stage (/usr/bin/time -v, default parameters)",
        )
    ]
    rows = [
        ("python -c 'import mlflow' (baseline)", c.median(data["import_mlflow"]) / mib, len(data["import_mlflow"])),
        ("main.py alone, warm (every stage reused)", c.median(data["main_warm"]) / mib, len(data["main_warm"])),
        ("warm mlflow run (max of CLI, main)", c.median(data["mlflow_run_warm"]) / mib, len(data["mlflow_run_warm"])),
        ("cold mlflow run (max over all processes)", data["cold_mlflow_run"] / mib, 1),
    ]
    out.append("")
    out.append(c.table(["process", "max RSS MiB", "n"], rows))
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="samples per stage (default 3)")
    parser.add_argument("--quick", action="store_true", help="1 sample per stage")
    args = parser.parse_args()
    c.time_binary()
    data = measure(1 if args.quick else max(args.repeats, 1))
    text = report(data)
    c.save("stage_memory", data, text)
    print(text)


if __name__ == "__main__":
    main()
