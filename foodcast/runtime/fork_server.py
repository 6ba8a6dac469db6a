"""Start stage processes warm: a fork server that ``main`` keeps while it launches stages.

Every stage ``mlflow.run`` launches is a new ``python -m steps.<stage>`` process, and before it
does any work it spends about 3 s importing MLflow, its tracking store, pandas and
scikit-learn (bench/pipeline_overhead.py); the stages on the pipeline's critical path pay that
in turn. So ``main`` starts one server process that imports those modules once, and each stage
command hands its work over to a fork of that server:

* the stage command (still the MLproject's ``python -m steps.<stage> ...``, launched by
  ``mlflow.run`` with the run's environment) finds ``FOODCAST_PREFORK_SOCKET`` in its
  environment and sends the server its arguments, environment variables, working directory,
  process group and its stdin / stdout / stderr;
* the server forks; the fork joins the command's process group (so a terminal's Ctrl-C and
  its reads, and a signal or ``kill -9`` sent to the group, reach it as they reach the
  command), takes over those descriptors, variables, directory and arguments and runs the
  module as ``__main__``, as the command would have;
* the server reports the fork's exit status and the command exits with it. SIGINT, SIGTERM
  and SIGHUP sent to the command itself are passed on to the fork. A fork ends with its
  command (the server terminates a fork whose command has gone, and all of them when ``main``
  stops it) and with the server, which ends with ``main`` (SIGTERM from their lifelines,
  ``foodcast.runtime.lifeline``: the stage ends its run FAILED).

The socket is in Linux's abstract namespace: nothing on disk to leave behind, and the server
serves only processes of its own user (``SO_PEERCRED``) in its own session.
The command runs the stage itself when the variable is absent (a stage run on its own), when
the server cannot be reached or refuses (another Python, environment or PYTHONPATH, another project
directory or session), and on platforms without a safe ``fork`` (only Linux uses the server).
``FOODCAST_PREFORK=0`` switches the server off. A ``main`` that finds ``FOODCAST_PREFORK_SOCKET``
set already, naming a server its caller keeps across pipelines (the test suite keeps one per
project, tests/conftest.py), starts none: it runs in a fork of that server itself
(``run_script_in_fork_server``), and its stages go to the server too. The server imports modules only; before each
fork it checks that it holds no thread and no descriptor beyond its own sockets, so a fork
starts from a clean state.

It imports the standard library only: every stage command imports it first.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import runpy
import secrets
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from types import FrameType

from foodcast.runtime.lifeline import PARENT_ENV, die_with_parent, quiet_interrupts

# Not typing.TYPE_CHECKING: importing typing would add some 3 ms to every stage command's start.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any, NoReturn, TextIO

SOCKET_ENV = "FOODCAST_PREFORK_SOCKET"
SWITCH_ENV = "FOODCAST_PREFORK"

_LENGTH = struct.Struct("!I")
_FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_HELD = {signal.SIGCHLD, *_FORWARDED}  # blocked from fork() until the fork has its own handlers
_IDLE_WAIT = 0.5  # seconds; select() wakes up earlier for a command, a signal or main's exit
_ORPHAN_GRACE = 5.0  # seconds a fork whose command has gone gets to end before SIGKILL
_STOP_GRACE = 10.0  # seconds a stopping server gives its forks before SIGKILL
# Where this process imports from, beyond the script's or the working directory (sys.path[0]):
# PYTHONPATH, the standard library, site-packages. Read at import, before anything is preloaded.
_SEARCH_PATH = sys.path[1:]
_in_fork = False  # True in a fork of the server: a script it runs does not hand itself over again


def enabled() -> bool:
    """Whether ``main`` should start a server: Linux, and not switched off by ``FOODCAST_PREFORK=0``."""
    return sys.platform.startswith("linux") and os.environ.get(SWITCH_ENV, "1").strip() != "0"


def _address(name: str) -> str:
    """The abstract-namespace address of a server name (``FOODCAST_PREFORK_SOCKET``'s value)."""
    return "\0" + name


# ============================================================================ the stage command


def run_in_fork_server(package: str) -> None:
    """Run ``python -m <package>.<module> ...`` in a fork of the server, then exit with its status.

    Call it from ``<package>/__init__.py``: it returns, and the command goes on by itself,
    unless this interpreter was started as ``python -m <package>.<module>`` with a server in
    ``FOODCAST_PREFORK_SOCKET`` that accepts the work.
    """
    if sys.argv[:1] != ["-m"]:
        return  # the package is imported rather than run with -m (or runs in a fork)
    command = sys.orig_argv
    at = command.index("-m") if "-m" in command else -1
    if at < 0 or at + 1 >= len(command) or not command[at + 1].startswith(package + "."):
        return
    # A stage command ends with the process that started it (main, or `mlflow run` for a stage
    # run alone), and Ctrl-C before the stage's run has its handlers says one line.
    die_with_parent(os.environ.get(PARENT_ENV))
    quiet_interrupts(command[at + 1].rsplit(".", 1)[-1])
    _hand_over(command[at + 1], command[at + 2 :], keep_server=False)


def run_script_in_fork_server(module: str) -> None:
    """Run the script ``python <module>.py ...`` (``main.py``) in a fork of a server its caller
    keeps (named in ``FOODCAST_PREFORK_SOCKET``), then exit with its status; the server stays
    named in the fork, so that the stage commands the script launches go to it too.

    Call it from the script's ``if __name__ == "__main__"`` block, first. It returns, and the
    script goes on by itself, in the fork itself, without such a server, when the server refuses
    (another directory: the script runs as a module of the server's, found in its directory),
    or when the script is not ``<module>.py`` of the working directory.
    """
    if _in_fork or not os.environ.get(SOCKET_ENV):
        return
    script = os.path.realpath(sys.argv[0])
    if script != os.path.join(os.path.realpath(os.getcwd()), module + ".py"):
        return
    _hand_over(module, sys.argv[1:], keep_server=True)


def _hand_over(module: str, args: list[str], keep_server: bool) -> None:
    """Have the server named in ``FOODCAST_PREFORK_SOCKET`` run ``module`` with ``args`` as this
    process would, wait for it and exit as it ended; return if there is no such server or it
    refuses."""
    name = os.environ.get(SOCKET_ENV)
    if not name:
        return  # no server: run here
    request = {
        "module": module,
        "args": args,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        "interpreter": _interpreter(),
        "path": _SEARCH_PATH,
        "pgid": os.getpgrp(),
        "keep_server": keep_server,
    }
    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(_address(name))
    except OSError:
        os.environ.pop(SOCKET_ENV)  # the server is gone: run here (main: with a server of its own)
        return
    with conn:
        payload = json.dumps(request).encode()
        try:
            socket.send_fds(conn, [_LENGTH.pack(len(payload))], [0, 1, 2])
            conn.sendall(payload)
            replies = conn.makefile("r", encoding="utf-8")
            accepted = json.loads(replies.readline() or "{}")
        except OSError as exc:  # killed while it took the request: it may have forked already
            print(f"foodcast: the fork server ended while it took {module}: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        if "pid" not in accepted:
            # Refused (accepted["refused"] says why: another environment, say): run here, and
            # main with a server of its own, in its own environment.
            os.environ.pop(SOCKET_ENV)
            return
        pid = accepted["pid"]
        for signum in _FORWARDED:
            signal.signal(signum, lambda s, _frame: _forward(pid, s))
        try:
            ended = replies.readline()
        except OSError:  # the server was killed (connection reset): said below, in one line
            ended = ""
    if not ended:
        print(
            f"foodcast: the fork server ended before reporting how {module} (pid {pid}) "
            f"ended; {module} was stopped with it",
            file=sys.stderr,
        )
        raise SystemExit(1)
    code = json.loads(ended)["exit_code"]
    if code < 0:  # the fork was killed by a signal: end the same way
        sys.stdout.flush()
        sys.stderr.flush()
        if -code not in (signal.SIGKILL, signal.SIGSTOP):  # (these two have no handler to reset)
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    raise SystemExit(code if code >= 0 else 128 - code)


def _interpreter() -> list[str]:
    """Which Python and which environment: the server only runs commands of its own."""
    return [sys.version, sys.prefix, sys.exec_prefix]


def _forward(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


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
        meanwhile, instead of each importing them itself). ``module:function`` also calls
        ``function()`` of the module once imported: a cache the stages share.
    idle : sequence of str
        Modules to import afterwards, one at a time between commands, in order (the same forms).
    cwd : path
        The project directory the stage commands run in.
    """

    def __init__(self, ready: Iterable[str], idle: Iterable[str], cwd: str | os.PathLike[str]) -> None:
        self.ready = list(ready)
        self.idle = list(idle)
        self.cwd = str(cwd)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        name = f"foodcast-prefork-{os.getpid()}-{secrets.token_hex(8)}"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(_address(name))
        listener.listen(64)
        with listener:
            self.process = subprocess.Popen(
                [sys.executable, "-m", __name__, str(listener.fileno()), *self.ready, "--", *self.idle],
                stdin=subprocess.PIPE,
                cwd=self.cwd,
                pass_fds=[listener.fileno()],
            )
        os.environ[SOCKET_ENV] = name

    def stop(self) -> None:
        """Stop serving, and the forks still running: every command they served has ended (or
        was stopped: a fork left has lost its command). The server sends them SIGTERM, gives
        them ``_STOP_GRACE`` seconds to end their runs and report, then SIGKILL."""
        os.environ.pop(SOCKET_ENV, None)
        if self.process is not None:
            assert self.process.stdin is not None  # started with stdin=PIPE
            self.process.stdin.close()
            self.process.terminate()  # at once, even in the middle of an import
            try:
                self.process.wait(timeout=_STOP_GRACE + 5)
            except subprocess.TimeoutExpired:
                self.process.kill()  # its forks get SIGTERM (their lifeline)
                self.process.wait()
            self.process = None


# ============================================================================ the server


class _Server:
    """State of the serving process: its listener, and the forks it must report on."""

    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.waiting: dict[int, socket.socket] = {}  # fork pid -> its command's connection
        self.orphans: dict[int, float] = {}  # fork pid -> when its command was found gone
        self.stopping_at: float | None = None
        self.inherited = _open_descriptors()

    def report_ended(self) -> None:
        """Reap the forks that ended and send each command its fork's exit status."""
        while self.waiting:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.orphans.pop(pid, None)
            conn = self.waiting.pop(pid, None)
            if conn is None:
                continue
            with contextlib.suppress(OSError):  # the command is gone
                conn.sendall((json.dumps({"exit_code": os.waitstatus_to_exitcode(status)}) + "\n").encode())
            conn.close()
            if self.stopping_at is not None and not self.waiting:
                _leave(0)  # stopped, and its last fork has ended: now, not after the import under way

    def fork_hazard(self, conn: socket.socket, fds: list[int]) -> str | None:
        """Why forking now would hand the fork shared state (a thread, a connection or file a
        preload opened), if it would."""
        if threading.active_count() != 1:
            return f"the server runs {threading.active_count()} Python threads"
        ours = self.inherited | {self.listener.fileno(), conn.fileno(), *fds}
        ours |= {c.fileno() for c in list(self.waiting.values())}  # (a snapshot: see _check_command)
        extra = sorted(_open_descriptors() - ours)
        if extra:
            return "the server holds descriptors it did not open itself: " + ", ".join(
                f"{fd} ({_describe(fd)})" for fd in extra
            )
        return None

    def stop(self, now: float) -> None:
        if self.stopping_at is None:
            self.stopping_at = now
            self.listener.close()


def _open_descriptors() -> set[int]:
    """The process's open descriptors (not the one the listing itself used)."""
    try:
        listed = [int(fd) for fd in os.listdir("/proc/self/fd")]
    except OSError:
        return set()
    out = set()
    for fd in listed:
        try:
            os.fstat(fd)
        except OSError:
            continue  # the listing's own descriptor, closed by now
        out.add(fd)
    return out


def _describe(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"


def serve(listener: socket.socket, ready: list[str], idle: list[str]) -> None:
    """Import ``ready``, then accept stage commands and fork for each, importing ``idle``
    between them.

    A fork's end is reported from a SIGCHLD handler, so at once, even while a module imports.
    A fork whose command has gone is sent SIGTERM, then SIGKILL after a grace period. Ends when
    its stdin closes (``main`` is done or gone) or on SIGTERM, after the forks still running
    have ended (SIGKILL after a grace period) and their commands have their status.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the commands and main, not the server
    state = _Server(listener)

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        state.stop(time.monotonic())
        for pid in list(state.waiting):  # commands ended or stopped: their forks end too (a second
            _forward(pid, signal.SIGTERM)  # SIGTERM to one already stopping is ignored)
        if not state.waiting:
            _leave(0)  # no fork to wait for: end now, even in the middle of an import (or of exiting)

    signal.signal(signal.SIGTERM, on_sigterm)
    for name in ready:
        _preload(name)
    signal.signal(signal.SIGCHLD, lambda _signum, _frame: state.report_ended())
    pending = list(idle)
    stdin_open = True
    while True:
        now = time.monotonic()
        serving = state.stopping_at is None and stdin_open
        if not serving and not state.waiting:
            return
        if state.stopping_at is not None and now - state.stopping_at > _STOP_GRACE:
            for pid in list(state.waiting):
                _forward(pid, signal.SIGKILL)
        for pid, since in list(state.orphans.items()):
            if now - since > _ORPHAN_GRACE:
                _forward(pid, signal.SIGKILL)
        watched: list[socket.socket | TextIO] = [*state.waiting.values()]
        if serving:
            watched += [listener, sys.stdin]
        importing = bool(pending) and serving
        try:
            readable = select.select(watched, [], [], 0 if importing else _IDLE_WAIT)[0]
        except (OSError, ValueError):
            readable = []  # a connection closed under us by report_ended: look again
        for source in readable:
            if source is listener:
                if state.stopping_at is not None:
                    continue
                conn = listener.accept()[0]
                try:
                    _fork_for(conn, state)
                except Exception as exc:  # noqa: BLE001 - a malformed request must not stop the server
                    print(f"foodcast prefork: request refused: {exc!r}", file=sys.stderr)
                    conn.close()
            elif source is sys.stdin:
                if not os.read(sys.stdin.fileno(), 4096):
                    stdin_open = False
                    listener.close()
            else:
                assert isinstance(source, socket.socket)  # the rest of `watched`: commands' connections
                _check_command(source, state, now)
        if importing and not readable:
            _preload(pending.pop(0))


def _check_command(conn: socket.socket, state: _Server, now: float) -> None:
    """A command's connection is readable: it has gone (EOF). Its fork must not outlive it."""
    try:
        gone = not conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return
    except OSError:
        gone = True
    if not gone:
        return
    # A snapshot: the SIGCHLD handler (report_ended) removes the forks that end from `waiting`,
    # and may run between two steps of this loop.
    for pid, c in list(state.waiting.items()):
        if c is conn and pid not in state.orphans:
            state.orphans[pid] = now
            _forward(pid, signal.SIGTERM)


def _preload(name: str) -> None:
    """Import module ``name``; for ``module:function``, then call ``function()``: a cache every
    stage would fill itself (its result stays in the forks' memory)."""
    module, _, function = name.partition(":")
    try:
        imported = importlib.import_module(module)
        if function:
            getattr(imported, function)()
    except Exception:  # noqa: BLE001 - the stage will import it, or fail, itself
        print(f"foodcast prefork: could not preload {name}:", file=sys.stderr)
        traceback.print_exc()


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
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


_PEER = struct.Struct("3i")  # struct ucred: pid, uid, gid


def _peer(conn: socket.socket) -> tuple[int, int]:
    """``(pid, uid)`` of the process at the other end of ``conn``."""
    pid, uid, _gid = _PEER.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEER.size))
    return pid, uid


def _refusal(request: dict[str, Any], fds: list[int], peer: tuple[int, int] | None = None) -> str | None:
    if len(fds) != 3:
        return f"expected stdin, stdout and stderr, got {len(fds)} descriptors"
    if request["interpreter"] != _interpreter():
        return f"the command runs Python {request['interpreter']}, the server {_interpreter()}"
    if request.get("path") != _SEARCH_PATH:
        return "the command imports from another path (PYTHONPATH) than the server"
    if os.path.realpath(request["cwd"]) != os.path.realpath(os.getcwd()):
        return f"the command runs in {request['cwd']}, the server in {os.getcwd()}"
    if peer is not None:
        pid, uid = peer
        if uid != os.getuid():
            return f"the command runs as user {uid}, the server as {os.getuid()}"
        try:
            if os.getsid(pid) != os.getsid(0) or os.getpgid(pid) != request["pgid"]:
                return "the command is in another session or process group than it says"
        except OSError:
            return "the command has gone"
    return None


def _fork_for(conn: socket.socket, state: _Server) -> None:
    request, fds = _receive(conn)
    reason = _refusal(request, fds, _peer(conn)) or state.fork_hazard(conn, fds)
    if reason is not None:
        for fd in fds:
            os.close(fd)
        conn.sendall((json.dumps({"refused": reason}) + "\n").encode())
        conn.close()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    # Until the fork is in `waiting`, its end must not be reported (nor lost): hold SIGCHLD.
    # Hold the stop signals too: until the fork has its own handlers, one sent to it (by its
    # command, passing on a SIGTERM) would reach the server's handler in the fork and be lost.
    signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        server_pid = os.getpid()
        pid = os.fork()
        if pid == 0:
            _become(request, fds, [state.listener, conn, *state.waiting.values()], server_pid)  # never returns
        for fd in fds:
            os.close(fd)
        state.waiting[pid] = conn
        conn.sendall((json.dumps({"pid": pid}) + "\n").encode())
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)


