"""The `--env-manager uv` route: MLflow builds an isolated environment from conda.yaml's pip
section, in which the stages must still import foodcast (it is not installed there)."""

import shutil

import pytest
from mlflow.tracking import MlflowClient

from conftest import SMALL, SMALL_NODES, Runner, stage_lines


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv is not installed (pip install -e '.[dev]')")
def test_pipeline_runs_in_a_uv_environment(tmp_path, small_data):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    runner = Runner(tmp_path, uri, small_data)
    proc = runner.mlflow_run(env_manager="uv", **SMALL)
    assert {s: st for s, (st, _) in stage_lines(proc.stdout).items()} == dict.fromkeys(SMALL_NODES, "launched")
    # The stages ran with the interpreter of the environment MLflow built, not the test's.
    assert "source " in proc.stderr and "/.mlflow/envs/" in proc.stderr
    client = MlflowClient(uri)
    runs = client.search_runs(["0"])
    assert len(runs) == len(SMALL_NODES) + 1 and all(r.info.status == "FINISHED" for r in runs)
