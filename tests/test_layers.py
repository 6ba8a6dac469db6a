"""The import contracts of pyproject.toml (`lint-imports`) hold on the project, and break when a
module of the forecasting core imports MLflow or runs back up a layer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from foodcast.settings import PROJECT_ROOT

LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))


def lint_imports(project: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(project)}  # the copy's packages, not the installed ones
    return subprocess.run(
        [LINT_IMPORTS, str(project / "pyproject.toml"), "--no-cache"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def copy(tmp_path):
    for name in ("foodcast", "steps"):
        shutil.copytree(PROJECT_ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(PROJECT_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_contracts_hold(copy):
    proc = lint_imports(copy)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize(
    "module, line, broken",
    [
        ("core/weeks.py", "import mlflow", "The forecasting core is pure"),
        ("core/features.py", "import plotly.graph_objects", "The forecasting core is pure"),
        ("core/scoring.py", "from foodcast.tracking import names", "Layers"),
        ("data/batch_files.py", "import pandas", "What --help and a stage command's hand-over read is light"),
    ],
)
def test_a_forbidden_import_breaks_them(copy, module, line, broken):
    path = copy / "foodcast" / module
    path.write_text(path.read_text() + f"\n{line}  # the import under test\n")
    proc = lint_imports(copy)
    assert proc.returncode != 0
    assert f"{broken}" in proc.stdout.replace("\n", " ") and "BROKEN" in proc.stdout, proc.stdout