def _become(request: dict[str, Any], fds: list[int], inherited: list[socket.socket], server_pid: int) -> NoReturn:
    """In the fork: become the stage command, run its module, exit with its status.

    Leaves with ``os._exit`` once its output is flushed: the interpreter's own exit would run
    the atexit handlers the server's imports registered (in a process that did not set them
    up, and where a late signal turned them into tracebacks). A KeyboardInterrupt or anything
    else the module lets out ends it with one line on stderr.
    """
    global _in_fork
    _in_fork = True
    status = 1
    try:
        # SIGTERM when the server dies, so that the stage ends its run FAILED with the reason.
        die_with_parent(server_pid)
        # The stage's own subprocesses are its business: no more reporting (SIGCHLD was held
        # across the fork, and a child starts with no pending signal).
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for sock in inherited:
            sock.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        # Into the command's process group: the terminal's signals and reads, and signals sent
        # to the group (`kill -9 -<pgid>`), reach the fork as they reach the command.
        os.setpgid(0, request["pgid"])
        quiet_interrupts(request["module"].rsplit(".", 1)[-1])
        for signum in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)  # a stop signal sent meanwhile acts now
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        if not request.get("keep_server"):
            os.environ.pop(SOCKET_ENV, None)
        os.environ.pop(PARENT_ENV, None)  # its parent is the server, not the command's
        sys.argv = [request["module"], *request["args"]]
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        status = 0
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except KeyboardInterrupt:
        print(f"Error: {request['module']}: interrupted by SIGINT", file=sys.stderr)
        status = 128 + signal.SIGINT
    except BaseException:  # noqa: BLE001 - whatever else the module raises: printed, exit status 1
        traceback.print_exc()
    _leave(status)


def _exit_status(code: object) -> int:
    """The status ``raise SystemExit(code)`` gives a Python process (a text: printed, 1)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _leave(status: int) -> NoReturn:
    """Exit now, once what the process wrote is out (its log handlers' too), without the
    interpreter's atexit handlers and final collection."""
    logging = sys.modules.get("logging")
    try:
        if logging is not None:
            logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status)


def _serve_command(argv: list[str]) -> NoReturn:
    """``python -m foodcast.runtime.fork_server <listener fd> <ready...> -- <idle...>``."""
    names = argv[1:]
    split = names.index("--")
    die_with_parent(os.environ.get(PARENT_ENV))  # ends (its forks first) when main ends
    serve(socket.socket(fileno=int(argv[0])), names[:split], names[split + 1 :])
    _leave(0)  # without the atexit handlers its imports registered: it ran none of their code


if __name__ == "__main__":
    # Served from the module itself, not from __main__ (a copy of it): a script a fork runs
    # reads the module's state (run_script_in_fork_server reads _in_fork).
    from foodcast.runtime import fork_server

    fork_server._serve_command(sys.argv[1:])
