"""Shared fixtures: a temporary MLflow tracking store, small batch directories, and a way
to run the project exactly as a user does (`mlflow run ... --env-manager local`)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
PROJECT = TESTS.parent
sys.path.insert(0, str(TESTS))  # tests/fixtures.py

from fixtures import make_batches  # noqa: E402
from foodcast.runtime.fork_server import SOCKET_ENV, SWITCH_ENV, ForkServer  # noqa: E402
from foodcast.runtime.fork_server import enabled as fork_server_enabled  # noqa: E402

# No PNG beside each plot (kaleido starts a Chromium for each, ~5 s): tests/test_mlflow_utils.py
# turns them on where it checks them; FOODCAST_PLOT_PNG=1 in the environment keeps them everywhere.
os.environ.setdefault("FOODCAST_PLOT_PNG", "0")

SMALL_WEEKS = range(1, 15)


def pipeline_nodes(next_week: int) -> list[str]:
    """What a first pipeline run prints a line for when week ``next_week``'s data exists: each
    stage, the scorecard as ``evaluate[<next_week>]`` (no earlier forecast to score)."""
    from foodcast.pipeline.stage_table import PIPELINE
    from foodcast.tracking import names

    return [f"{s.name}[{next_week}]" if s.name == names.EVALUATE else s.name for s in PIPELINE]


# Small but complete pipeline parameters for the fixture data (train on weeks 2-12).
SMALL = {
    "start_week": 2,
    "end_week": 12,
    "next_week": 13,
    "n_fold": 3,
    "n_estimators": 5,
    "n_models": 3,
    "level_weeks": 4,
    "profile_weeks": 8,
}
# (the default model and features, smaller: 3 members, 3 folds, a level of 4 weeks - the
# promote gate trains on the 8 weeks before its first week - and a profile of the 8 weeks before
# the forecast week - the default 21 reach before the data's first week; 5 boosting stages for
# a configuration that takes the boosting estimator)
SMALL_NODES = pipeline_nodes(13)


@pytest.fixture(autouse=True)
def no_active_experiment(monkeypatch):
    """Each test starts with no active experiment: ``mlflow.set_experiment`` (the tutorial does)
    keeps the experiment's id in the process and in ``MLFLOW_EXPERIMENT_ID``, which a later test
    of the same worker, with a store of its own, would otherwise look up there.

    And with the worker's own ``sys.path``: loading a logged model puts the model's copy of the
    core first on it, and the worker processes a later test starts (the backtest's) inherit it,
    then fail to import the package from a copy that holds only the core, or no longer exists."""
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    fluent = sys.modules.get("mlflow.tracking.fluent")
    if fluent is not None:
        fluent._active_experiment_id = None  # MLflow has no public way to unset it


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh sqlite tracking store in a temporary working directory."""
    import mlflow

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


@pytest.fixture
def small_data(tmp_path):
    """Two restaurants, weeks 1-14 of synthetic orders."""
    return make_batches(tmp_path / "data", SMALL_WEEKS)


def copy_project(dst: Path) -> Path:
    """A copy of the project's sources (what the cache fingerprints), to edit in a test."""
    dst.mkdir(parents=True)
    for name in ("MLproject", "conda.yaml", "main.py"):
        shutil.copy2(PROJECT / name, dst / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("steps", "foodcast"):
        shutil.copytree(PROJECT / name, dst / name, ignore=ignore)
    return dst


class EmptyStore:
    """This worker's empty sqlite tracking store, created once by MLflow (its schema migrations:
    ~2 s of CPU for each new store), copied for each test's new store (:meth:`copy_to`)."""

    def __init__(self) -> None:
        self.dir: Path | None = None

    def copy_to(self, database: Path, workdir: Path) -> None:
        """A new store at ``database`` as MLflow creates it for a command run in ``workdir``:
        experiment 0's artifacts under ``<workdir>/mlruns``."""
        import atexit
        import sqlite3
        import tempfile

        if self.dir is None:
            self.dir = Path(os.path.realpath(tempfile.mkdtemp(prefix="foodcast-empty-store-")))
            atexit.register(shutil.rmtree, self.dir, True)  # whoever made it (a worker, a script)
            opened = (
                "from mlflow.tracking import MlflowClient; MlflowClient('sqlite:///mlflow.db').search_experiments()"
            )
            subprocess.run([sys.executable, "-c", opened], cwd=self.dir, check=True, capture_output=True)
        shutil.copyfile(self.dir / "mlflow.db", database)
        with sqlite3.connect(database) as db:
            [(location,)] = db.execute("SELECT artifact_location FROM experiments WHERE experiment_id = 0").fetchall()
            moved = location.replace(str(self.dir), os.path.realpath(workdir), 1)
            db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0", (moved,))
        db.close()


EMPTY_STORE = EmptyStore()


class Runner:
    """Runs commands the way a user does, against one tracking store and data directory.

    A ``sqlite:///`` store that does not exist yet is copied from an empty one
    (:class:`EmptyStore`), unless ``new_store``: left for MLflow to create (the tests of that)."""

    def __init__(
        self, workdir: Path, tracking_uri: str, data_dir: Path | None, project: Path = PROJECT, new_store: bool = False
    ):
        self.workdir = Path(workdir)
        database = Path(self.workdir, tracking_uri.removeprefix("sqlite:///"))
        sqlite = tracking_uri.startswith("sqlite:///") and database.suffix == ".db"
        if sqlite and not new_store and database.parent.is_dir() and not database.exists():
            EMPTY_STORE.copy_to(database, self.workdir)
        self.project = Path(project)
        self.env = dict(os.environ)
        self.env["MLFLOW_TRACKING_URI"] = tracking_uri
        # The stages are launched as `python ...`: make that the interpreter running the tests.
        self.env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + self.env.get("PATH", "")
        if data_dir is not None:
            self.env["FOODCAST_DATA_DIR"] = str(data_dir)
        self.env.pop("MLFLOW_RUN_ID", None)
        self.env.pop("MLFLOW_EXPERIMENT_ID", None)
        # MLflow's experiment 0, which the tests search; a user's `mlflow run` of the project
        # without an experiment named goes to "foodcast" (tested in test_pipeline.py).
        self.env["MLFLOW_EXPERIMENT_NAME"] = "Default"

    def run(self, *args, check=True, timeout=900, cwd=None, env=None) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            list(args),
            cwd=cwd or self.workdir,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{args} exited {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-6000:]}"
            )
        return proc

    def mlflow_run(self, entry_point="main", check=True, env_manager="local", **params):
        """``mlflow run <project> --env-manager <env_manager> [-e entry_point] -P name=value...``,
        started warm (:class:`WarmServers`)."""
        args = ["run", str(self.project), "--env-manager", env_manager]
        if entry_point != "main":
            args += ["-e", entry_point]
        for name, value in params.items():
            args += ["-P", f"{name}={value}"]
        command, cwd, env = WARM.command(self.workdir, self.env, args, self.project)
        return self.run(*command, check=check, cwd=cwd, env=env)


