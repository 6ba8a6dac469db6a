"""The model registry, the champion/challenger gate, predicting from the registry, the
pickle-free model (loaded in a fresh environment without this repository) and the served model.
Real MLflow on a temporary sqlite store; real `mlflow models serve` on loopback."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from conftest import SMALL, Runner, error_lines, stage_lines
from fixtures import make_batches
from foodcast.core.gate import Decision, decide
from foodcast.errors import FoodcastError
from foodcast.pipeline import promotion
from foodcast.pipeline.cache import outputs_present
from foodcast.pipeline.stages.predict import predict_model
from foodcast.pipeline.stages.train import TRAIN
from foodcast.tracking import names
from foodcast.tracking.artifacts import to_cents
from foodcast.tracking.model_registry import point_alias
from foodcast.tracking.models import resolve_model

NAME = "foodcast"
GATED = {**SMALL, "gate_weeks": 2}


def test_the_gate_s_rule():
    assert decide(9.0, 10.0, 0.0).promote and decide(10.0, 10.0, 0.0).promote  # ties promote the newer
    assert not decide(10.5, 10.0, 0.0).promote
    assert decide(10.5, 10.0, 0.05).promote and not decide(10.6, 10.0, 0.05).promote
    assert isinstance(decide(1, 2, 0), Decision) and "1.000 against the champion's 2.000" in decide(1, 2, 0).reason


def test_the_gate_reads_the_weeks_its_forecasts_need():
    from foodcast.core.windows import gate_weeks_read

    assert gate_weeks_read(180, 200, 4) == (176, 200)  # 21 weeks before week 197
    assert gate_weeks_read(190, 200, 4) == (186, 200)  # the challenger's 11
    assert gate_weeks_read(190, 200, 4, history=21) == (176, 200)  # and the profile's 21 before a forecast week


def test_a_version_without_a_logged_model_is_refused_in_one_line(store):
    """A version registered from a bare source (no LoggedModel behind it): predict's model_uri
    is refused with one line, not a traceback."""
    client = MlflowClient()
    client.create_registered_model("bare")
    client.create_model_version("bare", source="")
    with pytest.raises(FoodcastError, match="models:/bare/1 names no model of the registry"):
        resolve_model(None, "models:/bare/1")


def _point_at_once(uri, barrier, alias, version):
    client = MlflowClient(uri)
    barrier.wait()
    point_alias(client, NAME, alias, version)  # a failure ends the process with exit code 1


def test_two_pipelines_pointing_a_new_alias_at_once_both_succeed(store):
    # Two trains (or promotes) of parallel pipelines set an alias the model does not have yet:
    # the store's read-then-insert lets both read "none" (seen here: 1 round in 3 failed).
    client = MlflowClient(store)
    client.create_registered_model(NAME)
    for _ in range(2):
        client.create_model_version(NAME, "file:///nowhere")
    context = multiprocessing.get_context("fork")
    for round_ in range(8):
        barrier = context.Barrier(2)
        alias = f"alias{round_}"
        procs = [
            context.Process(target=_point_at_once, args=(store, barrier, alias, version)) for version in ("1", "2")
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(60)
        assert [proc.exitcode for proc in procs] == [0, 0], f"round {round_}"
        assert str(client.get_model_version_by_alias(NAME, alias).version) in ("1", "2")


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """Two pipelines with different n_estimators: versions 1 and 2 of the registered model."""
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root}/mlflow.db"
    runner = Runner(root, uri, make_batches(root / "data", range(1, 15)))
    first = runner.mlflow_run(**GATED)
    second = runner.mlflow_run(**{**GATED, "n_estimators": 9})
    mlflow.set_tracking_uri(uri)
    return runner, MlflowClient(uri), stage_lines(first.stdout), stage_lines(second.stdout), (first, second)


def _promote_run(client, run_id):
    return client.get_run(run_id)


def test_two_trainings_two_versions_the_better_one_champion(registry):
    runner, client, first, second, procs = registry
    versions = {str(v.version): v for v in client.search_model_versions(f"name = '{NAME}'")}
    assert sorted(versions) == ["1", "2"]
    assert versions["1"].tags["train_run_id"] == first["train"][1]
    assert versions["2"].tags["train_run_id"] == second["train"][1]
    assert versions["2"].tags["weeks"] == "2-12" and versions["2"].tags["features_run_id"] == first["features"][1]
    assert str(client.get_model_version_by_alias(NAME, "challenger").version) == "2"

    gate = client.get_run(second["promote"][1])
    scores = gate.data.metrics
    better = "2" if scores["challenger_mae"] <= scores["champion_mae"] else "1"
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == better
    assert gate.data.tags["foodcast.decision"] == ("promoted" if better == "2" else "kept")
    assert f"{scores['challenger_mae']:.3f}" in gate.data.tags["foodcast.reason"]
    assert gate.data.tags["foodcast.summary"] in gate.data.tags["mlflow.note.content"]
    assert client.get_model_version(NAME, "2").description == gate.data.tags["foodcast.summary"]
    first_gate = client.get_run(first["promote"][1])
    assert "first model of the registry" in first_gate.data.tags["foodcast.reason"]

    # Rerunning either pipeline adds no version; the champion's, rerun last, reuses every
    # stage, the promote run that made it champion included.
    champion = client.get_model_version_by_alias(NAME, "champion")
    pipelines = [GATED, {**GATED, "n_estimators": 9}]
    if champion.tags["train_run_id"] == first["train"][1]:
        pipelines.reverse()
    for params in pipelines:
        again = stage_lines(runner.mlflow_run(**params).stdout)
        assert again["train"][0] == "reused"
    assert len(client.search_model_versions(f"name = '{NAME}'")) == 2
    assert {s: status for s, (status, _) in again.items()} == dict.fromkeys(again, "reused"), again


def test_predict_from_the_registry_is_predict_from_the_version_s_train_run(registry, tmp_path):
    runner, client, first, second, _ = registry
    champion = client.get_model_version_by_alias(NAME, "champion")
    future = first["future"][1]
    runner.mlflow_run("predict", future_run_id=future, model_uri=f"models:/{NAME}@champion")
    runner.mlflow_run("predict", future_run_id=future, train_run_id=champion.tags["train_run_id"])
    runs = client.search_runs(
        ["0"], filter_string="tags.`foodcast.step` = 'predict'", max_results=2, order_by=["attributes.start_time DESC"]
    )
    # (`mlflow run` logs a parameter as it put it in the command: an empty one as '')
    by_uri, by_run = sorted(runs, key=lambda r: r.data.params["model_uri"] == "''")
    assert by_uri.data.params["model_uri"] == f"models:/{NAME}@champion"
    files = [
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=r.info.run_id, artifact_path="predictions/y_pred.csv", dst_path=str(tmp_path / r.info.run_id)
            )
        ).read_bytes()
        for r in (by_uri, by_run)
    ]
    assert files[0] == files[1]
    for run in (by_uri, by_run):  # the model used is an input either way
        assert [m.model_id for m in client.get_run(run.info.run_id).inputs.model_inputs] == [
            champion.source.removeprefix("models:/")
        ]

    proc = runner.mlflow_run(
        "predict",
        check=False,
        future_run_id=future,
        train_run_id=first["train"][1],
        model_uri=f"models:/{NAME}@champion",
    )
    errors = error_lines(proc.stderr)
    assert proc.returncode != 0 and len(errors) == 1 and "exactly one of train_run_id and model_uri" in errors[0]


def test_main_can_forecast_with_the_champion(registry):
    runner, client, first, second, _ = registry
    proc = runner.mlflow_run(**{**GATED, "n_estimators": 9, "model": "champion"})
    lines = stage_lines(proc.stdout)
    predict = client.get_run(lines["predict"][1])
    champion = client.get_model_version_by_alias(NAME, "champion")
    assert predict.data.params["model_uri"] == f"models:/{NAME}/{champion.version}"
    assert predict.data.params["train_run_id"] == "''"  # empty, as `mlflow run` logs it


def test_no_pickle_anywhere(registry):
    runner, client, first, _, procs = registry
    assert "CloudPickle" not in procs[0].stderr and "cloudpickle" not in procs[0].stderr.lower()
    train = client.get_run(first["train"][1])
    for output in train.outputs.model_outputs:
        model = client.get_logged_model(output.model_id)
        local = Path(model.artifact_location.removeprefix("file://"))
        files = [p.name for p in local.rglob("*") if p.is_file()]
        assert not [n for n in files if n.endswith((".pkl", ".pickle", ".cloudpickle"))], (model.name, files)
        if model.name == names.MULTI_MODEL:
            code = sorted(str(p.relative_to(local / "code")) for p in (local / "code").rglob("*.py"))
            assert "foodcast/core/multi_model.py" in code
            # the forecasting core only: no MLflow glue, no files, no pipeline
            assert not [
                c
                for c in code
                if not c.startswith("foodcast/core/") and c not in ("foodcast/__init__.py", "foodcast/errors.py")
            ], code


def test_the_model_loads_in_a_fresh_environment_without_this_repository(registry, tmp_path):
    """`uv` builds a virtual environment from the requirements MLflow recorded; the model loads
    there, outside the repository, and reproduces predict's output."""
    runner, client, first, _, _ = registry
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    model_uri = f"runs:/{first['train'][1]}/{names.MULTI_MODEL}"
    requirements = mlflow.pyfunc.get_model_dependencies(model_uri)
    env_dir = tmp_path / "fresh"
    # uv trusts its own certificate bundle unless told to use the system's (where a proxy's CA,
    # which pip is configured with, may be): the system's, under both names uv has used.
    uv_env = {**os.environ, "UV_SYSTEM_CERTS": "1", "UV_NATIVE_TLS": "1"}
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(env_dir)], check=True, env=uv_env)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--python", str(python), "-r", requirements],
        check=True,
        timeout=900,
        env=uv_env,
    )
    x_pred = Path(
        mlflow.artifacts.download_artifacts(
            run_id=first["future"][1], dst_path=str(tmp_path / "x"), artifact_path=names.artifact_path(names.X_PRED)
        )
    )
    script = (
        "import importlib.util, sys, mlflow, pandas as pd\n"
        "assert importlib.util.find_spec('foodcast') is None, 'foodcast is importable before loading'\n"
        f"model = mlflow.pyfunc.load_model({model_uri!r})\n"
        f"x = pd.read_csv({str(x_pred)!r}, parse_dates=['order_date']).drop(columns='order_date')\n"
        "model.predict(x).to_csv(sys.argv[1], index=False)\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "MLFLOW_TRACKING_URI": client.tracking_uri,
    }
    out = tmp_path / "fresh.csv"
    proc = subprocess.run(
        [str(python), "-c", script, str(out)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    logged = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=first["predict"][1], dst_path=str(tmp_path / "y"), artifact_path=names.artifact_path(names.Y_PRED)
        )
    )
    pd.testing.assert_frame_equal(to_cents(pd.read_csv(out)), logged.drop(columns="order_date"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_served_champion_answers_what_predict_logged(registry, tmp_path):
    runner, client, first, _, _ = registry
    runner.mlflow_run("predict", future_run_id=first["future"][1], model_uri=f"models:/{NAME}@champion")
    [predict] = client.search_runs(
        ["0"], filter_string="tags.`foodcast.step` = 'predict'", max_results=1, order_by=["attributes.start_time DESC"]
    )
    logged = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=predict.info.run_id, dst_path=str(tmp_path / "y"), artifact_path=names.artifact_path(names.Y_PRED)
        )
    )
    x_pred = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=first["future"][1], dst_path=str(tmp_path / "x"), artifact_path=names.artifact_path(names.X_PRED)
        )
    )
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "serve",
            "-m",
            f"models:/{NAME}@champion",
            "--env-manager",
            "local",
            "--host",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=runner.workdir,
        env=runner.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.stdout.read()[-3000:]
                time.sleep(0.5)
        x = x_pred.drop(columns="order_date")
        answer = json.loads(urllib.request.urlopen(_invocation(port, x), timeout=60).read())
        # The tester's requests, answered with HTTP 200 and a forecast (£0.93 for a NaN level).
        level = next(c for c in x.columns if c.startswith("level_"))
        refusals = {}
        for column, bad in (
            (level, x.assign(**{level: float("nan")})),
            ("weekday", x.assign(weekday=42.0)),
            ("surplus", x.assign(surplus=1.0)),
        ):
            with pytest.raises(urllib.error.HTTPError) as refusal:
                urllib.request.urlopen(_invocation(port, bad), timeout=60)
            refusals[column] = (refusal.value.code, json.loads(refusal.value.read())["message"])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    served = pd.DataFrame(answer["predictions"])
    pd.testing.assert_frame_equal(to_cents(served), logged.drop(columns="order_date"), check_dtype=False)
    for column, (status, message) in refusals.items():
        assert status == 400 and f"column '{column}'" in message, (column, message)
    assert "outside 0 to 6: 42.0" in refusals["weekday"][1]


