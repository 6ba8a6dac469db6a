"""The core's one process pool: independent tasks (restaurants, backtest weeks) on every core.

:func:`fan_out` applies a function to each item on ``workers`` processes and returns the results
in the items' order; :func:`fan_out_each` yields them in that order as they end (a backtest
reports each week). On Linux the pool is forked from the calling process for the call: its
workers start in ~0.1 s with every library imported and read the function and the items from the
memory they share with it (only the results are sent back). Elsewhere it is joblib's loky pool,
whose fresh workers import what the function needs (~2-4 s for the first call of a process: more
than a small chain's whole work).

Another engine (Spark, ``foodcast.spark``) runs the same functions elsewhere: set its mapper
with :func:`use_mapper`, and both functions hand their work to it.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import wait
from typing import Any, TypeVar

from joblib import Parallel, cpu_count, delayed

from foodcast.errors import FoodcastError

T = TypeVar("T")
R = TypeVar("R")

#: ``mapper(function, items) -> [function(item) for item in items]`` that :func:`fan_out` hands
#: its work to instead of its process pool when set (:func:`use_mapper`): another engine (the
#: Spark one, ``foodcast.spark``) runs the same functions elsewhere. None: the process pool.
Mapper = Callable[[Callable[[Any], Any], list[Any]], list[Any]]
_mapper: Mapper | None = None

# What the forked workers of the current call apply, and to what: set before they are forked,
# read from the memory they share with this process (so that the items are never pickled).
_FORKED: tuple[Callable[[Any], Any], list[Any]] | None = None


def resolve_workers(workers: int) -> int:
    """The number of processes ``workers`` asks for: itself if >= 1, all the CPUs if 0."""
    workers = int(workers)
    if workers < 0:
        raise FoodcastError(f"workers must be >= 0 (0: all cores), got {workers}")
    return workers or int(cpu_count())


def use_mapper(mapper: Mapper | None) -> Mapper | None:
    """Have :func:`fan_out` hand its work to ``mapper`` (None: its own process pool again);
    returns the one set before. The mapper must return the results in the items' order."""
    global _mapper  # the one switch of the engine, set by the stage command
    before, _mapper = _mapper, mapper
    return before


def current_mapper() -> Mapper | None:
    """The mapper :func:`fan_out` hands its work to, if one is set (:func:`use_mapper`)."""
    return _mapper


def fan_out(function: Callable[[T], R], items: Iterable[T], workers: int) -> list[R]:
    """``[function(item) for item in items]``, on ``workers`` processes, in the items' order.

    Parameters
    ----------
    function : callable
        Applied to each item; a module-level function (or a ``functools.partial`` of one), so
        that it can be sent to another process.
    items : iterable
    workers : int
        Processes (0: all cores, see :func:`resolve_workers`). With a mapper set
        (:func:`use_mapper`), the mapper does the work instead and ``workers`` is not read.

    Returns
    -------
    list
        The results, in the order of ``items``.

    Raises
    ------
    Exception
        The first error of a task, in the items' order.
    """
    return list(fan_out_each(function, items, workers))


def fan_out_each(function: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """:func:`fan_out`, each result yielded as soon as it and those before it have ended.

    One worker, or one item, runs in this process, one item at a time. The pool ends when the
    iterator is exhausted or closed.
    """
    items = list(items)
    if _mapper is not None and items:
        yield from _mapper(function, items)
        return
    processes = min(resolve_workers(workers), len(items))
    if processes <= 1:
        for item in items:
            yield function(item)
    elif _forkable():
        yield from _forked(function, items, processes)
    else:  # each task's error comes back as its result, so that the first in order is raised
        for failed, result in Parallel(n_jobs=processes, return_as="generator")(
            delayed(_outcome)(function, item) for item in items
        ):
            if failed:
                raise result
            yield result


def _outcome(function: Callable[[T], R], item: T) -> tuple[bool, Any]:
    """``(False, function(item))``, or ``(True, the exception it raised)``."""
    try:
        return False, function(item)
    except Exception as exc:  # noqa: BLE001 - raised again by the caller, in the items' order
        return True, exc


def _forkable() -> bool:
    """Whether the pool can be forked from this process: on Linux, from a process that is not
    itself a daemonic multiprocessing worker (which may not have children).

    A stage has other threads by then, MLflow's (its idle pool of artifact downloads, which
    stays once a stage has read its inputs; its telemetry): a lock one of them held as the pool
    forked would stay locked in the workers, but the workers run none of MLflow's code, only
    the core's (numpy, pandas, scikit-learn), and the interpreter's own locks (imports, logging)
    are reset in a fork. Refusing to fork with threads had left train and validate, which read
    their training set through MLflow first, on loky's pool (bench/restaurant_pipeline.py).
    """
    return (
        sys.platform.startswith("linux")
        and not multiprocessing.current_process().daemon
        and "fork" in multiprocessing.get_all_start_methods()
    )


def _forked(function: Callable[[T], R], items: list[T], processes: int) -> Iterator[R]:
    """The pool forked from this process (see :func:`fan_out_each`)."""
    global _FORKED
    _FORKED = (function, items)
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(processes, mp_context=context, initializer=_forked_worker) as pool:
            yield from pool.map(_apply_forked, range(len(items)))
    finally:
        _FORKED = None


def _apply_forked(index: int) -> Any:
    assert _FORKED is not None, "not a worker of the forked pool"
    function, items = _FORKED
    return function(items[index])


def _forked_worker() -> None:
    """The start of a forked worker: the stop signals back to their default (a worker ends at
    once, leaving the stage's handlers, which end its run, to the stage), and a watch on the
    process that forked it, which ends the worker if that process dies without ending the pool
    (``kill -9``: its workers would otherwise wait for work forever)."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_end_with, args=(parent.sentinel,), daemon=True, name="fan-out-watch").start()


def _end_with(sentinel: int) -> None:
    wait([sentinel])
    signal.raise_signal(signal.SIGKILL)
