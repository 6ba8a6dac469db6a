"""Click commands built from the parameters, so that an option is declared once.

:func:`stage_command` turns a step's body into the stage's command: its options come from
the stage's :class:`~foodcast.pipeline.params.Param` (names, types, defaults, bounds, help),
its help from the body's docstring, and the body runs inside the stage's MLflow run
(:func:`foodcast.pipeline.stage_run.stage_run`). :func:`with_options` gives ``main`` its
options the same way.

Light on imports: every stage command and ``main`` read it, ``--help`` included.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterable
from typing import Any

import click

from foodcast.pipeline.params import Param, param_texts
from foodcast.pipeline.stage import Stage
from foodcast.tracking import names


class _NonEmpty(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.4 only; click>=8.1 is allowed
    """A string that must not be empty (``-P load_run_id=`` gives an empty one)."""

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value)
        if not text.strip():
            self.fail("must not be empty", param, ctx)
        return text


def _click_type(param: Param) -> click.ParamType[Any]:
    if param.type is bool:
        return click.BOOL
    if param.type is int:
        return click.IntRange(
            min=None if param.min is None else int(param.min), max=None if param.max is None else int(param.max)
        )
    if param.type is float:
        return click.FloatRange(min=param.min, max=param.max)
    if param.choices:
        return click.Choice(param.choices)
    return _NonEmpty() if param.required else click.STRING


def with_options(params: Iterable[Param]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator adding one click option per :class:`Param`, in order."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for p in reversed(tuple(params)):
            command = click.option(
                p.option,
                p.name,
                type=_click_type(p),
                required=p.required,
                default=None if p.required else p.default,
                show_default=False if p.required else p.text(p.default),
                help=p.help,
            )(command)
        return command

    return decorate


class RefusingCommand(click.Command):
    """A command ``mlflow run`` starts (a stage's, main's): a refused option is also recorded on
    the run ``mlflow run`` made (:func:`record_refusal`)."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.ClickException as exc:
            record_refusal(self.name, exc.format_message())
            raise


def record_refusal(command: str | None, message: str) -> None:
    """Name the run prepared for this command (``MLFLOW_RUN_ID``) ``<command> (refused)`` and
    tag it with why the command refused its options, so that the UI says what the FAILED run
    is and why (``mlflow run`` marks it FAILED when the command exits)."""
    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id:
        return
    # MLflow, imported only here: a command whose options are fine never pays it before handing
    # its work over (and --help never does).
    from mlflow.entities import RunTag  # noqa: PLC0415
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    tags = [RunTag(names.ERROR_TAG, f"{command}: {message}"[:5000]), RunTag(names.NAME_TAG, f"{command} (refused)")]
    with contextlib.suppress(Exception):  # the refusal itself is what the user must see
        MlflowClient().log_batch(run_id, tags=tags)


def stage_command(stage: Stage) -> Callable[[Callable[..., None]], click.Command]:
    """Decorator making ``body(**params)`` the command of ``stage``.

    The command parses the stage's options, opens its run (parameters logged first, tags
    ``foodcast.step`` and ``foodcast.upstream.<stage>_run_id``, one-line user errors) and
    calls ``body`` with the parameters as keyword arguments.
    """

    def decorate(body: Callable[..., None]) -> click.Command:
        @functools.wraps(body)
        def callback(**values: Any) -> None:
            # The run's frame imports MLflow: only once the options are parsed, so that --help
            # answers at once (see README, "Layout").
            from foodcast.pipeline.stage_run import stage_run  # noqa: PLC0415

            # every run id it is given is an upstream run (predict's train run is optional)
            upstream = {
                name[: -len("_run_id")]: value for name, value in values.items() if name.endswith("_run_id") and value
            }
            with stage_run(stage, param_texts(stage.all_params, values), upstream=upstream):
                body(**values)

        return click.command(name=stage.name, cls=RefusingCommand, help=body.__doc__)(
            with_options(stage.all_params)(callback)
        )

    return decorate
