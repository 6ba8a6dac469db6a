"""engine=spark against engine=local, on a generated chain of 12 restaurants (weeks 170-200,
seed 7; trained on 180-199, week 200 forecast).

ONE `mlflow run` of main with engine=local (no Spark: the reference, about a minute) and ONE
Spark session for the module (``local[2]``, 5-25 s to start): the per-restaurant stages run
again in this process with ``--engine spark`` on the pipeline's upstream runs, and must write the
same files, byte for byte (their checksum tags). The pipeline with engine=spark reuses every
stage of the one with engine=local (engine is in no cache key). Only the SIGTERM test starts a
pipeline that launches Spark itself.
"""

from __future__ import annotations

import functools
import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pandas as pd
import pytest
from click.testing import CliRunner
from mlflow.tracking import MlflowClient

from conftest import Runner, stage_lines
from fixtures import DAMAGES, SHORT_FEATURES, SHORT_MODEL, csv_bytes, make_batches
from foodcast.core import pool, restaurants
from foodcast.data.chain import read_chain, read_restaurants
from foodcast.data.orders import read_batches
from foodcast.errors import FoodcastError
from foodcast.tracking import names
from foodcast.tracking.names import artifact_tag
from test_interruptions import group_members

pytest.importorskip("pyspark")

OPTIONS = {
    "granularity": "restaurant",
    "start_week": 180,
    "end_week": 199,
    "n_fold": 3,
    "n_models": 3,
    "n_estimators": 10,  # (100 by default: the engines' agreement does not need them)
    "workers": 2,
}
MASTER = "local[2]"


def _java_in_group(group: int) -> list[int]:
    """The pids of the java processes of process group ``group``."""
    found = []
    for pid in group_members(group):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if command.endswith(b"java"):
            found.append(pid)
    return found


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    root = tmp_path_factory.mktemp("spark")
    data = root / "data"
    generate = ["generate", "--restaurants", "12", "--weeks", "170-200", "--seed", "7", "--data-dir", str(data)]
    subprocess.run(
        [sys.executable, "-m", "foodcast", *generate],
        check=True,
        capture_output=True,
    )
    uri = f"sqlite:///{root}/mlflow.db"
    runner = Runner(root, uri, data)
    runner.env["FOODCAST_SPARK_MASTER"] = MASTER
    first = runner.mlflow_run(**OPTIONS)  # engine=local, the default
    return SimpleNamespace(root=root, data=data, uri=uri, runner=runner, lines=stage_lines(first.stdout))


@pytest.fixture(scope="module")
def spark(chain):
    """This module's Spark session; stopped, its JVM ended, after the last test."""
    patch = pytest.MonkeyPatch()
    patch.setenv("FOODCAST_SPARK_MASTER", MASTER)
    from foodcast.spark import engine

    try:
        yield engine.session()
    finally:
        engine.stop()
        patch.undo()


def test_a_pipeline_with_engine_spark_reuses_every_stage_of_engine_local(chain):
    second = chain.runner.mlflow_run(**OPTIONS, engine="spark")
    lines = stage_lines(second.stdout)
    assert lines and {how for how, _ in lines.values()} == {"reused"}, second.stdout
    assert {stage: run for stage, (_, run) in lines.items()} == {s: run for s, (_, run) in chain.lines.items()}


