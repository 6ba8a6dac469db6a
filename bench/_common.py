"""Shared helpers of the foodcast benchmarks (bench/*.py). Not a test module.

Every benchmark runs the project against its own temporary sqlite tracking store, with the
working directory in that temporary directory and the virtual environment's ``bin`` first on
``PATH`` so that the stages' ``python`` is the one running the benchmark.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from foodcast.pipeline import stage_table as stages  # noqa: E402
from foodcast.pipeline.stage_code import project_imports  # noqa: E402

BENCH = REPO / "bench"
RESULTS = BENCH / "results"
PROBE_PATH = BENCH / "_probe"
PYTHON = sys.executable
VENV_BIN = str(Path(sys.executable).parent)
# The stage DAG, from the stage table: stages of a level can run at the same time (main starts them together).
STAGES = tuple(s.name for s in stages.PIPELINE)
# Runs a cold default pipeline launches: one per stage (the data holds week 201, so this run's
# scorecard runs; the empty store has no earlier forecast of week 200 to score).
DEFAULT_RUNS = len(STAGES)
LEVELS = stages.levels()
# What each stage's process imports: the project modules its command's run imports (its import
# closure, as the cache key and main's fork server see it), their libraries coming with them.
STAGE_IMPORTS = {
    s.name: ["mlflow", *(m for m in project_imports(REPO).stage_modules(s.name) if not m.startswith("steps"))]
    for s in stages.PIPELINE
}
MAIN_IMPORTS = ["click", "mlflow", "foodcast.pipeline.runner", "foodcast.pipeline.main_options"]


# ----------------------------------------------------------------------------- environment


def bench_env(store_dir, probe_dir=None, extra: dict | None = None) -> dict:
    """Environment for a process of the benchmark: venv first on PATH, the temporary sqlite
    store as tracking URI, the default dataset; optionally the timing probe."""
    env = os.environ.copy()
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(store_dir).resolve()}/mlflow.db"
    for name in (
        "MLFLOW_RUN_ID",
        "MLFLOW_EXPERIMENT_ID",
        "MLFLOW_EXPERIMENT_NAME",
        "FOODCAST_DATA_DIR",
        "FOODCAST_MAX_PARALLEL",
        "FOODCAST_BENCH_PROBE_DIR",
        "FOODCAST_PREFORK",
        "FOODCAST_PREFORK_SOCKET",
    ):
        env.pop(name, None)
    # MLflow's experiment 0, where the figures were measured and the fillers write (`mlflow run`
    # of the project would otherwise use experiment foodcast).
    env["MLFLOW_EXPERIMENT_NAME"] = "Default"
    if probe_dir is not None:
        env["PYTHONPATH"] = str(PROBE_PATH) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env["FOODCAST_BENCH_PROBE_DIR"] = str(probe_dir)
        env["FOODCAST_LOG_LEVEL"] = "INFO"  # the stages' "run … started / finished" lines the probe times
    env.update(extra or {})
    return env


class Store:
    """A temporary directory holding a sqlite tracking store; the cwd of the processes run in it."""

    def __init__(self, prefix="foodcast-bench-", keep=False):
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.keep = keep

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.dir}/mlflow.db"

    def env(self, probe_dir=None, extra=None) -> dict:
        return bench_env(self.dir, probe_dir, extra)

    def init(self) -> float:
        """Create the database (tables, default experiment with its artifacts under this
        directory); returns the seconds it took. Done before timing, so that "cold" means
        "no stage cached", not "no database"."""
        started = time.perf_counter()
        run([PYTHON, "-c", "import mlflow; mlflow.MlflowClient().search_experiments()"], env=self.env(), cwd=self.dir)
        return time.perf_counter() - started

    def cleanup(self):
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()


@dataclass
class Result:
    seconds: float
    returncode: int
    stdout: str
    stderr: str


def run(cmd, env, cwd, check=True, timeout=3600) -> Result:
    """Run ``cmd``, capturing its output; its wall time measured with perf_counter."""
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - started
    if check and proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(map(str, cmd))} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-5000:]}"
        )
    return Result(seconds, proc.returncode, proc.stdout, proc.stderr)


def time_binary() -> str:
    """Path of GNU time (``apt-get install -y time`` if missing)."""
    path = shutil.which("time", path="/usr/bin:/bin") or "/usr/bin/time"
    if not os.path.exists(path):
        sys.exit("GNU time is missing: apt-get update && apt-get install -y time")
    return path


def run_time_v(cmd, env, cwd, check=True) -> tuple[Result, int]:
    """Run ``cmd`` under ``/usr/bin/time -v``; returns the result and the maximum resident set
    size in KiB (of the process and of its descendants, whichever is largest)."""
    result, peak_kib, _ = run_time_v_cpu(cmd, env, cwd, check)
    return result, peak_kib


def run_time_v_cpu(cmd, env, cwd, check=True) -> tuple[Result, int, float]:
    """:func:`run_time_v`, and the CPU seconds (user + system) of the process and of the
    descendants it and they waited for."""
    with tempfile.NamedTemporaryFile("r", suffix=".time", delete=False) as f:
        report = f.name
    try:
        result = run([time_binary(), "-v", "-o", report, *cmd], env=env, cwd=cwd, check=check)
        text = Path(report).read_text()
    finally:
        os.unlink(report)
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    cpu = sum(float(m) for m in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", text))
    return result, int(match.group(1)) if match else -1, cpu


# The weeks the figures were measured on (main's default before it followed the data: weeks
# 180-200, forecast 201, which the shipped data also scores).
MAIN_WEEKS = {"start_week": 180}


def mlflow_run_cmd(entry_point="main", params: dict | None = None) -> list[str]:
    """``python -m mlflow run <repo> --env-manager local [-e entry] [-P k=v ...]`` (main: on
    ``MAIN_WEEKS`` unless told)."""
    cmd = [PYTHON, "-m", "mlflow", "run", str(REPO), "--env-manager", "local"]
    if entry_point != "main":
        cmd += ["-e", entry_point]
    else:
        params = {**MAIN_WEEKS, **(params or {})}
    for key, value in (params or {}).items():
        cmd += ["-P", f"{key}={value}"]
    return cmd


MAIN_LINE = re.compile(r"main: (\d+) launched, (\d+) reused in ([0-9.]+)s")


def main_summary(stdout: str):
    """(launched, reused, seconds) from main's last line, or None."""
    match = MAIN_LINE.search(stdout)
    return (int(match.group(1)), int(match.group(2)), float(match.group(3))) if match else None


