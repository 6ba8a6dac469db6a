"""Reading the timing probe's records (bench/_probe/sitecustomize.py): phases of the mlflow
CLI, of main.py and of each stage process, and the critical path of the stage DAG.

All times are wall-clock timestamps recorded by the probe in each process; durations are
differences between them (same machine clock)."""

from __future__ import annotations

import _common as c

UPSTREAM = {s.name: list(s.upstream) for s in c.stages.PIPELINE}

_ARTIFACT_READ = {"foodcast.tracking.artifacts.read_frame", "foodcast.tracking.runs.check_run"}
_ARTIFACT_WRITE = {"foodcast.tracking.artifacts.mlflow_log_pandas", "foodcast.tracking.artifacts.mlflow_log_plotly"}
_DATASETS = {"foodcast.tracking.datasets.log_input_frame"}
_MODELS = {"foodcast.tracking.models.log_models", "foodcast.tracking.models.load_predictor"}
_METRICS = {
    "foodcast.tracking.metrics.log_validation_metrics",
    "mlflow.tracking.fluent.log_metrics",
    "mlflow.tracking.fluent.set_tag",
    "mlflow.tracking.fluent.log_metric",
}


def by_kind(records) -> dict:
    out = {}
    for r in sorted(records, key=lambda r: r["proc_start"] or 0):
        out.setdefault(c.process_kind(r), r)
    return out


def first(record, name, thread=None):
    found = c.spans(record, name=name, thread=thread)
    return found[0] if found else None


def client_calls(record, thread=None) -> dict:
    """{MlflowClient method: [calls, seconds]} (outermost and nested alike)."""
    out: dict = {}
    for name, t0, t1, th, _ in record["spans"]:
        if name.startswith("MlflowClient.") and (thread is None or th == thread):
            entry = out.setdefault(name[len("MlflowClient.") :], [0, 0.0])
            entry[0] += 1
            entry[1] += t1 - t0
    return out


def cli_phases(cli, main) -> dict:
    run = first(cli, "mlflow.projects.run")
    import_end = (cli["imports"].get("mlflow.cli") or cli["imports"]["mlflow"])[1]
    return {
        "interpreter start": cli["site"] - cli["proc_start"],
        "imports (mlflow, mlflow.cli)": import_end - cli["site"],
        "CLI parsing until projects.run": run[1] - import_end,
        "projects.run until main spawned (store init, create run, git)": main["proc_start"] - run[1],
        "main exit -> projects.run returns (finalise main, set_terminated)": run[2] - main["exit"],
        "after projects.run (atexit)": cli["exit"] - run[2],
        "SQL statements": c.sql_stats(cli)[0],
        "SQL seconds": c.sql_stats(cli)[1],
    }


def main_phases(main) -> dict:
    start_run = first(main, "mlflow.tracking.fluent.start_run", "MainThread")
    init = first(main, "Pipeline.__init__")
    prun = first(main, "Pipeline.run")
    lineage = first(main, "foodcast.pipeline.runner.record_lineage")
    end_runs = c.spans(main, name="mlflow.tracking.fluent.end_run", thread="MainThread")
    last_end = end_runs[-1][2] if end_runs else (lineage[2] if lineage else prun[2])
    finds = c.spans(main, name="foodcast.pipeline.cache.find_reusable")
    return {
        "interpreter start": main["site"] - main["proc_start"],
        "imports + check_options": start_run[1] - main["site"],
        "start_run (store init + resume parent)": start_run[2] - start_run[1],
        "log params/tags": init[1] - start_run[2],
        "Pipeline.__init__ (MLproject, source fingerprint)": init[2] - init[1],
        "Pipeline.run (resolve all stages)": prun[2] - prun[1],
        "  find_reusable total": sum(s[2] - s[1] for s in finds),
        "  find_reusable calls": len(finds),
        "  fingerprints (batches) total": c.span_total(main, {"foodcast.data.coverage.batches_fingerprint"}),
        "record_lineage": (lineage[2] - lineage[1]) if lineage else 0.0,
        "end_run + atexit": main["exit"] - (lineage[2] if lineage else prun[2]),
        "SQL statements (main thread)": c.sql_stats(main, "MainThread")[0],
        "SQL seconds (main thread)": c.sql_stats(main, "MainThread")[1],
        "MlflowClient calls (main thread)": sum(v[0] for v in client_calls(main, "MainThread").values()),
        "_until_pipeline_run": prun[1] - main["proc_start"],
        "_window": [prun[1], prun[2]],
        "_last_end": last_end,
    }


def stage_phases(main, proc, stage) -> dict | None:
    thread = f"foodcast-{stage}"
    run = first(main, "mlflow.projects.run", thread)
    sr = first(proc, "mlflow.tracking.fluent.start_run")
    if run is None or sr is None:
        return None
    _, a, b, _, _ = run
    er = c.spans(proc, name="mlflow.tracking.fluent.end_run")
    logs = {m.rsplit(" ", 1)[1]: t for t, m in proc["logs"]}
    started = logs.get("started", sr[2])
    finished = logs.get("finished", er[0][1] if er else proc["exit"])
    work = finished - started
    reads = c.span_total(proc, _ARTIFACT_READ)
    writes = c.span_total(proc, _ARTIFACT_WRITE)
    datasets = c.span_total(proc, _DATASETS)
    models = c.span_total(proc, _MODELS)
    metrics = c.span_total(proc, _METRICS)
    after_exit = sum(
        t1 - t0
        for name, t0, t1, th, depth in main["spans"]
        if th == thread and name.startswith("MlflowClient.") and t0 >= proc["exit"] and depth == 1
    )
    proc_sql = c.sql_stats(proc)
    main_sql = c.sql_stats(main, thread)
    return {
        "mlflow.run total": b - a,
        "launch (main: create run, git, spawn)": proc["proc_start"] - a,
        "interpreter start": proc["site"] - proc["proc_start"],
        "imports": sr[1] - proc["site"],
        "start_run (store init + resume)": sr[2] - sr[1],
        "log params/tags": started - sr[2],
        "work": work,
        "  compute (rest)": work - reads - datasets - writes - models - metrics,
        "  read upstream artifacts": reads,
        "  log input datasets": datasets,
        "  write artifacts (csv/html)": writes,
        "  log/load models": models,
        "  metrics/tags": metrics,
        "end_run + atexit": proc["exit"] - finished,
        "finalise process + wake main": b - proc["exit"] - after_exit,
        "main: status checks after exit": after_exit,
        "SQL statements (stage proc + main thread)": proc_sql[0] + main_sql[0],
        "SQL seconds (stage proc + main thread)": proc_sql[1] + main_sql[1],
        "MlflowClient calls (stage proc + main thread)": sum(v[0] for v in client_calls(proc).values())
        + sum(v[0] for v in client_calls(main, thread).values()),
        "modules loaded": proc.get("modules"),
        "_window": [a, b],
    }


def critical_chain(stages: dict) -> list[str]:
    """The chain of stages that determined the end: from the stage that ended last, back
    through the upstream stage that ended last before it started."""
    if not stages:
        return []
    present = {s: v["_window"] for s, v in stages.items()}
    chain = [max(present, key=lambda s: present[s][1])]
    while True:
        ups = [u for u in UPSTREAM[chain[-1]] if u in present]
        if not ups:
            break
        chain.append(max(ups, key=lambda u: present[u][1]))
    return list(reversed(chain))
