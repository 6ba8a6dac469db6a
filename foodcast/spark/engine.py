"""A Spark session for one stage run, and the mapper that runs the core's per-restaurant work on it.

:func:`spark_engine` (a stage with ``-P engine=spark``) starts the session, sets the core's
mapper (``foodcast.core.pool.use_mapper``) to :func:`spark_map`, and stops both as the
stage's body ends, however it ends (an error, a stop signal turned into an exception by
``foodcast.runtime.processes.interruptible``): the session's JVM is ended with it, so that no
JVM outlives a stage run. A JVM whose Python driver dies outright (``kill -9``) ends too: the
gateway JVM that pyspark starts exits when its standard input (a pipe from the driver) closes.

The master is ``FOODCAST_SPARK_MASTER`` (default ``local[*]``). Spark's local mode retries a
failed task only when its master says how often (``local[N,F]``), where a cluster retries by
default (``spark.task.maxFailures`` = 4): a local master without that count is run as
``local[N,4]`` so that a Python worker killed mid-task (the OOM killer, a crash) is retried
there as it would be on a cluster.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import re
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import cloudpickle
import pandas as pd
from pyspark import SparkConf, SparkContext
from pyspark.java_gateway import launch_gateway
from pyspark.sql import SparkSession

from foodcast.core import pool
from foodcast.errors import FoodcastError

logger = logging.getLogger(__name__)

MASTER_ENV = "FOODCAST_SPARK_MASTER"
DEFAULT_MASTER = "local[*]"
LOCAL_RETRIES = 4  # attempts of a task on a local master given without them (a cluster's default)
#: A test's fault: the path of a marker file. The first task that finds it absent creates it and
#: kills its own Python worker (SIGKILL), once; Spark must retry the task.
FAULT_ENV = "FOODCAST_SPARK_FAULT"
APP_ID_TAG = "foodcast.spark.application_id"
UI_TAG = "foodcast.spark.ui"
MASTER_TAG = "foodcast.spark.master"
PANDAS_WARNING_TEXT = "PySpark does not yet fully support pandas"
PANDAS_WARNING = f"ignore:{PANDAS_WARNING_TEXT}:FutureWarning"
_LOCAL = re.compile(r"local\[(\*|\d+)\]")
_RESULT_SCHEMA = "item long, error string, result binary"

_session: SparkSession | None = None
_started: Callable[[dict[str, str]], object] | None = None  # told of a session started (spark_engine)


def master() -> str:
    """The master URL the session connects to: ``FOODCAST_SPARK_MASTER``, or ``local[*]``; a
    local master without a number of attempts gets :data:`LOCAL_RETRIES`."""
    url = os.environ.get(MASTER_ENV, "").strip() or DEFAULT_MASTER
    if url == "local":
        url = "local[1]"
    found = _LOCAL.fullmatch(url)
    return f"local[{found.group(1)},{LOCAL_RETRIES}]" if found else url


def session() -> SparkSession:
    """This process's Spark session, started at the first call (5-25 s: a JVM starts)."""
    global _session  # one session per process, as Spark allows
    if _session is not None:
        return _session
    conf = (
        SparkConf()
        .setMaster(master())
        .setAppName("foodcast")
        # A groupBy of few groups would be merged into one task: keep every core busy.
        .set("spark.sql.adaptive.coalescePartitions.enabled", "false")
        .set("spark.sql.execution.arrow.pyspark.enabled", "true")
        .set("spark.ui.showConsoleProgress", "false")
        .set("spark.python.worker.reuse", "true")
        # pyspark 4.x warns at every pandas UDF under pandas >= 3; the work is checked identical.
        .set("spark.executorEnv.PYTHONWARNINGS", PANDAS_WARNING)
    )
    warnings.filterwarnings("ignore", message=PANDAS_WARNING_TEXT, category=FutureWarning)
    if not os.environ.get("PYSPARK_PYTHON"):
        # The executors' Python: this one (on a cluster, PYSPARK_PYTHON names theirs).
        conf.set("spark.pyspark.python", sys.executable)
    try:
        started = launch_gateway(conf)
        context = SparkContext(conf=conf, gateway=started)
    except Exception as exc:  # noqa: BLE001 - no Java, a bad master URL...: one line
        stop()
        raise FoodcastError(
            f"the Spark session on {conf.get('spark.master')} did not start ({' '.join(str(exc).split())[:300]}); "
            "engine=spark needs a Java runtime (java on PATH or JAVA_HOME)"
        ) from None
    context.setLogLevel("ERROR")
    _session = SparkSession(context)
    logger.info("spark session %s on %s", context.applicationId, conf.get("spark.master"))
    if _started is not None:
        _started(run_tags(_session))
    return _session


