"""Timing probe for the foodcast benchmarks (bench/), loaded by Python's ``site`` module.

It does nothing unless the environment variable ``FOODCAST_BENCH_PROBE_DIR`` names a
directory. The benchmarks put this directory on ``PYTHONPATH`` for ONE instrumented run,
separate from the timed repeats, so every Python process of that run (the ``mlflow run`` CLI,
``main.py``, each stage) records, with wall-clock timestamps (``time.time()``):

* when the process started (from /proc) and when ``site`` ran (interpreter ready);
* spans of selected public calls: ``mlflow.start_run`` / ``end_run`` / ``log_*`` /
  ``mlflow.projects.run`` / ``mlflow.artifacts.download_artifacts`` / model logging and
  loading / ``MlflowClient`` methods, plus a few foodcast functions of ``main``;
* the end of the first import of a few heavy packages (mlflow, pandas, sklearn, ...);
* every SQL statement sent to the tracking store, through SQLAlchemy's public event API
  (count and time, per thread);
* the ``foodcast.step`` log records ``<stage>: run <id> started/finished`` (full precision);

and writes ``<pid>.json`` into the directory at exit. Only public APIs are wrapped; the
wrappers call through unchanged.
"""

import os

_OUT = os.environ.get("FOODCAST_BENCH_PROBE_DIR")

