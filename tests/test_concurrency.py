"""Pipelines started at the same moment on one sqlite store, a brand-new one (two `mlflow run`
on a new store raced inside MLflow's own schema migration: foodcast.tracking.sqlite_store)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

from conftest import SMALL, Runner, stage_lines
from fixtures import make_batches
from foodcast.tracking import names


def start(runner: Runner, **params) -> subprocess.Popen:
    args = [sys.executable, "-m", "mlflow", "run", str(runner.project), "--env-manager", "local"]
    for name, value in params.items():
        args += ["-P", f"{name}={value}"]
    return subprocess.Popen(
        args, cwd=runner.workdir, env=runner.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(procs) -> list[str]:
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-4000:]
        outs.append(out)
    return outs


def lineage(client: MlflowClient, stdout: str) -> tuple[str, dict]:
    parent_id = next(line.split()[2] for line in stdout.splitlines() if line.startswith("main: run "))
    local = mlflow.artifacts.download_artifacts(run_id=parent_id, artifact_path=names.LINEAGE_FILE)
    return parent_id, json.loads(Path(local).read_text())


def test_two_pipelines_at_once(tmp_path):
    data = make_batches(tmp_path / "data", range(1, 15))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    runner = Runner(tmp_path, uri, data, new_store=True)  # MLflow creates it: the race

    # Three pipelines at once, on a store that does not exist yet. Different parameters: each
    # parent's lineage holds its own stages, nested under it. The same new parameters twice
    # (the last two): neither finds the other's stages finished, so each computes its own, and
    # the forecasts are byte-identical.
    estimators = ("5", "9", "9")
    outs = finish([start(runner, **{**SMALL, "n_estimators": n}) for n in estimators])
    client = MlflowClient(uri)
    mlflow.set_tracking_uri(uri)
    for stdout, n_estimators in zip(outs, estimators, strict=True):
        parent_id, stages = lineage(client, stdout)
        assert {s: (v["status"], v["run_id"]) for s, v in stages.items()} == stage_lines(stdout)
        for stage in ("validate", "train"):
            assert client.get_run(stages[stage]["run_id"]).data.params["n_estimators"] == n_estimators
        children = client.search_runs(["0"], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'")
        launched = {v["run_id"] for v in stages.values() if v["status"] == "launched"}
        assert {r.info.run_id for r in children} == launched
        assert all(r.info.status == "FINISHED" for r in children)

    predictions = []
    for stdout in outs[1:]:
        run_id = stage_lines(stdout)["predict"][1]
        predictions.append(
            Path(
                mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=names.artifact_path(names.Y_PRED))
            ).read_bytes()
        )
    assert stage_lines(outs[1])["predict"][1] != stage_lines(outs[2])["predict"][1]
    assert predictions[0] == predictions[1]


def test_processes_opening_a_new_sqlite_store_at_once_all_succeed(tmp_path):
    """The race itself, without pipelines: each process creates the store's tables and runs its
    migrations unless another holds the store's lock (one crashed: `duplicate column name`)."""
    uri = f"sqlite:///{tmp_path}/new.db"
    opening = f"from mlflow.tracking import MlflowClient; print(MlflowClient({uri!r}).search_experiments()[0].name)"
    procs = [
        subprocess.Popen([sys.executable, "-c", opening], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert (proc.returncode, out.strip()) == (0, "Default"), err[-2000:]
    assert (tmp_path / "new.db.lock").exists()  # next to the database
