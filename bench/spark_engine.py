"""engine=local against engine=spark on generated chains: wall time, driver memory, fixed and
per-restaurant cost, and a projection to a cluster.

    python bench/spark_engine.py                               # 50, 200, 800 restaurants
    python bench/spark_engine.py --restaurants 50 --repeats 1  # what was run here (see bench/README.md)

For each chain size N, a chain of N restaurants is generated once (weeks 180-201, not timed).
Then, per repeat and side by side, one fresh Python process per engine runs the per-restaurant
work of a Monday in-process, as the stages call it: ``load`` (read the 21 training weeks
180-200), ``features`` (``training_rows``), ``train`` (``RestaurantModel.fit``), ``future``
(``prediction_rows`` of week 201) and ``predict`` (``predict_frame``) - the same core functions
with engine=local (joblib's pool, every core: ``workers=0``) and engine=spark
(``FOODCAST_SPARK_MASTER``, default ``local[2]``; the batches read on Spark too). MLflow's own
costs (runs, artifacts) are the same for both engines and are left out.

Figures, per engine and N:

* ``wall``: the work's wall time; spark's split into its fixed part, named - ``session`` (the
  JVM and the SparkContext starting) and ``first job`` (a 2-item job, the Python workers and
  the code paths warming up) - and the rest;
* ``driver MiB``: the peak resident memory of the driver's Python process (``ru_maxrss``), and
  for spark that of its JVM (``VmHWM``) beside it;
* ``per restaurant``: the slope of the work's time (spark: without the fixed part) over N,
  in seconds per restaurant on this machine's 2 cores; ``core-s/restaurant`` the same times
  the cores busy.

The projection: spark's fixed part + core-seconds per restaurant x restaurants / executor cores,
for 10,000 restaurants on 8 and 64 single-core executors (a cluster adds the shipping of the
items over a network, which local[2] does not pay: a lower bound).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

WEEKS = "180-201"
TRAIN = (180, 200)
NEXT_WEEK = 201
ENGINES = ("local", "spark")
CORES = os.cpu_count() or 1


def _jvm_peak_mib() -> float:
    """The Spark JVM's peak resident memory (VmHWM), MiB; 0 without one."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    process = getattr(gateway, "proc", None)
    if process is None:
        return 0.0
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(engine: str, data_dir: str) -> dict:
    """The Monday's per-restaurant work with ``engine`` in this process; its timings."""
    from foodcast.core import pool, restaurants
    from foodcast.core.restaurants import RestaurantModel
    from foodcast.data.chain import read_restaurants
    from foodcast.data.orders import read_batches

    phases: dict[str, float] = {}
    reader = read_batches
    jvm = 0.0
    start = time.perf_counter()
    if engine == "spark":
        from foodcast.spark import engine as spark
        from foodcast.spark.load import read_batches_on_spark

        spark.session()
        phases["session"] = time.perf_counter() - start
        mark = time.perf_counter()
        spark.spark_map(abs, [-1, 2])
        phases["first job"] = time.perf_counter() - mark
        pool.use_mapper(spark.spark_map)
        reader = read_batches_on_spark
    try:
        mark = time.perf_counter()
        hourly, _ = read_restaurants(data_dir, *TRAIN, reader=reader)
        phases["load"] = time.perf_counter() - mark
        mark = time.perf_counter()
        train = restaurants.training_rows(hourly, workers=0)
        phases["features"] = time.perf_counter() - mark
        mark = time.perf_counter()
        x = train.drop(columns="cash_in").set_index("order_date")
        model = RestaurantModel({"model": "profile", "n_models": 10}, workers=0).fit(x, train["cash_in"])
        phases["train"] = time.perf_counter() - mark
        mark = time.perf_counter()
        x_pred, _ = restaurants.prediction_rows(hourly, NEXT_WEEK, 4, workers=0)
        phases["future"] = time.perf_counter() - mark
        mark = time.perf_counter()
        y_pred = model.predict_frame(x_pred.set_index("order_date"))
        phases["predict"] = time.perf_counter() - mark
        if engine == "spark":
            jvm = _jvm_peak_mib()
    finally:
        if engine == "spark":
            spark.stop()
    wall = time.perf_counter() - start
    return {
        "engine": engine,
        "wall": wall,
        "phases": phases,
        "driver_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "jvm_mib": jvm,
        "forecast_sum": float(y_pred["y_pred"].sum()),
        "restaurants": int(hourly["restaurant"].nunique()),
    }