def _invocation(port: int, x: pd.DataFrame) -> urllib.request.Request:
    body = json.dumps({"dataframe_split": x.to_dict(orient="split")})
    return urllib.request.Request(
        f"http://127.0.0.1:{port}/invocations", data=body.encode(), headers={"Content-Type": "application/json"}
    )


def test_train_run_by_hand_registers_a_version_and_moves_no_alias(registry):
    """The aliases say what promote compared: a train run on its own adds a version but leaves
    challenger (and champion) where promote put them (unless -P set_alias=true)."""
    runner, client, first, _, _ = registry
    before = {alias: client.get_model_version_by_alias(NAME, alias).version for alias in ("challenger", "champion")}
    runner.mlflow_run("train", features_run_id=first["features"][1], n_estimators=11, n_models=2)
    versions = client.search_model_versions(f"name = '{NAME}'")
    assert max(int(v.version) for v in versions) == len(versions) >= 3
    after = {alias: client.get_model_version_by_alias(NAME, alias).version for alias in ("challenger", "champion")}
    assert after == before


def _versions(client):
    """The champion, and the other version of the module's registry."""
    champion = client.get_model_version_by_alias(NAME, names.CHAMPION)
    other = next(v for v in client.search_model_versions(f"name = '{NAME}'") if v.version != champion.version)
    return champion, other


