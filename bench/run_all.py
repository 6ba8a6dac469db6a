"""Run every foodcast benchmark one after the other and print all their tables.

    python bench/run_all.py            # full run (about 30 min on 2 cores)
    python bench/run_all.py --quick    # smoke test of every script (about 12 min), not a measurement
    python bench/run_all.py --only warm_pipeline,stage_memory --repeats 5

Benchmarks run one at a time (they would disturb each other's timings). Each script's progress
goes to stderr; its table is printed when it ends and again, with all the others, at the end.
bench/results/all.txt then holds the latest table of every script (``--report`` prints it
without running anything).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
SCRIPTS = ("pipeline_overhead", "warm_pipeline", "cache_scaling", "forecast_accuracy", "stage_memory")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="pass --quick to every script")
    parser.add_argument("--repeats", type=int, help="pass --repeats N to every script")
    parser.add_argument("--only", help=f"comma-separated subset of {', '.join(SCRIPTS)}")
    parser.add_argument(
        "--report", action="store_true", help="run nothing: print the latest tables of every script from bench/results/"
    )
    args = parser.parse_args()
    if args.report:
        text = latest_tables()
        (BENCH / "results").mkdir(exist_ok=True)
        (BENCH / "results" / "all.txt").write_text(text + "\n")
        print(text)
        return
    chosen = [s for s in SCRIPTS if not args.only or s in args.only.split(",")]
    outputs, failures = {}, []
    started_all = time.perf_counter()
    for name in chosen:
        cmd = [sys.executable, str(BENCH / f"{name}.py")]
        if args.quick:
            cmd.append("--quick")
        if args.repeats:
            cmd += ["--repeats", str(args.repeats)]
        print(f"=== {name}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        minutes = (time.perf_counter() - started) / 60
        if proc.returncode != 0:
            failures.append(name)
            outputs[name] = f"FAILED (exit {proc.returncode}) after {minutes:.1f} min\n{proc.stdout}"
        else:
            outputs[name] = proc.stdout.rstrip() + f"\n({name} took {minutes:.1f} min)"
        print(outputs[name], flush=True)
    text = "\n\n".join(f"##### {name}\n{outputs[name]}" for name in chosen)
    text += f"\n\nthis run: {(time.perf_counter() - started_all) / 60:.1f} min"
    print("\n\n" + "#" * 100 + "\n" + text)
    (BENCH / "results").mkdir(exist_ok=True)
    (BENCH / "results" / "all.txt").write_text(latest_tables() + "\n")
    if failures:
        sys.exit(f"failed: {', '.join(failures)}")


def latest_tables() -> str:
    """The latest table of every script (bench/results/<name>.txt), with when it was written."""
    parts = []
    for name in SCRIPTS:
        path = BENCH / "results" / f"{name}.txt"
        if path.exists():
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
            parts.append(f"##### {name} (results of {when})\n{path.read_text().rstrip()}")
        else:
            parts.append(f"##### {name}: no results yet")
    return "\n\n".join(parts)


if __name__ == "__main__":
    main()