class WarmServers:
    """This worker's fork servers (the product's, ``foodcast.runtime.fork_server``), each
    started at its first use and ended with the worker (their stdin closes with it):

    * one with MLflow's command line imported, that the tests' ``mlflow run`` commands hand
      their work to (``python -m launcher.mlflow_cli``, tests/launcher): ~3.8 s of CPU less each;
    * per project directory, one with the stages' libraries imported (what main's own server
      imports: ``server_preloads``) and main's, that the pipelines' ``python main.py`` and the
      stage commands hand their work to: those of ``mlflow run -e <stage>``, and those of
      main, which then starts no server of its own (~5 s of CPU less for each pipeline that
      launches a stage, ~3 s for each main). Restarted when a source file of the project
      changed (a test that edits the project's code).

    A command a server refuses (one started in a session of its own) runs by itself, as
    ``python -m mlflow`` would."""

    def __init__(self) -> None:
        self.cli: str | None = None
        self.stages: dict[Path, tuple[float, ForkServer, str]] = {}

    def command(self, workdir: Path, env: dict[str, str], args: list[str], project: Path):
        """``(command, cwd, env)`` of ``python -m mlflow <args>`` run in ``workdir`` with ``env``
        (the stages of ``project`` it launches start in that project's server)."""
        warm = {"FOODCAST_TEST_CWD": str(workdir)}
        if fork_server_enabled() and env.get(SWITCH_ENV, "1").strip() != "0":
            if self.cli is None:
                self.cli = self._start(ForkServer(WARM_MODULES, [], TESTS))
            warm[SOCKET_ENV] = self.cli
            warm["FOODCAST_TEST_STAGE_SOCKET"] = self._stage_server(project)
        return [sys.executable, "-m", "launcher.mlflow_cli", *args], TESTS, env | warm

    def _stage_server(self, project: Path) -> str:
        sources = [project / "main.py", *(project / "foodcast").rglob("*.py"), *(project / "steps").rglob("*.py")]
        stamp = max(p.stat().st_mtime for p in sources)
        known = self.stages.get(project)
        if known is not None and known[0] == stamp:
            return known[2]
        if known is not None:
            known[1].stop()
        from foodcast.pipeline.runner import server_preloads  # (MLflow: not in pytest's own process)

        ready, idle = server_preloads(project)
        server = ForkServer([*MAIN_MODULES, *ready], idle, project)
        name = self._start(server)
        self.stages[project] = (stamp, server, name)
        return name

    @staticmethod
    def _start(server: ForkServer) -> str:
        server.start()
        return os.environ.pop(SOCKET_ENV)  # (start() names it for this process's commands)


