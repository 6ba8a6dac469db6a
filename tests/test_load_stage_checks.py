"""The data checks as a user meets them: `mlflow run -e load` of the project, real store."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from conftest import Runner, error_lines
from fixtures import make_batches
from foodcast.settings import PROJECT_ROOT

WEEKS = {"start_week": 2, "end_week": 12}


def failed_load(runner: Runner, **params) -> str:
    """Run the load stage, expecting a clean failure; its one error line."""
    proc = runner.mlflow_run("load", check=False, **params)
    assert proc.returncode != 0, proc.stderr[-3000:]
    errors = error_lines(proc.stderr)
    assert len(errors) == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Aborted!" not in proc.stderr, proc.stderr[-3000:]
    return errors[0]


def load_runs(uri: str):
    return MlflowClient(uri).search_runs(["0"], filter_string="tags.`foodcast.step` = 'load'")


def test_relative_data_dir_under_mlflow_run_is_refused(tmp_path):
    # The tester's case: FOODCAST_DATA_DIR=data, run from a directory holding data/, silently
    # read the project's own data/ (mlflow run starts the stage in the project directory).
    assert any(Path(PROJECT_ROOT, "data").glob("*/week_002.csv*")), "the project's data/ must hold week 2"
    make_batches(tmp_path / "data", range(1, 15))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    runner = Runner(tmp_path, uri, data_dir=None)
    runner.env["FOODCAST_DATA_DIR"] = "data"

    error = failed_load(runner, **WEEKS)

    assert "FOODCAST_DATA_DIR='data' is a relative path" in error and "absolute path" in error
    assert [run.info.status for run in load_runs(uri)] == ["FAILED"]

    runner.env["FOODCAST_DATA_DIR"] = str(tmp_path / "data")
    runner.mlflow_run("load", **WEEKS)


@pytest.mark.parametrize("damage", ["missing-batch", "header-only-batch", "truncated-batch"])
def test_load_refuses_incomplete_or_damaged_batches_in_one_line(tmp_path, damage):
    # The tester's cases: a missing batch ran to the end with a WARNING, a header-only one
    # without even that, and a truncated one printed only "Aborted!".
    data = make_batches(tmp_path / "data", range(1, 15))
    batch = data / "beta" / "week_005.csv.gz"
    if damage == "missing-batch":
        batch.unlink()
        expected = f"week 5 is incomplete: restaurant beta has orders before and after it but no batch for it ({batch})"
    elif damage == "header-only-batch":
        header = gzip.decompress(batch.read_bytes()).split(b"\n")[0] + b"\n"
        batch.write_bytes(gzip.compress(header))
        expected = (
            f"week 5 is incomplete: restaurant beta has orders before and after it but an empty batch for it ({batch})"
        )
    else:
        batch.write_bytes(batch.read_bytes()[:-100])
        expected = f"{batch}: truncated gzip file (the compressed data ends early)"
    uri = f"sqlite:///{tmp_path}/mlflow.db"

    error = failed_load(Runner(tmp_path, uri, data), **WEEKS)

    assert error.startswith("Error: load (run ") and expected in error, error
    runs = load_runs(uri)
    assert [run.info.status for run in runs] == ["FAILED"]
    assert expected in runs[0].data.tags["foodcast.error"]


def test_allow_missing_reads_the_incomplete_week_and_records_it(tmp_path):
    data = make_batches(tmp_path / "data", range(1, 15))
    (data / "beta" / "week_005.csv.gz").unlink()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    Runner(tmp_path, uri, data).mlflow_run("load", allow_missing="true", **WEEKS)
    [run] = load_runs(uri)
    assert run.info.status == "FINISHED"
    assert run.data.params["allow_missing"] == "true"
    assert "incomplete: beta week 5 (no batch)" in run.data.tags["foodcast.coverage"]
