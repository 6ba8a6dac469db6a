"""Log the trained models, and load the one a predict run uses.

Both models are stored without pickle: ``simple_model`` with MLflow's sklearn flavor in skops
format, ``multi_model`` as a model from code (:mod:`foodcast.tracking.pyfunc_model`) whose
fitted MultiModel is a skops file, loaded trusting only the types recorded when it was written.
A ``multi_model`` carries the package code it needs and no more (:func:`package_files`): the
modules of the forecasting core its classes come from. It loads in an environment that has the
requirements it records, without this repository.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import logging
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import pandas as pd
import skops.io
from mlflow.entities import LoggedModel, LoggedModelInput, Run
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature, infer_signature
from mlflow.models.model import ModelInfo
from mlflow.tracking import MlflowClient
from mlflow.utils.logging_utils import MLFLOW_LOGGING_STREAM

from foodcast.core.columns import LOWER_COLUMN, POINT_COLUMN, UPPER_COLUMN
from foodcast.core.features import check_feature_frame
from foodcast.core.multi_model import MultiModel
from foodcast.core.restaurants import ORDER_DATE, RESTAURANT, RestaurantModel
from foodcast.errors import FoodcastError
from foodcast.runtime.processes import temp_dir
from foodcast.tracking import names
from foodcast.tracking.artifacts import model_checksums
from foodcast.tracking.pyfunc_model import MODEL_ARTIFACT, TRUSTED_ARTIFACT
from foodcast.tracking.runs import logged_model

logger = logging.getLogger("foodcast.models")

# Stated rather than inferred: MLflow's inference runs the model in a subprocess, which costs
# seconds per model and adds nothing here, since the pipeline knows what its models import.
RUNTIME_PACKAGES = ("mlflow", "scikit-learn", "pandas", "numpy", "skops")
PACKAGE = "foodcast"


def pip_requirements() -> list[str]:
    """Pinned requirements of the logged models, from the running environment."""
    pins = []
    for package in RUNTIME_PACKAGES:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins


def log_models(
    model: MultiModel | RestaurantModel, x: pd.DataFrame, registered_model_name: str | None = None
) -> ModelInfo:
    """Log the single estimator as ``simple_model`` (sklearn, skops) and ``model`` as
    ``multi_model`` (pyfunc from code, skops; its signature declares the outputs only, the
    model checking its input itself), both with signature and input example, and record
    their digests; register ``multi_model`` as a new version of ``registered_model_name``.

    Parameters
    ----------
    model : MultiModel or RestaurantModel
        Fitted. A ``MultiModel``'s ``simple_model`` is its ``single_estimator``; a
        ``RestaurantModel``'s (trained on a long table, :mod:`foodcast.core.restaurants`) is
        its pooled model's, which forecasts any restaurant from its features alone (level-scaled).
    x : DataFrame
        Training features (the first rows become the input example; of a long table, the rows
        of its last hour: every restaurant's then, and the chain's).
    registered_model_name : str, optional
        The registered model to add a version to (none if empty).

    Returns
    -------
    mlflow.models.model.ModelInfo
        Of ``multi_model`` (``registered_model_version`` set when registered).
    """
    example = model_example(model, x)
    requirements = pip_requirements()
    if isinstance(model, MultiModel):
        estimator, simple_example = model.single_estimator, example
    else:
        estimator = model.pooled_model_.single_estimator
        simple_example = example[list(model.feature_names_in_)]
    simple = mlflow.sklearn.log_model(
        estimator,
        name=names.SIMPLE_MODEL,
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
        # The types skops will not load unless told: those of the estimator we just fitted.
        skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(estimator)),
        signature=infer_signature(simple_example, estimator.predict(simple_example)),
        input_example=simple_example,
        pip_requirements=requirements,
    )
    with temp_dir("model") as tmp:
        stored, trusted = Path(tmp) / "multi_model.skops", Path(tmp) / "trusted_types.json"
        skops.io.dump(model, stored)
        types = skops.io.get_untrusted_types(file=stored)
        trusted.write_text(json.dumps(types, indent=1))
        # The modules of the types in the skops file, and the input check pyfunc_model calls.
        modules = [t.rsplit(".", 1)[0] for t in types if t.startswith(PACKAGE + ".")] + [check_feature_frame.__module__]
        code = stage_package(Path(tmp) / "code", modules)
        with _registry_prints():
            multi: ModelInfo = mlflow.pyfunc.log_model(
                name=names.MULTI_MODEL,
                python_model=str(Path(__file__).with_name("pyfunc_model.py")),
                artifacts={MODEL_ARTIFACT: str(stored), TRUSTED_ARTIFACT: str(trusted)},
                code_paths=[str(code)],
                # Outputs only: with an input schema, MLflow would drop an unknown column unseen
                # (see pyfunc_model); the model checks its input itself.
                signature=ModelSignature(outputs=infer_signature(example, model.predict_frame(example)).outputs),
                input_example=example,
                pip_requirements=requirements,
                registered_model_name=registered_model_name or None,
            )
    record_model_digests({names.SIMPLE_MODEL: simple, names.MULTI_MODEL: multi})
    return multi


def model_example(model: MultiModel | RestaurantModel, x: pd.DataFrame) -> pd.DataFrame:
    """The input example of a model trained on ``x`` (indexed by ``order_date``): its first 5
    rows; for a restaurant model (a long ``x``), the rows of the last hour, every restaurant's
    and the chain's, ``order_date`` among the columns (the chain's row is the sum of the
    restaurants' rows of its hour)."""
    if isinstance(model, MultiModel):
        return x.head(5).reset_index(drop=True)
    last = x[x.index == x.index.max()].reset_index()
    first = [RESTAURANT, ORDER_DATE]
    example: pd.DataFrame = last[[*first, *(c for c in last.columns if c not in first)]]
    return example


