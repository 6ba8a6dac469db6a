"""The fork server main starts for its stage commands, with a toy package in place of steps/.

The pipeline tests run every stage through the server (it is on by default on Linux); these
check the hand-over itself: arguments, environment, directory, output and exit status reach
the fork and come back, a command without a server (or refused) runs by itself, signals to
the command reach the fork, the fork lives and dies with its command's process group (a
terminal read works, a group kill leaves nothing), and stopping the server leaves nothing
behind.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from foodcast.runtime.fork_server import SOCKET_ENV, ForkServer

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the server runs on Linux only")

TOY = {
    "toy/__init__.py": """
        from foodcast.runtime.fork_server import run_in_fork_server

        run_in_fork_server(__name__)
    """,
    "toy/report.py": """
        import os, sys

        print("argv", sys.argv[1:])
        print("cwd", os.getcwd())
        print("colour", os.environ.get("TOY_COLOUR"))
        print("ppid", os.getppid())
        print("socket", os.environ.get("FOODCAST_PREFORK_SOCKET"))
        print("to stderr", file=sys.stderr)
        import subprocess

        print("subprocess", subprocess.run([sys.executable, "-c", "raise SystemExit(5)"]).returncode)
        sys.exit(int(sys.argv[1]))
    """,
    "toy_main.py": """
        import os, subprocess, sys

        if __name__ == "__main__":
            from foodcast.runtime.fork_server import run_script_in_fork_server

            run_script_in_fork_server("toy_main")
        print("ppid", os.getppid())
        print("argv", sys.argv[1:])
        print("socket", os.environ.get("FOODCAST_PREFORK_SOCKET") is not None)
        # a command it launches, as main launches its stages
        here = os.path.dirname(os.path.abspath(__file__))
        stage = subprocess.run([sys.executable, "-m", "toy.report", "3"], cwd=here, capture_output=True, text=True)
        print("stage", stage.returncode, stage.stdout.split("ppid ")[1].split()[0])
        sys.exit(int(sys.argv[1]))
    """,
    "toy/cache.py": """
        import os

        FILLED_BY = []


        def fill():
            FILLED_BY.append(os.getpid())
    """,
    "toy/read_cache.py": """
        from toy.cache import FILLED_BY

        print("filled by", FILLED_BY)
    """,
    "toy/crash.py": """
        raise RuntimeError("the toy crashed")
    """,
    "toy/wait.py": """
        import os, sys, time

        print(os.getpid(), flush=True)
        time.sleep(60)
    """,
    "toy/group.py": """
        import os

        print(os.getpid(), os.getpgrp(), flush=True)
    """,
    "toy/ask.py": """
        import os

        print("pid", os.getpid(), "ppid", os.getppid(), flush=True)
        print("got", input("name? "), flush=True)
    """,
    "toy/exitmark.py": """
        import atexit, sys

        # a preload's exit handler: the server's business; its forks, and its own exit, skip it
        atexit.register(lambda: print("a preload's exit handler ran", file=sys.stderr, flush=True))
    """,
    "toy/opener.py": """
        HANDLE = open(__file__)  # a preload that keeps a file open: forks must not share it
    """,
}


@pytest.fixture
def toy(tmp_path):
    for name, text in TOY.items():
        path = tmp_path / "project" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path / "project"


@pytest.fixture
def server(toy, monkeypatch):
    monkeypatch.delenv(SOCKET_ENV, raising=False)
    forks = ForkServer(["json"], ["csv"], toy)
    forks.start()
    yield forks
    forks.stop()


def command(module, *args, cwd, **env):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
    )


def fields(stdout):
    return dict(line.split(" ", 1) for line in stdout.splitlines())


def test_command_runs_in_a_fork_of_the_server_with_its_own_args_env_cwd_and_output(server, toy):
    proc = command("toy.report", "7", "--flag", cwd=toy, TOY_COLOUR="teal")
    assert proc.returncode == 7
    out = fields(proc.stdout)
    assert out["ppid"] == str(server.process.pid)  # the server forked it
    assert out["argv"] == "['7', '--flag']"
    assert out["cwd"] == str(toy)
    assert out["colour"] == "teal"
    assert out["socket"] == "None"  # a fork never hands over again
    assert out["subprocess"] == "5"  # the server does not reap the stage's own children
    assert proc.stderr.strip() == "to stderr"


def test_a_script_runs_in_a_fork_that_keeps_the_server_for_the_commands_it_launches(server, toy, tmp_path):
    """main.py under a server its caller keeps (the test suite's): main and its stages forked."""
    proc = subprocess.run(
        [sys.executable, "toy_main.py", "4", "--x"], cwd=toy, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 4, proc.stderr
    out = fields(proc.stdout)
    assert out["ppid"] == str(server.process.pid)
    assert out["argv"] == "['4', '--x']"
    assert out["socket"] == "True"
    assert out["stage"] == f"3 {server.process.pid}"  # its own command went to the server too
    # Run from another directory, it is not the server's main.py: it runs by itself.
    away = subprocess.run(
        [sys.executable, str(toy / "toy_main.py"), "0"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert away.returncode == 0, away.stderr
    assert fields(away.stdout)["ppid"] != str(server.process.pid)
    # Refused (another PYTHONPATH: main in an environment MLflow built), it runs by itself, and
    # forgets the server: main then starts one of its own, in its own environment.
    refused = subprocess.run(
        [sys.executable, "toy_main.py", "0"],
        cwd=toy,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert refused.returncode == 0, refused.stderr
    assert fields(refused.stdout)["ppid"] != str(server.process.pid)
    assert fields(refused.stdout)["socket"] == "False"


def test_a_preload_named_with_a_function_fills_a_cache_the_forks_share(toy, monkeypatch):
    monkeypatch.delenv(SOCKET_ENV, raising=False)
    """What the stages' server does with plotly.js, gzipped once for every stage that plots."""
    forks = ForkServer(["toy.cache:fill"], [], toy)
    forks.start()
    assert forks.process is not None
    server_pid = forks.process.pid
    try:
        first = command("toy.read_cache", cwd=toy)
        second = command("toy.read_cache", cwd=toy)
    finally:
        forks.stop()
    assert first.returncode == second.returncode == 0, first.stderr
    assert first.stdout == second.stdout == f"filled by [{server_pid}]\n"  # once, in the server


def test_successive_commands_each_get_a_fresh_fork(server, toy):
    first = command("toy.report", "0", cwd=toy, TOY_COLOUR="red")
    second = command("toy.report", "0", cwd=toy)
    assert first.returncode == second.returncode == 0
    assert fields(first.stdout)["colour"] == "red"
    assert fields(second.stdout)["colour"] == "None"


def test_a_crash_in_the_fork_prints_its_traceback_and_exits_1(server, toy):
    proc = command("toy.crash", cwd=toy)
    assert proc.returncode == 1
    assert "RuntimeError: the toy crashed" in proc.stderr


def test_without_a_server_the_command_runs_by_itself(toy, tmp_path):
    proc = command("toy.report", "0", cwd=toy, FOODCAST_PREFORK_SOCKET=str(tmp_path / "nothing-here"))
    assert proc.returncode == 0
    assert fields(proc.stdout)["ppid"] == str(os.getpid())


def test_a_command_from_another_directory_is_refused_and_runs_by_itself(server, toy, tmp_path):
    other = tmp_path / "other"
    (other / "toy").mkdir(parents=True)
    for name in ("__init__.py", "report.py"):
        (other / "toy" / name).write_text((toy / "toy" / name).read_text())
    proc = command("toy.report", "3", cwd=other)
    assert proc.returncode == 3
    assert fields(proc.stdout)["ppid"] == str(os.getpid())


def test_sigterm_to_the_command_reaches_the_fork(server, toy):
    proc = subprocess.Popen([sys.executable, "-m", "toy.wait"], cwd=toy, stdout=subprocess.PIPE, text=True)
    fork_pid = int(proc.stdout.readline())
    assert fork_pid != proc.pid
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM  # killed by it, as the fork was
    deadline = time.monotonic() + 10  # the server reaps its forks as they end
    while time.monotonic() < deadline and os.path.exists(f"/proc/{fork_pid}"):
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{fork_pid}")


def test_ctrl_c_to_the_command_interrupts_the_fork_in_one_line(server, toy):
    """Not the KeyboardInterrupt traceback of whatever the fork was doing: one line, status 130."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "toy.wait"], cwd=toy, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    proc.stdout.readline()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 128 + signal.SIGINT
    assert proc.stderr.read().splitlines() == ["Error: wait: interrupted by SIGINT"]


def test_stop_ends_the_server_and_leaves_nothing(toy, monkeypatch):
    monkeypatch.delenv(SOCKET_ENV, raising=False)
    forks = ForkServer(["json"], ["csv"], toy)
    forks.start()
    name = os.environ[SOCKET_ENV]
    assert "/" not in name  # an abstract socket: no file, no directory
    process = forks.process
    forks.stop()
    assert process.poll() is not None
    assert SOCKET_ENV not in os.environ
    proc = command("toy.report", "0", cwd=toy, FOODCAST_PREFORK_SOCKET=name)
    assert proc.returncode == 0 and fields(proc.stdout)["ppid"] == str(os.getpid())


def gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True  # dead, waiting for its parent to collect it
        except OSError:  # gone (FileNotFoundError; ProcessLookupError when reaped mid-read)
            return True
        time.sleep(0.05)
    return False


def start_waiting(toy, **popen):
    proc = subprocess.Popen(
        [sys.executable, "-m", "toy.wait"], cwd=toy, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen
    )
    fork_pid = int(proc.stdout.readline())
    assert fork_pid != proc.pid
    return proc, fork_pid


def test_the_fork_joins_the_command_s_process_group(server, toy):
    proc = subprocess.Popen(
        [sys.executable, "-m", "toy.group"], cwd=toy, stdout=subprocess.PIPE, text=True, process_group=0
    )
    out, _ = proc.communicate(timeout=60)
    fork_pid, fork_group = map(int, out.split())
    assert fork_pid != proc.pid  # printed by a fork, not by the command
    assert fork_group == proc.pid  # the command leads its own group, and the fork is in it
    assert proc.returncode == 0


def test_kill_9_of_the_command_s_group_kills_the_fork(server, toy):
    proc, fork_pid = start_waiting(toy, process_group=0)
    assert os.getpgid(fork_pid) == proc.pid
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert gone_within(fork_pid, 5)


def test_a_fork_whose_command_is_killed_is_stopped(server, toy):
    proc, fork_pid = start_waiting(toy)
    proc.kill()  # the command alone: its group (the test's) is not signalled
    proc.wait(timeout=10)
    assert gone_within(fork_pid, 5)
    assert server.process.poll() is None  # the server goes on serving
    assert command("toy.report", "0", cwd=toy).returncode == 0


def test_forks_die_with_the_server(server, toy):
    proc, fork_pid = start_waiting(toy)
    server.process.kill()
    assert gone_within(fork_pid, 5)
    assert proc.wait(timeout=10) == 1
    assert "the fork server ended before reporting" in proc.stderr.read()


def test_a_terminal_read_works_in_the_fork(toy, tmp_path):
    """As under a shell: the command runs in the terminal's foreground process group, and the
    fork, in that group too, can read the terminal (in a group of its own it would be stopped
    by SIGTTIN)."""
    import pty
    import select

    driver = tmp_path / "driver.py"
    driver.write_text(
        textwrap.dedent(f"""
        import os, subprocess, sys
        from foodcast.runtime.fork_server import ForkServer

        server = ForkServer(["json"], [], {str(toy)!r})
        server.start()
        code = subprocess.run([sys.executable, "-m", "toy.ask"], cwd={str(toy)!r}).returncode
        server.stop()
        print("server", server.process, "code", code, flush=True)
    """)
    )
    pid, master = pty.fork()
    if pid == 0:  # a new session whose controlling terminal is the pty, as a terminal window's
        os.execv(sys.executable, [sys.executable, str(driver)])
    output = b""
    deadline = time.monotonic() + 60
    answered = False
    try:
        while time.monotonic() < deadline and not re.search(rb"code \d+", output):
            if select.select([master], [], [], 0.5)[0]:
                try:
                    output += os.read(master, 4096)
                except OSError:
                    break
            if not answered and b"name? " in output:
                os.write(master, b"Ada\n")
                answered = True
    finally:
        if not re.search(rb"code \d+", output):
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(master)
    text = output.decode(errors="replace")
    assert "got Ada" in text, text
    assert "code 0" in text, text
    fork_ppid = int(text.split("ppid", 1)[1].split()[0])
    assert fork_ppid != pid  # the read happened in a fork of the server, not in the command


def test_a_server_holding_an_open_file_does_not_fork(toy, monkeypatch):
    monkeypatch.delenv(SOCKET_ENV, raising=False)
    forks = ForkServer(["toy.opener"], [], toy)
    forks.start()
    try:
        proc = command("toy.report", "0", cwd=toy)
    finally:
        forks.stop()
    assert proc.returncode == 0
    assert fields(proc.stdout)["ppid"] == str(os.getpid())  # refused: it ran by itself


def test_a_command_of_another_python_or_environment_is_refused(toy):
    from foodcast.runtime import fork_server as prefork

    own = {"interpreter": prefork._interpreter(), "path": prefork._SEARCH_PATH, "cwd": os.getcwd()}
    assert prefork._refusal(own, [0, 1, 2]) is None
    own_group = {**own, "pgid": os.getpgrp()}
    assert prefork._refusal(own_group, [0, 1, 2], (os.getpid(), os.getuid())) is None
    assert "user" in prefork._refusal(own_group, [0, 1, 2], (os.getpid(), os.getuid() + 1))
    other_env = {**own, "interpreter": [sys.version, "/some/other/venv", "/some/other/venv"]}
    assert "/some/other/venv" in prefork._refusal(other_env, [0, 1, 2])
    assert "descriptors" in prefork._refusal(own, [0, 1])
    # Another PYTHONPATH (what main's cache keys read the libraries' versions from) is another environment.
    other_path = {**own, "path": ["/some/shadow", *prefork._SEARCH_PATH]}
    assert "PYTHONPATH" in prefork._refusal(other_path, [0, 1, 2])


def test_neither_the_forks_nor_the_server_run_the_exit_handlers_of_its_imports(toy, tmp_path):
    """A fork ran, at its end, the atexit handlers the server's imports had registered, and the
    server ran them while main stopped it: a SIGTERM landing then printed an `atexit ...
    SystemExit: 0` traceback after a successful run. Both now leave with os._exit once their
    output is flushed."""
    driver = tmp_path / "driver.py"
    driver.write_text(
        textwrap.dedent(f"""
        import subprocess, sys
        from foodcast.runtime.fork_server import ForkServer

        server = ForkServer(["toy.exitmark"], [], {str(toy)!r})
        server.start()
        code = subprocess.run([sys.executable, "-m", "toy.report", "0"], cwd={str(toy)!r}).returncode
        server.stop()
        print("code", code, flush=True)
    """)
    )
    proc = subprocess.run([sys.executable, str(driver)], capture_output=True, text=True, timeout=60)
    assert "code 0" in proc.stdout and "to stderr" in proc.stderr, proc.stderr
    assert "exit handler ran" not in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_fork_that_ends_while_the_server_looks_for_a_gone_command_s_fork_does_not_stop_the_server(monkeypatch):
    """The server's SIGCHLD handler removes a fork that ends from the forks it waits for, between
    any two steps of the server's loop; here, while it looks for the fork of a command that has
    gone (seen once in CI: ``RuntimeError: dictionary changed size during iteration``, and the
    server died with its other forks). The handler is played where it can land: as the loop
    checks the first fork it looks at."""
    import socket

    from foodcast.runtime import fork_server

    gone, other_end = socket.socketpair()
    other_end.close()  # the command has gone: its connection reads EOF
    alive, _peer = socket.socketpair()
    state = fork_server._Server(gone)
    state.waiting = {101: alive, 102: gone}  # fork pid -> its command's connection

    class HandlerLandsHere(dict):
        def __contains__(self, pid):
            state.waiting.pop(101, None)  # fork 101 ended: report_ended took it out
            return super().__contains__(pid)

    state.orphans = HandlerLandsHere()
    signalled = []
    monkeypatch.setattr(fork_server, "_forward", lambda pid, signum: signalled.append((pid, signum)))
    try:
        fork_server._check_command(gone, state, now=1.0)
    finally:
        for sock in (gone, alive, _peer):
            sock.close()
    assert signalled == [(102, signal.SIGTERM)] and dict(state.orphans) == {102: 1.0}


def test_the_stage_server_s_cache_fillers_exist():
    """The stages' server fills a cache named as text (main does not import what it names)."""
    import importlib

    from foodcast.pipeline.runner import server_preloads

    ready, idle = server_preloads()
    fillers = [name.split(":") for name in ready + idle if ":" in name]
    assert fillers, "no cache filled in the stages' server"
    for module, function in fillers:
        assert callable(getattr(importlib.import_module(module), function))