if _OUT:
    import atexit
    import functools
    import json
    import sys
    import threading
    import time
    import typing

    _SITE = time.time()
    _spans = []  # [name, start, end, thread, depth]
    _imports = {}  # module -> [start, end]
    _logs = []  # [time, message]
    _sql = {}  # thread -> [statements, seconds]
    _connects = [0]
    _local = threading.local()
    _lock = threading.Lock()

    def _proc_start():
        """Process start time as a wall-clock timestamp (10 ms resolution, from /proc)."""
        try:
            with open("/proc/self/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks = int(fields[19])  # field 22 of stat(5): starttime, in clock ticks since boot
            with open("/proc/uptime") as f:
                uptime = float(f.read().split()[0])
            return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
        except Exception:  # noqa: BLE001 - a probe never breaks the process it measures
            return None

    _START = _proc_start()

    def _timed(name, fn):
        if getattr(fn, "_bench_probe", False):
            return fn

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            depth = getattr(_local, "depth", 0)
            _local.depth = depth + 1
            t0 = time.time()
            try:
                return fn(*args, **kwargs)
            finally:
                t1 = time.time()
                _local.depth = depth
                with _lock:
                    _spans.append([name, t0, t1, threading.current_thread().name, depth])

        wrapper._bench_probe = True
        return wrapper

    # module -> (attributes to wrap, class whose methods to wrap, methods)
    _FUNCTIONS = {
        "mlflow.tracking.fluent": [
            "start_run",
            "end_run",
            "log_artifact",
            "log_artifacts",
            "log_input",
            "log_params",
            "log_param",
            "set_tags",
            "set_tag",
            "log_metrics",
            "log_metric",
            "log_dict",
        ],
        "mlflow": [
            "start_run",
            "end_run",
            "log_artifact",
            "log_artifacts",
            "log_input",
            "log_params",
            "log_param",
            "set_tags",
            "set_tag",
            "log_metrics",
            "log_metric",
            "log_dict",
            "run",
        ],
        "mlflow.projects": ["run"],
        "mlflow.artifacts": ["download_artifacts"],
        "mlflow.sklearn": ["log_model", "load_model"],
        "mlflow.pyfunc": ["log_model", "load_model"],
        "mlflow.models": ["infer_signature"],
        "foodcast.pipeline.cache": ["find_reusable"],
        "foodcast.pipeline.stage_code": ["code_fingerprint"],
        "foodcast.data.coverage": ["batches_fingerprint"],
        "foodcast.pipeline.runner": ["record_lineage"],
        "foodcast.tracking.runs": ["check_run"],
        "foodcast.tracking.artifacts": ["read_frame", "mlflow_log_pandas", "mlflow_log_plotly"],
        "foodcast.tracking.datasets": ["log_input_frame"],
        "foodcast.tracking.models": ["log_models", "load_predictor"],
        "foodcast.tracking.metrics": ["log_validation_metrics"],
        "foodcast.settings": ["configure_logging"],
    }
    # module -> {class: [methods]}
    _METHODS = {
        "mlflow.tracking.client": {
            "MlflowClient": [
                "search_runs",
                "get_run",
                "create_run",
                "set_terminated",
                "set_tag",
                "log_batch",
                "list_artifacts",
                "get_logged_model",
                "list_logged_model_artifacts",
                "get_experiment",
                "get_experiment_by_name",
                "log_inputs",
                "update_run",
            ]
        },
        "foodcast.pipeline.runner": {"Pipeline": ["__init__", "run"]},
    }
    _WATCH_IMPORTS = {
        "mlflow",
        "mlflow.cli",
        "mlflow.projects",
        "pandas",
        "sklearn",
        "sklearn.ensemble",
        "plotly",
        "plotly.graph_objects",
        "skops.io",
        "sqlalchemy",
        "alembic",
        "git",
        "mlflow.sklearn",
        "mlflow.pyfunc",
        "foodcast.pipeline.stage_run",
        "foodcast.pipeline.runner",
        "click",
        "numpy",
        "scipy",
    }

    def _after_exec(name, module):
        for attr in _FUNCTIONS.get(name, ()):
            fn = module.__dict__.get(attr)
            if callable(fn):
                setattr(module, attr, _timed(f"{name}.{attr}" if name != "mlflow" else f"mlflow.{attr}", fn))
        for cls_name, methods in _METHODS.get(name, {}).items():
            cls = module.__dict__.get(cls_name)
            for meth in methods:
                fn = cls.__dict__.get(meth) if cls is not None else None
                if callable(fn):
                    setattr(cls, meth, _timed(f"{cls_name}.{meth}", fn))
        if name == "sqlalchemy":
            _hook_sqlalchemy(module)
        if name == "logging":
            _hook_logging(module)

    def _hook_sqlalchemy(sa):
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
        from sqlalchemy.pool import Pool

        def before(conn, cursor, statement, parameters, context, executemany):
            conn.info.setdefault("bench_probe_t0", []).append(time.time())

        def after(conn, cursor, statement, parameters, context, executemany):
            stack = conn.info.get("bench_probe_t0")
            t0 = stack.pop() if stack else time.time()
            thread = threading.current_thread().name
            with _lock:
                entry = _sql.setdefault(thread, [0, 0.0])
                entry[0] += 1
                entry[1] += time.time() - t0

        def connect(dbapi_connection, connection_record):
            _connects[0] += 1

        event.listen(Engine, "before_cursor_execute", before)
        event.listen(Engine, "after_cursor_execute", after)
        event.listen(Pool, "connect", connect)

    def _hook_logging(logging_module):
        previous = logging_module.getLogRecordFactory()

        def factory(*args, **kwargs):
            record = previous(*args, **kwargs)
            if record.name == "foodcast.step":
                try:
                    message = record.getMessage()
                except Exception:  # noqa: BLE001 - a probe never breaks the process it measures
                    message = str(record.msg)
                if message.endswith((" started", " finished")):
                    with _lock:
                        _logs.append([record.created, message])
            return record

        logging_module.setLogRecordFactory(factory)

    class _Finder:
        """Meta-path finder that times the first import of a few modules and wraps functions
        of others once they are executed; it never changes what gets imported."""

        _busy: typing.ClassVar[set] = set()

        def find_spec(self, name, path=None, target=None):
            if name in self._busy or not (name in _FUNCTIONS or name in _WATCH_IMPORTS or name in _METHODS):
                return None
            self._busy.add(name)
            try:
                spec = None
                for finder in sys.meta_path:
                    if finder is self or not hasattr(finder, "find_spec"):
                        continue
                    spec = finder.find_spec(name, path, target)
                    if spec is not None:
                        break
            finally:
                self._busy.discard(name)
            if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
                return spec
            inner = spec.loader

            class _Loader:
                def create_module(self, spec):
                    return inner.create_module(spec)

                def exec_module(self, module):
                    module.__loader__ = inner
                    module.__spec__.loader = inner
                    t0 = time.time()
                    inner.exec_module(module)
                    if name in _WATCH_IMPORTS:
                        _imports[name] = [t0, time.time()]
                    _after_exec(name, module)

            spec.loader = _Loader()
            return spec

    sys.meta_path.insert(0, _Finder())
    if "logging" in sys.modules:
        _hook_logging(sys.modules["logging"])
    else:
        _FUNCTIONS.setdefault("logging", [])
        _WATCH_IMPORTS.add("logging")

    _forked_from = [None]

    def _after_fork():
        """A fork of main's fork server becomes a stage: it starts recording afresh, now."""
        global _START, _SITE
        _forked_from[0] = os.getppid()
        _START = _SITE = time.time()
        del _spans[:]
        _imports.clear()
        del _logs[:]
        _sql.clear()
        _connects[0] = 0

    os.register_at_fork(after_in_child=_after_fork)

    def _dump():
        try:
            with open("/proc/self/cmdline", "rb") as f:
                cmdline = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            cmdline = list(sys.argv)
        if _forked_from[0] is not None and sys.argv:
            # /proc shows the server's command line: say which module the fork ran instead
            # (the server sets argv[0] to the module's name; runpy restores it after the run)
            module = sys.argv[0]
            if module.endswith(".py"):
                module = ".".join([os.path.basename(os.path.dirname(module)), os.path.basename(module)[:-3]])
            cmdline = [sys.executable, "-m", module, *sys.argv[1:]]
        # A stage command that handed its work to the fork server imported neither MLflow...
        handover = "foodcast.runtime.fork_server" in sys.modules and "mlflow" not in sys.modules
        record = {
            "pid": os.getpid(),
            "ppid": os.getppid(),
            "cmdline": cmdline,
            "forked_from": _forked_from[0],
            "handover": handover,
            "proc_start": _START,
            "site": _SITE,
            "exit": time.time(),
            "spans": _spans,
            "imports": _imports,
            "logs": _logs,
            "sql": _sql,
            "connects": _connects[0],
            "modules": len(sys.modules),
            "module_names": sorted(sys.modules),
        }
        path = os.path.join(_OUT, f"{os.getpid()}.json")
        with open(path, "w") as f:
            json.dump(record, f)

    atexit.register(_dump)
