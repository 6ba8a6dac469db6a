"""The processes behind runs: stopping cleanly on a signal, and telling which runs lost theirs.

A stage or ``main`` runs :func:`interruptible`: the first SIGINT, SIGTERM or SIGHUP becomes an
:class:`Interrupted` exception, so that its run is ended FAILED with a reason instead of being
left RUNNING; later ones are ignored so that this clean-up is not cut short. Each run records
the process that owns it (:func:`owner_tags`), so that a later ``main`` can tell a run left
RUNNING by a process that is gone (``kill -9``, a power cut) from one still at work.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import shutil
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import FrameType
from typing import NoReturn

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
HOST_TAG = "foodcast.host"
PID_TAG = "foodcast.pid"
PID_START_TAG = "foodcast.pid_start"
_REDELIVERY = 0.05  # seconds after a destructor swallowed the stop signal's exception


class Interrupted(BaseException):
    """A stop signal arrived. A BaseException, like KeyboardInterrupt: not a failure to handle."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")

    @property
    def exit_code(self) -> int:
        """The status a shell reports for a process stopped by this signal."""
        return 128 + self.signum


@contextmanager
def interruptible() -> Iterator[None]:
    """Raise :class:`Interrupted` in the main thread at the first stop signal, then ignore
    the next ones (a terminal's Ctrl-C reaches every process of the group, and ``mlflow run``
    follows it with SIGTERM) while the interrupted code cleans up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: FrameType | None) -> NoReturn:
        for other in STOP_SIGNALS:
            # A Python handler that does nothing, not SIG_IGN: a signal that arrived meanwhile
            # would otherwise be reported as "ignored due to race condition", with a traceback.
            signal.signal(other, _swallow)
        raise Interrupted(signum)

    def swallowed(unraisable: sys.UnraisableHookArgs) -> None:
        """The Interrupted was raised inside a destructor (``__del__``, a weakref callback),
        where Python only prints exceptions and goes on: deliver the signal again."""
        if not isinstance(unraisable.exc_value, Interrupted):
            hook(unraisable)
            return
        signum = unraisable.exc_value.signum
        # Sent again once the destructor has returned (sent now, it would be handled inside it
        # again). The timer first, `stop` back after: a second signal landing meanwhile (the
        # lifeline's SIGTERM after the group's) meets `_swallow`, not an exception in this hook,
        # which Python would print as a traceback and drop, redelivery and all.
        later = threading.Timer(_REDELIVERY, os.kill, (os.getpid(), signum))
        later.daemon = True
        later.start()
        while True:
            try:
                with contextlib.suppress(ValueError):  # (not the main thread: cannot happen, handlers run there)
                    signal.signal(signum, stop)
                return
            except Interrupted:  # one landed just after: `stop` swallowed it; the timer still redelivers
                continue

    previous = {s: signal.signal(s, stop) for s in STOP_SIGNALS}
    hook, sys.unraisablehook = sys.unraisablehook, swallowed
    interrupted = False
    try:
        yield
    except Interrupted:
        interrupted = True
        raise
    finally:
        sys.unraisablehook = hook
        if not interrupted:
            for s, handler in previous.items():
                signal.signal(s, handler)


def _swallow(_signum: int, _frame: FrameType | None) -> None:
    """The handler of the stop signals while an interrupted process cleans up."""


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot), to tell it from a later one that
    reuses its number; ``None`` where ``/proc`` does not say."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] == "Z":
        return None  # dead, not yet collected by its parent
    return fields[19]


def owner_tags() -> dict[str, str]:
    """Tags naming this process as the owner of a run: host, pid and its start time."""
    tags = {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}
    start = _start_time(os.getpid())
    if start is not None:
        tags[PID_START_TAG] = start
    return tags


def owner_alive(tags: Mapping[str, str]) -> bool | None:
    """Whether the process a run's tags name as its owner still runs: ``None`` when that cannot
    be told from here (no owner tags, or another host)."""
    if tags.get(HOST_TAG) != socket.gethostname() or PID_TAG not in tags:
        return None
    start = _start_time(int(tags[PID_TAG]))
    if start is None:
        return False
    return tags.get(PID_START_TAG) in (None, start)


TEMP_PREFIX = "foodcast-"


def temp_dir(purpose: str) -> tempfile.TemporaryDirectory[str]:
    """A private temporary directory named after this process (``foodcast-<pid>-<purpose>-…``),
    removed when the ``with`` block ends; one left by a killed process is removed by
    :func:`sweep_temp_dirs`."""
    return tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-{purpose}-")


def sweep_temp_dirs() -> list[str]:
    """Remove the temporary directories of ours whose process has ended (``kill -9`` leaves
    them); returns their paths."""
    root = tempfile.gettempdir()
    removed = []
    for name in os.listdir(root):
        found = re.match(rf"{TEMP_PREFIX}(\d+)-", name)
        if not found or _start_time(int(found.group(1))) is not None:
            continue
        shutil.rmtree(os.path.join(root, name), ignore_errors=True)
        removed.append(os.path.join(root, name))
    return removed


def children() -> list[int]:
    """Pids of this process's children (every thread's), from ``/proc``; empty elsewhere."""
    found: list[int] = []
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/children", encoding="ascii") as f:
                found += [int(pid) for pid in f.read().split()]
        except OSError:
            continue
    return found


def signal_all(pids: Iterable[int], signum: int) -> None:
    """Send ``signum`` to each of ``pids`` that still exists."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def exit_without_final_collection() -> None:
    """Let the process end without the garbage collector walking every object first.

    A process that imported MLflow spends about half a second at exit collecting the objects
    of some 3,000 modules, time every stage (and ``main``, which waits for it) would pay.
    Freezing moves them all out of the collector's reach; the OS reclaims the memory anyway.
    Call it when the process's work is done.
    """
    gc.freeze()
