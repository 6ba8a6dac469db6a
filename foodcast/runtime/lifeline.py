"""A process of the pipeline ends when the one that started it ends, however that one ended.

``mlflow run`` starts ``main.py``, which starts the stage commands and the fork server, which
forks for each command. A signal sent to one of them alone (``kill <pid>``, ``kill -9``, the OOM
killer choosing one process) used to leave the ones below it at work: a stage went on to
register a model nobody would see the pipeline finish. Each of these processes therefore asks
Linux, as soon as it starts, for SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``):
SIGTERM, not SIGKILL, so that it ends its run FAILED with the reason (``processes.interruptible``)
and stops the processes below it in turn.

Linux only (elsewhere nothing happens). Linux sends the signal when the *thread* that started
the process ends: ``main`` starts each stage command from the thread that waits for it, and the
others are started from their parent's main thread.

The standard library only: every stage command imports it before anything else.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PARENT_ENV = "FOODCAST_PARENT_PID"  # the pid of the process that starts the stage commands
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | str | None = None, signum: int = signal.SIGTERM) -> bool:
    """Have ``signum`` sent to this process when its parent dies.

    Parameters
    ----------
    parent : int or str, optional
        The pid the parent had: if this process's parent is another one already (the parent
        died before the request, and the process was handed to a reaper), ``signum`` is sent
        at once. Unknown (``None``), only the request is made.
    signum : int
        The signal to receive.

    Returns
    -------
    bool
        Whether the request was made (False off Linux, or where ``prctl`` is missing).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if parent is not None and str(parent).strip().isdigit() and _orphaned(int(parent)):
        os.kill(os.getpid(), signum)  # orphaned before the request: the signal it would have had
    return True


def _orphaned(parent: int) -> bool:
    """Whether ``parent`` started this process and has died (a pid named by a stale variable,
    of a process alive elsewhere, is not this process's parent: it says nothing)."""
    if os.getppid() == parent:
        return False
    try:
        os.kill(parent, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        pass
    return False


def hand_down() -> None:
    """Name this process as the parent of the stage commands it launches (``PARENT_ENV``), so
    that each can tell whether it was orphaned before it asked for its lifeline."""
    os.environ[PARENT_ENV] = str(os.getpid())


def quiet_interrupts(who: str) -> None:
    """Until the process installs its own handlers, Ctrl-C (SIGINT) ends it with one line on
    stderr and status 130, not with a ``KeyboardInterrupt`` traceback of whatever it was
    importing. Call it from the main thread."""

    def stop(signum: int, _frame: object) -> None:
        signal.signal(signum, signal.SIG_IGN)  # the terminal's next Ctrl-C: this line once
        print(f"Error: {who}: interrupted by {signal.Signals(signum).name}", file=sys.stderr, flush=True)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGINT, stop)
