"""What a stage of the pipeline is: an MLflow entry point, what it takes and leaves behind, and
the few hooks ``main`` asks when it plans a run.

Each stage is one :class:`Stage`, defined in its own module of ``foodcast.pipeline.stages``
with the hooks that serve it alone; ``foodcast.pipeline.stage_table`` lists them. Imports
nothing heavy: every stage command and ``main`` read it before anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from foodcast.pipeline.params import Param, run_id_param
from foodcast.tracking.names import Artifact

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

Options = Mapping[str, Any]
BASE_PACKAGES = ("mlflow", "pandas", "numpy")
SKLEARN_PACKAGES = (*BASE_PACKAGES, "scikit-learn")
PLOT_PACKAGES = ("plotly", "kaleido")  # a stage that logs a plot: its page and its PNG


@dataclass(frozen=True)
class EarlierRun:
    """An upstream run taken from the experiment instead of this invocation: the newest
    FINISHED ``stage`` run with ``tags``, unless a FINISHED ``unless_used_by`` run consumed it
    already."""

    stage: str
    tags: Mapping[str, str]
    unless_used_by: str | None = None


@dataclass(frozen=True)
class Partition:
    """One node of a stage: its name (``None`` for a stage's only node; a week, a restaurant
    when it fans out), option values of its own (``{"week": 201}``), and upstream runs taken
    from earlier runs (:class:`EarlierRun`)."""

    name: str | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[str, EarlierRun] = field(default_factory=dict)


@dataclass(frozen=True)
class Skipped:
    """A node left out of a run (``name`` as in :class:`Partition`), and why."""

    name: str | None
    reason: str


@dataclass(frozen=True)
class Stage:
    """One MLflow entry point of the pipeline.

    Parameters
    ----------
    name : str
        Entry point, run name and ``foodcast.step`` tag; its command is ``steps/<name>.py``.
    summary : str
        What the stage does, in one line (descriptions, ``--help`` of main).
    params : tuple of Param
        Its own parameters; ``main`` passes its option of the same name to each.
    upstream : tuple of str
        Stages whose run ids it receives, as ``<stage>_run_id`` parameters (listed first).
    artifacts : tuple of (str, str)
        ``(directory, file)`` of every artifact it logs.
    models : tuple of str
        Names of the models it logs.
    registers : bool
        Whether it registers a model as a version of its ``registered_model_name`` (unless
        empty): a run whose version is gone from the registry is not reused.
    packages : tuple of str
        Installed distributions its results depend on: their versions are part of its cache key.
    headline_metrics : tuple of str
        Metrics ``main`` copies onto the parent run.
    in_main : bool
        Whether ``main`` runs it.
    batch_weeks : callable, optional
        ``options -> (first, last)``: the weeks of batches it reads, for the cache key.
    nodes : callable, optional
        ``options -> list of Partition | Skipped``: the nodes of a stage that fans out or runs
        only on a condition (default: one node, always).
    late : tuple of str
        Parameters ``main`` does not take from its options but works out with ``late_params``
        when the stage is about to run.
    late_params : callable, optional
        ``(options, runs, client) -> {parameter: value}``, ``runs`` being ``{stage: run id}`` of
        the stages resolved so far.
    waits_for : callable, optional
        ``options -> tuple of stage names``: stages that must have ended before this one runs,
        besides its upstream stages.
    cache_context : callable, optional
        ``(options, client, params) -> str``: what else its result depends on, given its
        parameters, folded into its cache key (e.g. the registered model's current champion).
    """

    name: str
    summary: str
    params: tuple[Param, ...] = ()
    upstream: tuple[str, ...] = ()
    artifacts: tuple[Artifact, ...] = ()
    models: tuple[str, ...] = ()
    registers: bool = False
    packages: tuple[str, ...] = BASE_PACKAGES
    headline_metrics: tuple[str, ...] = ()
    in_main: bool = True
    batch_weeks: Callable[[Options], tuple[int, int]] | None = field(default=None, compare=False)
    nodes: Callable[[Options], list[Partition | Skipped]] | None = field(default=None, compare=False)
    late: tuple[str, ...] = ()
    late_params: Callable[[Options, Mapping[str, str], MlflowClient], dict[str, Any]] | None = field(
        default=None, compare=False
    )
    waits_for: Callable[[Options], tuple[str, ...]] | None = field(default=None, compare=False)
    cache_context: Callable[[Options, MlflowClient, Mapping[str, Any]], str] | None = field(default=None, compare=False)

    @property
    def all_params(self) -> tuple[Param, ...]:
        """Upstream run ids first, then its own parameters: the entry point's parameters."""
        return tuple(run_id_param(u) for u in self.upstream) + self.params

    def plan(self, options: Options) -> list[Partition | Skipped]:
        """The nodes of this stage for a run of ``main`` with ``options``."""
        return [Partition()] if self.nodes is None else self.nodes(options)