def test_without_the_champion_alias_the_gate_compares_with_the_last_champion(registry, monkeypatch):
    """Deleting the alias champion does not open the gate: promote backtests the challenger
    against the version that was champion last, and says so (not "the first model")."""
    runner, client, *_ = registry
    monkeypatch.setenv("FOODCAST_DATA_DIR", runner.env["FOODCAST_DATA_DIR"])
    mlflow.set_tracking_uri(client.tracking_uri)
    champion, other = _versions(client)
    client.delete_registered_model_alias(NAME, names.CHAMPION)
    try:
        with mlflow.start_run(run_name="the gate, without an alias"):  # the gate records what it read
            gating = promotion.gate(client, NAME, other.tags["train_run_id"], GATED["gate_weeks"], 0.0, False)
            itself = promotion.gate(client, NAME, champion.tags["train_run_id"], GATED["gate_weeks"], 0.0, False)
        # main's model=champion, should promote keep the challenger: one line before predict
        with pytest.raises(FoodcastError, match=f"the registered model '{NAME}' has no champion"):
            predict_model({"model": "champion", "registered_model_name": NAME}, {}, client)
    finally:
        client.set_registered_model_alias(NAME, names.CHAMPION, champion.version)
    assert gating.champion is not None and gating.champion.version == champion.version
    assert gating.decision.challenger_mae is not None and gating.decision.champion_mae is not None
    assert f"against version {champion.version}, champion last" in gating.decision.reason
    assert f"(champion before: none; version {champion.version} was champion last)" in gating.summary
    assert "first model" not in gating.summary
    # the last champion itself gets the alias back
    assert itself.decision.promote and "it was champion last" in itself.decision.reason


