"""Stage names, artifact paths, model names and tags: written once, used everywhere.

Steps, ``main.py`` and the tests import these names, so renaming an artifact is a one-line
change here. What each stage takes and leaves behind is in :mod:`foodcast.application.stages`.
"""

LOAD, FEATURES, VALIDATE, TRAIN, FUTURE, PREDICT, EVALUATE, BACKTEST, PROMOTE = (
    "load", "features", "validate", "train", "future", "predict", "evaluate", "backtest", "promote",
)

# (directory, file name) of each artifact, as logged with mlflow_log_pandas / mlflow_log_plotly.
DATA = ("data", "data.csv")
X_TRAIN = ("training_set", "x_train.csv")
Y_TRAIN = ("training_set", "y_train.csv")
CV_PREDICTIONS = ("cross_validation", "predictions.csv")
VALIDATION_PLOT = ("plots", "validation.html")
X_PRED = ("prediction_set", "x_pred.csv")
Y_PRED = ("predictions", "y_pred.csv")
PREDICTIONS_PLOT = ("plots", "predictions.html")
EVALUATION = ("evaluation", "forecast_vs_actual.csv")
EVALUATION_PLOT = ("plots", "evaluation.html")
BACKTEST_WEEKS = ("backtest", "weeks.csv")
BACKTEST_PLOT = ("plots", "backtest.html")

# Columns holding money (GBP): written to the cent in every CSV artifact.
MONEY_COLUMN = r"cash_in|lag_\d+W|y_pred(_\w+)?|y_lower|y_upper|mae\w*|width"
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S"  # ISO 8601, as CSV artifacts write timestamps

SIMPLE_MODEL = "simple_model"
MULTI_MODEL = "multi_model"

STEP_TAG = "foodcast.step"
CACHE_KEY_TAG = "foodcast.cache_key"
CACHE_INDEX_PREFIX = "foodcast.cache."
ERROR_TAG = "foodcast.error"
WEEK_TAG = "foodcast.week"  # on a predict run: the week it forecast; on an evaluate run: the week it scored
LINEAGE_FILE = "lineage.json"


def run_id_param(stage: str) -> str:
    """Name of the parameter carrying an upstream ``stage``'s run id, e.g. ``load_run_id``."""
    return f"{stage}_run_id"


def upstream_tag(stage: str) -> str:
    """Tag a step sets for each run it consumed, e.g. ``foodcast.upstream.load_run_id``."""
    return f"foodcast.upstream.{run_id_param(stage)}"


def artifact_path(artifact) -> str:
    """``dir/file`` path of an artifact pair."""
    return "/".join(artifact)


def cache_index_tag(key: str) -> str:
    """Tag whose *name* carries a cache key, e.g. ``foodcast.cache.<sha256>``.

    The tracking store indexes tags by name, not by value: a lookup on this tag's name stays
    as fast with 10,000 runs in the experiment as with 100, where one on the value of
    ``foodcast.cache_key`` grows with the number of runs.
    """
    return f"{CACHE_INDEX_PREFIX}{key}"


def cache_tags(key: str, stage: str) -> dict[str, str]:
    """The tags that make a run of ``stage`` findable by the cache under ``key``."""
    return {CACHE_KEY_TAG: key, cache_index_tag(key): stage}