def stop() -> None:
    """Stop this process's session and end its JVM (nothing if none was started)."""
    global _session
    current, _session = _session, None
    gateway = SparkContext._gateway
    if current is not None:
        with contextlib.suppress(Exception):  # a JVM already gone (a signal to the group) is what we want
            current.stop()
    if gateway is None:
        return
    process: subprocess.Popen[bytes] | None = getattr(gateway, "proc", None)
    with contextlib.suppress(Exception):
        gateway.shutdown()
    SparkContext._gateway = None
    SparkContext._jvm = None
    if process is not None:
        with contextlib.suppress(Exception):
            if process.stdin is not None:
                process.stdin.close()  # the gateway JVM exits when its input closes
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_tags(current: SparkSession) -> dict[str, str]:
    """The tags a stage run on Spark carries: the application id, the master, the UI's URL if any."""
    context = current.sparkContext
    tags = {APP_ID_TAG: str(context.applicationId), MASTER_TAG: str(context.master)}
    if context.uiWebUrl:
        tags[UI_TAG] = context.uiWebUrl
    return tags


def _label(item: Any, position: int) -> str:
    """What names an item in an error: its restaurant (the first field of a ``(name, rows)``
    item), else its position."""
    if isinstance(item, tuple) and item and isinstance(item[0], str):
        return f"restaurant {item[0]}"
    return f"task {position + 1}"


def _fault(marker: str | None) -> None:
    """:data:`FAULT_ENV`'s fault: kill this Python worker once (see there)."""
    if not marker:
        return
    try:
        with open(marker, "x", encoding="utf-8") as f:
            f.write(str(os.getpid()))
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGKILL)


def _task(function: Callable[[Any], Any], marker: str | None) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """What each group runs on a Python worker: ``function`` of each pickled item, its result
    pickled; an error is returned as one line (Spark would retry a task that raises, and a
    restaurant's error is the same on every attempt)."""

    def run(rows: pd.DataFrame) -> pd.DataFrame:
        _fault(marker)
        errors: list[str | None] = []
        results: list[bytes | None] = []
        for payload in rows["payload"]:
            try:
                results.append(pickle.dumps(function(pickle.loads(payload)), protocol=pickle.HIGHEST_PROTOCOL))
                errors.append(None)
            except FoodcastError as exc:
                errors.append(" ".join(str(exc).split()))
                results.append(None)
            except Exception as exc:  # noqa: BLE001 - a bug in one item: named by the driver in one line
                errors.append(f"{type(exc).__name__}: {' '.join(str(exc).split())}")
                results.append(None)
        return pd.DataFrame({"item": rows["item"].to_numpy(), "error": errors, "result": results})

    return run


def spark_map(function: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """``[function(item) for item in items]`` on Spark, in the items' order (the core's mapper).

    Each item is pickled into a row keyed by its position; ``groupBy(item).applyInPandas`` runs
    ``function`` on each on the executors' Python workers; the pickled results are collected
    and put back in order. ``function`` travels with the task (cloudpickle): a module-level
    function of the package, or a ``functools.partial`` of one, as for the process pool.

    Raises
    ------
    FoodcastError
        If ``function`` fails on an item: one line naming its restaurant (or its position) and
        the error, the first in the items' order.
    """
    current = session()
    rows = pd.DataFrame(
        {
            "item": range(len(items)),
            "payload": [cloudpickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL) for item in items],
        }
    )
    parallelism = current.sparkContext.defaultParallelism
    # One shuffle partition per item up to a few per core: each a task, none empty.
    current.conf.set("spark.sql.shuffle.partitions", str(max(1, min(len(items), 4 * parallelism))))
    frame = current.createDataFrame(rows, schema="item long, payload binary")
    task = _task(function, os.environ.get(FAULT_ENV))
    collected = frame.groupBy("item").applyInPandas(task, schema=_RESULT_SCHEMA).collect()
    by_item = {int(row["item"]): row for row in collected}
    if sorted(by_item) != list(range(len(items))):
        raise FoodcastError(f"Spark returned {len(by_item)} results for {len(items)} items")
    for position, item in enumerate(items):
        error = by_item[position]["error"]
        if error is not None:
            raise FoodcastError(f"{_label(item, position)}: {error}")
    return [pickle.loads(by_item[position]["result"]) for position in range(len(items))]


@contextmanager
def spark_engine(started: Callable[[dict[str, str]], object] | None = None) -> Iterator[None]:
    """Within: the core's per-restaurant work runs on Spark. The session starts with the first
    work that needs it (a stage with nothing to fan out, a chain's, starts none), and then
    ``started(run_tags(session))`` is called; it is stopped, its JVM ended, as the block ends
    (a session started before the block is used, and left running)."""
    global _started
    owned = _session is None  # a session this process had before (a test's) is left running
    before = pool.use_mapper(spark_map)
    _started = started
    try:
        if not owned and started is not None:
            started(run_tags(_session))  # type: ignore[arg-type]
        yield
    finally:
        _started = None
        pool.use_mapper(before)
        if owned:
            stop()
