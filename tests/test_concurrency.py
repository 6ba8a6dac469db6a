"""Pipelines started at the same moment on one sqlite store (created first, as README says:
two `mlflow run` on a brand-new store race inside MLflow's own schema migration)."""

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
    runner = Runner(tmp_path, uri, data)
    runner.run(sys.executable, "-m", "mlflow", "db", "upgrade", uri)  # README: create the store first
    client = MlflowClient(uri)
    mlflow.set_tracking_uri(uri)

    # Different parameters: each parent's lineage holds its own stages, nested under it.
    outs = finish([start(runner, **SMALL), start(runner, **{**SMALL, "n_estimators": 7})])
    for stdout, n_estimators in zip(outs, ("5", "7"), strict=True):
        parent_id, stages = lineage(client, stdout)
        assert {s: (v["status"], v["run_id"]) for s, v in stages.items()} == stage_lines(stdout)
        for stage in ("validate", "train"):
            assert client.get_run(stages[stage]["run_id"]).data.params["n_estimators"] == n_estimators
        children = client.search_runs(["0"], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'")
        launched = {v["run_id"] for v in stages.values() if v["status"] == "launched"}
        assert {r.info.run_id for r in children} == launched
        assert all(r.info.status == "FINISHED" for r in children)

    # The same new parameters twice at once: neither finds the other's stages finished, so each
    # computes its own, and the forecasts are byte-identical.
    same = {**SMALL, "n_estimators": 9}
    outs = finish([start(runner, **same), start(runner, **same)])
    predictions = []
    for stdout in outs:
        run_id = stage_lines(stdout)["predict"][1]
        predictions.append(
            Path(
                mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=names.artifact_path(names.Y_PRED))
            ).read_bytes()
        )
    assert stage_lines(outs[0])["predict"][1] != stage_lines(outs[1])["predict"][1]
    assert predictions[0] == predictions[1]
