"""Click commands built from the stage registry, so that an option is declared once.

:func:`stage_command` turns a step's body into the stage's command: its options come from
:mod:`foodcast.application.stages` (names, types, defaults, bounds, help), its help from the
body's docstring, and the body runs inside the stage's MLflow run (:func:`step.step_run`).
:func:`with_options` gives ``main`` its options the same way.

Light on imports: a stage command reads this module before handing its work over.
"""

from __future__ import annotations

import functools

import click

from foodcast.application import catalog
from foodcast.application.stages import Param, Stage, param_texts


class _NonEmpty(click.ParamType):
    """A string that must not be empty (``-P load_run_id=`` gives an empty one)."""

    name = "text"

    def convert(self, value, param, ctx):
        value = str(value)
        if not value.strip():
            self.fail("must not be empty", param, ctx)
        return value


def _click_type(param: Param):
    if param.type is bool:
        return click.BOOL
    if param.type is int:
        return click.IntRange(min=None if param.min is None else int(param.min),
                              max=None if param.max is None else int(param.max))
    if param.type is float:
        return click.FloatRange(min=param.min, max=param.max)
    if param.choices:
        return click.Choice(param.choices)
    return _NonEmpty() if param.required else click.STRING


def with_options(params):
    """Decorator adding one click option per :class:`Param`, in order."""

    def decorate(command):
        for p in reversed(tuple(params)):
            command = click.option(
                p.option, p.name, type=_click_type(p), required=p.required,
                default=None if p.required else p.default,
                show_default=False if p.required else p.text(p.default), help=p.help,
            )(command)
        return command

    return decorate


class _StageCommand(click.Command):
    """A stage's command: a refused option is also recorded on the run ``mlflow run`` made."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.ClickException as exc:
            _record_refusal(self.name, exc.format_message())
            raise


def _record_refusal(stage: str, message: str) -> None:
    """Tag the run prepared for this command (``MLFLOW_RUN_ID``) with why the command refused
    its options, so that the UI says why the run FAILED."""
    import os

    run_id = os.environ.get("MLFLOW_RUN_ID")
    if not run_id:
        return
    from mlflow.tracking import MlflowClient

    try:
        MlflowClient().set_tag(run_id, catalog.ERROR_TAG, f"{stage}: {message}"[:5000])
    except Exception:  # noqa: BLE001 - the refusal itself is what the user must see
        pass


def stage_command(stage: Stage):
    """Decorator making ``body(**params)`` the command of ``stage``.

    The command parses the stage's options, opens its run (parameters logged first, tags
    ``foodcast.step`` and ``foodcast.upstream.<stage>_run_id``, one-line user errors) and
    calls ``body`` with the parameters as keyword arguments.
    """

    def decorate(body):
        @functools.wraps(body)
        def callback(**values):
            from foodcast.application.step import step_run

            # every run id it is given is an upstream run (predict's train run is optional)
            upstream = {name[: -len("_run_id")]: value for name, value in values.items()
                        if name.endswith("_run_id") and value}
            with step_run(stage.name, param_texts(stage.all_params, values), upstream=upstream):
                body(**values)

        return click.command(name=stage.name, cls=_StageCommand, help=body.__doc__)(
            with_options(stage.all_params)(callback))

    return decorate
