"""A running pipeline stopped from outside: SIGTERM to its process group (what `timeout`, CI
cancellation and container stops send), `kill -9` of the group, and one of its processes killed
alone. Nothing may be left running or RUNNING, and the next run reuses what had finished."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_PROJECT_ENTRY_POINT

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

    def __init__(self, runner: Runner, entry_point: str = "main", **params):
        self.proc = subprocess.Popen(
            self.command(runner, params, entry_point),
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
    def command(runner: Runner, params: dict, entry_point: str = "main") -> list[str]:
        args = [sys.executable, "-m", "mlflow", "run", str(runner.project), "--env-manager", "local"]
        args += ["-e", entry_point]
        for name, value in params.items():
            args += ["-P", f"{name}={value}"]
        return args

    def wait_for(self, needle: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not any(needle in line for line in self.stdout):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError(f"no {needle!r} in\n{''.join(self.stdout)}\n{''.join(self.stderr)[-3000:]}")
            time.sleep(0.05)

    def gone_within(self, seconds: float, spare: tuple[int, ...] = ()) -> list[str]:
        """The command lines of the group's processes still alive after ``seconds`` (but
        ``spare``)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not set(group_members(self.proc.pid)) - set(spare):
                return []
            time.sleep(0.1)
        left = []
        for pid in set(group_members(self.proc.pid)) - set(spare):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    left.append(f"{pid}: " + f.read().replace(b"\0", b" ").decode(errors="replace"))

            except OSError:
                pass
        return left


# How long the processes below a killed one may take to end: each ends its run FAILED in the
# store first. A few seconds alone; more under a loaded suite on 2 cores (one CI run saw the fork
# server still waiting for its forks after 5 s). Before the lifeline, they carried on for 110 s.
ENDS_WITHIN = 15


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


def children_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            found = [int(p) for p in f.read().split()]
    except OSError:
        return []
    for task in os.listdir(f"/proc/{pid}/task"):
        if task != str(pid):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(p) for p in f.read().split()]
    return found


