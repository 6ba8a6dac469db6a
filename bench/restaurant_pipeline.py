"""The per-restaurant pipeline at several chain sizes: wall time, peak memory, the store's load.

    python bench/restaurant_pipeline.py                                  # 10, 50, 200 restaurants; workers 1 and 2
    python bench/restaurant_pipeline.py --restaurants 10,50 --repeats 3
    python bench/restaurant_pipeline.py --restaurants 5 --weeks 150-185 --repeats 1   # a smoke run

For each chain size N, a chain of N restaurants is generated once (``python -m foodcast
generate --restaurants N --weeks A-B``; generation is not timed: bench/chain_generator.py times
it). Then, per repeat, side by side: a cold ``mlflow run <repo> --env-manager local -P
granularity=restaurant -P workers=W`` for W = 1 and 2, each in a fresh store, under
``/usr/bin/time -v``, with no week given (main forecasts the week after the data's last
complete week from the 21 weeks before it, as on a Monday). Figures:

* wall time of the whole run, and its ratio workers=2 / workers=1 (per repeat, then median);
* CPU seconds: user + system time of every process of the run (GNU time's, of the processes
  waited for): what the work costs whatever the machine's load, and what a pool adds to it;
* peak memory: the largest resident set of any process of the run (GNU time's maximum over the
  process and its descendants), i.e. the biggest stage's, which is where the restaurants' frames
  and models live;
* the tracking store's load after the run: runs, metrics, parameters and tags (all runs), the
  artifact files of the stages, and the SQL statements the processes sent to the store (counted
  by the timing probe, bench/_probe, on one workers=1 run per size).

Time should grow at most linearly with N (see the per-restaurant seconds), workers=2 should be
at most 0.6 x workers=1 from 50 restaurants, and the peak memory at 200 restaurants at most
1.5 x that at 10; the store's load should not depend on N (one run per stage, per-restaurant
figures in table artifacts). The machine is shared: read the ratios, measured side by side.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c
from mlflow.tracking import MlflowClient

WORKERS = (1, 2)


def generate(directory: Path, restaurants: int, weeks: str) -> None:
    c.run(
        [
            c.PYTHON,
            "-m",
            "foodcast",
            "generate",
            "--restaurants",
            str(restaurants),
            "--weeks",
            weeks,
            "--data-dir",
            str(directory),
        ],
        env=c.bench_env(directory),
        cwd=c.REPO,
    )


def store_load(uri: str) -> dict[str, int]:
    """Runs, metrics, parameters, tags and stage artifact files in the store at ``uri``."""
    client = MlflowClient(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, max_results=1000)

    def files(run_id: str, path: str | None = None) -> int:
        count = 0
        for item in client.list_artifacts(run_id, path):
            count += files(run_id, item.path) if item.is_dir else 1
        return count

    return {
        "runs": len(runs),
        "metrics": sum(len(r.data.metrics) for r in runs),
        "params": sum(len(r.data.params) for r in runs),
        "tags": sum(len(r.data.tags) for r in runs),
        "artifact files": sum(files(r.info.run_id) for r in runs),
    }


def pipeline(data_dir: Path, workers: int, probe: bool) -> dict[str, float]:
    """One cold restaurant pipeline on ``data_dir`` in a fresh store: its figures."""
    with c.Store() as store, tempfile.TemporaryDirectory(prefix="foodcast-bench-probe-") as probe_dir:
        store.init()
        env = store.env(probe_dir if probe else None, extra={"FOODCAST_DATA_DIR": str(data_dir)})
        cmd = [
            c.PYTHON,
            "-m",
            "mlflow",
            "run",
            str(c.REPO),
            "--env-manager",
            "local",
            "-P",
            "granularity=restaurant",
            "-P",
            f"workers={workers}",
        ]
        result, peak_kib, cpu = c.run_time_v_cpu(cmd, env, store.dir)
        summary = c.main_summary(result.stdout)
        if not summary or summary[1]:
            raise RuntimeError(f"the run was not cold: {summary}\n{result.stdout}")
        figures: dict[str, float] = {
            "seconds": result.seconds,
            "peak MB": peak_kib / 1024,
            "CPU s": cpu,
            "stages": summary[0],
        }
        figures.update(store_load(store.uri))
        if probe:
            figures["SQL statements"] = sum(c.sql_stats(record)[0] for record in c.read_probe(probe_dir))
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restaurants", default="10,50,200", help="chain sizes, comma-separated")
    parser.add_argument("--weeks", default="160-190", help="weeks generated (A-B): 21 to train on, 10 of history")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(n) for n in args.restaurants.split(",")]
    results: dict[int, dict[int, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="foodcast-bench-chains-") as chains:
        for n in sizes:
            data_dir = Path(chains) / f"chain{n}"
            c.log(f"generating {n} restaurants, weeks {args.weeks}")
            generate(data_dir, n, args.weeks)
            results[n] = {w: [] for w in WORKERS}
            for repeat in range(args.repeats):
                for w in WORKERS:
                    c.log(f"{n} restaurants, workers={w}, repeat {repeat + 1}/{args.repeats}")
                    results[n][w].append(pipeline(data_dir, w, probe=(w == 1 and repeat == 0)))
    rows = []
    for n in sizes:
        one, two = results[n][1], results[n][2]
        ratios = [b["seconds"] / a["seconds"] for a, b in zip(one, two, strict=True)]
        for w in WORKERS:
            samples = results[n][w]
            seconds = c.median([s["seconds"] for s in samples])
            rows.append(
                [
                    n,
                    w,
                    f"{seconds:.1f}",
                    f"{seconds / n:.2f}",
                    f"{c.median([s['peak MB'] for s in samples]):.0f}",
                    f"{c.median([s.get('CPU s', float('nan')) for s in samples]):.0f}",
                    f"{c.median(ratios):.2f} {c.spread(ratios)}" if w == 2 else "",
                ]
            )
    text = c.table(
        ["restaurants", "workers", "wall s", "s per restaurant", "peak MB", "CPU s", "workers=2 / workers=1"],
        rows,
        title="Cold pipeline, granularity=restaurant (median of the repeats)",
    )
    load_keys = ["runs", "metrics", "params", "tags", "artifact files", "SQL statements"]
    load_rows = [[n, *(int(results[n][1][0].get(k, -1)) for k in load_keys)] for n in sizes]
    text += "\n" + c.table(["restaurants", *load_keys], load_rows, title="The tracking store after one run (workers=1)")
    if len(sizes) > 1:
        first, last = sizes[0], sizes[-1]
        grow_t = c.median([s["seconds"] for s in results[last][1]]) / c.median(
            [s["seconds"] for s in results[first][1]]
        )
        grow_m = c.median([s["peak MB"] for s in results[last][1]]) / c.median(
            [s["peak MB"] for s in results[first][1]]
        )
        text += (
            f"\n{first} -> {last} restaurants ({last / first:.0f}x): wall time x{grow_t:.2f} (workers=1), "
            f"peak memory x{grow_m:.2f} (goal <= 1.5)\n"
        )
    print(text)
    c.save("restaurant_pipeline", {"results": {str(n): results[n] for n in sizes}}, text)


if __name__ == "__main__":
    main()
