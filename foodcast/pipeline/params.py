"""The pipeline's parameters, each declared once: name, type, default, bounds and help.

The stages (``foodcast.pipeline.stages``) take them, the stage commands and ``main`` get their
click options from them (``foodcast.pipeline.command``), and ``MLproject`` declares them by
hand (``tests/test_stages.py`` checks that the two agree). Imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from foodcast.tracking import names

# MLproject has no boolean type: a bool parameter is a string, "true" or "false".
MLPROJECT_TYPES: dict[type, str] = {int: "int", float: "float", str: "string", bool: "string"}
TRUE, FALSE = {"true", "1", "yes", "y", "on"}, {"false", "0", "no", "n", "off"}


@dataclass(frozen=True)
class Param:
    """A parameter of an entry point.

    Parameters
    ----------
    name : str
        MLproject name; the click option is ``--name-with-dashes``.
    type : type
        ``int``, ``float``, ``str`` or ``bool`` (``true`` / ``false`` in MLproject).
    default : object
        Default value, or ``None`` when the parameter is required.
    help : str
        One sentence for ``--help``.
    min, max : int or float, optional
        Smallest and largest accepted values (numbers).
    choices : tuple of str, optional
        The accepted values (strings).
    keyed : bool, default True
        Whether its value is part of a stage's cache key. False for a parameter that says how
        a result is computed, not what it is (``engine``: both engines give the same numbers).
    """

    name: str
    type: type
    default: object
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None
    keyed: bool = True

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def required(self) -> bool:
        return self.default is None

    def cast(self, value: Any) -> Any:
        """``value`` as this parameter's type (``"false"`` is False for a bool)."""
        if self.type is bool and not isinstance(value, bool):
            text = str(value).strip().lower()
            if text not in TRUE | FALSE:
                raise ValueError(f"{self.name} must be true or false, got {value!r}")
            return text in TRUE
        return self.type(value)

    def text(self, value: Any) -> str:
        """``value`` as ``mlflow run`` passes and logs it."""
        return str(value).lower() if self.type is bool else str(value)

    def but(self, **changes: Any) -> Param:
        """A copy with some fields changed (e.g. another default for one entry point)."""
        return replace(self, **changes)


def run_id_param(stage: str) -> Param:
    """The required parameter through which a stage receives an upstream ``stage``'s run id."""
    return Param(names.run_id_param(stage), str, None, f"Run id of a FINISHED {stage} run.")


def keyed_params(params: Mapping[str, Any], declared: Iterable[Param]) -> dict[str, Any]:
    """``params`` without those of ``declared`` that are not part of a cache key (``keyed``)."""
    unkeyed = {p.name for p in declared if not p.keyed}
    return {name: value for name, value in params.items() if name not in unkeyed}


def param_texts(params: Iterable[Param], values: Mapping[str, Any]) -> dict[str, str]:
    """``{name: text}`` of ``params`` with ``values``, as ``mlflow run`` passes and logs them."""
    return {p.name: p.text(values[p.name]) for p in params}


START_WEEK = Param("start_week", int, 180, "First training week (week 1 starts Monday 2014-12-29).", min=1)
END_WEEK = Param("end_week", int, 200, "Last training week (inclusive).", min=1)
NEXT_WEEK = Param("next_week", int, 201, "Week to forecast; its lags are read from the weeks before it.", min=2)
# Features: the same for features (training) and future (prediction). The defaults are the
# core's DEFAULT_FEATURES, the tutorial's values its TUTORIAL_FEATURES (tests check both).
DEGREE = Param(
    "degree",
    int,
    1,
    "Hour-of-day harmonics: hour_cos_k, hour_sin_k for k = 1..degree; must match between features and future.",
    min=0,
)
LAG_IN_WEEK = Param(
    "lag_in_week",
    int,
    0,
    "Weekly lags: cash-in at the same hour 1..lag_in_week weeks "
    "earlier (tutorial: 1); must match between features and future.",
    min=0,
)
LEVEL_WEEKS = Param(
    "level_weeks",
    int,
    8,
    "Level feature level_<L>W: the mean hourly cash-in of the L weeks "
    "before the row's week (0: none; tutorial: 0); must match between features and future.",
    min=0,
)
LEVEL_HALFLIFE = Param(
    "level_halflife",
    float,
    2.0,
    "Weights of the level's weeks: the week k weeks before "
    "weighs 0.5 ** ((k - 1) / level_halflife), so the level follows the season sooner "
    "(0: a plain mean; tutorial: 0); must match between features and future.",
    min=0.0,
)
CALENDAR_INDEX = Param(
    "calendar_index",
    bool,
    True,
    "Also give the weekday (0-6) and the hour (0-23) as numbers "
    "(tutorial: false); must match between features and future.",
)
PROFILE_WEEKS = Param(
    "profile_weeks",
    int,
    21,
    "Profile feature profile_<P>W: the hour's share of a typical "
    "week, pooled over the P weeks around the row's week (its own left out; for the forecast "
    "week, the P weeks before it, which must all be complete); 0: none (tutorial: 0); needed "
    "by estimator=profile; must match between features and future.",
    min=0,
)
PROFILE_GROUPS = Param(
    "profile_groups",
    int,
    2,
    "Groups of weekdays (1-7) whose hours are pooled alike in the profile; must match between features and future.",
    min=1,
    max=7,
)
FEATURE_PARAMS = (DEGREE, LAG_IN_WEEK, LEVEL_WEEKS, LEVEL_HALFLIFE, CALENDAR_INDEX, PROFILE_WEEKS, PROFILE_GROUPS)