WARM = WarmServers()


# What main.py and its runner import beyond the stages' libraries, for the mains of the
# project's pipelines, which run in forks of its server too.
MAIN_MODULES = ["click", "yaml", "foodcast.pipeline.runner", "mlflow.projects", "mlflow.projects.backend.local"]

# What `mlflow run` imports before it starts the entry point's command.
WARM_MODULES = [
    "mlflow.cli",
    "mlflow.projects",
    "mlflow.projects.backend.local",
    "mlflow.store.tracking.sqlalchemy_store",
]


# Records, at the exit of every Python process it is loaded in (as ``sitecustomize``), the
# project modules the process imported: what tests/test_stage_code.py holds a stage's cache key to.
IMPORT_RECORDER = """
import atexit, json, os, sys

def _record():
    modules = sorted(m for m in sys.modules if m.split(".")[0] in ("foodcast", "steps"))
    path = os.path.join(os.environ["FOODCAST_TEST_IMPORTS"], f"{os.getpid()}.json")
    with open(path, "w") as f:
        json.dump({"argv": sys.argv, "modules": modules}, f)

atexit.register(_record)
"""


class SmallStore:
    """The small pipeline's store that the tests only reading it, or restoring what they
    change, share: a copy of the project (for the tests that edit its code and put it back),
    the small data, and the first run of the pipeline (``cold``: every stage launched)."""

    def __init__(self, root: Path):
        self.root = root
        self.project = copy_project(root / "project")
        self.data = make_batches(root / "data", SMALL_WEEKS)
        self.uri = f"sqlite:///{root}/mlflow.db"
        self.runner = Runner(root, self.uri, self.data, project=self.project)
        self.cold = self.runner.mlflow_run(**SMALL)
        self._imports: Path | None = None

    @property
    def imports(self) -> Path:
        """The project modules each process of the small pipeline imported, one JSON file per
        process (``{"argv": ..., "modules": [...]}``): the pipeline run once more on a store of
        its own, every stage started cold, each in its own interpreter (no fork server: a fork
        holds what its server imported)."""
        if self._imports is None:
            root = self.root / "recorded"
            (root / "recorder").mkdir(parents=True)
            (root / "recorder" / "sitecustomize.py").write_text(IMPORT_RECORDER)
            imports = root / "imports"
            imports.mkdir()
            runner = Runner(root, f"sqlite:///{root}/mlflow.db", self.data, project=self.project)
            runner.env.update(
                FOODCAST_PREFORK="0", FOODCAST_TEST_IMPORTS=str(imports), PYTHONPATH=str(root / "recorder")
            )
            runner.mlflow_run(**SMALL)
            self._imports = imports
        return self._imports

    @property
    def lines(self) -> dict[str, tuple[str, str]]:
        """main's lines of the cold run: ``{node: ("launched", run id)}``."""
        return stage_lines(self.cold.stdout)

    def forget(self, stdout: str) -> None:
        """Delete the runs a pipeline launched (``stdout``: what main printed), so that the
        cache finds the cold run's again: for a test that launched stages with the cold run's
        own keys (``use_cache=false``, artifacts damaged and put back)."""
        from mlflow.tracking import MlflowClient

        client = MlflowClient(self.uri)
        for status, run_id in stage_lines(stdout).values():
            if status == "launched":
                client.delete_run(run_id)


