"""Start stage processes warm: a fork server that ``main`` keeps while it launches stages.

Every stage ``mlflow.run`` launches is a new ``python -m steps.<stage>`` process, and before it
does any work it spends about 3 s importing MLflow, its SQLAlchemy tracking store, pandas and
scikit-learn (bench/pipeline_overhead.py); the four stages on the pipeline's critical path pay
that in turn. So ``main`` starts one server process that imports those modules once, and each
stage command hands its work over to a fork of that server:

* the stage command (still the MLproject's ``python -m steps.<stage> ...``, launched by
  ``mlflow.run`` with the run's environment) finds ``FOODCAST_PREFORK_SOCKET`` in its
  environment and sends the server its arguments, environment variables, working directory
  and its stdin / stdout / stderr;
* the server forks; the fork takes over those descriptors, variables, directory and arguments
  and runs the module as ``__main__``, as the command would have;
* the server reports the fork's exit status and the command exits with it. SIGINT, SIGTERM
  and SIGHUP sent to the command are passed on to the fork.

The command runs the stage itself when the variable is absent (a stage run on its own), when
the server cannot be reached or refuses (another Python or environment, another project
directory), and
on platforms without a safe ``fork`` (only Linux uses the server). ``FOODCAST_PREFORK=0``
switches the server off. The server imports modules only: it opens no tracking-store
connection and starts no thread, so a fork starts from a clean state.

This module's top level imports only what the stage command needs to hand over its work.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys

SOCKET_ENV = "FOODCAST_PREFORK_SOCKET"
SWITCH_ENV = "FOODCAST_PREFORK"

_LENGTH = struct.Struct("!I")
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_IDLE_WAIT = 0.5  # seconds; select() wakes up earlier for a command, a signal or main's exit


def enabled() -> bool:
    """Whether ``main`` should start a server: Linux, and not switched off by ``FOODCAST_PREFORK=0``."""
    return sys.platform.startswith("linux") and os.environ.get(SWITCH_ENV, "1").strip() != "0"


# ============================================================================ the stage command

def hand_over(package: str) -> None:
    """Run ``python -m <package>.<module> ...`` in a fork of the server, then exit with its status.

    Call it from ``<package>/__init__.py``: it returns, and the command goes on by itself,
    unless this interpreter was started as ``python -m <package>.<module>`` with a server in
    ``FOODCAST_PREFORK_SOCKET`` that accepts the work.
    """
    path = os.environ.get(SOCKET_ENV)
    if not path or sys.argv[:1] != ["-m"]:
        return  # no server, or the package is imported rather than run with -m
    command = sys.orig_argv
    at = command.index("-m") if "-m" in command else -1
    if at < 0 or at + 1 >= len(command) or not command[at + 1].startswith(package + "."):
        return
    request = {
        "module": command[at + 1],
        "args": command[at + 2:],
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "interpreter": _interpreter(),
    }
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(path)
    except OSError:
        return  # the server is gone: run here
    with conn:
        payload = json.dumps(request).encode()
        socket.send_fds(conn, [_LENGTH.pack(len(payload))], [0, 1, 2])
        conn.sendall(payload)
        replies = conn.makefile("r", encoding="utf-8")
        accepted = json.loads(replies.readline() or "{}")
        if "pid" not in accepted:
            return  # refused (accepted["refused"] says why): run here
        pid = accepted["pid"]
        for signum in _FORWARDED:
            signal.signal(signum, lambda s, _frame: _forward(pid, s))
        ended = replies.readline()
    if not ended:
        print(f"foodcast: the fork server stopped before {request['module']} (pid {pid}) ended",
              file=sys.stderr)
        raise SystemExit(1)
    code = json.loads(ended)["exit_code"]
    if code < 0:  # the fork was killed by a signal: end the same way
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    raise SystemExit(code if code >= 0 else 128 - code)


def _interpreter() -> list[str]:
    """Which Python and which environment: the server only runs commands of its own."""
    return [sys.version, sys.prefix, sys.exec_prefix]


def _forward(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


# ============================================================================ main's side

class ForkServer:
    """The server process, started by ``main`` before its first stage launch.

    While it is started, ``FOODCAST_PREFORK_SOCKET`` in ``os.environ`` (which ``mlflow.run``
    passes on to the stage commands) names its socket. The socket listens before the server
    has imported anything, so a command that connects early waits rather than falls back.

    Parameters
    ----------
    ready : sequence of str
        Modules to import before serving: what the first stages need (their commands wait
        meanwhile, instead of each importing them itself).
    idle : sequence of str
        Modules to import afterwards, one at a time between commands, in order.
    cwd : path
        The project directory the stage commands run in.
    """

    def __init__(self, ready, idle, cwd):
        self.ready = list(ready)
        self.idle = list(idle)
        self.cwd = str(cwd)
        self.process = None
        self._directory = None

    def start(self) -> None:
        import subprocess
        import tempfile

        self._directory = tempfile.mkdtemp(prefix="foodcast-prefork-")
        path = os.path.join(self._directory, "socket")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(64)
        with listener:
            self.process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(listener.fileno()), *self.ready, "--", *self.idle],
                stdin=subprocess.PIPE, cwd=self.cwd, pass_fds=[listener.fileno()],
            )
        os.environ[SOCKET_ENV] = path

    def stop(self, grace: float = 0.0) -> None:
        """Stop serving.

        Parameters
        ----------
        grace : float
            Seconds to let forks still running end and have their status reported (e.g. after
            Ctrl-C, which the stage commands pass on to them); 0 when none can be running.
        """
        import shutil
        import subprocess

        os.environ.pop(SOCKET_ENV, None)
        if self.process is not None:
            self.process.stdin.close()  # the server's cue: it ends once its forks have
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.terminate()  # e.g. in the middle of a preload: no fork to wait for
                self.process.wait()
            self.process = None
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None


# ============================================================================ the server

def serve(listener: socket.socket, ready: list[str], idle: list[str]) -> None:
    """Import ``ready``, then accept stage commands and fork for each, importing ``idle``
    between them.

    A fork's end is reported from a SIGCHLD handler, so at once, even while a module imports.
    Ends when its stdin closes (``main`` is done or gone), after the forks still running
    have ended and their commands have their status.
    """
    import select
    import time

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the commands and main, not the server
    for name in ready:
        _preload(name)
    waiting: dict[int, socket.socket] = {}
    signal.signal(signal.SIGCHLD, lambda _signum, _frame: _report_ended(waiting))
    watched = [listener, sys.stdin]
    pending = list(idle)
    while watched or waiting:
        importing = bool(pending) and bool(watched)
        if watched:
            readable = select.select(watched, [], [], 0 if importing else _IDLE_WAIT)[0]
        else:  # no more commands: wait for the last forks to end
            readable = []
            time.sleep(_IDLE_WAIT)
        for source in readable:
            if source is listener:
                conn = listener.accept()[0]
                try:
                    _fork_for(conn, listener, waiting)
                except Exception as exc:  # a malformed request must not stop the server
                    print(f"foodcast prefork: request refused: {exc!r}", file=sys.stderr)
                    conn.close()
            elif not os.read(sys.stdin.fileno(), 4096):
                watched = []
                listener.close()
        if importing and not readable:
            _preload(pending.pop(0))


def _preload(name: str) -> None:
    import importlib
    import traceback

    try:
        importlib.import_module(name)
    except Exception:  # the stage will import it, or fail, itself
        print(f"foodcast prefork: could not preload {name}:", file=sys.stderr)
        traceback.print_exc()


def _receive(conn: socket.socket) -> tuple[dict, list[int]]:
    head, fds, _flags, _address = socket.recv_fds(conn, _LENGTH.size, 3)
    while len(head) < _LENGTH.size:
        more = conn.recv(_LENGTH.size - len(head))
        if not more:
            raise ConnectionError("the command hung up")
        head += more
    (length,) = _LENGTH.unpack(head)
    payload = bytearray()
    while len(payload) < length:
        more = conn.recv(length - len(payload))
        if not more:
            raise ConnectionError("the command hung up")
        payload += more
    return json.loads(payload), list(fds)


def _refusal(request: dict, fds: list[int]) -> str | None:
    if len(fds) != 3:
        return f"expected stdin, stdout and stderr, got {len(fds)} descriptors"
    if request["interpreter"] != _interpreter():
        return f"the command runs Python {request['interpreter']}, the server {_interpreter()}"
    if os.path.realpath(request["cwd"]) != os.path.realpath(os.getcwd()):
        return f"the command runs in {request['cwd']}, the server in {os.getcwd()}"
    return None


def _fork_for(conn: socket.socket, listener: socket.socket, waiting: dict) -> None:
    request, fds = _receive(conn)
    reason = _refusal(request, fds)
    if reason is not None:
        for fd in fds:
            os.close(fd)
        conn.sendall((json.dumps({"refused": reason}) + "\n").encode())
        conn.close()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    # Until the fork is in `waiting`, its end must not be reported (nor lost): hold SIGCHLD.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    try:
        pid = os.fork()
        if pid == 0:
            _become(request, fds, [listener, conn, *waiting.values()])  # never returns
        for fd in fds:
            os.close(fd)
        waiting[pid] = conn
        conn.sendall((json.dumps({"pid": pid}) + "\n").encode())
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})


def _report_ended(waiting: dict) -> None:
    while waiting:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = waiting.pop(pid, None)
        if conn is None:
            continue
        try:
            conn.sendall((json.dumps({"exit_code": os.waitstatus_to_exitcode(status)}) + "\n").encode())
        except OSError:
            pass  # the command is gone
        conn.close()


def _become(request: dict, fds: list[int], inherited: list) -> None:
    """In the fork: become the stage command, run its module, exit with its status.

    Exits by raising SystemExit, which unwinds to the interpreter's normal exit (atexit
    handlers, flushed output); a KeyboardInterrupt ends it as it ends Python (killed by
    SIGINT); anything else the module raises is printed and exits 1.
    """
    import runpy
    import traceback

    try:
        # The stage's own subprocesses are its business: no more reporting (SIGCHLD was held
        # across the fork, and a child starts with no pending signal).
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        for sock in inherited:
            sock.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.setpgid(0, 0)  # signals come from the command, once, not also from the terminal
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ.pop(SOCKET_ENV, None)
        sys.argv = [request["module"], *request["args"]]
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit:
        raise
    except KeyboardInterrupt:  # as Python itself ends on Ctrl-C: traceback, then killed by SIGINT
        traceback.print_exc()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        raise SystemExit(128 + signal.SIGINT) from None
    except BaseException:
        traceback.print_exc()
        raise SystemExit(1) from None
    raise SystemExit(0)


if __name__ == "__main__":
    _names = sys.argv[2:]
    _split = _names.index("--")
    serve(socket.socket(fileno=int(sys.argv[1])), _names[:_split], _names[_split + 1:])
