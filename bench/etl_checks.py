"""What the data checks cost: ``etl`` of weeks 180-200 (21 weeks x 2 restaurants, 42 batches)
of the default dataset, with this tree's foodcast against a baseline tree's.

    git archive <commit before the checks> | (mkdir -p /tmp/base && tar -x -C /tmp/base)
    python bench/etl_checks.py --baseline /tmp/base

Each repeat runs one fresh interpreter per tree, one after the other (interleaved, so both
see the same machine load), importing foodcast from that tree (``PYTHONPATH``); the worker
calls ``etl`` once to warm up, then ``--calls`` times, and reports its median. Prints the
median over repeats of each tree and the median of the per-repeat ratios, with their range.
Not a test: figures only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKER = """
import json, statistics, sys, time
import foodcast
from foodcast.domain.transform import etl
data_dir, start, end, calls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
etl(data_dir, start, end)
times = []
for _ in range(calls):
    began = time.perf_counter()
    etl(data_dir, start, end)
    times.append(time.perf_counter() - began)
print(json.dumps({"source": foodcast.__file__, "median": statistics.median(times)}))
"""


def time_tree(tree: Path, data_dir: Path, start: int, end: int, calls: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree))
    for name in ("FOODCAST_DATA_DIR", "MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID"):
        env.pop(name, None)
    out = subprocess.run(
        [sys.executable, "-c", WORKER, str(data_dir), str(start), str(end), str(calls)],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    # The editable install must not shadow the tree under test.
    assert Path(result["source"]).resolve().is_relative_to(tree.resolve()), result["source"]
    return result["median"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="source tree of the code before the checks")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=5, help="timed etl calls per worker")
    parser.add_argument("--start-week", type=int, default=180)
    parser.add_argument("--end-week", type=int, default=200)
    args = parser.parse_args()
    data_dir = REPO / "data"
    trees = {"baseline": args.baseline, "this tree": REPO}
    times = {name: [] for name in trees}
    for repeat in range(args.repeats):
        for name, tree in trees.items():
            times[name].append(time_tree(tree, data_dir, args.start_week, args.end_week, args.calls))
        print(
            f"repeat {repeat + 1}: " + ", ".join(f"{n} {t[-1]:.3f} s" for n, t in times.items()),
            file=sys.stderr,
            flush=True,
        )
    ratios = [new / old for new, old in zip(times["this tree"], times["baseline"], strict=True)]
    weeks = f"weeks {args.start_week}-{args.end_week}"
    print(f"etl of {weeks} of {data_dir} (median of {args.repeats} repeats x {args.calls} calls)")
    for name in trees:
        print(f"  {name:<10} {statistics.median(times[name]):.3f} s")
    print(f"  ratio      {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main()