@pytest.fixture(scope="session")
def small(tmp_path_factory) -> SmallStore:
    return SmallStore(tmp_path_factory.mktemp("small"))


STAGE_LINE = re.compile(r"^(\S+): (reused|launched) run ([0-9a-f]+) \(([0-9.]+)s( saved)?\)$")


def stage_lines(stdout: str) -> dict[str, tuple[str, str]]:
    """``{stage: (reused|launched, run id)}`` from main's per-stage lines
    (``train: launched run <id> (3.2s)``, ``train: reused run <id> (3.2s saved)``)."""
    out = {}
    for line in stdout.splitlines():
        found = STAGE_LINE.match(line)
        if found:
            out[found.group(1)] = (found.group(2), found.group(3))
    return out


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def _stop(signum, frame):
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


def pytest_configure(config):
    """SIGTERM ends a test run as Ctrl-C does: the fixtures' finalizers run (the team servers
    and their PostgreSQL are stopped, their directories removed), where Python's default would
    end the process at once and leave them behind. In each xdist worker too."""
    signal.signal(signal.SIGTERM, _stop)


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: a worker more than the CPUs this process may use. Most tests wait on the
    pipelines they start (subprocesses, servers, polls of the store): with a worker per CPU the
    CPUs were busy 83 % of the suite's time on 2 cores."""
    return len(os.sched_getaffinity(0)) + 1


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which reads the groups
def pytest_collection_modifyitems(config, items):
    """With pytest-xdist (``-n``, ``--dist loadgroup``): the tests of a file run in one worker,
    so that its module's fixtures are built once; a file's tests of the session's small store
    (``small``) are a group apart, in file order (each worker builds that store once, for the
    first such group it gets: the groups of two files can then run side by side, where one group
    of them all was the suite's longest by far); the longest groups are handed out first, so
    that no worker is left with one at the end."""
    for item in items:
        module = item.module.__name__
        group = f"small-{module}" if "small" in getattr(item, "fixturenames", ()) else module
        item.add_marker(pytest.mark.xdist_group(group))
        item.stash[_GROUP] = group
    items.sort(
        key=lambda item: LONGEST_FIRST.index(g) if (g := item.stash[_GROUP]) in LONGEST_FIRST else len(LONGEST_FIRST)
    )


_GROUP = pytest.StashKey[str]()
# The groups that take longest (each several minutes of pipelines), in that order.
LONGEST_FIRST = [
    "small-test_pipeline",
    "small-test_stage_code",
    "test_team_server",
    "test_pipeline",
    "test_interruptions",
    "test_ui",
    "test_registry",
    "test_concurrency",
    "test_tutorial",
    "test_uv_route",
    "test_restaurant_pipeline",
    "test_spark_engine",
]
