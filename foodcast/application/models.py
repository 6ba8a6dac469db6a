"""Log the trained models, and load the one a predict run uses."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import mlflow

from foodcast.application import catalog

# Stated rather than inferred: MLflow's inference runs the model in a subprocess, which costs
# seconds per model and adds nothing here, since the pipeline knows what its models import.
RUNTIME_PACKAGES = ("mlflow", "scikit-learn", "pandas", "numpy", "skops", "cloudpickle")


def pip_requirements() -> list[str]:
    """Pinned requirements of the logged models, from the running environment."""
    pins = []
    for package in RUNTIME_PACKAGES:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins


def log_models(model, x) -> None:
    """Log ``model.single_estimator`` as ``simple_model`` (sklearn, skops) and ``model`` as
    ``multi_model`` (pyfunc), both with signature and input example, and record their digests.

    Parameters
    ----------
    model : MultiModel
        Fitted.
    x : DataFrame
        Training features (the first rows become the input example).
    """
    import mlflow.pyfunc
    import mlflow.sklearn
    import skops.io
    from mlflow.models import infer_signature

    example = x.head(5).reset_index(drop=True)
    requirements = pip_requirements()
    estimator = model.single_estimator
    simple = mlflow.sklearn.log_model(
        estimator,
        name=catalog.SIMPLE_MODEL,
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
        # The types skops will not load unless told: those of the forest we just fitted.
        skops_trusted_types=skops.io.get_untrusted_types(data=skops.io.dumps(estimator)),
        signature=infer_signature(example, estimator.predict(example)),
        input_example=example,
        pip_requirements=requirements,
    )
    package_dir = Path(__file__).resolve().parents[1]
    multi = mlflow.pyfunc.log_model(
        name=catalog.MULTI_MODEL,
        python_model=model,
        code_paths=[str(package_dir)],
        signature=infer_signature(example, model.predict_frame(example)),
        input_example=example,
        pip_requirements=requirements,
    )
    record_model_digests({catalog.SIMPLE_MODEL: simple, catalog.MULTI_MODEL: multi})


def record_model_digests(infos: dict) -> None:
    """Tag the active run with a digest of each just-logged model's files (read back from the
    store), so that the cache can tell later whether they changed."""
    from foodcast.application.integrity import digest_at, model_tag

    client = mlflow.tracking.MlflowClient()
    tags = {}
    for name, info in infos.items():
        location = client.get_logged_model(info.model_id).artifact_location
        tags[model_tag(name)] = digest_at(location, tree=True)
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
    import sys

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


def warn_on_environment_drift(model_uri: str, model_dir: Path, metadata) -> None:
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
    import logging

    requirements = (model_dir / "requirements.txt").read_text().splitlines()
    python_version = metadata.flavors.get("python_function", {}).get("python_version")
    differences = environment_drift(requirements, python_version)
    if differences:
        logging.getLogger("foodcast.models").warning(
            "the model %s was logged in another environment (%s); to reproduce it, install "
            "the requirements of mlflow.pyfunc.get_model_dependencies(%r)", model_uri, "; ".join(differences), model_uri)


def multi_model_predictor(train_run):
    """Load the ``multi_model`` of a checked train run and record it as an input of the active run.

    Returns
    -------
    callable
        ``predict(x)`` for features ``x`` indexed by timestamp, returning the predictions
        indexed the same way.

    Raises
    ------
    FoodcastError
        If the run has no such model, or ``x`` does not have the columns the model was
        trained on (e.g. ``degree`` / ``lag_in_week`` differ between features and future).
    """
    import mlflow.pyfunc
    from mlflow.entities import LoggedModelInput

    from foodcast.application.upstream import logged_model
    from foodcast.errors import FoodcastError

    run_id = train_run.info.run_id
    info = logged_model(train_run, catalog.MULTI_MODEL, catalog.TRAIN)
    mlflow.log_input(model=LoggedModelInput(info.model_id))
    uri = f"runs:/{run_id}/{catalog.MULTI_MODEL}"
    try:
        model_dir = Path(mlflow.artifacts.download_artifacts(uri))  # once, for the model and its requirements
        pyfunc = mlflow.pyfunc.load_model(str(model_dir), suppress_warnings=True)
    except Exception as exc:  # missing or corrupt files: whatever the loader raises, say which model
        raise FoodcastError(f"the model {uri} ({info.model_id}) cannot be loaded: "
                            f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None
    warn_on_environment_drift(uri, model_dir, pyfunc.metadata)
    expected = pyfunc.metadata.get_input_schema().input_names()

    def predict(x):
        if list(x.columns) != list(expected):
            raise FoodcastError(
                f"the prediction set has features {list(x.columns)} but the model of train run "
                f"{run_id} expects {expected}: use the same degree and lag_in_week"
            )
        preds = pyfunc.predict(x.reset_index(drop=True))
        preds.index = x.index
        return preds

    return predict