N_FOLD = Param("n_fold", int, 10, "Chronological cross-validation folds.", min=2)
# The model: the same for validate, train and backtest. Defaults: the core's DEFAULT_MODEL.
ESTIMATOR = Param(
    "estimator",
    str,
    "profile",
    "profile: the level times the profile times the median ratio "
    "of cash-in to profile by groups of hours (needs profile_weeks >= 1); gradient_boosting: "
    "boosting of the hourly median; random_forest: the tutorial's forest of the mean.",
    choices=("profile", "gradient_boosting", "random_forest"),
)
N_ESTIMATORS = Param(
    "n_estimators", int, 100, "Boosting stages, or trees of the forest (tutorial: 10); not used by profile.", min=1
)
MAX_DEPTH = Param(
    "max_depth",
    int,
    5,
    "Depth of each tree; 0 = unlimited, for random_forest only (tutorial: 0); not used by profile.",
    min=0,
)
MIN_SAMPLES_LEAF = Param("min_samples_leaf", int, 1, "Fewest training hours in a leaf; not used by profile.", min=1)
N_BINS = Param(
    "n_bins",
    int,
    5,
    "estimator=profile: groups of hours of equal size by their profile, each with "
    "its own median ratio (and interval bounds; at most the 168 hours of a week); not used by the tree models.",
    min=1,
    max=168,
)
LEVEL_SCALED = Param(
    "level_scaled",
    bool,
    True,
    "Fit the models on cash-in divided by the level feature (needs level_weeks > 0; tutorial: false).",
)
N_MODELS = Param("n_models", int, 10, "Bootstrap members of the multi-model (y_pred_0..).", min=1)
INTERVAL_LEVEL = Param(
    "interval_level",
    float,
    0.8,
    "Probability that [y_lower, y_upper] holds the truth, calibrated out of sample.",
    min=0.01,
    max=0.99,
)
CALIBRATION_FOLDS = Param("calibration_folds", int, 4, "Blocks of training rows the interval is calibrated on.", min=2)
MODEL_PARAMS = (
    ESTIMATOR,
    N_ESTIMATORS,
    MAX_DEPTH,
    MIN_SAMPLES_LEAF,
    N_BINS,
    LEVEL_SCALED,
    N_MODELS,
    INTERVAL_LEVEL,
    CALIBRATION_FOLDS,
)


def feature_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """The feature parameters among ``values``, as the core's feature functions take them."""
    return {p.name: values[p.name] for p in FEATURE_PARAMS}


def model_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """The model parameters among ``values``, as ``multi_model.forecast_model`` takes them
    (``estimator`` is its ``model``)."""
    settings = {p.name: values[p.name] for p in MODEL_PARAMS if p is not ESTIMATOR}
    return {"model": values[ESTIMATOR.name], **settings}


GRANULARITY = Param(
    "granularity",
    str,
    "chain",
    "chain: forecast the chain's total; restaurant: forecast every restaurant and the chain's total "
    "(rows named chain, the sum of the restaurants' forecasts hour by hour).",
    choices=("chain", "restaurant"),
)
CLOSED_WEEKS = Param(
    "closed_weeks",
    int,
    4,
    "granularity=restaurant: a restaurant with no orders in the CLOSED_WEEKS weeks before the "
    "forecast week is taken as closed and not forecast (the run says so).",
    min=1,
)
RESTAURANT_MODEL = Param(
    "restaurant_model",
    str,
    "local",
    "granularity=restaurant: local (a model per restaurant with enough history, the pooled model "
    "for the others), global (one pooled model for every restaurant, sizes scaled by their level) "
    "or both (local, each restaurant's own model averaged with the pooled one).",
    choices=("local", "global", "both"),
)