def command_line(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def descendant(pid: int, needle: str) -> int:
    """The first process under ``pid`` whose command line holds ``needle``."""
    todo = children_of(pid)
    while todo:
        child = todo.pop(0)
        if needle in command_line(child):
            return child
        todo += children_of(child)
    raise AssertionError(f"no {needle!r} under {pid}")


def pool_workers(pid: int) -> list[int]:
    """The workers of the backtest stage's process pool under ``pid``: forked from the stage,
    they are its children with its command line."""
    try:
        stage = descendant(pid, "-m steps.backtest")
    except AssertionError:
        return []  # not started yet
    line = command_line(stage)
    return [child for child in children_of(stage) if command_line(child) == line]


@pytest.fixture
def pipeline_dir(tmp_path):
    data = make_batches(tmp_path / "data", range(1, 15))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    runner = Runner(tmp_path, uri, data)
    runner.env["TMPDIR"] = str(tmp_path / "tmp")  # to see what a kill leaves in the temporary directory
    os.makedirs(runner.env["TMPDIR"])
    return runner, MlflowClient(uri)


def test_sigterm_to_mlflow_run_ends_every_run_and_the_next_run_reuses_what_finished(pipeline_dir):
    """SIGTERM to `mlflow run` alone (as to its whole group: the same ending). It used to exit at
    once and leave main.py, the fork server and the stages at work, to register a version."""
    runner, client = pipeline_dir
    started = Started(runner, **SMALL)
    started.wait_for("features: launched run")
    os.kill(started.proc.pid, signal.SIGTERM)
    assert started.gone_within(ENDS_WITHIN) == [], "".join(started.stderr)[-3000:]
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
    assert started.gone_within(8) == [], "".join(started.stderr)[-3000:]  # (under the 10 s grace)
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
    assert started.gone_within(ENDS_WITHIN) == []
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


def test_a_stage_that_crashes_marks_its_run_failed_with_the_error(tmp_path):
    """Not a user's mistake but a bug (any exception): the traceback is printed, and the run,
    FAILED, says what ended it (it carried no foodcast.error)."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    script = (
        "from foodcast.pipeline.stage_run import stage_run\n"
        "from foodcast.pipeline.stages.load import LOAD\n"
        "with stage_run(LOAD, {'start_week': '1', 'end_week': '2'}):\n"
        "    {}['a key no stage has']\n"
    )
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 1 and "KeyError" in proc.stderr
    [run] = MlflowClient(uri).search_runs(["0"])
    assert run.info.status == "FAILED"
    assert run.data.tags[names.ERROR_TAG] == "KeyError: 'a key no stage has'"


# Train and validate fit 40 members: at work long enough to be stopped at work.
AT_WORK = {**SMALL, "n_models": 40}


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One store for the kills of a single process: the first pipeline computes load, features
    and future, the later ones reuse them and launch validate and train again (each kill ends
    those FAILED), so that each case pays for its own stages only."""
    root = tmp_path_factory.mktemp("kills")
    runner = Runner(root, f"sqlite:///{root}/mlflow.db", make_batches(root / "data", range(1, 15)))
    return runner, MlflowClient(runner.env["MLFLOW_TRACKING_URI"])


def running_stage(client: MlflowClient, stage: str) -> dict[str, str] | None:
    """The tags of ``stage``'s RUNNING run once its process has started it (the store's other
    runs of the stage ended FAILED in earlier cases)."""
    query = f"attributes.status = 'RUNNING' AND tags.`{names.STEP_TAG}` = '{stage}'"
    runs = [r for r in client.search_runs(["0"], filter_string=query) if "foodcast.pid" in r.data.tags]
    return runs[0].data.tags if runs else None


def target_pid(started: Started, client: MlflowClient, target: str) -> int:
    """The pid of ``mlflow run``, ``main``, ``<stage> command`` or ``<stage> fork``."""
    if target == "mlflow run":
        return started.proc.pid
    main = descendant(started.proc.pid, "main.py")
    if target == "main":
        return main
    stage, level = target.split()
    if level == "fork":  # the process that runs the stage's code: the one its run names
        return int(running_stage(client, stage)["foodcast.pid"])
    return descendant(main, f"-m steps.{stage}")


# Each process level (`mlflow run`, main.py, a stage command, a fork) with SIGTERM and SIGKILL,
# in four pipelines: two stages are at work at once, so a case kills one process of each.
# `mlflow run` killed sends main SIGTERM (its lifeline), as SIGTERM sent to main itself does:
# main under SIGTERM is that case; test_sigterm_to_mlflow_run_... is `mlflow run` under SIGTERM.
KILLS = {
    "mlflow-run-SIGKILL": [("mlflow run", signal.SIGKILL)],
    "main-SIGKILL": [("main", signal.SIGKILL)],
    "command-SIGTERM-fork-SIGKILL": [("validate command", signal.SIGTERM), ("train fork", signal.SIGKILL)],
    "command-SIGKILL-fork-SIGTERM": [("validate command", signal.SIGKILL), ("train fork", signal.SIGTERM)],
}


@pytest.mark.parametrize("kills", KILLS.values(), ids=KILLS.keys())
def test_one_process_of_a_pipeline_killed_ends_every_process_below_it(shared, kills):
    """The OOM killer or a `kill <pid>` ends one process, not a group: the ones below it must
    end too (they carried on: train registered a version after its pipeline was gone), every
    run ends FAILED with the reason, and nothing is registered after the kill."""
    runner, client = shared
    started = Started(runner, **AT_WORK)
    deadline = time.monotonic() + 300
    while not (running_stage(client, "validate") and running_stage(client, "train")):
        assert time.monotonic() < deadline and started.proc.poll() is None, "".join(started.stderr)[-3000:]
        time.sleep(0.1)
    time.sleep(0.5)  # at work
    pids = [(target_pid(started, client, target), signum) for target, signum in kills]
    for pid, signum in pids:
        os.kill(pid, signum)
    # (`mlflow run` itself, when it is not the one killed, ends once main has: MLflow's own exit)
    assert started.gone_within(ENDS_WITHIN, spare=(started.proc.pid,)) == [], "".join(started.stderr)[-3000:]
    started.proc.wait(timeout=60)
    stderr = "".join(started.stderr)
    assert "Traceback" not in stderr, stderr[-3000:]
    parent_id = next(line.split()[2] for line in started.stdout if line.startswith("main: run "))
    runs = client.search_runs(["0"], filter_string=f"tags.`{names.PARENT_TAG}` = '{parent_id}'")
    assert {r.data.tags[names.STEP_TAG]: r.info.status for r in runs if r.info.status != "FINISHED"} == {
        "validate": "FAILED",
        "train": "FAILED",
    }
    for run in runs:
        if run.info.status == "FAILED":
            assert run.data.tags.get(names.ERROR_TAG), run.data.tags[names.STEP_TAG]
    assert client.get_run(parent_id).info.status == "FAILED"
    time.sleep(1)  # (a stage left at work would register its version now)
    assert client.search_model_versions() == []


@pytest.mark.parametrize("target", ["mlflow run", "stage"])
def test_a_backtest_stopped_ends_with_its_workers(shared, target):
    """SIGTERM to `mlflow run -e backtest` left the stage, its pool's workers and a RUNNING run;
    the stage itself killed outright (SIGKILL) left its workers at work."""
    runner, client = shared
    params = {"first_week": 11, "last_week": 13, "window_weeks": 8, "level_weeks": 4, "profile_weeks": 8}
    started = Started(runner, entry_point="backtest", n_models=40, **params)
    deadline = time.monotonic() + 300
    while len(workers := pool_workers(started.proc.pid)) < 2:
        assert time.monotonic() < deadline and started.proc.poll() is None, "".join(started.stderr)[-3000:]
        time.sleep(0.1)
    time.sleep(0.5)
    if target == "mlflow run":
        os.kill(started.proc.pid, signal.SIGTERM)
    else:
        os.kill(descendant(started.proc.pid, "-m steps.backtest"), signal.SIGKILL)
    assert started.gone_within(ENDS_WITHIN, spare=(started.proc.pid,)) == [], (workers, "".join(started.stderr)[-3000:])
    started.proc.wait(timeout=60)
    stderr = "".join(started.stderr)
    assert "Traceback" not in stderr, stderr[-3000:]
    [run] = client.search_runs(
        ["0"],
        filter_string=f"tags.`{names.STEP_TAG}` = 'backtest'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    assert run.info.status == "FAILED"
    if target == "mlflow run":
        assert run.data.tags[names.ERROR_TAG] == "interrupted by SIGTERM"


def test_a_child_with_a_lifeline_ends_when_its_parent_is_killed(tmp_path):
    """foodcast.runtime.lifeline on its own: SIGTERM when the parent dies, even by SIGKILL; and
    at once for a process whose parent died before it asked."""
    child = (
        "import sys, time\n"
        "from foodcast.runtime.lifeline import die_with_parent\n"
        "die_with_parent(sys.argv[1] if len(sys.argv) > 1 else None)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([sys.executable, '-c', {child!r}], stdout=subprocess.PIPE, text=True)\n"
        "child.stdout.readline()\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    pid = int(proc.stdout.readline())
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{pid}")

    # its parent named as the (killed) parent process: orphaned before it asked
    late = subprocess.run([sys.executable, "-c", child, str(proc.pid)], capture_output=True, timeout=30)
    assert late.returncode == -signal.SIGTERM


def test_a_stop_signal_landing_in_a_destructor_still_interrupts():
    """Python only prints an exception raised in a destructor and goes on: the Interrupted
    that a signal handled there raised was lost, and the stage carried on."""
    script = (
        "import os, signal, time\n"
        "from foodcast.runtime.processes import Interrupted, interruptible\n"
        "class Closing:\n"
        "    def __del__(self):\n"
        "        os.kill(os.getpid(), signal.SIGTERM)  # handled in here\n"
        "        time.sleep(0.05)\n"
        "try:\n"
        "    with interruptible():\n"
        "        Closing()\n"
        "        for _ in range(100):\n"
        "            time.sleep(0.02)\n"
        "    print('carried on')\n"
        "except Interrupted as exc:\n"
        "    print(exc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "interrupted by SIGTERM", proc.stderr


def test_a_run_whose_mlflow_run_died_before_its_command_is_ended_by_the_next_cleanup(store):
    """`mlflow run` made the run, then died before starting main (a conda environment that
    failed to build): RUNNING, naming no owner. Over an hour later, with no stage under it, the
    next pipeline's clean-up ends it FAILED; a younger one, or one with a stage, stays."""
    client = MlflowClient(store)
    made = {MLFLOW_PROJECT_ENTRY_POINT: "main"}  # as `mlflow run` tags the run it makes
    now = int(time.time() * 1000)
    dead = client.create_run("0", start_time=now - 2 * 3600 * 1000, tags=made).info.run_id
    young = client.create_run("0", start_time=now - 600 * 1000, tags=made).info.run_id
    busy = client.create_run("0", start_time=now - 2 * 3600 * 1000, tags=made).info.run_id
    stage = client.create_run("0", tags={MLFLOW_PARENT_RUN_ID: busy, **owner_tags()}).info.run_id
    found = fail_abandoned_runs(client, "0")
    assert list(found) == [dead] and "ended before its command started" in found[dead]
    assert (
        client.get_run(dead).info.status == "FAILED" and found[dead] == client.get_run(dead).data.tags[names.ERROR_TAG]
    )
    assert {client.get_run(r).info.status for r in (young, busy, stage)} == {"RUNNING"}


def test_the_next_pipeline_gives_a_reason_to_runs_that_failed_without_one(store):
    """main.py killed outright: `mlflow run` marks its run FAILED, and nobody says why."""
    from foodcast.tracking.recovery import UNSAID, explain_silent_failures

    client = MlflowClient(store)
    ids = {}
    for name, status, tags in (
        ("killed", "FAILED", {names.STEP_TAG: "main"}),
        ("said", "FAILED", {names.STEP_TAG: "train", names.ERROR_TAG: "interrupted by SIGTERM"}),
        ("finished", "FINISHED", {names.STEP_TAG: "load"}),
        ("not ours", "FAILED", {}),
    ):
        run = client.create_run("0", tags=tags)
        client.set_terminated(run.info.run_id, status)
        ids[name] = run.info.run_id
    assert explain_silent_failures(client, "0") == [ids["killed"]]
    assert client.get_run(ids["killed"]).data.tags[names.ERROR_TAG] == UNSAID
    assert client.get_run(ids["said"]).data.tags[names.ERROR_TAG] == "interrupted by SIGTERM"
    assert explain_silent_failures(client, "0") == []
