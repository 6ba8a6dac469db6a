"""The experiment ``mlflow run`` puts the project's runs in when none is named: ``foodcast``.

MLflow asks the default experiment providers registered under the entry point group
``mlflow.default_experiment_provider`` (``pyproject.toml``) when neither ``--experiment-name`` /
``MLFLOW_EXPERIMENT_NAME`` nor ``--experiment-id`` / ``MLFLOW_EXPERIMENT_ID`` names one. This one
answers only inside ``mlflow run`` of a local project named ``foodcast`` (the launching process,
where foodcast is installed); anywhere else MLflow's default (experiment 0) stands. MLflow loads
this module whenever it is imported: it imports nothing more than MLflow has already.
"""

from __future__ import annotations

import os

import click
import yaml
from mlflow.tracking import MlflowClient
from mlflow.tracking.default_experiment.abstract_context import DefaultExperimentProvider

EXPERIMENT = "foodcast"


def launching_this_project() -> bool:
    """Whether this process is ``mlflow run <dir>`` of a project named foodcast."""
    context = click.get_current_context(silent=True)
    if context is None or context.info_name != "run" or context.parent is None:
        return False
    uri = str(context.params.get("uri") or "")
    try:
        with open(os.path.join(uri, "MLproject"), encoding="utf-8") as f:
            return bool((yaml.safe_load(f) or {}).get("name") == EXPERIMENT)
    except (OSError, yaml.YAMLError, AttributeError):
        return False


class FoodcastExperiment(DefaultExperimentProvider):
    """``mlflow run`` of this project: experiment ``foodcast``, created on first use."""

    def in_context(self) -> bool:
        return launching_this_project()

    def get_experiment_id(self) -> str:
        client = MlflowClient()
        found = client.get_experiment_by_name(EXPERIMENT)
        return found.experiment_id if found is not None else client.create_experiment(EXPERIMENT)
