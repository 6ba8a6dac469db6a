"""What the runs are called: stage names, artifact paths, model names, tags and aliases.

Written once, used by the steps, ``main``, the stage table and the tests alike, so renaming an
artifact is a one-line change here. Nothing heavy is imported: the stage table reads it.
"""

from __future__ import annotations

LOAD, FEATURES, VALIDATE, TRAIN, FUTURE, PREDICT, EVALUATE, BACKTEST, PROMOTE = (
    "load",
    "features",
    "validate",
    "train",
    "future",
    "predict",
    "evaluate",
    "backtest",
    "promote",
)
MAIN = "main"

# (directory, file name) of each artifact, as logged with mlflow_log_pandas / mlflow_log_plotly.
Artifact = tuple[str, str]
DATA: Artifact = ("data", "data.csv")
X_TRAIN: Artifact = ("training_set", "x_train.csv")
Y_TRAIN: Artifact = ("training_set", "y_train.csv")
CV_PREDICTIONS: Artifact = ("cross_validation", "predictions.csv")
VALIDATION_PLOT: Artifact = ("plots", "validation.html")
X_PRED: Artifact = ("prediction_set", "x_pred.csv")
Y_PRED: Artifact = ("predictions", "y_pred.csv")
PREDICTIONS_PLOT: Artifact = ("plots", "predictions.html")
EVALUATION: Artifact = ("evaluation", "forecast_vs_actual.csv")
EVALUATION_PLOT: Artifact = ("plots", "evaluation.html")
# granularity=restaurant only: one row per restaurant (evaluate, validate, backtest)
PER_RESTAURANT: Artifact = ("metrics", "per_restaurant.csv")
BACKTEST_WEEKS: Artifact = ("backtest", "weeks.csv")
BACKTEST_PLOT: Artifact = ("plots", "backtest.html")
BACKTEST_RESTAURANT_WEEKS: Artifact = ("backtest", "restaurant_weeks.csv")
LINEAGE_FILE = "lineage.json"

# Columns holding money (GBP): written to the cent in every CSV artifact.
MONEY_COLUMN = r"cash_in|lag_\d+W|y_pred(_\w+)?|y_lower|y_upper|mae\w*|width"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S"  # ISO 8601, as CSV artifacts write timestamps

SIMPLE_MODEL = "simple_model"
MULTI_MODEL = "multi_model"

# Tags of the runs.
STEP_TAG = "foodcast.step"  # which stage (or main) a run is
ERROR_TAG = "foodcast.error"  # why a run FAILED, in one line
WEEK_TAG = "foodcast.week"  # on a predict run: the week it forecast; on an evaluate run: the week it scored
NEXT_WEEK_TAG = "foodcast.next_week"  # on a main run: the week it forecasts
COVERAGE_TAG = "foodcast.coverage"  # what a read of batches held and lacked
LEFT_OUT_TAG = "foodcast.left_out"  # on a future run of restaurants: those not forecast, one line each
BATCHES_TAG = "foodcast.batches_sha256"  # the fingerprint of exactly the batch files read
SUMMARY_TAG = "foodcast.summary"  # a line the run's description shows (promote's decision)
DECISION_TAG, REASON_TAG = "foodcast.decision", "foodcast.reason"  # promote: promoted / kept, and why
CHALLENGER_VERSION_TAG = "foodcast.challenger_version"  # promote: the version it gated
CHECKSUM_PREFIX = "foodcast.sha256."  # + artifact path, or "model." + model name
FILES_PREFIX = "foodcast.files."  # + "model." + model name: the files its checksum covers
NOTE_TAG = "mlflow.note.content"  # the run's description, which the UI renders
NAME_TAG = "mlflow.runName"
PARENT_TAG = "mlflow.parentRunId"

# The model registry: aliases, and the tags of a version train registered.
CHALLENGER, CHAMPION = "challenger", "champion"
TRAIN_RUN_TAG, FEATURES_RUN_TAG, WEEKS_TAG = "train_run_id", "features_run_id", "weeks"
REPLACED_TAG = "replaced_champion"  # on a version promote made champion: the version it replaced ("" if none)
CHAMPION_SINCE_TAG = "champion_since"  # on a version promote made champion: when (epoch milliseconds)


def run_id_param(stage: str) -> str:
    """Name of the parameter carrying an upstream ``stage``'s run id, e.g. ``load_run_id``."""
    return f"{stage}_run_id"


def upstream_tag(stage: str) -> str:
    """Tag a stage sets for each run it consumed, e.g. ``foodcast.upstream.load_run_id``."""
    return f"foodcast.upstream.{run_id_param(stage)}"


def artifact_path(artifact: Artifact) -> str:
    """``dir/file`` path of an artifact pair."""
    return "/".join(artifact)


def artifact_tag(path: str) -> str:
    """Tag holding the SHA-256 of run artifact ``path`` (``dir/file``)."""
    return f"{CHECKSUM_PREFIX}{path}"


def model_tag(name: str) -> str:
    """Tag holding the digest of logged model ``name``'s files."""
    return f"{CHECKSUM_PREFIX}model.{name}"


def model_files_tag(name: str) -> str:
    """Tag holding the list (JSON) of the files of logged model ``name`` that its digest covers."""
    return f"{FILES_PREFIX}model.{name}"
