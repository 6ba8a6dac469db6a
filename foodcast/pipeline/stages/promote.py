"""promote: the champion / challenger gate of the model registry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from foodcast.core.windows import forecast_history, gate_weeks_read
from foodcast.pipeline import params as p
from foodcast.pipeline.stage import SKLEARN_PACKAGES, Options, Partition, Skipped, Stage
from foodcast.tracking import names

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient


def promote_nodes(options: Options) -> list[Partition | Skipped]:
    """One node, unless nothing is registered."""
    if not options["registered_model_name"]:
        return [Skipped(None, "registered_model_name is empty: nothing is registered")]
    return [Partition()]


def gate_batch_weeks(options: Options) -> tuple[int, int]:
    """The weeks of batches the gate reads, as far as main knows the challenger's features (the
    champion's, which promote adds when it reads, are known only then)."""
    return gate_weeks_read(
        options["start_week"], options["end_week"], options["gate_weeks"], forecast_history(**options)
    )


def last_champion(client: MlflowClient, name: str) -> ModelVersion | None:
    """The version of ``name`` that promote made champion last (by its tag ``champion_since``;
    among versions promoted before that tag existed, which carry only ``replaced_champion``, the
    newest), or ``None``: what the gate compares with when the alias ``champion`` points at no
    version (deleted by hand)."""
    was = [v for v in client.search_model_versions(f"name = '{name}'") if names.REPLACED_TAG in v.tags]
    return max(was, key=lambda v: (int(v.tags.get(names.CHAMPION_SINCE_TAG, 0)), int(v.version)), default=None)


def champion_compared(options: Options, client: MlflowClient, params: Mapping[str, Any]) -> str:
    """The champion promote compares with, which its result depends on: the version the alias
    points at now, or when it points at none, the last version that was champion (which promote
    gates against then: the same decision). When that is the challenger itself (this train
    run's version), the champion it replaced when promote made it champion, so that the promote
    run that did it is the one reused (a version made champion by hand: "", promote then has
    nothing to do)."""
    name = options[p.REGISTERED_MODEL_NAME.name]
    found = client.search_registered_models(filter_string=f"name = '{name}'")
    version = found[0].aliases.get(names.CHAMPION) if found else None
    champion = client.get_model_version(name, version) if version is not None else None
    if champion is None and found:
        champion = last_champion(client, name)
    if champion is None:
        return "champion="
    if champion.tags.get(names.TRAIN_RUN_TAG) == params.get(names.run_id_param(names.TRAIN)):
        return f"champion={champion.tags.get(names.REPLACED_TAG, '')}"
    return f"champion={champion.version}"


PROMOTE = Stage(
    names.PROMOTE,
    "moves the champion alias to the challenger (this train run's model version) when it scores at "
    "least as well as the champion on the same weeks",
    params=(p.REGISTERED_MODEL_NAME, p.GATE_WEEKS, p.GATE_MARGIN, p.ALLOW_MISSING),
    upstream=(names.TRAIN,),
    packages=(*SKLEARN_PACKAGES, "skops", "joblib"),
    nodes=promote_nodes,
    waits_for=lambda o: (names.VALIDATE,),  # the challenger's configuration scored first
    cache_context=champion_compared,
    batch_weeks=gate_batch_weeks,
)
