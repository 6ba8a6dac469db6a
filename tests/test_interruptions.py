"""A running pipeline stopped from outside: SIGTERM to its process group (what `timeout`, CI
cancellation and container stops send) and `kill -9` of the group. Nothing may be left running
or RUNNING, and the next run reuses what had finished."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from mlflow.tracking import MlflowClient

from conftest import SMALL, Runner, stage_lines
from fixtures import make_batches
from foodcast.runtime.processes import owner_tags
from foodcast.tracking import names
from foodcast.tracking.recovery import fail_abandoned_runs

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (zombies waiting to be collected excluded)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


class Started:
    """`mlflow run` of the pipeline in a process group of its own, its output collected."""

    def __init__(self, runner: Runner, **params):
        self.proc = subprocess.Popen(
            self.command(runner, params),
            cwd=runner.workdir,
            env=runner.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            process_group=0,
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        for stream, sink in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr)):
            threading.Thread(target=lambda s=stream, k=sink: k.extend(iter(s.readline, "")), daemon=True).start()

    @staticmethod
    def command(runner: Runner, params: dict) -> list[str]:
        args = [sys.executable, "-m", "mlflow", "run", str(runner.project), "--env-manager", "local"]
        for name, value in params.items():
            args += ["-P", f"{name}={value}"]
        return args

    def wait_for(self, needle: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not any(needle in line for line in self.stdout):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"no {needle!r} in\n{''.join(self.stdout)}\n{''.join(self.stderr)[-3000:]}")
            time.sleep(0.05)

    def gone_within(self, seconds: float) -> list[str]:
        """The command lines of the group's processes still alive after ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not group_members(self.proc.pid):
                return []
            time.sleep(0.1)
        left = []
        for pid in group_members(self.proc.pid):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    left.append(f"{pid}: " + f.read().replace(b"\0", b" ").decode(errors="replace"))

            except OSError:
                pass
        return left


def ours_left(runner: Runner) -> list[str]:
    """Our temporary directories left in the run's temporary directory. (The `mlflow run`
    command makes one empty `tmp…` directory per invocation and never removes it: MLflow's.)"""
    return [name for name in os.listdir(runner.env["TMPDIR"]) if name.startswith("foodcast-")]


def started_main(client: MlflowClient) -> str:
    """The pid of the process that ran the (only) main run."""
    [run] = client.search_runs(["0"], filter_string=f"tags.`{names.STEP_TAG}` = 'main'")
    return run.data.tags["foodcast.pid"]


def runs_by_status(client: MlflowClient) -> dict[str, list]:
    out: dict[str, list] = {}
    for run in client.search_runs(["0"], max_results=1000):
        out.setdefault(run.info.status, []).append(run)
    return out


@pytest.fixture
def pipeline_dir(tmp_path):
    data = make_batches(tmp_path / "data", range(1, 15))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    runner = Runner(tmp_path, uri, data)
    runner.env["TMPDIR"] = str(tmp_path / "tmp")  # to see what a kill leaves in the temporary directory
    os.makedirs(runner.env["TMPDIR"])
    return runner, MlflowClient(uri)


def test_sigterm_to_the_group_ends_every_run_and_the_next_run_reuses_what_finished(pipeline_dir):
    runner, client = pipeline_dir
    started = Started(runner, **SMALL)
    started.wait_for("features: launched run")
    os.killpg(started.proc.pid, signal.SIGTERM)
    assert started.gone_within(5) == [], "".join(started.stderr)[-3000:]
    stderr = "".join(started.stderr)
    assert "interrupted by SIGTERM" in stderr, stderr[-3000:]
    assert "the fork server ended" not in stderr
    assert ours_left(runner) == []  # every temporary directory of ours removed on the way out
    statuses = runs_by_status(client)
    assert "RUNNING" not in statuses, {s: [r.data.tags.get("foodcast.step") for r in rs] for s, rs in statuses.items()}
    parent = [r for r in statuses["FAILED"] if r.data.tags.get(names.STEP_TAG) == "main"]
    assert len(parent) == 1 and "interrupted by SIGTERM" in parent[0].data.tags[names.ERROR_TAG]
    finished = {r.data.tags[names.STEP_TAG] for r in statuses["FINISHED"]}
    assert {"load", "features"} <= finished  # (future runs beside them: finished, or stopped)

    proc = runner.mlflow_run(**SMALL)
    lines = stage_lines(proc.stdout)
    for stage in finished:
        assert lines[stage][0] == "reused", (stage, proc.stdout)
    assert "RUNNING" not in runs_by_status(client)