def test_model_champion_with_other_feature_parameters_is_refused_before_anything_runs(registry):
    """The champion expects the features it was trained on: main refuses other feature
    parameters with model=champion at once, naming them, instead of failing in predict."""
    runner, client, *_ = registry
    before = {r.info.run_id for r in client.search_runs(["0"], max_results=1000)}
    proc = runner.mlflow_run(check=False, **{**GATED, "level_weeks": 3, "calendar_index": "false", "model": "champion"})
    errors = error_lines(proc.stderr)
    assert proc.returncode != 0 and len(errors) == 1, proc.stderr[-3000:]
    assert "level_weeks=3 (the champion's: 4), calendar_index=false (the champion's: true)" in errors[0]
    assert "launching" not in proc.stdout and "Traceback" not in proc.stderr
    new = [r for r in client.search_runs(["0"], max_results=1000) if r.info.run_id not in before]
    assert [(r.data.tags.get(names.STEP_TAG), r.info.status) for r in new] == [("main", "FAILED")]
    assert "level_weeks=3" in new[0].data.tags[names.ERROR_TAG]


def test_a_train_run_whose_version_was_deleted_is_not_reused(registry):
    """Promote gates the version train registered: once it is deleted from the registry, the
    cache no longer reuses that train run (which would fail promote in every pipeline), it
    launches train again. (Deletes a version: the module's last test.)"""
    runner, client, *_ = registry
    _, other = _versions(client)
    train_run = client.get_run(other.tags["train_run_id"])
    assert outputs_present(client, train_run, TRAIN)
    client.delete_model_version(NAME, other.version)
    assert not outputs_present(client, train_run, TRAIN)