@contextmanager
def _registry_prints() -> Iterator[None]:
    """Registering prints "Successfully registered model ..." and "Created version ..." whatever
    the log level: off, with MLflow's other lines of that moment, unless the foodcast loggers
    log INFO (``FOODCAST_LOG_LEVEL``; main sets WARNING for its stages unless verbose)."""
    if logger.isEnabledFor(logging.INFO):
        yield
        return
    was = MLFLOW_LOGGING_STREAM.enabled
    MLFLOW_LOGGING_STREAM.enabled = False
    try:
        yield
    finally:
        MLFLOW_LOGGING_STREAM.enabled = was


def package_files(modules: Iterable[str]) -> list[Path]:
    """The files of this package that importing ``modules`` needs: each module, the package
    modules it imports (read from its source, imports inside functions too, at any depth) and
    the ``__init__.py`` of every package on the way."""
    todo, seen = list(modules), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        seen.update(".".join(parts[:i]) for i in range(1, len(parts)))
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(name)
        origin = spec.origin
        for node in ast.walk(ast.parse(Path(origin).read_text(encoding="utf-8"), origin)):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for candidate in names:
                if candidate.split(".")[0] != PACKAGE:
                    continue
                try:
                    if importlib.util.find_spec(candidate) is not None:
                        todo.append(candidate)
                except ModuleNotFoundError:  # ``from package.module import function``
                    pass
    return sorted({Path(str(_origin(name))) for name in seen})


def _origin(module: str) -> str:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(module)
    return spec.origin