def test_every_per_restaurant_stage_on_spark_writes_the_files_of_engine_local(chain, spark, monkeypatch):
    """load, features, validate, train, future and predict with --engine spark: the same files as the
    pipeline's (every restaurant and the chain's rows, to the last bit), and the runs name their
    Spark application."""
    from foodcast.spark.engine import APP_ID_TAG, MASTER_TAG
    from steps.features import features
    from steps.future import future
    from steps.load import load
    from steps.predict import predict
    from steps.train import train
    from steps.validate import validate

    client = MlflowClient(chain.uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", chain.uri)
    monkeypatch.setenv("FOODCAST_DATA_DIR", str(chain.data))
    mlflow.set_tracking_uri(chain.uri)
    run_of = {stage: run for stage, (_, run) in chain.lines.items()}
    spark_runs: dict[str, str] = {}

    def run(stage, command, args, artifacts):
        result = CliRunner().invoke(command, [*args, "--engine", "spark"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        alone = client.search_runs(["0"], f"tags.`foodcast.step` = '{stage}'", order_by=["attributes.start_time DESC"])
        mine = alone[0]
        assert mine.info.run_id != run_of[stage]
        assert mine.data.params["engine"] == "spark"
        assert mine.data.tags[APP_ID_TAG] == spark.sparkContext.applicationId
        assert mine.data.tags[MASTER_TAG].startswith("local[2")
        piped = client.get_run(run_of[stage])
        for artifact in artifacts:
            tag = artifact_tag(names.artifact_path(artifact))
            assert mine.data.tags[tag] == piped.data.tags[tag], (stage, artifact)
        spark_runs[stage] = mine.info.run_id

    try:
        weeks = ["--start-week", "180", "--end-week", "199", "--granularity", "restaurant"]
        run("load", load, weeks, [names.DATA])  # the batches read and summed on Spark
        run("features", features, ["--load-run-id", spark_runs["load"]], [names.X_TRAIN, names.Y_TRAIN])
        run(
            "validate",
            validate,
            ["--features-run-id", spark_runs["features"], "--n-fold", "3", "--n-models", "3", "--n-estimators", "10"],
            [names.CV_PREDICTIONS, names.PER_RESTAURANT],
        )
        run(
            "train", train, ["--features-run-id", spark_runs["features"], "--n-models", "3", "--n-estimators", "10"], []
        )
        run("future", future, ["--next-week", "200", "--granularity", "restaurant"], [names.X_PRED])
        # the model trained on Spark, scored by its spark_udf: what the local one forecast
        result = CliRunner().invoke(
            predict,
            ["--future-run-id", spark_runs["future"], "--train-run-id", spark_runs["train"], "--engine", "spark"],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        mine = client.search_runs(
            ["0"], "tags.`foodcast.step` = 'predict'", order_by=["attributes.start_time DESC"], max_results=1
        )[0]
        tag = artifact_tag(names.artifact_path(names.Y_PRED))
        assert mine.data.tags[tag] == client.get_run(run_of["predict"]).data.tags[tag]
        path = names.artifact_path(names.Y_PRED)
        y_pred = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=mine.info.run_id, artifact_path=path))
        forecast = y_pred["restaurant"].unique()
        assert restaurants.CHAIN in forecast and len(forecast) >= 11  # every open restaurant and the chain
    finally:
        mlflow.set_tracking_uri(None)


def test_a_python_worker_killed_mid_task_is_retried_with_the_same_numbers(chain, spark, monkeypatch, tmp_path):
    from foodcast.spark.engine import FAULT_ENV, spark_map

    hourly, _ = read_restaurants(chain.data, 180, 199)
    local = restaurants.training_rows(hourly, workers=1)
    marker = tmp_path / "killed"
    monkeypatch.setenv(FAULT_ENV, str(marker))
    before = pool.use_mapper(spark_map)
    try:
        on_spark = restaurants.training_rows(hourly, workers=1)
    finally:
        pool.use_mapper(before)
    assert marker.exists()  # a worker was killed (its pid inside), and its task ran again
    assert int(marker.read_text()) != os.getpid()
    pd.testing.assert_frame_equal(on_spark, local, check_exact=True)


def test_a_failing_restaurant_is_named_in_one_line(chain, spark):
    """Restaurants whose history the core refuses (a fallback row needs the chain's profile,
    not given here): the error names the first, in one line."""
    from foodcast.spark.engine import spark_map

    hourly, _ = read_restaurants(chain.data, 180, 199)
    items = restaurants._by_restaurant(restaurants._restaurant_hourly(hourly))
    build = functools.partial(restaurants._training_block, chain_profile=None, settings=SHORT_FEATURES)
    failing = []
    for name, history in items:
        try:
            build((name, history))
        except ValueError:
            failing.append(name)
    assert failing  # every restaurant's first weeks lack a profile of its own
    with pytest.raises(FoodcastError) as caught:
        spark_map(build, items)
    assert str(caught.value) == f"restaurant {failing[0]}: ValueError: a fallback profile needs the chain's profile"


def test_sigterm_of_a_spark_pipeline_leaves_no_jvm_and_no_run_running(chain):
    env = {**chain.runner.env}
    args = [sys.executable, "-m", "mlflow", "run", str(chain.runner.project), "--env-manager", "local"]
    for name, value in {**OPTIONS, "engine": "spark", "use_cache": "false", "end_week": 198}.items():
        args += ["-P", f"{name}={value}"]
    proc = subprocess.Popen(
        args, cwd=chain.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    group = proc.pid
    try:
        deadline = time.monotonic() + 180
        while not _java_in_group(group):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no Spark JVM started"
            time.sleep(0.5)
        time.sleep(2)  # the session starting, or a job under way
        os.killpg(group, signal.SIGTERM)
        proc.communicate(timeout=120)
        deadline = time.monotonic() + 60
        while group_members(group) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not _java_in_group(group)
        assert not group_members(group)
    finally:
        if group_members(group):
            os.killpg(group, signal.SIGKILL)
    assert proc.returncode != 0
    running = MlflowClient(chain.uri).search_runs(["0"], "attributes.status = 'RUNNING'")
    assert running == []


def _refusal(read) -> str:
    with pytest.raises(FoodcastError) as caught:
        read()
    return str(caught.value)


def _damage(root: Path, damage: str) -> None:
    good = root / "beta" / "week_002.csv.gz"
    suffix, make = DAMAGES[damage]
    data = csv_bytes(pd.read_csv(good, dtype=str))
    good.unlink()
    good.with_name("week_002" + suffix).write_bytes(make(data))


def _rewrite(root: Path, change) -> None:
    path = root / "beta" / "week_002.csv.gz"
    export = pd.read_csv(path, dtype=str)
    path.write_bytes(gzip.compress(csv_bytes(change(export))))


MALFORMED = {
    "truncated gzip": lambda root: _damage(root, "truncated-gzip"),
    "latin-1 text": lambda root: _damage(root, "latin-1-text"),
    "ragged rows": lambda root: _damage(root, "ragged-rows"),
    "a negative quantity": lambda root: _rewrite(
        root, lambda e: e.assign(Quantity=e["Quantity"].where(e.index != 3, "-2"))
    ),
    "an order id reused in another week": lambda root: _rewrite(
        root,
        lambda e: e.assign(
            **{
                e.columns[0]: e[e.columns[0]].where(
                    e.index != 0, pd.read_csv(root / "beta" / "week_001.csv.gz", dtype=str).iloc[0, 0]
                )
            }
        ),
    ),
    "a missing batch": lambda root: (root / "beta" / "week_002.csv.gz").unlink(),
}


@pytest.mark.parametrize("fault", list(MALFORMED))
def test_a_malformed_batch_is_refused_under_spark_with_the_pandas_line(spark, tmp_path, fault):
    from foodcast.spark.load import read_batches_on_spark

    root = make_batches(tmp_path / "data", weeks=range(1, 4))
    MALFORMED[fault](root)
    pandas_line = _refusal(lambda: read_restaurants(root, 1, 3, reader=read_batches))
    assert "\n" not in pandas_line
    assert _refusal(lambda: read_restaurants(root, 1, 3, reader=read_batches_on_spark)) == pandas_line
    assert _refusal(lambda: read_chain(root, 1, 3, reader=read_batches_on_spark)) == pandas_line


def test_the_restaurant_backtest_on_spark_gives_the_local_tables(chain, spark):
    """The backtest's weeks go to Spark one item each: the same tables and figures."""
    from foodcast.core.per_restaurant import backtest_restaurants
    from foodcast.spark.engine import spark_map

    hourly, _ = read_restaurants(chain.data, 170, 200)
    run = functools.partial(backtest_restaurants, hourly, 199, 200, 10, SHORT_FEATURES, SHORT_MODEL, jobs=1)
    local = run()
    before = pool.use_mapper(spark_map)
    try:
        on_spark = run()
    finally:
        pool.use_mapper(before)
    pd.testing.assert_frame_equal(on_spark.weeks, local.weeks, check_exact=True)
    pd.testing.assert_frame_equal(on_spark.restaurant_weeks, local.restaurant_weeks, check_exact=True)
    pd.testing.assert_series_equal(pd.Series(on_spark.summary), pd.Series(local.summary), check_exact=True)
    assert on_spark.notes == local.notes
