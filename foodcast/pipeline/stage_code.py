"""The source files a stage's run executes: its command, and every project module it imports.

A stage's cache key fingerprints these files and no others, so that an edit relaunches exactly
the stages whose code it changes (an edit of the team server, the importer or another stage's
command relaunches none).

How the set is found: the command ``steps/<stage>.py`` is parsed, and every ``import`` and
``from ... import`` statement in it - at the top of the module and inside functions alike, on
every branch, taken or not - that names a module of the project (``foodcast``, ``steps``) adds
that module, then the modules it imports, to the end; each package on the way adds its
``__init__.py`` (Python runs it) and the data files beside it (``logging.yaml``). Because it
reads statements rather than running code, the set holds everything a run can import, and
more. What it cannot see is an import by a computed name (``importlib.import_module(name)``):
the package's stage code has none; MLflow imports the project's plugins so (its entry points
in MLflow's groups, as installed: the sqlite store, the default experiment), in every process
that uses a store, so they are added to every stage's set by name. And
``tests/test_stage_code.py`` checks, for every stage of ``main``, that the project modules a
real run of it imported are all in its set.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import lru_cache
from importlib.metadata import distributions
from pathlib import Path

from foodcast.digests import files_digest

PROJECT_PACKAGES = ("foodcast", "steps")
STAGE_PACKAGE = "steps"
DATA_FILES = ("*.yaml",)  # read by the package at run time (the logging configuration)


class ProjectImports:
    """The project's modules under ``project_dir`` and what each imports, each file parsed once."""

    def __init__(self, project_dir: str | Path):
        self.root = Path(project_dir).resolve()
        self._imports: dict[str, frozenset[str]] = {}

    def path(self, module: str) -> Path | None:
        """The file of ``module`` in the project (a package's ``__init__.py``), or ``None``."""
        if module.split(".")[0] not in PROJECT_PACKAGES:
            return None
        base = self.root.joinpath(*module.split("."))
        for candidate in (base / "__init__.py", base.with_suffix(".py")):
            if candidate.is_file():
                return candidate
        return None

    def imports(self, module: str) -> frozenset[str]:
        """The project modules ``module``'s source names in its import statements."""
        if module not in self._imports:
            self._imports[module] = frozenset(self._read_imports(module))
        return self._imports[module]

    def _read_imports(self, module: str) -> set[str]:
        path = self.path(module)
        if path is None:
            return set()
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, package)
                found.add(base)
                # ``from package import module`` imports the module; ``from module import name``
                # imports a name (kept only if it is a module of the project).
                found.update(f"{base}.{alias.name}" for alias in node.names)
        return {name for name in found if self.path(name) is not None}

    def closure(self, modules: Iterable[str]) -> list[str]:
        """``modules`` and every project module they import, at any depth, with the packages
        on the way; sorted."""
        todo, seen = list(modules), set()
        while todo:
            name = todo.pop()
            if name in seen or self.path(name) is None:
                continue
            seen.add(name)
            parts = name.split(".")
            todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
            todo.extend(self.imports(name))
        return sorted(seen)

    def stage_modules(self, stage: str) -> list[str]:
        """The project modules a run of ``stage``'s command imports (its closure, with the
        project's MLflow plugins)."""
        return self.closure([f"{STAGE_PACKAGE}.{stage}", *mlflow_plugin_modules()])

    def files(self, modules: Iterable[str]) -> list[Path]:
        """The source files of ``modules`` and the data files of their packages."""
        files: set[Path] = set()
        for module in modules:
            path = self.path(module)
            if path is None:
                continue
            files.add(path)
            if path.name == "__init__.py":
                files.update(p for pattern in DATA_FILES for p in path.parent.glob(pattern) if p.is_file())
        return sorted(files)


@lru_cache(maxsize=1)
def mlflow_plugin_modules() -> list[str]:
    """The project's modules among the installed entry points of MLflow's plugin groups."""
    return sorted(
        {
            point.module
            for distribution in distributions()
            for point in distribution.entry_points
            if point.group.startswith("mlflow.") and point.module.split(".")[0] in PROJECT_PACKAGES
        }
    )


@lru_cache(maxsize=8)
def project_imports(project_dir: Path) -> ProjectImports:
    """One :class:`ProjectImports` per project directory and process (files are parsed once)."""
    return ProjectImports(project_dir)


def stage_files(project_dir: str | Path, stage: str) -> list[Path]:
    """What a run of ``stage`` executes: ``MLproject`` (its command line) and the files of its
    modules (:meth:`ProjectImports.stage_modules`)."""
    imports = project_imports(Path(project_dir).resolve())
    return [imports.root / "MLproject", *imports.files(imports.stage_modules(stage))]


def code_fingerprint(project_dir: str | Path, stage: str) -> str:
    """SHA-256 over the relative paths and contents of :func:`stage_files`."""
    root = Path(project_dir).resolve()
    return files_digest(root, stage_files(root, stage))


def _absolute(node: ast.ImportFrom, package: str) -> str:
    """The module a ``from ... import`` statement reads from, relative imports resolved."""
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base