def stage_package(root: Path, modules: Iterable[str]) -> Path:
    """Copy :func:`package_files` of ``modules`` under ``root``, keeping the package's layout;
    returns ``root / <package>`` (what ``code_paths`` takes)."""
    package_dir = Path(__file__).resolve().parents[1]
    for path in package_files(modules):
        target = root / PACKAGE / path.relative_to(package_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return root / PACKAGE


def record_model_digests(infos: dict[str, ModelInfo]) -> None:
    """Tag the active run with the files of each just-logged model and their digest (read back
    from the store), so that the cache can tell later whether they changed
    (:func:`foodcast.tracking.artifacts.model_checksums`)."""
    client = MlflowClient()
    tags = {}
    for name, info in infos.items():
        tags.update(model_checksums(name, client.get_logged_model(info.model_id).artifact_location))
    mlflow.set_tags(tags)


def environment_drift(requirements: list[str], python_version: str | None) -> list[str]:
    """How this environment differs from a model's pinned requirements and Python version.

    Parameters
    ----------
    requirements : list of str
        The model's pip requirements (``name==version`` pins; other lines are not checked).
    python_version : str, optional
        The Python version the model was logged with.

    Returns
    -------
    list of str
        One ``name: model <pin>, here <version>`` line per difference.
    """
    differences = []
    for line in requirements:
        name, sep, pinned = line.strip().partition("==")
        if not sep or not name or name.startswith(("-", "#")):
            continue
        try:
            here = version(name)
        except PackageNotFoundError:
            here = "not installed"
        if here != pinned:
            differences.append(f"{name}: model {pinned}, here {here}")
    here = ".".join(map(str, sys.version_info[:2]))
    if python_version and ".".join(python_version.split(".")[:2]) != here:
        differences.append(f"python: model {python_version}, here {here}")
    return differences


def warn_on_environment_drift(model_uri: str, model_dir: Path, metadata: Model) -> None:
    """Log a warning if the environment differs from the one the model was logged in.

    ``mlflow.pyfunc.load_model`` does this unless ``suppress_warnings``, by checking each
    requirement against all installed distributions, which costs about a second per load;
    the pipeline's models pin exact versions (:func:`pip_requirements`), so comparing the
    versions is enough.

    Parameters
    ----------
    model_uri : str
        The model's URI, for the message.
    model_dir : Path
        The model downloaded (its ``requirements.txt`` is read).
    metadata : mlflow.models.Model
        The loaded model's metadata (its Python version is read).
    """
    requirements = (model_dir / "requirements.txt").read_text().splitlines()
    python_version = metadata.flavors.get("python_function", {}).get("python_version")
    differences = environment_drift(requirements, python_version)
    if differences:
        logger.warning(
            "the model %s was logged in another environment (%s); to reproduce it, install "
            "the requirements of mlflow.pyfunc.get_model_dependencies(%r)",
            model_uri,
            "; ".join(differences),
            model_uri,
        )


def resolve_model(train_run: Run | None = None, model_uri: str | None = None) -> tuple[str, LoggedModel]:
    """The LoggedModel a predict run uses: the ``multi_model`` of a checked train run, or the one
    a ``models:/`` URI names (a registered version, by number or alias, or a model id).

    Returns
    -------
    (str, LoggedModel)
        A URI to load it from, and the LoggedModel.

    Raises
    ------
    FoodcastError
        If exactly one of the two is not given, or what it names does not exist.
    """
    if (train_run is None) == (not model_uri):
        raise FoodcastError("give exactly one of train_run_id and model_uri")
    client = MlflowClient()
    if train_run is not None:
        info = logged_model(train_run, names.MULTI_MODEL, names.TRAIN)
        return f"runs:/{train_run.info.run_id}/{names.MULTI_MODEL}", info
    assert model_uri is not None  # the check above: no train run, so a model URI
    if not model_uri.startswith("models:/"):
        raise FoodcastError(
            f"model_uri must be a models:/ URI (models:/<name>@<alias>, models:/<name>/<version> "
            f"or models:/<model id>), got {model_uri!r}"
        )
    name = model_uri[len("models:/") :]
    try:
        if "@" in name or "/" in name:
            if "@" in name:
                version = client.get_model_version_by_alias(*name.split("@", 1))
            else:
                version = client.get_model_version(*name.split("/", 1))
            # A version made from a LoggedModel has it as its source (its model_id may be unset).
            model_id = version.model_id or (version.source or "")[len("models:/") :]
        else:
            model_id = name
        return model_uri, client.get_logged_model(model_id)
    except MlflowException as exc:
        raise FoodcastError(f"{model_uri} names no model of the registry: {exc.message}") from None


def load_predictor(model_uri: str, info: LoggedModel, what: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """Load a model and record it as an input of the active run.

    Parameters
    ----------
    model_uri : str
        Where to load it from (see :func:`resolve_model`).
    info : LoggedModel
        The model (recorded as the run's input).
    what : str
        How to name it in messages (``train run <id>``, ``models:/foodcast@champion``).

    Returns
    -------
    callable
        ``predict(x)`` for features ``x`` indexed by timestamp, returning every column of the
        forecast indexed the same way.

    Raises
    ------
    FoodcastError
        If the model's files are missing or corrupt, it is not a forecast model (its output has
        no ``y_pred``, ``y_lower``, ``y_upper``: a ``simple_model``), or it refuses ``x`` (not
        the columns the model was trained on: the feature parameters differ between features
        and future).
    """
    mlflow.log_input(model=LoggedModelInput(info.model_id))
    try:
        model_dir = Path(mlflow.artifacts.download_artifacts(model_uri))  # once, for the model and its requirements
        pyfunc = mlflow.pyfunc.load_model(str(model_dir), suppress_warnings=True)
        # The features it was trained on: its input schema, or (the multi_model's signature
        # declares outputs only, see pyfunc_model) the columns of its input example.
        inputs = pyfunc.metadata.get_input_schema()
        example = pyfunc.metadata.load_input_example(str(model_dir)) if inputs is None else None
    except Exception as exc:  # noqa: BLE001 - missing or corrupt files: whatever the loader raises, say which model
        raise FoodcastError(
            f"the model {model_uri} ({info.model_id}) cannot be loaded: "
            f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        ) from None
    warn_on_environment_drift(model_uri, model_dir, pyfunc.metadata)
    outputs = pyfunc.metadata.get_output_schema()
    predicted = outputs.input_names() if outputs is not None and outputs.has_input_names() else []
    if not {POINT_COLUMN, LOWER_COLUMN, UPPER_COLUMN} <= set(predicted):
        raise FoodcastError(
            f"the model {model_uri} ({info.model_id}) is not a forecast model: it predicts "
            f"{predicted or 'no named columns'}, not {POINT_COLUMN}, {LOWER_COLUMN} and {UPPER_COLUMN}; "
            f"give a train run's {names.MULTI_MODEL} (or a version of the registered model)"
        )
    if inputs is not None:
        expected: list[str] | None = inputs.input_names()
    else:
        expected = [str(c) for c in example.columns] if isinstance(example, pd.DataFrame) else None

    def predict(x: pd.DataFrame) -> pd.DataFrame:
        if expected is not None and list(x.columns) != list(expected):
            per_restaurant, model_per_restaurant = RESTAURANT in x.columns, RESTAURANT in expected
            if per_restaurant != model_per_restaurant:
                given, wanted = ("per restaurant", "the chain") if per_restaurant else ("the chain", "per restaurant")
                raise FoodcastError(
                    f"the prediction set is {given} but the model of {what} forecasts {wanted}: use a model "
                    "trained on features of the same granularity as the future run"
                )
            raise FoodcastError(
                f"the prediction set has features {list(x.columns)} but the model of {what} expects "
                f"{expected}: use the same feature parameters for future as for the features run"
            )
        try:
            preds: pd.DataFrame = pyfunc.predict(x.reset_index(drop=True))
        except MlflowException as exc:  # what the model refuses (pyfunc_model), naming the column
            message = " ".join(exc.message.split())
            raise FoodcastError(f"the model of {what} refuses the prediction set: {message}") from None
        preds.index = x.index
        return preds

    return predict
