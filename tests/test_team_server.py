"""The pipeline against a real team server: PostgreSQL, `mlflow server --app-name basic-auth`,
proxied artifacts and logins, started and stopped with the project's own command."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from conftest import PROJECT, SMALL, SMALL_NODES, Runner, error_lines, stage_lines
from fixtures import make_batches
from mlflow.server.auth.client import AuthServiceClient
from mlflow.tracking import MlflowClient

from foodcast.application import catalog, stages
from foodcast.errors import FoodcastError
from foodcast.infrastructure import teamserver

STAGES = [s.name for s in stages.PIPELINE]
EXPERIMENT = "team"
EDITOR, READER = "alice", "bob"
PASSWORDS = {EDITOR: "alice-pass-2718", READER: "bob-pass-3141"}
SMALL_MAIN_ARGS = ["--start-week", "2", "--end-week", "12", "--next-week", "13", "--n-fold", "3", "--n-estimators", "5", "--n-models", "3"]


def _postgres_missing() -> str | None:
    try:
        teamserver.postgres_bin_dir()
    except FoodcastError as exc:
        return str(exc)
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_command(*args, check=True, timeout=300) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "foodcast", "server", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"server {args} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr[-4000:]}")
    return proc


def private_dir() -> Path:
    """A directory outside pytest's 0700 tree: PostgreSQL runs as user postgres when we are root."""
    base = Path(tempfile.mkdtemp(prefix="foodcast-team-"))
    base.chmod(0o711)
    return base


@dataclass
class TeamServer:
    directory: Path
    port: int
    data: Path
    workdir: Path

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def admin(self) -> tuple[str, str]:
        credentials = json.loads((self.directory / "credentials.json").read_text())
        return credentials["admin_username"], credentials["admin_password"]

    def runner(self, username: str, password: str, uri: str | None = None) -> Runner:
        runner = Runner(self.workdir, uri or self.uri, self.data)
        runner.env.update(MLFLOW_TRACKING_USERNAME=username, MLFLOW_TRACKING_PASSWORD=password,
                          MLFLOW_EXPERIMENT_NAME=EXPERIMENT)
        return runner


@contextlib.contextmanager
def logged_in(server: TeamServer, username: str, password: str):
    """This process's MLflow client pointed at the server as ``username``."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ.update(MLFLOW_TRACKING_USERNAME=username, MLFLOW_TRACKING_PASSWORD=password)
    mlflow.set_tracking_uri(server.uri)
    try:
        yield MlflowClient(server.uri)
    finally:
        mlflow.set_tracking_uri(None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="session")
def team():
    """A team server started with `python -m foodcast server start`, an experiment, an editor
    (EDIT on it) and a reader (READ); stopped with `... server stop` whatever the tests did."""
    missing = _postgres_missing()
    if missing:
        pytest.skip(missing)
    base = private_dir()
    server = TeamServer(base / "server", free_port(), make_batches(base / "data", range(1, 15)), base)
    try:
        server_command("start", "--dir", server.directory, "--port", server.port, "--workers", 2)
        with logged_in(server, *server.admin()) as client:
            experiment_id = client.create_experiment(EXPERIMENT)
            auth = AuthServiceClient(server.uri)
            for user, permission in ((EDITOR, "EDIT"), (READER, "READ")):
                auth.create_user(user, PASSWORDS[user])
                auth.grant_user_permission(user, "experiment", experiment_id, permission)
        yield server
    finally:
        server_command("stop", "--dir", server.directory, check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def cold(team):
    """The editor's cold pipeline on the small data, and what it printed."""
    return team.runner(EDITOR, PASSWORDS[EDITOR]).mlflow_run(**SMALL)


def experiment_runs(team: TeamServer) -> list:
    with logged_in(team, *team.admin()) as client:
        experiment = client.get_experiment_by_name(EXPERIMENT)
        return client.search_runs([experiment.experiment_id], max_results=1000)


def test_pipeline_runs_through_the_server_and_reuses_every_stage(team, cold):
    launched = stage_lines(cold.stdout)
    assert {s: st for s, (st, _) in launched.items()} == {s: "launched" for s in SMALL_NODES}

    with logged_in(team, EDITOR, PASSWORDS[EDITOR]) as client:
        runs = {s: client.get_run(run_id) for s, (_, run_id) in launched.items()}
        assert all(r.info.status == "FINISHED" for r in runs.values())
        parent = client.get_run(runs["load"].data.tags["mlflow.parentRunId"])
        assert parent.info.status == "FINISHED"
        assert parent.data.tags["foodcast.predict_run_id"] == runs["predict"].info.run_id
        # Proxied artifacts: the client only ever sees the server's scheme, never a path.
        assert all(r.info.artifact_uri.startswith("mlflow-artifacts:/") for r in runs.values())
        y_pred = pd.read_csv(mlflow.artifacts.download_artifacts(
            run_id=runs["predict"].info.run_id, artifact_path="/".join(catalog.Y_PRED)))
        assert len(y_pred) == 168 and (y_pred["y_pred_simple"] >= 0).all()
        lineage = json.loads(Path(mlflow.artifacts.download_artifacts(
            run_id=parent.info.run_id, artifact_path=catalog.LINEAGE_FILE)).read_text())
        assert {s: v["run_id"] for s, v in lineage.items()} == {s: r.info.run_id for s, r in runs.items()}
        x_pred = pd.read_csv(mlflow.artifacts.download_artifacts(
            run_id=runs["future"].info.run_id, artifact_path="/".join(catalog.X_PRED)))
        model = mlflow.pyfunc.load_model(f"runs:/{runs['train'].info.run_id}/{catalog.MULTI_MODEL}")
        assert len(model.predict(x_pred.set_index("order_date"))) == 168
    # The artifacts live in the server's directory, behind the proxy.
    assert list((team.directory / "artifacts").rglob(catalog.Y_PRED[1]))

    warm = team.runner(EDITOR, PASSWORDS[EDITOR]).mlflow_run(**SMALL)
    assert stage_lines(warm.stdout) == {s: ("reused", run_id) for s, (_, run_id) in launched.items()}