def test_sigterm_while_a_stage_waits_for_a_free_slot_ends_without_waiting_for_it(pipeline_dir):
    """One stage at a time: when features ends, validate starts and train waits for the slot.
    Stopped then, main must not wait for the stage that never started (it did, for the whole
    grace period it gives running stages, and then some)."""
    runner, client = pipeline_dir
    runner.env["FOODCAST_MAX_PARALLEL"] = "1"
    started = Started(runner, **SMALL, verbose="true")  # (verbose: says when a stage is being launched)
    started.wait_for("train: launching")
    os.killpg(started.proc.pid, signal.SIGTERM)
    assert started.gone_within(5) == [], "".join(started.stderr)[-3000:]  # (the grace is 10 s)
    assert "interrupted by SIGTERM" in "".join(started.stderr)
    statuses = runs_by_status(client)
    assert "RUNNING" not in statuses
    assert "train" not in {r.data.tags.get(names.STEP_TAG) for rs in statuses.values() for r in rs}


def test_kill_9_of_the_group_leaves_no_process_and_the_next_run_cleans_up(pipeline_dir):
    runner, client = pipeline_dir
    started = Started(runner, **SMALL)
    started.wait_for("features: launched run")
    time.sleep(0.5)  # validate and train are at work
    os.killpg(started.proc.pid, signal.SIGKILL)
    assert started.gone_within(5) == []
    assert not [name for name in os.listdir(runner.env["TMPDIR"]) if "prefork" in name]  # no socket file
    left = runs_by_status(client).get("RUNNING", [])
    assert any(r.data.tags.get(names.STEP_TAG) == "main" for r in left)
    assert any(name.startswith(f"foodcast-{started_main(client)}-launches-") for name in ours_left(runner))

    proc = runner.mlflow_run(**SMALL)
    lines = stage_lines(proc.stdout)
    assert {s: lines[s][0] for s in ("load", "future", "features")} == dict.fromkeys(
        ("load", "future", "features"), "reused"
    )
    for run in left:
        assert f"main: marked run {run.info.run_id} FAILED" in proc.stdout
        after = client.get_run(run.info.run_id)
        assert after.info.status == "FAILED"
        assert "has ended" in after.data.tags[names.ERROR_TAG]
    assert "RUNNING" not in runs_by_status(client)
    # what the killed processes were writing in the temporary directory is gone too
    assert ours_left(runner) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stage_stopped_by_a_signal_marks_its_run_failed(tmp_path, signum):
    """The stage frame itself: the first signal ends the run FAILED with the reason, a second
    one (Ctrl-C, then `mlflow run`'s SIGTERM) does not cut that short; exit status 128 + n."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    script = (
        "import sys, time\n"
        "from foodcast.pipeline.stage_run import stage_run\n"
        "from foodcast.pipeline.stages.load import LOAD\n"
        "with stage_run(LOAD, {'start_week': '1', 'end_week': '2'}):\n"
        "    print('working', flush=True)\n"
        # at work, as a stage is: short waits (a signal that lands just before one long C-level
        # sleep would only be handled once it ends)
        "    for _ in range(600):\n"
        "        time.sleep(0.1)\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "working"
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    proc.send_signal(signum)
    seen = []  # the second signal once the stage says it is ending its run, as mlflow run's follows Ctrl-C
    while not seen or "ending run" not in seen[-1]:
        seen.append(proc.stderr.readline())
        assert seen[-1], "".join(seen)[-2000:]
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=60)
    watchdog.cancel()
    err = "".join(seen) + rest
    assert proc.returncode == 128 + signum, err[-2000:]
    name = signal.Signals(signum).name
    assert f"interrupted by {name}; the run is marked FAILED" in err
    assert "Traceback" not in err
    [run] = MlflowClient(uri).search_runs(["0"])
    assert run.info.status == "FAILED"
    assert run.data.tags[names.ERROR_TAG] == f"interrupted by {name}"


def test_a_run_whose_mlflow_run_died_before_its_command_is_ended_by_the_next_cleanup(store):
    """`mlflow run` made the run, then died before starting main (a conda environment that
    failed to build): RUNNING, naming no owner. Over an hour later, with no stage under it, the
    next pipeline's clean-up ends it FAILED; a younger one, or one with a stage, stays."""
    client = MlflowClient(store)
    made = {"mlflow.project.entryPoint": "main"}  # as `mlflow run` tags the run it makes
    now = int(time.time() * 1000)
    dead = client.create_run("0", start_time=now - 2 * 3600 * 1000, tags=made).info.run_id
    young = client.create_run("0", start_time=now - 600 * 1000, tags=made).info.run_id
    busy = client.create_run("0", start_time=now - 2 * 3600 * 1000, tags=made).info.run_id
    stage = client.create_run("0", tags={"mlflow.parentRunId": busy, **owner_tags()}).info.run_id
    found = fail_abandoned_runs(client, "0")
    assert list(found) == [dead] and "ended before its command started" in found[dead]
    assert (
        client.get_run(dead).info.status == "FAILED" and found[dead] == client.get_run(dead).data.tags[names.ERROR_TAG]
    )
    assert {client.get_run(r).info.status for r in (young, busy, stage)} == {"RUNNING"}