def measure(engine: str, data_dir: Path, master: str) -> dict:
    env = {**os.environ, "FOODCAST_SPARK_MASTER": master}
    out = subprocess.run(
        [sys.executable, __file__, "--child", engine, str(data_dir)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def generate(directory: Path, restaurants: int) -> None:
    options = ["--restaurants", str(restaurants), "--weeks", WEEKS, "--data-dir", str(directory)]
    c.run(
        [c.PYTHON, "-m", "foodcast", "generate", *options],
        env=c.bench_env(directory),
        cwd=c.REPO,
    )


def slope(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of ``(n, seconds)``; None with fewer than two sizes."""
    if len({n for n, _ in points}) < 2:
        return None
    mean_n = sum(n for n, _ in points) / len(points)
    mean_s = sum(s for _, s in points) / len(points)
    num = sum((n - mean_n) * (s - mean_s) for n, s in points)
    return num / sum((n - mean_n) ** 2 for n, _ in points)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--restaurants", default="50,200,800")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--master", default=os.environ.get("FOODCAST_SPARK_MASTER", "local[2]"))
    parser.add_argument("--child", nargs=2, metavar=("ENGINE", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return
    sizes = [int(n) for n in args.restaurants.split(",")]
    results: dict[int, dict[str, list[dict]]] = {}
    with tempfile.TemporaryDirectory(prefix="foodcast-bench-spark-") as tmp:
        for n in sizes:
            data = Path(tmp) / f"chain{n}"
            c.log(f"generating {n} restaurants, weeks {WEEKS}")
            generate(data, n)
            results[n] = {e: [] for e in ENGINES}
            for repeat in range(args.repeats):
                for engine in ENGINES:
                    result = measure(engine, data, args.master)
                    results[n][engine].append(result)
                    c.log(f"{n} restaurants, {engine}, repeat {repeat + 1}: {result['wall']:.1f} s {result['phases']}")
    rows, fixed, points = [], [], {e: [] for e in ENGINES}
    for n, by_engine in results.items():
        local, spark = (by_engine[e] for e in ENGINES)
        assert all(abs(r["forecast_sum"] - local[0]["forecast_sum"]) < 1e-6 for r in local + spark), "engines differ"
        spark_fixed = c.median([r["phases"]["session"] + r["phases"]["first job"] for r in spark])
        fixed.append(spark_fixed)
        wall_local, wall_spark = c.median([r["wall"] for r in local]), c.median([r["wall"] for r in spark])
        points["local"].append((n, wall_local))
        points["spark"].append((n, wall_spark - spark_fixed))
        rows.append(
            [
                n,
                f"{wall_local:.1f}",
                f"{wall_spark:.1f}",
                f"{wall_spark / wall_local:.2f}",
                f"{c.median([r['phases']['session'] for r in spark]):.1f} + "
                f"{c.median([r['phases']['first job'] for r in spark]):.1f}",
                f"{c.median([r['driver_mib'] for r in local]):.0f}",
                f"{c.median([r['driver_mib'] for r in spark]):.0f} (JVM {c.median([r['jvm_mib'] for r in spark]):.0f})",
            ]
        )
    headers = ["restaurants", "local s", "spark s", "spark/local", "spark fixed s (session + first job)"]
    headers += ["local driver MiB", "spark driver MiB"]
    text = c.table(headers, rows, title=f"per-restaurant work, 21 weeks, local (workers=0, {CORES} cores) vs spark")
    per = {}
    for engine in ENGINES:
        pts = points[engine]
        per[engine] = slope(pts) if slope(pts) is not None else pts[-1][1] / pts[-1][0]
    fixed_s = c.median(fixed)
    core_s = per["spark"] * CORES
    text += (
        f"\nper restaurant: local {per['local']:.3f} s, spark {per['spark']:.3f} s "
        f"({core_s:.3f} core-s) on {CORES} cores"
        + (" (one size: time / N, fixed part out)" if len(sizes) == 1 else " (slope over the sizes)")
        + f"; spark's fixed part {fixed_s:.1f} s\n"
    )
    for executors in (8, 64):
        projected = fixed_s + core_s * 10_000 / executors
        text += f"projection, 10,000 restaurants on {executors} executors: {projected:.0f} s\n"
    print(text)
    c.save("spark_engine", {"results": results, "per_restaurant": per, "fixed": fixed_s}, text)


if __name__ == "__main__":
    main()
