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
from mlflow.server.auth.client import AuthServiceClient
from mlflow.tracking import MlflowClient

from conftest import PROJECT, SMALL, SMALL_NODES, Runner, error_lines, stage_lines
from fixtures import make_batches
from foodcast.errors import FoodcastError
from foodcast.teamserver import server as teamserver
from foodcast.tracking import names
from test_concurrency import finish, lineage, start
from test_interruptions import Started, group_members

EXPERIMENT = "team"
EDITOR, READER = "alice", "bob"
PASSWORDS = {EDITOR: "alice-pass-2718", READER: "bob-pass-3141"}
SMALL_MAIN_ARGS = [arg for name, value in SMALL.items() for arg in (f"--{name.replace('_', '-')}", str(value))]


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
    proc = subprocess.run(
        [sys.executable, "-m", "foodcast", "server", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
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

    def runner(self, username: str, password: str, uri: str | None = None, experiment: str = EXPERIMENT) -> Runner:
        runner = Runner(self.workdir, uri or self.uri, self.data)
        runner.env.update(
            MLFLOW_TRACKING_USERNAME=username, MLFLOW_TRACKING_PASSWORD=password, MLFLOW_EXPERIMENT_NAME=experiment
        )
        return runner

    def editor(self, experiment: str = EXPERIMENT) -> Runner:
        """Runs commands as the user holding EDIT on the experiments of these tests."""
        return self.runner(EDITOR, PASSWORDS[EDITOR], experiment=experiment)


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


def restart_postgres(directory, mode: str = "fast", down_for: float = 0.0) -> None:
    """Restart the PostgreSQL cluster of ``directory``, leaving the MLflow server running.

    What a maintenance restart or a database failover does to the server: every open database
    connection is cut, and the server's pools reconnect on their next use (they ping first).
    Meanwhile the server answers 503, which MLflow's clients retry.

    Parameters
    ----------
    directory : path
        The team server's directory.
    mode : str
        ``pg_ctl``'s shutdown mode: ``fast`` (abort open transactions, the default),
        ``immediate`` (a crash, recovered at the next start) or ``smart`` (wait for clients to
        disconnect: never, with a server's pools).
    down_for : float
        Seconds PostgreSQL stays stopped before it starts again: an outage. 0 (the default):
        ``pg_ctl restart``, down for a fraction of a second.

    Raises
    ------
    FoodcastError
        PostgreSQL is not running in ``directory``, or it failed to stop or start.
    """
    layout = teamserver.Layout(directory)
    with teamserver._locked(layout):
        if not teamserver.postgres_running(layout):
            raise FoodcastError(f"PostgreSQL of {layout.root} is not running")
        if down_for <= 0:
            # -l: the new postmaster writes to the log, not to pg_ctl's output (which would
            # otherwise stay open as long as PostgreSQL runs).
            teamserver._run(
                teamserver._pg_ctl(layout, "-m", mode, "-l", str(layout.pg_log), "-w", "-t", "60", "restart"),
                "restarting PostgreSQL",
                layout.pg_log,
            )
            return
        teamserver._stop_postgres(layout, mode)
        time.sleep(down_for)
        teamserver._start_postgres(layout)


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
        server_command("start", "--dir", server.directory, "--port", server.port)
        with logged_in(server, *server.admin()):
            auth = AuthServiceClient(server.uri)
            for user in (EDITOR, READER):
                auth.create_user(user, PASSWORDS[user])
        new_experiment(server, EXPERIMENT)
        yield server
    finally:
        server_command("stop", "--dir", server.directory, check=False)
        shutil.rmtree(base, ignore_errors=True)


def new_experiment(server: TeamServer, name: str) -> str:
    """Create experiment ``name`` as the admin, with EDIT for the editor and READ for the reader."""
    with logged_in(server, *server.admin()) as client:
        experiment_id = client.create_experiment(name)
        auth = AuthServiceClient(server.uri)
        for user, permission in ((EDITOR, "EDIT"), (READER, "READ")):
            auth.grant_user_permission(user, "experiment", experiment_id, permission)
    return experiment_id


@pytest.fixture(scope="session")
def cold(team):
    """The editor's cold pipeline on the small data, and what it printed."""
    return team.runner(EDITOR, PASSWORDS[EDITOR]).mlflow_run(**SMALL)


def experiment_runs(team: TeamServer, name: str = EXPERIMENT) -> list:
    with logged_in(team, *team.admin()) as client:
        experiment = client.get_experiment_by_name(name)
        return client.search_runs([experiment.experiment_id], max_results=1000)


def running(team: TeamServer, name: str = EXPERIMENT) -> list[str]:
    """``stage run-id`` of the runs of experiment ``name`` still RUNNING."""
    return [
        f"{r.data.tags.get(names.STEP_TAG)} {r.info.run_id}"
        for r in experiment_runs(team, name)
        if r.info.status == "RUNNING"
    ]


def test_pipeline_runs_through_the_server_and_reuses_every_stage(team, cold):
    launched = stage_lines(cold.stdout)
    assert {s: st for s, (st, _) in launched.items()} == dict.fromkeys(SMALL_NODES, "launched")
    # MLflow's "View run" lines: the parent's from the `mlflow run` that started main only (they
    # were 18: each stage's twice, the parent's twice); the closing block links the parent run on
    # the server, and gives the command that fetches the forecast.
    assert cold.stdout.count("View run") <= 1, cold.stdout
    block = {
        key.strip(): value.strip()
        for key, value in (line.split(":", 1) for line in cold.stdout.splitlines() if line.startswith("  "))
    }
    assert block["forecast"].startswith(f"mlflow artifacts download --run-id {launched['predict'][1]} ")
    assert block["UI"].startswith(f"{team.uri}/#/experiments/")

    with logged_in(team, EDITOR, PASSWORDS[EDITOR]) as client:
        runs = {s: client.get_run(run_id) for s, (_, run_id) in launched.items()}
        assert all(r.info.status == "FINISHED" for r in runs.values())
        parent = client.get_run(runs["load"].data.tags["mlflow.parentRunId"])
        assert parent.info.status == "FINISHED"
        assert parent.data.tags["foodcast.predict_run_id"] == runs["predict"].info.run_id
        # Proxied artifacts: the client only ever sees the server's scheme, never a path.
        assert all(r.info.artifact_uri.startswith("mlflow-artifacts:/") for r in runs.values())
        y_pred = pd.read_csv(
            mlflow.artifacts.download_artifacts(
                run_id=runs["predict"].info.run_id, artifact_path="/".join(names.Y_PRED)
            )
        )
        assert len(y_pred) == 168 and (y_pred["y_pred_simple"] >= 0).all()
        lineage = json.loads(
            Path(
                mlflow.artifacts.download_artifacts(run_id=parent.info.run_id, artifact_path=names.LINEAGE_FILE)
            ).read_text()
        )
        assert {s: v["run_id"] for s, v in lineage.items()} == {s: r.info.run_id for s, r in runs.items()}
        x_pred = pd.read_csv(
            mlflow.artifacts.download_artifacts(run_id=runs["future"].info.run_id, artifact_path="/".join(names.X_PRED))
        )
        model = mlflow.pyfunc.load_model(f"runs:/{runs['train'].info.run_id}/{names.MULTI_MODEL}")
        assert len(model.predict(x_pred.set_index("order_date"))) == 168
    # The artifacts live in the server's directory, behind the proxy.
    assert list((team.directory / "artifacts").rglob(names.Y_PRED[1]))

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
        mlflow.pyfunc.load_model(f"runs:/{train_id}/{names.MULTI_MODEL}")
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


def test_restarted_server_serves_the_stages_of_the_previous_pipeline(team, cold):
    server_command("stop", "--dir", team.directory)
    assert server_command("status", "--dir", team.directory, check=False).returncode == 3
    server_command("start", "--dir", team.directory, "--port", team.port)
    second = stage_lines(team.editor().mlflow_run(**SMALL).stdout)
    assert second == {s: ("reused", run_id) for s, (_, run_id) in stage_lines(cold.stdout).items()}


# ---------------------------------------------------------------- pipelines at the same moment


def test_pipelines_started_at_the_same_moment_all_finish_with_their_own_stages(team):
    """Three cold pipelines at once in an experiment of their own: two with the same parameters
    and one with another n_bins. None finds another's stages finished when it looks, so
    each launches all of its own: each parent's lineage holds only its own stages, and the
    two identical pipelines give byte-identical predictions."""
    name = "team-concurrent"
    experiment_id = new_experiment(team, name)
    runner = team.editor(name)
    params = [{**SMALL, "n_bins": 3}, {**SMALL, "n_bins": 3}, SMALL]
    outs = finish([start(runner, **p) for p in params])
    predictions = []
    with logged_in(team, EDITOR, PASSWORDS[EDITOR]) as client:
        for stdout, p in zip(outs, params, strict=True):
            parent_id, stages_run = lineage(client, stdout)
            assert {s: (v["status"], v["run_id"]) for s, v in stages_run.items()} == stage_lines(stdout)
            assert set(stages_run) == set(SMALL_NODES)
            for stage in ("validate", "train"):
                assert client.get_run(stages_run[stage]["run_id"]).data.params["n_bins"] == str(p.get("n_bins", 5))
            children = client.search_runs([experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent_id}'")
            launched = {v["run_id"] for v in stages_run.values() if v["status"] == "launched"}
            assert {r.info.run_id for r in children} == launched
            assert all(r.info.status == "FINISHED" for r in children)
            assert client.get_run(parent_id).info.status == "FINISHED"
            predictions.append(
                Path(
                    mlflow.artifacts.download_artifacts(
                        run_id=stages_run["predict"]["run_id"], artifact_path=names.artifact_path(names.Y_PRED)
                    )
                ).read_bytes()
            )
    predict_runs = {stage_lines(stdout)["predict"][1] for stdout in outs}
    assert len(predict_runs) == 3
    assert predictions[0] == predictions[1] and predictions[0] != predictions[2]
    assert running(team, name) == []


# ---------------------------------------------------------------- faults while a pipeline runs


def assert_next_run_reuses_what_finished(team: TeamServer, params: dict, first: dict[str, tuple[str, str]]) -> dict:
    """Run the pipeline again: every stage run of ``first`` (main's lines of the interrupted
    pipeline) that ended FINISHED is reused, the others are launched anew, and no run of the
    experiment is left RUNNING. Returns main's lines of this run."""
    statuses = {r.info.run_id: r.info.status for r in experiment_runs(team)}
    finished = {s: run_id for s, (_, run_id) in first.items() if statuses.get(run_id) == "FINISHED"}
    proc = team.editor().mlflow_run(**params)
    lines = stage_lines(proc.stdout)
    assert {s: lines[s] for s in finished} == {s: ("reused", run_id) for s, run_id in finished.items()}, proc.stdout
    assert all(status == "launched" for s, (status, _) in lines.items() if s not in finished), proc.stdout
    assert running(team) == []
    return lines


def test_postgres_restarted_while_a_pipeline_runs(team, cold):
    """PostgreSQL restarted (connections cut, refused for a moment) as main launches validate
    and train: the server answers 503 meanwhile and the client retries, so the pipeline either
    finishes or fails with one line; the next run reuses every stage that had finished."""
    params = {**SMALL, "n_estimators": 6, "verbose": "true"}  # (verbose: says when a stage is being launched)
    started = Started(team.editor(), **params)
    started.wait_for("validate: launching")
    restart_postgres(team.directory)
    started.proc.wait(timeout=600)
    assert started.gone_within(10) == []
    stdout, stderr = "".join(started.stdout), "".join(started.stderr)
    if started.proc.returncode != 0:
        assert len(error_lines(stderr)) == 1, stderr[-4000:]
    assert server_command("status", "--dir", team.directory, check=False).returncode == 0
    assert_next_run_reuses_what_finished(team, params, stage_lines(stdout))


class StartedMain(Started):
    """main's own command (``python main.py``, no `mlflow run` around it) in a process group of
    its own, its output collected: all it prints is foodcast's."""

    @staticmethod
    def command(runner: Runner, params: dict, entry_point: str = "main") -> list[str]:
        assert entry_point == "main", "main.py runs main only"
        args = [sys.executable, str(PROJECT / "main.py")]
        for name, value in params.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        return args


@pytest.fixture(scope="module")
def outage(team, cold):
    """PostgreSQL stopped for 5 s as main launches validate and train, with the client settings
    docs/team-setup.md gives for a quick failure (no HTTP retry): what main printed and its exit
    status, then the next pipeline's lines (run normally, once PostgreSQL is back)."""
    params = {**SMALL, "n_estimators": 3, "verbose": "true"}  # (verbose: says when a stage is being launched)
    runner = team.editor()
    runner.env.update(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT="10")
    started = StartedMain(runner, **params)
    started.wait_for("validate: launching")
    restart_postgres(team.directory, down_for=5)
    started.proc.wait(timeout=300)
    assert started.gone_within(10) == []
    first = stage_lines("".join(started.stdout))
    return started.proc.returncode, "".join(started.stderr), assert_next_run_reuses_what_finished(team, params, first)


def test_postgres_down_longer_than_the_client_retries_then_the_next_run_recovers(outage):
    """The next run reuses what had finished and marks FAILED what the failed one left RUNNING
    (assert_next_run_reuses_what_finished)."""
    returncode, stderr, _ = outage
    assert returncode != 0, stderr[-3000:]


def test_postgres_down_longer_than_the_client_retries_fails_with_one_line(outage):
    returncode, stderr, _ = outage
    assert returncode != 0
    assert len(error_lines(stderr)) == 1 and "Traceback" not in stderr, stderr[-6000:]
    assert "the tracking store failed: /api/2.0/mlflow/" in error_lines(stderr)[0]


def test_pipeline_killed_with_its_process_group(team, cold):
    """kill -9 of the whole `mlflow run` once features has finished (validate and train at
    work): the next run reuses load, features and future, relaunches the rest, and marks the
    runs the killed pipeline left RUNNING as FAILED."""
    params = {**SMALL, "start_week": 3}  # load and features are launched, future is reused
    started = Started(team.editor(), **params)
    started.wait_for("features: launched run")
    time.sleep(0.5)  # validate and train are at work
    os.killpg(started.proc.pid, signal.SIGKILL)
    assert started.gone_within(5) == []
    left = running(team)
    assert any(line.startswith("main ") for line in left), left

    first = stage_lines("".join(started.stdout))
    assert set(first) == {"load", "future", "features"}
    proc_lines = assert_next_run_reuses_what_finished(team, params, first)
    assert {s for s, (status, _) in proc_lines.items() if status == "launched"} == set(SMALL_NODES) - set(first)
    with logged_in(team, *team.admin()) as client:
        for line in left:
            run = client.get_run(line.split()[1])
            assert run.info.status == "FAILED" and "has ended" in run.data.tags[names.ERROR_TAG]


def _pid_of(pgid: int, needle: str) -> int:
    for pid in group_members(pgid):
        with contextlib.suppress(OSError):
            if needle.encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    raise AssertionError(f"no process running {needle} in group {pgid}")


def test_a_stage_that_finished_just_before_the_kill_is_reused(team, cold):
    """The kill lands between the end of a stage's run and main's next step. Forecasting
    another week launches future alone (the other stages of the cold run are reused); main is
    held (SIGSTOP) while future works, so that future's run ends FINISHED while main cannot act,
    then the whole group is killed. The next run must reuse that finished future run."""
    params = {**SMALL, "next_week": 14, "verbose": "true"}  # (verbose: the stages' "run … started" lines)
    started = Started(team.editor(), **params)
    deadline = time.monotonic() + 300

    def future_started() -> list[str]:
        return [line for line in started.stderr if "future: run " in line and line.rstrip().endswith(" started")]

    while not future_started():
        assert time.monotonic() < deadline and started.proc.poll() is None, "".join(started.stderr)[-3000:]
        time.sleep(0.02)
    os.kill(_pid_of(started.proc.pid, "main.py"), signal.SIGSTOP)
    future_id = future_started()[0].split()[-2]
    with logged_in(team, EDITOR, PASSWORDS[EDITOR]) as client:
        while client.get_run(future_id).info.status != "FINISHED":
            assert time.monotonic() < deadline, "future never finished"
            time.sleep(0.2)
    os.killpg(started.proc.pid, signal.SIGKILL)
    assert started.gone_within(5) == []

    lines = stage_lines(team.editor().mlflow_run(**params).stdout)
    assert lines["future"] == ("reused", future_id)
    assert running(team) == []


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
        start = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "foodcast",
                "server",
                "start",
                "--dir",
                str(directory),
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
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