def main_refusal(runner: Runner) -> str:
    """Run main as the MLproject does; it must fail within seconds with one error line and no
    traceback: that line."""
    started = time.monotonic()
    proc = runner.run(sys.executable, str(PROJECT / "main.py"), *SMALL_MAIN_ARGS, check=False)
    assert proc.returncode != 0 and time.monotonic() - started < 30, proc.stderr[-3000:]
    errors = error_lines(proc.stderr)
    assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return errors[0]


def mlflow_run_refusal(runner: Runner) -> str:
    """`mlflow run` of the pipeline, which must fail within seconds: the last line it printed."""
    started = time.monotonic()
    proc = runner.mlflow_run(check=False, **SMALL)
    assert proc.returncode != 0 and time.monotonic() - started < 30, proc.stderr[-3000:]
    return proc.stderr.strip().splitlines()[-1]


def test_reader_reads_runs_and_models_but_cannot_launch_the_pipeline(team, cold):
    train_id = stage_lines(cold.stdout)["train"][1]
    with logged_in(team, READER, PASSWORDS[READER]) as client:
        assert client.get_run(train_id).info.status == "FINISHED"
        mlflow.pyfunc.load_model(f"runs:/{train_id}/{catalog.MULTI_MODEL}")
    before = len(experiment_runs(team))
    runner = team.runner(READER, PASSWORDS[READER])

    # main: one line naming the permission held and the one needed.
    error = main_refusal(runner)
    assert f"user {READER} has READ on experiment '{EXPERIMENT}'" in error and "needs EDIT" in error
    # `mlflow run` itself creates the parent run before main starts: the server refuses that.
    assert "403" in mlflow_run_refusal(runner)
    assert len(experiment_runs(team)) == before


def test_wrong_password_is_refused_in_seconds(team):
    runner = team.runner(EDITOR, "not-the-password")
    assert f"refused the login of user {EDITOR}" in main_refusal(runner)
    assert "401" in mlflow_run_refusal(runner)


def test_unreachable_server_fails_with_one_line_within_seconds(team):
    runner = team.runner(EDITOR, PASSWORDS[EDITOR], uri=f"http://127.0.0.1:{free_port()}")
    assert "is unreachable (connection refused)" in main_refusal(runner)


def test_server_that_accepts_but_never_answers_fails_within_the_bound(team):
    # A socket that takes connections (the kernel completes them) and never replies: the check
    # gives up after its own timeouts, not MLflow's minutes of retries.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        runner = team.runner(EDITOR, PASSWORDS[EDITOR], uri=f"http://127.0.0.1:{silent.getsockname()[1]}")
        assert "is unreachable (no answer within" in main_refusal(runner)


def test_restarted_server_serves_the_stages_of_the_previous_pipeline(team):
    params = {**SMALL, "n_estimators": 7}
    first = stage_lines(team.runner(EDITOR, PASSWORDS[EDITOR]).mlflow_run(**params).stdout)
    server_command("stop", "--dir", team.directory)
    assert server_command("status", "--dir", team.directory, check=False).returncode == 3
    server_command("start", "--dir", team.directory, "--port", team.port, "--workers", 2)
    second = stage_lines(team.runner(EDITOR, PASSWORDS[EDITOR]).mlflow_run(**params).stdout)
    assert second == {s: ("reused", run_id) for s, (_, run_id) in first.items()}


def _processes_mentioning(directory: Path) -> list[str]:
    """Command lines or environments of running processes that name ``directory``."""
    needle = str(directory).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z" and (needle in cmdline or needle in (entry / "environ").read_bytes()):
                found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def test_server_command_survives_a_killed_start_and_stops_everything():
    missing = _postgres_missing()
    if missing:
        pytest.skip(missing)
    base = private_dir()
    directory, port = base / "server", free_port()
    try:
        # Killed while initialising: the cluster is half made and PostgreSQL may be running.
        start = subprocess.Popen([sys.executable, "-m", "foodcast", "server", "start", "--dir", str(directory),
                                  "--port", str(port), "--workers", "1"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while not (directory / "pgdata" / "PG_VERSION").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(start.pid, signal.SIGKILL)
        start.wait()
        assert not (directory / ".initialised").exists()

        started = server_command("start", "--dir", directory, "--port", port, "--workers", 1)
        assert f"tracking URI: http://127.0.0.1:{port}" in started.stdout
        assert "admin login:" in started.stdout
        assert oct((directory / "credentials.json").stat().st_mode & 0o777) == "0o600"
        assert "already running" in server_command("start", "--dir", directory).stdout
        assert server_command("status", "--dir", directory).returncode == 0

        assert "stopped mlflow server and PostgreSQL" in server_command("stop", "--dir", directory).stdout
        assert _processes_mentioning(directory) == []
        with socket.socket() as sock:  # nothing listens on the port any more
            assert sock.connect_ex(("127.0.0.1", port)) != 0
        assert "nothing was running" in server_command("stop", "--dir", directory).stdout
        assert server_command("status", "--dir", directory, check=False).returncode == 3
    finally:
        server_command("stop", "--dir", directory, check=False)
        shutil.rmtree(base, ignore_errors=True)