ALLOW_MISSING = Param(
    "allow_missing",
    bool,
    False,
    "false: refuse an incomplete week (a restaurant's batch "
    "missing or empty between two weeks it has orders); true: read it anyway and record it.",
)
USE_CACHE = Param(
    "use_cache",
    bool,
    True,
    "true: reuse finished stages whose inputs have not changed; false: launch every stage anew.",
)
MODEL = Param(
    "model",
    str,
    "trained",
    "Which model forecasts: trained (this run's train stage) or champion "
    "(the registered model's champion, after promote).",
    choices=("trained", "champion"),
)
REGISTERED_MODEL_NAME = Param(
    "registered_model_name",
    str,
    "foodcast",
    "The registered model train adds its multi_model to as a version (alias challenger) and promote moves champion in.",
)
SET_ALIAS = Param(
    "set_alias",
    bool,
    False,
    "true: also point the alias challenger at the version registered. Under main, promote points "
    "challenger at the version it gates: the aliases say what promote compared.",
)
GATE_WEEKS = Param(
    "gate_weeks",
    int,
    4,
    "Weeks (up to the challenger's last training week) on which promote "
    "backtests the challenger's and the champion's configurations.",
    min=1,
)
GATE_MARGIN = Param(
    "gate_margin",
    float,
    0.0,
    "The challenger becomes champion when its backtest MAE is at most (1 + gate_margin) times the champion's.",
    min=0.0,
)
TRAIN_RUN_ID = Param("train_run_id", str, "", "Run id of a FINISHED train run (or give model_uri).")
MODEL_URI = Param(
    "model_uri",
    str,
    "",
    "A registered model, e.g. models:/foodcast@champion or models:/foodcast/3 (or give train_run_id).",
)

PARAMS_FILE = Param(
    "params",
    str,
    "",
    "A YAML file of main's parameters (the names -P takes), e.g. a team's settings; -P wins over it. "
    "A relative path is relative to the project directory. Logged on the main run (parameters/).",
)
VERBOSE = Param(
    "verbose",
    bool,
    False,
    "true: also show MLflow's and the stages' log lines (as FOODCAST_LOG_LEVEL=INFO does); "
    "false: one line per stage and the result.",
)
WORKERS = Param(
    "workers",
    int,
    0,
    "Processes the pipeline keeps busy: main runs at most that many stages at once, and each "
    "stage's per-restaurant work (reading batches, features, fits) runs on that many; 0: every core. "
    "Results do not depend on it, so it is not part of any cache key (the stages read it as FOODCAST_WORKERS).",
    min=0,
)
ENGINE = Param(
    "engine",
    str,
    "local",
    "Where the per-restaurant work runs: local (this machine's processes, see workers) or spark "
    "(Apache Spark, master from FOODCAST_SPARK_MASTER, default local[*]; needs the spark extra and "
    "Java); load then reads the batches with Spark. Both give the same numbers, so it is not part "
    "of any cache key.",
    choices=("local", "spark"),
    keyed=False,
)
MAIN_ONLY = (MODEL, USE_CACHE, PARAMS_FILE, VERBOSE, WORKERS)
# Weeks main trains on when none is given: as many as START_WEEK..END_WEEK's defaults.
WINDOW_WEEKS_DEFAULT = END_WEEK.default - START_WEEK.default + 1  # type: ignore[operator]
# main's own reading of a stage parameter, where it differs from the stage's: a week left at 0
# follows from the others, or from the data (foodcast.pipeline.main_options.resolve_weeks).
MAIN_OVERRIDES = {
    "start_week": START_WEEK.but(
        default=0, min=0, help=f"First training week (0: END_WEEK - {WINDOW_WEEKS_DEFAULT - 1})."
    ),
    "end_week": END_WEEK.but(
        default=0,
        min=0,
        help=f"Last training week (0: START_WEEK + {WINDOW_WEEKS_DEFAULT - 1} when START_WEEK is given, "
        "else NEXT_WEEK - 1 when given, else the last complete week of the data).",
    ),
    "next_week": NEXT_WEEK.but(default=0, min=0, help="Week to forecast, after END_WEEK (0: END_WEEK + 1)."),
}

# The backtest's own.
FIRST_WEEK = Param("first_week", int, 160, "First target week of the backtest.", min=2)
LAST_WEEK = Param("last_week", int, 259, "Last target week of the backtest (inclusive).", min=2)
WINDOW_WEEKS = Param(
    "window_weeks", int, 21, "Weeks loaded before each target week, as main's end_week - start_week + 1.", min=1
)
