"""Cache scaling: how long main takes to resolve every stage (all cache hits) when the
experiment also holds 100, 1,000 and 10,000 other runs.

One fresh store; one real cold ``mlflow run`` (so every stage is cached); then the
experiment is filled with other runs through the public MlflowClient API (``create_run`` with
tags, ``log_batch`` with parameters, ``set_terminated(FINISHED)``), incrementally
100 -> 1,000 -> 10,000, with the tags and parameters real stage runs carry
(foodcast.step, foodcast.cache_key = random hex, foodcast.upstream.*, mlflow.* system tags,
start_week/end_week/... parameters). At each size:

* in-process: a new interpreter starts a parent run (``mlflow.start_run()``) and times
  ``Pipeline(options).run(parent_id, experiment_id)`` (after one untimed warm-up), median of
  --resolve-repeats (default 7); also the ``find_reusable`` calls alone and the bare
  ``search_runs`` queries, both ways: on the *value* of ``foodcast.cache_key`` (the lookup before
  commit 2043aae) and on the *name* of ``foodcast.cache.<key>`` (``cache.cache_index_tag``, the
  lookup since; the bench adds that tag itself when the code predates it). Filler runs carry
  both tags. The tags table's primary key is (key, run_uuid): a filter on a tag's name is an
  index seek, one on its value scans every run carrying the tag;
* the whole warm ``mlflow run`` command, median of --run-repeats (default 3), with main's own
  "in X s".
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

GOAL = 1.2


def _random_params(params, r) -> dict:
    """Plausible values of an entry point's parameters, varied so that the runs differ."""
    out = {}
    for p in params:
        if p.name.endswith("_run_id"):
            out[p.name] = secrets.token_hex(16)
        elif p.type is int:
            low = int(p.min or 0)
            out[p.name] = max(low, p.default + r.randint(-(p.default // 2), p.default))
        else:
            out[p.name] = p.default
    return out


STAGE_PARAMS = {s.name: (lambda r, ps=s.all_params: _random_params(ps, r)) for s in c.stages.PIPELINE}
STAGE_PARAMS["main"] = lambda r: _random_params(c.stages.main_params(), r)
UPSTREAM = {s.name: list(s.upstream) for s in c.stages.PIPELINE if s.upstream}


# ============================================================================ filling the store


def _fill_worker(args) -> int:
    uri, count, seed, experiment_id = args
    import mlflow
    from mlflow.entities import Param, RunTag

    client = mlflow.MlflowClient(uri)
    rng = random.Random(seed)
    now_ms = int(time.time() * 1000)
    for _ in range(count):
        stage = rng.choice(list(STAGE_PARAMS))
        tags = {
            "foodcast.step": stage,
            "mlflow.runName": stage,
            "mlflow.user": "bench",
            "mlflow.source.name": str(c.REPO),
            "mlflow.source.type": "PROJECT",
            "mlflow.project.entryPoint": stage,
            "mlflow.project.backend": "local",
            "mlflow.source.git.commit": secrets.token_hex(20),
        }
        if stage != "main":
            key = secrets.token_hex(32)
            tags["foodcast.cache_key"] = key
            tags[f"foodcast.cache.{key}"] = stage  # the key in the tag's name (cache.cache_index_tag)
            tags["mlflow.parentRunId"] = secrets.token_hex(16)
            for up in UPSTREAM.get(stage, []):
                tags[f"foodcast.upstream.{up}_run_id"] = secrets.token_hex(16)
        else:
            tags["foodcast.next_week"] = str(rng.randint(20, 260))
        start = now_ms - rng.randint(0, 30 * 24 * 3600 * 1000)
        run = client.create_run(experiment_id, start_time=start, tags=tags)
        params = [Param(k, str(v)) for k, v in STAGE_PARAMS[stage](rng).items()]
        client.log_batch(run.info.run_id, params=params, tags=[RunTag("bench.filler", "true")])
        client.set_terminated(run.info.run_id, "FINISHED", end_time=start + rng.randint(2000, 90000))
    return count


def fill(uri: str, count: int, workers: int, experiment_id: str = "0") -> float:
    """Add ``count`` finished runs to an experiment of the tracking store at ``uri``; returns
    the seconds it took."""
    started = time.perf_counter()
    if count <= 0:
        return 0.0
    shares = [count // workers + (1 if i < count % workers else 0) for i in range(workers)]
    jobs = [(uri, n, random.randrange(1 << 30), experiment_id) for n in shares if n]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(len(jobs)) as pool:
        done = sum(pool.map(_fill_worker, jobs))
    assert done == count
    return time.perf_counter() - started


# ============================================================================ resolution worker


def resolve_worker(repeats: int) -> None:
    """In a new interpreter (cwd = store dir): time Pipeline(options).run under a parent run."""
    import statistics

    sys.path.insert(0, str(c.REPO))
    import mlflow

    import main as main_module
    from foodcast.pipeline.cache import cache_index_tag, find_reusable
    from foodcast.pipeline.runner import Pipeline

    client = mlflow.MlflowClient()
    options = main_module.check_options({**{p.name: p.default for p in c.stages.main_params()}, **c.MAIN_WEEKS})
    samples, inits, finds, searches, named, relaunched = [], [], [], [], [], 0
    for i in range(repeats + 1):
        with mlflow.start_run() as parent:
            t0 = time.perf_counter()
            pipeline = Pipeline(options)
            t1 = time.perf_counter()
            resolved = pipeline.run(parent.info.run_id, parent.info.experiment_id)
            t2 = time.perf_counter()
            experiment_id = parent.info.experiment_id
        if any(r.status != "reused" for r in resolved.values()):
            relaunched += 1  # sources changed since the cold run: this pass refilled the cache
            continue
        if i == 0:
            continue  # warm-up
        samples.append(t2 - t1)
        inits.append(t1 - t0)
        t = time.perf_counter()
        for key, r in resolved.items():
            find_reusable(client, experiment_id, pipeline.nodes[key].stage, r.cache_key)
        finds.append(time.perf_counter() - t)
        t = time.perf_counter()
        for r in resolved.values():
            client.search_runs(
                experiment_ids=[experiment_id],
                filter_string=f"tags.`foodcast.cache_key` = '{r.cache_key}' AND attributes.status = 'FINISHED'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
        searches.append(time.perf_counter() - t)
        t = time.perf_counter()
        # the lookup on a tag whose *name* carries the key (the tags table's primary key is
        # (key, run_uuid), so it is an index seek; a tag's value is not indexed)
        for (stage, _), r in resolved.items():
            client.search_runs(
                experiment_ids=[experiment_id],
                filter_string=f"tags.`{cache_index_tag(r.cache_key)}` = '{stage}' AND attributes.status = 'FINISHED'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
        named.append(time.perf_counter() - t)
    print(
        "RESOLVE "
        + json.dumps(
            {
                "run": statistics.median(samples) if samples else None,
                "run_samples": samples,
                "init": statistics.median(inits) if inits else None,
                "find_reusable": statistics.median(finds) if finds else None,
                "search_runs": statistics.median(searches) if searches else None,
                "search_runs_named": statistics.median(named) if named else None,
                "relaunched": relaunched,
            }
        ),
        flush=True,
    )


# ============================================================================ benchmark


@dataclass
class Target:
    """Where the pipeline runs and where the filler runs go; used like a ``_common.Store``.

    ``environment`` and ``dir`` are those of the pipeline's processes (tracking URI, login,
    experiment; working directory); ``fill_uri`` is the tracking store the filler writes to
    directly (the same database), in ``experiment_id``: the pipeline's experiment.
    """

    environment: dict
    dir: Path
    fill_uri: str
    experiment_id: str = "0"

    def env(self, extra: dict | None = None) -> dict:
        return {**self.environment, **(extra or {})}


def measure_size(target: Target, have: int, size: int, resolve_repeats: int, run_repeats: int, workers: int) -> dict:
    """Fill the experiment from ``have`` to ``size`` other runs, then time the in-process
    resolution (a worker interpreter) and the warm ``mlflow run`` at that size."""
    c.log(f"filling the experiment to {size} other runs")
    fill_seconds = fill(target.fill_uri, size - have, workers, target.experiment_id)
    c.log(f"{size}: in-process resolution x{resolve_repeats}")
    worker = c.run(
        [c.PYTHON, str(Path(__file__).resolve()), "--worker-resolve", str(resolve_repeats)], target.env(), target.dir
    )
    line = next(ln for ln in worker.stdout.splitlines() if ln.startswith("RESOLVE "))
    resolved = json.loads(line[len("RESOLVE ") :])
    c.log(f"{size}: warm mlflow run x{run_repeats}")
    walls, mains = [], []
    for _ in range(run_repeats):
        r = c.run(c.mlflow_run_cmd(), target.env(), target.dir)
        summary = c.main_summary(r.stdout)
        if summary and summary[0] == 0:
            walls.append(r.seconds)
            mains.append(summary[2])
    return {"size": size, "fill_seconds": fill_seconds, "resolve": resolved, "warm_run": walls, "warm_main": mains}


def measure(sizes, resolve_repeats, run_repeats, workers) -> dict:
    out = {"sizes": []}
    with c.Store() as store:
        store.init()
        target = Target(store.env(), store.dir, store.uri)
        c.log("cold run")
        out["cold"] = c.cold_run(target)[0].seconds
        have = 0
        for size in sizes:
            out["sizes"].append(measure_size(target, have, size, resolve_repeats, run_repeats, workers))
            have = size
    return out


def report(data: dict) -> str:
    rows = []
    for s in data["sizes"]:
        r = s["resolve"]
        rows.append(
            (
                f"{s['size']:,}",
                r["run"],
                c.spread(r["run_samples"]),
                r["find_reusable"],
                r["search_runs"],
                r["search_runs_named"],
                c.median(s["warm_main"]),
                c.median(s["warm_run"]),
                len(r["run_samples"]),
                len(s["warm_run"]),
                s["fill_seconds"],
            )
        )
    out = [
        c.table(
            [
                "other runs",
                "Pipeline.run s",
                "range s",
                f"{c.DEFAULT_RUNS}x find_reusable s",
                f"{c.DEFAULT_RUNS}x search on value s",
                f"{c.DEFAULT_RUNS}x search on name s",
                "main 'in X s'",
                "warm mlflow run s",
                "n res",
                "n run",
                "fill s",
            ],
            rows,
            title="Cache scaling: resolving the cached stages vs runs in the experiment (medians)",
        )
    ]
    first, last = data["sizes"][0], data["sizes"][-1]
    ratio_rows = []
    for label, get in (
        ("Pipeline.run (in-process)", lambda s: s["resolve"]["run"]),
        (f"{c.DEFAULT_RUNS}x find_reusable", lambda s: s["resolve"]["find_reusable"]),
        (f"{c.DEFAULT_RUNS}x search on tag value (foodcast.cache_key = <key>)", lambda s: s["resolve"]["search_runs"]),
        (
            f"{c.DEFAULT_RUNS}x search on tag name (foodcast.cache.<key> = <stage>)",
            lambda s: s["resolve"]["search_runs_named"],
        ),
        ("warm mlflow run (whole command)", lambda s: c.median(s["warm_run"])),
    ):
        a, b = get(first), get(last)
        ratio = b / a if a and b else float("nan")
        goal = f"<= {GOAL}" if label.startswith("Pipeline.run") else "(info)"
        status = c.verdict(ratio, GOAL) if label.startswith("Pipeline.run") else ""
        ratio_rows.append((f"{label}: {last['size']:,} / {first['size']:,}", f"{ratio:.2f}x", goal, status))
    out.append("")
    out.append(c.table(["ratio", "value", "goal", "status"], ratio_rows))
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000,10000", help="other runs, increasing (default 100,1000,10000)")
    parser.add_argument("--resolve-repeats", type=int, default=7, help="timed in-process resolutions per size")
    parser.add_argument("--run-repeats", type=int, default=3, help="warm mlflow runs per size")
    parser.add_argument("--fill-workers", type=int, default=2, help="processes filling the store (default 2)")
    parser.add_argument("--quick", action="store_true", help="sizes 100,1000,3000; 5 resolutions, 1 run each")
    parser.add_argument("--repeats", type=int, help="alias of --resolve-repeats (at least 5 are used)")
    parser.add_argument("--worker-resolve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_resolve is not None:
        resolve_worker(args.worker_resolve)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    resolve_repeats = max(args.repeats, 5) if args.repeats else args.resolve_repeats
    run_repeats = args.run_repeats
    if args.quick:
        sizes, resolve_repeats, run_repeats = [100, 1000, 3000], 5, 1
    data = measure(sizes, max(resolve_repeats, 1), run_repeats, max(args.fill_workers, 1))
    text = report(data)
    c.save("cache_scaling", data, text)
    print(text)


if __name__ == "__main__":
    main()
