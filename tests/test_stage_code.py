"""A stage's cache key follows the code its run executes, and only that code.

``foodcast.pipeline.stage_code`` finds that code by reading import statements. These tests
check the reading on a small package, then hold it against real runs: every project module a
stage's process imported is in its set (so an edit of it relaunches the stage), an edit of a
module no stage imports relaunches nothing, and an edit of a module some stages import
relaunches exactly those and what depends on them.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

from conftest import SMALL, SMALL_NODES, stage_lines
from foodcast.pipeline.stage_code import ProjectImports, mlflow_plugin_modules, stage_files
from foodcast.pipeline.stage_table import PIPELINE, STAGES
from foodcast.settings import PROJECT_ROOT


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def test_the_set_follows_every_kind_of_import_statement(tmp_path):
    root = write_tree(
        tmp_path,
        {
            "steps/__init__.py": "from foodcast.runtime import hand\n",
            "steps/cook.py": """
            from foodcast.pipeline import recipes
            from foodcast.pipeline.recipes import STEW

            def cook():
                import foodcast.core.pot  # inside a function, on a branch never taken alike

                return STEW
        """,
            "foodcast/__init__.py": "",
            "foodcast/runtime/__init__.py": "",
            "foodcast/runtime/hand.py": "",
            "foodcast/pipeline/__init__.py": "",
            "foodcast/pipeline/recipes.py": "from . import salt\nfrom .salt import GRAIN\nimport numpy\nSTEW = 1\n",
            "foodcast/pipeline/salt.py": "GRAIN = 1\n",
            "foodcast/core/__init__.py": "",
            "foodcast/core/pot.py": "",
            "foodcast/core/unused.py": "",
            "foodcast/settings/__init__.py": "",
            "foodcast/settings/logging.yaml": "version: 1\n",
            "foodcast/teamserver/__init__.py": "import foodcast.settings\n",
        },
    )
    (root / "MLproject").write_text("name: toy\n")
    imports = ProjectImports(root)
    assert imports.stage_modules("cook") == [
        "foodcast",
        "foodcast.core",
        "foodcast.core.pot",
        "foodcast.pipeline",
        "foodcast.pipeline.recipes",
        "foodcast.pipeline.salt",
        "foodcast.runtime",
        "foodcast.runtime.hand",
        "steps",
        "steps.cook",
    ]
    files = [p.relative_to(root).as_posix() for p in stage_files(root, "cook")]
    assert "MLproject" in files and "foodcast/core/unused.py" not in files
    assert "foodcast/settings/logging.yaml" not in files  # settings is not imported by this stage
    assert imports.files(["foodcast.settings"]) == [
        root / "foodcast/settings/__init__.py",
        root / "foodcast/settings/logging.yaml",
    ]


def test_the_set_holds_the_plugins_mlflow_imports_by_name():
    # The sqlite store and the default experiment: entry points MLflow loads in every process
    # that opens a store (pip install -e . registers them).
    plugins = mlflow_plugin_modules()
    assert {"foodcast.tracking.sqlite_store", "foodcast.tracking.experiment"} <= set(plugins)
    assert set(plugins) <= set(ProjectImports(PROJECT_ROOT).stage_modules("load"))


def test_no_stage_runs_the_team_server_the_importer_the_generator_or_another_stage_s_command():
    imports = ProjectImports(PROJECT_ROOT)
    for stage in STAGES:
        modules = set(imports.stage_modules(stage))
        assert f"steps.{stage}" in modules and f"foodcast.pipeline.stages.{stage}" in modules
        others = {f"steps.{s}" for s in STAGES if s != stage} | {
            f"foodcast.pipeline.stages.{s}" for s in STAGES if s != stage
        }
        unrelated = {
            "foodcast.teamserver",
            "foodcast.teamserver.server",
            "foodcast.data.importer",
            "foodcast.data.generator",
            "foodcast.cli",
            "foodcast.pipeline.stage_table",
            "foodcast.pipeline.runner",
        }
        assert not modules & (others | unrelated), (stage, sorted(modules & (others | unrelated)))


def test_every_module_a_stage_imported_is_in_its_set(small):
    seen = [json.loads(p.read_text()) for p in small.imports.glob("*.json")]
    imports = ProjectImports(small.project)
    checked = set()
    for record in seen:
        command = Path(record["argv"][0])
        if command.parent.name != "steps" or command.stem not in STAGES:
            continue
        stage = command.stem
        missing = set(record["modules"]) - set(imports.stage_modules(stage)) - {"__main__"}
        assert not missing, f"{stage} imported {sorted(missing)}, which its cache key does not fingerprint"
        checked.add(stage)
    assert checked == {s.name for s in PIPELINE}


def settled(runner):
    """Run the pipeline once as it stands, so that what the session's earlier tests changed in
    the shared store (a newer champion, which promote's key names) is caught up with: what the
    next run launches is then what an edit makes it launch."""
    runner.mlflow_run(**SMALL)


def edit(path: Path, text: str):
    original = path.read_text()
    path.write_text(original + text)
    return lambda: path.write_text(original)


def test_an_edit_no_stage_runs_relaunches_nothing(small):
    runner, copy, cold = small.runner, small.project, small.cold
    settled(runner)
    restores = [
        edit(copy / "foodcast/teamserver/server.py", "\n# a comment of the team server\n"),
        edit(copy / "foodcast/data/importer.py", '\n"""Another docstring of the importer."""\n'),
        edit(copy / "foodcast/cli/__init__.py", "\n# the command line\n"),
    ]
    try:
        proc = runner.mlflow_run(**SMALL)
    finally:
        for restore in restores:
            restore()
    assert {s: st for s, (st, _) in stage_lines(proc.stdout).items()} == dict.fromkeys(
        stage_lines(cold.stdout), "reused"
    )


def test_an_edit_of_one_stage_s_command_or_of_the_core_relaunches_what_runs_it(small):
    runner, copy, cold = small.runner, small.project, small.cold
    settled(runner)
    restore = edit(copy / "steps/evaluate.py", "\n# a comment of evaluate's command\n")
    try:
        proc = runner.mlflow_run(**SMALL)
    finally:
        restore()
    status = {s: st for s, (st, _) in stage_lines(proc.stdout).items()}
    assert status == {s: ("launched" if s.startswith("evaluate") else "reused") for s in stage_lines(cold.stdout)}

    # scoring: evaluate scores with it, promote's gate backtests with it; nothing else imports it
    restore = edit(copy / "foodcast/core/scoring.py", "\n# a comment of the scoring\n")
    try:
        proc = runner.mlflow_run(**SMALL)
    finally:
        restore()
    status = {s: st for s, (st, _) in stage_lines(proc.stdout).items()}
    relaunched = {s for s, st in status.items() if st == "launched"}
    assert relaunched == {"promote", "evaluate[13]"}, status


def test_changed_batch_then_changed_source(small):
    runner, copy, data = small.runner, small.project, small.data
    # Week 3 is read by load (weeks 2-12) but not by future (weeks 5-12, the profile's 8 for week 13).
    batch = data / "alpha" / "week_003.csv.gz"
    original = batch.read_bytes()
    text = gzip.decompress(original).decode().splitlines()
    text[1] = text[1].replace(",1,", ",3,", 1) if ",1," in text[1] else text[1] + "0"
    batch.write_bytes(gzip.compress(("\n".join(text) + "\n").encode()))
    try:
        told = told_status(small)
        status = {s: st for s, (st, _) in stage_lines(runner.mlflow_run(**SMALL).stdout).items()}
    finally:
        batch.write_bytes(original)
    # `python -m foodcast status` said so beforehand, and why
    assert {s: ("reused" if action == "reuse" else "launched") for s, (action, _) in told.items()} == status
    assert told["load"] == ("launch", "data changed") and told["features"] == ("launch", "after load")
    assert told["future"] == ("reuse", f"run {small.lines['future'][1]}")
    assert status == {
        "load": "launched",
        "features": "launched",
        "validate": "launched",
        "train": "launched",
        "promote": "launched",
        "future": "reused",
        "predict": "launched",
        "evaluate[13]": "launched",
    }

    # The frame every stage runs in: every stage's code.
    restore = edit(copy / "foodcast" / "pipeline" / "stage_run.py", "\n# an edit\n")
    try:
        told = told_status(small)
        status = {s: st for s, (st, _) in stage_lines(runner.mlflow_run(**SMALL).stdout).items()}
    finally:
        restore()
    assert status == dict.fromkeys(SMALL_NODES, "launched")
    assert {s: action for s, (action, _) in told.items()} == dict.fromkeys(SMALL_NODES, "launch")
    assert told["load"] == told["future"] == ("launch", "code changed") and told["validate"] == (
        "launch",
        "after features",
    )


def told_status(small) -> dict[str, tuple[str, str]]:
    """What `python -m foodcast status -P ...` (in the project, on its store) says main with
    SMALL would do: ``{node: (reuse|launch, run <id> | reason)}``; it launches nothing, in a few
    seconds."""
    client = MlflowClient(small.uri)

    def runs():
        return [(r.info.run_id, r.info.status, r.info.end_time) for r in client.search_runs(["0"], max_results=1000)]

    before = runs()
    args = [sys.executable, "-m", "foodcast", "status", *(f"-P{k}={v}" for k, v in SMALL.items())]
    started = time.perf_counter()
    proc = subprocess.run(args, cwd=small.project, env=small.runner.env, capture_output=True, text=True, timeout=120)
    seconds = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert runs() == before  # nothing launched, nothing changed
    assert seconds < 30  # (under 3 s on a quiet machine; this one may be busy with other tests)
    told = {}
    for line in proc.stdout.splitlines()[1:]:
        label, text = line.split(": ", 1)
        action, _, rest = text.partition(" ")
        if action != "skip":
            told[label] = (action, rest.strip("()") if action == "launch" else rest)
    return told


def test_every_package_has_its_init_file():
    """A directory without ``__init__.py`` would be a namespace package: importable, but with no
    file for a cache key to fingerprint (nor for setuptools to package)."""
    for top in ("foodcast", "steps"):
        for directory in [PROJECT_ROOT / top, *(PROJECT_ROOT / top).rglob("*")]:
            if directory.is_dir() and directory.name != "__pycache__" and list(directory.glob("*.py")):
                assert (directory / "__init__.py").is_file(), directory