def cold_run(store, extra: dict | None = None):
    """``mlflow run`` of the whole project in ``store`` (default parameters), checked to have
    launched every stage (``DEFAULT_RUNS``); returns the completed run (``.seconds``, ``.stdout``) and main's
    own ``in X s`` figure."""
    res = run(mlflow_run_cmd(), store.env(extra=extra), store.dir)
    summary = main_summary(res.stdout)
    if not summary or summary[0] != DEFAULT_RUNS:
        raise RuntimeError(f"the cold run did not launch {DEFAULT_RUNS} stages: {summary}\n{res.stdout}")
    return res, summary[2]


def import_cmd(modules, teardown: bool = False, then: str = "") -> list[str]:
    """``python -c "import <modules>[; then]"``, ending with ``os._exit(0)`` unless ``teardown``:
    a floor counts starting and importing, not the interpreter's final clean-up, which a process
    can skip (the stages and main freeze the garbage collector before exiting for that reason)."""
    code = "import " + ", ".join(modules) + (f"; {then}" if then else "")
    if not teardown:
        code += "; import os; os._exit(0)"
    return [PYTHON, "-c", code]


# ----------------------------------------------------------------------------- statistics/output


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def spread(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return f"{min(values):.2f}-{max(values):.2f}"


def table(headers, rows, title=None) -> str:
    """A plain-text table; floats printed with 2 decimals unless already strings."""

    def cell(v):
        if isinstance(v, float):
            return "nan" if v != v else f"{v:.2f}"
        return str(v)

    body = [[cell(v) for v in row] for row in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in body)) if body else len(str(h)) for i, h in enumerate(headers)]
    lines = []
    if title:
        lines.append(title)
    lines.append("  ".join(str(h).ljust(w) for h, w in zip(headers, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    for r in body:
        lines.append("  ".join(c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[0-9.,]+(e[-+]?\d+)?[x%s]?|nan|-", text))


def code_state() -> dict:
    """Which code was measured: git HEAD, uncommitted paths, the fingerprint of main's stages' code."""

    def git(*args):
        proc = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
        return proc.stdout.strip()

    state = {
        "head": git("rev-parse", "HEAD"),
        "uncommitted": git("status", "--porcelain").splitlines(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }
    try:
        from foodcast.pipeline.stage_code import code_fingerprint

        state["source_fingerprint"] = {stage: code_fingerprint(REPO, stage) for stage in STAGES}
    except Exception as exc:  # noqa: BLE001 - informative only
        state["source_fingerprint"] = f"unavailable: {exc}"
    return state


def save(name: str, data: dict, text: str) -> None:
    """Write results/<name>.json and results/<name>.txt (bench/results is git-ignored)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = dict(data, code=code_state())
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=1, default=str))
    (RESULTS / f"{name}.txt").write_text(text + "\n")


def log(message: str) -> None:
    """Progress on stderr (tables go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def verdict(value: float, goal: float) -> str:
    return "MET" if value <= goal else "NOT MET"


# ----------------------------------------------------------------------------- probe reading


def read_probe(directory) -> list[dict]:
    """The per-process records the probe (bench/_probe/sitecustomize.py) wrote."""
    records = []
    for path in sorted(Path(directory).glob("*.json")):
        try:
            records.append(json.loads(path.read_text()))
        except json.JSONDecodeError:
            continue
    return records


def process_kind(record) -> str:
    """cli, main, <stage>, noop, handover or other, from a probe record's command line."""
    if record.get("handover"):
        return "handover"  # the stage command's own process; the stage ran in a fork
    cmd = record["cmdline"]
    joined = " ".join(cmd)
    if "-m mlflow run" in joined or joined.endswith("mlflow run") or " mlflow run " in joined:
        return "cli"
    if any(a.endswith("main.py") for a in cmd):
        return "main"
    match = re.search(r"-m steps\.(\w+)", joined)
    if match:
        return match.group(1)
    if joined.endswith("-c pass"):
        return "noop"
    return "other"


def spans(record, name=None, prefix=None, thread=None, top=False):
    out = []
    for s_name, t0, t1, s_thread, depth in record["spans"]:
        if name is not None and s_name != name:
            continue
        if prefix is not None and not s_name.startswith(prefix):
            continue
        if thread is not None and s_thread != thread:
            continue
        if top and depth != 0:
            continue
        out.append((s_name, t0, t1, s_thread, depth))
    return out


def span_total(record, names, thread=None) -> float:
    """Seconds spent in calls named ``names`` (outermost occurrences only, no double count)."""
    selected = [s for s in record["spans"] if s[0] in names and (thread is None or s[3] == thread)]
    selected.sort(key=lambda s: s[1])
    total, end = 0.0, -1.0
    for _, t0, t1, _, _ in selected:
        if t0 >= end:
            total += t1 - t0
            end = t1
        elif t1 > end:
            total += t1 - end
            end = t1
    return total


def sql_stats(record, thread=None) -> tuple[int, float]:
    if thread is None:
        return (sum(v[0] for v in record["sql"].values()), sum(v[1] for v in record["sql"].values()))
    v = record["sql"].get(thread, [0, 0.0])
    return v[0], v[1]


def first_import_end(record) -> float | None:
    """When the process had imported mlflow (the heavy part of every foodcast process)."""
    entry = record["imports"].get("mlflow")
    return entry[1] if entry else None
