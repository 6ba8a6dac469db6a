"""The stage registry: each stage of the pipeline defined once.

A :class:`Stage` says what its MLflow entry point takes (typed parameters with defaults and
the upstream stages whose run ids it receives), what it leaves behind (artifacts, logged
models), which batch weeks it reads, which installed distributions its results depend on,
and whether ``main`` runs it. Everything else is read from here: the stage commands' click
options (:mod:`foodcast.application.command`), ``main``'s options, the orchestrator's DAG,
the cache key and the reuse check, the lineage and summary lines, the tests and ``bench/``.

``MLproject`` stays hand-written and readable; ``tests/test_stages.py`` checks that it agrees
with this registry (names, types, defaults, commands).

This module imports nothing heavy: the stage commands read it before handing their work over.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

from foodcast.application import catalog
from foodcast.settings import PROJECT_ROOT as PROJECT_DIR

# MLproject has no boolean type: a bool parameter is a string, "true" or "false".
MLPROJECT_TYPES = {int: "int", float: "float", str: "string", bool: "string"}
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
    """

    name: str
    type: type
    default: object
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None

    @property
    def option(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def required(self) -> bool:
        return self.default is None

    def cast(self, value):
        """``value`` as this parameter's type (``"false"`` is False for a bool)."""
        if self.type is bool and not isinstance(value, bool):
            text = str(value).strip().lower()
            if text not in TRUE | FALSE:
                raise ValueError(f"{self.name} must be true or false, got {value!r}")
            return text in TRUE
        return self.type(value)

    def text(self, value) -> str:
        """``value`` as ``mlflow run`` passes and logs it."""
        return str(value).lower() if self.type is bool else str(value)

    def but(self, **changes) -> "Param":
        """A copy with some fields changed (e.g. another default for one entry point)."""
        return replace(self, **changes)


def run_id_param(stage: str) -> Param:
    """The required parameter through which a stage receives an upstream ``stage``'s run id."""
    return Param(catalog.run_id_param(stage), str, None, f"Run id of a FINISHED {stage} run.")


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
    """One node of a stage that fans out: its name (e.g. a week), option values of its own
    (``{"week": 201}``), and upstream runs taken from earlier runs (:class:`EarlierRun`)."""

    name: str
    values: Mapping[str, object] = field(default_factory=dict)
    inputs: Mapping[str, EarlierRun] = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    """One MLflow entry point of the pipeline.

    Parameters
    ----------
    name : str
        Entry point, run name and ``foodcast.step`` tag.
    summary : str
        What the stage does, in one line (lineage, ``--help`` of main).
    params : tuple of Param
        Its own parameters; ``main`` passes its option of the same name to each.
    upstream : tuple of str
        Stages whose run ids it receives, as ``<stage>_run_id`` parameters (listed first).
    artifacts : tuple of (str, str)
        ``(directory, file)`` of every artifact it logs.
    models : tuple of str
        Names of the models it logs.
    batch_weeks : callable, optional
        ``options -> (first, last)``: the weeks of batches it reads, for the cache key.
    packages : tuple of str
        Installed distributions its results depend on: their versions are part of its cache key.
    imports : tuple of str
        The heavy modules its body imports (what main's fork server imports ahead for it).
    headline_metrics : tuple of str
        Metrics ``main`` copies onto the parent run.
    in_main : bool
        Whether ``main`` runs it.
    runs_if : callable, optional
        ``options -> str | None``: for an optional stage, why it is skipped (``None``: it runs).
    partitions : callable, optional
        ``options -> list of (Partition | (name, reason))``: the nodes of a stage that fans
        out, or for each one left out, its name and why.
    late : tuple of str
        Parameters ``main`` does not take from its options but works out when the stage is
        about to run, with ``late_params``.
    late_params : callable, optional
        ``(options, runs, client) -> {parameter: value}``, ``runs`` being ``{stage: run id}`` of
        the stages resolved so far.
    waits_for : callable, optional
        ``options -> tuple of stage names``: stages (all their nodes) that must have ended
        before this one runs, besides its upstream stages.
    cache_context : callable, optional
        ``(options, client, params) -> str``: what else its result depends on, given its
        parameters, folded into its cache key (e.g. the registered model's current champion).
    """

    name: str
    summary: str
    params: tuple[Param, ...] = ()
    upstream: tuple[str, ...] = ()
    artifacts: tuple[tuple[str, str], ...] = ()
    models: tuple[str, ...] = ()
    batch_weeks: Callable[[Mapping], tuple[int, int]] | None = None
    packages: tuple[str, ...] = ("mlflow", "pandas", "numpy")
    imports: tuple[str, ...] = ()
    headline_metrics: tuple[str, ...] = ()
    in_main: bool = True
    runs_if: Callable[[Mapping], str | None] | None = field(default=None, compare=False)
    partitions: Callable[[Mapping], list] | None = field(default=None, compare=False)
    late: tuple[str, ...] = ()
    late_params: Callable | None = field(default=None, compare=False)
    waits_for: Callable[[Mapping], tuple[str, ...]] | None = field(default=None, compare=False)
    cache_context: Callable | None = field(default=None, compare=False)

    @property
    def all_params(self) -> tuple[Param, ...]:
        """Upstream run ids first, then its own parameters: the entry point's parameters."""
        return tuple(run_id_param(u) for u in self.upstream) + self.params


def param_texts(params, values: Mapping) -> dict[str, str]:
    """``{name: text}`` of ``params`` with ``values``, as ``mlflow run`` passes and logs them."""
    return {p.name: p.text(values[p.name]) for p in params}


# ----------------------------------------------------------------------------- parameters

START_WEEK = Param("start_week", int, 180, "First training week (week 1 starts Monday 2014-12-29).", min=1)
END_WEEK = Param("end_week", int, 200, "Last training week (inclusive).", min=1)
NEXT_WEEK = Param("next_week", int, 201, "Week to forecast; its lags are read from the weeks before it.", min=2)
# Features: the same for features (training) and future (prediction). The defaults are the
# domain's DEFAULT_FEATURES, the tutorial's values its TUTORIAL_FEATURES (tests check both).
DEGREE = Param("degree", int, 1, "Hour-of-day harmonics: hour_cos_k, hour_sin_k for k = 1..degree; "
               "must match between features and future.", min=0)
LAG_IN_WEEK = Param("lag_in_week", int, 0, "Weekly lags: cash-in at the same hour 1..lag_in_week weeks "
                    "earlier (tutorial: 1); must match between features and future.", min=0)
LEVEL_WEEKS = Param("level_weeks", int, 8, "Level feature level_<L>W: the mean hourly cash-in of the L weeks "
                    "before the row's week (0: none; tutorial: 0); must match between features and future.", min=0)
LEVEL_HALFLIFE = Param("level_halflife", float, 2.0, "Weights of the level's weeks: the week k weeks before "
                       "weighs 0.5 ** ((k - 1) / level_halflife), so the level follows the season sooner "
                       "(0: a plain mean; tutorial: 0); must match between features and future.", min=0.0)
CALENDAR_INDEX = Param("calendar_index", bool, True, "Also give the weekday (0-6) and the hour (0-23) as numbers "
                       "(tutorial: false); must match between features and future.")
PROFILE_WEEKS = Param("profile_weeks", int, 21, "Profile feature profile_<P>W: the hour's share of a typical "
                      "week, pooled over the P weeks around the row's week (its own left out; for the forecast "
                      "week, the P weeks before it, which must all be complete); 0: none (tutorial: 0); needed "
                      "by estimator=profile; must match between features and future.", min=0)
PROFILE_GROUPS = Param("profile_groups", int, 2, "Groups of weekdays (1-7) whose hours are pooled alike in the "
                       "profile; must match between features and future.", min=1, max=7)
FEATURE_PARAMS = (DEGREE, LAG_IN_WEEK, LEVEL_WEEKS, LEVEL_HALFLIFE, CALENDAR_INDEX, PROFILE_WEEKS,
                  PROFILE_GROUPS)

N_FOLD = Param("n_fold", int, 10, "Chronological cross-validation folds.", min=2)
# The model: the same for validate, train and backtest. Defaults: the domain's DEFAULT_MODEL.
ESTIMATOR = Param("estimator", str, "profile", "profile: the level times the profile times the median ratio "
                  "of cash-in to profile by groups of hours (needs profile_weeks >= 1); gradient_boosting: "
                  "boosting of the hourly median; random_forest: the tutorial's forest of the mean.",
                  choices=("profile", "gradient_boosting", "random_forest"))
N_ESTIMATORS = Param("n_estimators", int, 100, "Boosting stages, or trees of the forest (tutorial: 10); "
                     "not used by profile.", min=1)
MAX_DEPTH = Param("max_depth", int, 5, "Depth of each tree; 0 = unlimited, for random_forest only (tutorial: 0); "
                  "not used by profile.", min=0)
MIN_SAMPLES_LEAF = Param("min_samples_leaf", int, 1, "Fewest training hours in a leaf; not used by profile.", min=1)
N_BINS = Param("n_bins", int, 5, "estimator=profile: groups of hours of equal size by their profile, each with "
               "its own median ratio (and interval bounds; at most the 168 hours of a week); not used by the tree models.",
               min=1, max=168)
LEVEL_SCALED = Param("level_scaled", bool, True, "Fit the models on cash-in divided by the level feature "
                     "(needs level_weeks > 0; tutorial: false).")
N_MODELS = Param("n_models", int, 10, "Bootstrap members of the multi-model (y_pred_0..).", min=1)
INTERVAL_LEVEL = Param("interval_level", float, 0.8, "Probability that [y_lower, y_upper] holds the truth, "
                       "calibrated out of sample.", min=0.01, max=0.99)
CALIBRATION_FOLDS = Param("calibration_folds", int, 4, "Blocks of training rows the interval is calibrated on.",
                          min=2)
MODEL_PARAMS = (ESTIMATOR, N_ESTIMATORS, MAX_DEPTH, MIN_SAMPLES_LEAF, N_BINS, LEVEL_SCALED, N_MODELS,
                INTERVAL_LEVEL, CALIBRATION_FOLDS)


def feature_settings(values: Mapping) -> dict:
    """The feature parameters among ``values``, as the domain's feature functions take them."""
    return {p.name: values[p.name] for p in FEATURE_PARAMS}


def model_settings(values: Mapping) -> dict:
    """The model parameters among ``values``, as ``estimators.forecast_model`` takes them
    (``estimator`` is its ``model``)."""
    settings = {p.name: values[p.name] for p in MODEL_PARAMS if p is not ESTIMATOR}
    return {"model": values[ESTIMATOR.name], **settings}

ALLOW_MISSING = Param("allow_missing", bool, False, "false: refuse an incomplete week (a restaurant's batch "
                      "missing or empty between two weeks it has orders); true: read it anyway and record it.")
USE_CACHE = Param("use_cache", bool, True, "true: reuse finished stages whose inputs have not changed; "
                  "false: launch every stage anew.")
MODEL = Param("model", str, "trained", "Which model forecasts: trained (this run's train stage) or champion "
              "(the registered model's champion, after promote).", choices=("trained", "champion"))
REGISTERED_MODEL_NAME = Param("registered_model_name", str, "foodcast", "The registered model train adds its "
                              "multi_model to as a version (alias challenger) and promote moves champion in.")
GATE_WEEKS = Param("gate_weeks", int, 4, "Weeks (up to the challenger's last training week) on which promote "
                   "backtests the challenger's and the champion's configurations.", min=1)
GATE_MARGIN = Param("gate_margin", float, 0.0, "The challenger becomes champion when its backtest MAE is at most "
                    "(1 + gate_margin) times the champion's.", min=0.0)
TRAIN_RUN_ID = Param("train_run_id", str, "", "Run id of a FINISHED train run (or give model_uri).")
MODEL_URI = Param("model_uri", str, "", "A registered model, e.g. models:/foodcast@champion or "
                  "models:/foodcast/3 (or give train_run_id).")

MAIN_ONLY = (MODEL, USE_CACHE)
# main's own reading of a stage parameter, where it differs from the stage's.
MAIN_OVERRIDES = {
    "next_week": NEXT_WEEK.but(min=0, help="Week to forecast, after END_WEEK (0: END_WEEK + 1)."),
}

# ----------------------------------------------------------------------------- stages

SKLEARN = ("mlflow", "pandas", "numpy", "scikit-learn")


def _future_weeks(options: Mapping) -> tuple[int, int]:
    """The weeks of batches the prediction set of ``next_week`` is built from."""
    from foodcast.domain.forecast import past_weeks

    week = int(options["next_week"])
    return week - past_weeks(options["lag_in_week"], options["level_weeks"], options["profile_weeks"]), week - 1

# What every stage command imports (the step frame), and what stages share.
COMMON_IMPORTS = ("pandas", "click", "foodcast.application.step", "foodcast.application.mlflow_utils",
                  "foodcast.settings")
_READS_RUNS = ("mlflow.data.pandas_dataset", "foodcast.application.datasets", "foodcast.application.upstream")
_FITS = ("sklearn.ensemble", "foodcast.domain.multi_model")
_PLOTS = ("plotly.graph_objects", "plotly.io")

LOAD = Stage(
    catalog.LOAD,
    "reads the weekly batches of the training weeks into the chain's hourly cash-in",
    params=(START_WEEK, END_WEEK, ALLOW_MISSING),
    artifacts=(catalog.DATA,),
    batch_weeks=lambda o: (o["start_week"], o["end_week"]),
    imports=("mlflow.data.pandas_dataset", "foodcast.application.datasets", "foodcast.application.fingerprint",
             "foodcast.domain.transform"),
)
FEATURES = Stage(
    catalog.FEATURES,
    "builds the training features and target from the hourly cash-in",
    params=FEATURE_PARAMS,
    upstream=(catalog.LOAD,),
    artifacts=(catalog.X_TRAIN, catalog.Y_TRAIN),
    imports=_READS_RUNS + ("foodcast.domain.feature_engineering",),
)
VALIDATE = Stage(
    catalog.VALIDATE,
    "cross-validates the multi-model chronologically on the training set",
    params=(N_FOLD, *MODEL_PARAMS),
    upstream=(catalog.FEATURES,),
    artifacts=(catalog.CV_PREDICTIONS, catalog.VALIDATION_PLOT),
    packages=SKLEARN + ("plotly",),
    imports=_READS_RUNS + _FITS + ("sklearn.model_selection", "foodcast.domain.forecast",
                                   "foodcast.application.metrics") + _PLOTS,
    headline_metrics=("MAE_SIMPLE_MEAN", "MAE_MIN_MEAN", "MAE_MAX_MEAN"),
)
TRAIN = Stage(
    catalog.TRAIN,
    "fits the multi-model on the whole training set and logs it",
    params=(*MODEL_PARAMS, REGISTERED_MODEL_NAME),
    upstream=(catalog.FEATURES,),
    models=(catalog.SIMPLE_MODEL, catalog.MULTI_MODEL),
    packages=SKLEARN + ("skops",),
    imports=_READS_RUNS + _FITS + ("skops.io", "mlflow.sklearn", "mlflow.pyfunc", "mlflow.models",
                                   "foodcast.application.models"),
)
FUTURE = Stage(
    catalog.FUTURE,
    "builds the prediction set of the week to forecast from the weeks before it",
    params=(NEXT_WEEK, *FEATURE_PARAMS, ALLOW_MISSING),
    artifacts=(catalog.X_PRED,),
    batch_weeks=_future_weeks,
    imports=("mlflow.data.pandas_dataset", "foodcast.application.datasets", "foodcast.application.fingerprint",
             "foodcast.domain.transform", "foodcast.domain.feature_engineering", "foodcast.domain.forecast"),
)
def _predict_model(options: Mapping, runs: Mapping, client) -> dict:
    """The model predict uses: this run's train stage, or the registered champion (as the
    version it is now, so that the cache key names one model)."""
    if options["model"] == "trained":
        return {TRAIN_RUN_ID.name: runs[catalog.TRAIN], MODEL_URI.name: ""}
    name = options[REGISTERED_MODEL_NAME.name]
    version = client.get_model_version_by_alias(name, "champion").version
    return {TRAIN_RUN_ID.name: "", MODEL_URI.name: f"models:/{name}/{version}"}


PREDICT = Stage(
    catalog.PREDICT,
    "forecasts the week with the trained model",
    params=(TRAIN_RUN_ID, MODEL_URI),
    upstream=(catalog.FUTURE,),
    artifacts=(catalog.Y_PRED, catalog.PREDICTIONS_PLOT),
    packages=SKLEARN + ("skops", "plotly"),
    imports=_READS_RUNS + _FITS + ("mlflow.pyfunc", "foodcast.application.models", "foodcast.domain.forecast")
    + _PLOTS,
    late=(TRAIN_RUN_ID.name, MODEL_URI.name),
    late_params=_predict_model,
    waits_for=lambda o: (catalog.TRAIN,) if o["model"] == "trained" else (catalog.PROMOTE,),
)


def _actuals_missing(options: Mapping, week: int) -> str | None:
    """Why week ``week``'s actual cash-in cannot be scored against yet (``None``: it can)."""
    from foodcast.domain.transform import chain_coverage
    from foodcast.settings import data_dir

    coverage = chain_coverage(data_dir(), week, week)
    if week not in coverage.weeks:
        return f"week {week} has no data yet"
    if coverage.missing and not options.get("allow_missing"):
        return f"week {week} is incomplete ({', '.join(map(str, coverage.missing))})"
    return None


def _evaluate_partitions(options: Mapping) -> list:
    """This run's forecast once its week's batches exist (backfills), and the latest forecast
    of ``end_week`` made by an earlier run, if nobody has scored it yet (each Monday's run
    says how last week's forecast did)."""
    this, last = options["next_week"], options["end_week"]
    parts = []
    reason = _actuals_missing(options, this)
    parts.append(Partition(str(this), {"week": this}) if reason is None else (str(this), reason))
    earlier = EarlierRun(catalog.PREDICT, {catalog.WEEK_TAG: str(last)}, unless_used_by=catalog.EVALUATE)
    parts.append(Partition(str(last), {"week": last}, {catalog.PREDICT: earlier}))
    return parts


EVALUATE = Stage(
    catalog.EVALUATE,
    "scores a week's forecast against the cash-in that week brought, next to seasonal naive "
    "and the 4-week same-hour mean",
    params=(ALLOW_MISSING,),
    upstream=(catalog.PREDICT,),
    artifacts=(catalog.EVALUATION, catalog.EVALUATION_PLOT),
    batch_weeks=lambda o: (max(1, o["week"] - 4), o["week"]),
    imports=_READS_RUNS + ("foodcast.domain.scoring", "foodcast.domain.transform", "foodcast.domain.forecast")
    + _PLOTS,
    partitions=_evaluate_partitions,
    headline_metrics=("mae_model", "mae_naive", "mae_mean4", "coverage", "width"),
)

FIRST_WEEK = Param("first_week", int, 160, "First target week of the backtest.", min=2)
LAST_WEEK = Param("last_week", int, 259, "Last target week of the backtest (inclusive).", min=2)
WINDOW_WEEKS = Param("window_weeks", int, 21, "Weeks loaded before each target week, as main's "
                     "end_week - start_week + 1.", min=1)


def _backtest_weeks(options: Mapping) -> tuple[int, int]:
    """The weeks of batches a backtest reads: every window, the weeks the prediction rows' lags,
    level and profile read, and the 4 weeks of the references."""
    from foodcast.domain.forecast import past_weeks

    history = past_weeks(options["lag_in_week"], options["level_weeks"], options["profile_weeks"])
    return max(1, options["first_week"] - max(options["window_weeks"], 4, history)), options["last_week"]


BACKTEST = Stage(
    catalog.BACKTEST,
    "replays the forecast over many past weeks, each trained on the weeks before it (rolling "
    "origin), next to seasonal naive and the 4-week same-hour mean",
    params=(FIRST_WEEK, LAST_WEEK, WINDOW_WEEKS, *FEATURE_PARAMS, *MODEL_PARAMS, ALLOW_MISSING),
    artifacts=(catalog.BACKTEST_WEEKS, catalog.BACKTEST_PLOT),
    batch_weeks=_backtest_weeks,
    packages=SKLEARN + ("plotly", "joblib"),
    imports=("foodcast.domain.backtest", "foodcast.domain.transform") + _PLOTS,
    in_main=False,
)

def _gate_weeks(options: Mapping) -> tuple[int, int]:
    from foodcast.application.registry import gate_weeks_read
    from foodcast.domain.forecast import past_weeks

    # main knows the challenger's features (not the champion's, which promote adds when it reads).
    history = past_weeks(options.get("lag_in_week", 1), options.get("level_weeks", 0), options.get("profile_weeks", 0))
    return gate_weeks_read(options["start_week"], options["end_week"], options["gate_weeks"], history)


def _champion(options: Mapping, client, params: Mapping) -> str:
    """The champion promote compares with, which its result depends on: the version the alias
    points at now ("" if none). When that is the challenger itself (this train run's version),
    the champion it replaced when promote made it champion, so that the promote run that did
    it is the one reused (a version made champion by hand: "", promote then has nothing to do)."""
    from mlflow.exceptions import MlflowException

    from foodcast.application.registry import REPLACED_TAG, TRAIN_RUN_TAG

    try:
        champion = client.get_model_version_by_alias(options[REGISTERED_MODEL_NAME.name], "champion")
    except MlflowException:
        return ""
    if champion.tags.get(TRAIN_RUN_TAG) == params.get(catalog.run_id_param(catalog.TRAIN)):
        return champion.tags.get(REPLACED_TAG, "")
    return champion.version


PROMOTE = Stage(
    catalog.PROMOTE,
    "moves the champion alias to the challenger (this train run's model version) when it scores at "
    "least as well as the champion on the same weeks",
    params=(REGISTERED_MODEL_NAME, GATE_WEEKS, GATE_MARGIN, ALLOW_MISSING),
    upstream=(catalog.TRAIN,),
    packages=SKLEARN + ("skops", "joblib"),
    imports=_READS_RUNS + ("foodcast.domain.backtest", "foodcast.application.registry"),
    runs_if=lambda o: None if o["registered_model_name"] else "registered_model_name is empty: nothing is registered",
    waits_for=lambda o: (catalog.VALIDATE,),  # the challenger's configuration scored first
    cache_context=lambda o, client, params: f"champion={_champion(o, client, params)}",
    batch_weeks=lambda o: _gate_weeks(o),
)

# In an order in which every stage comes after those it takes from or waits for.
STAGES: dict[str, Stage] = {s.name: s for s in (LOAD, FEATURES, VALIDATE, TRAIN, PROMOTE, FUTURE, PREDICT,
                                                EVALUATE, BACKTEST)}
PIPELINE = tuple(s for s in STAGES.values() if s.in_main)
# The pipeline's product, named in main's summary line: (stage, artifact).
FORECAST = (catalog.PREDICT, catalog.Y_PRED)


def main_params(pipeline=None) -> tuple[Param, ...]:
    """``main``'s parameters: every parameter its stages consume (once, in stage order, as main
    reads it), then its own. An option no stage consumes cannot be declared.

    Raises
    ------
    ValueError
        If two stages declare a parameter of the same name differently.
    """
    seen: dict[str, Param] = {}
    for stage in PIPELINE if pipeline is None else pipeline:
        for param in stage.params:
            if param.name in stage.late:
                continue  # worked out by main when the stage runs
            mine = MAIN_OVERRIDES.get(param.name, param)
            if param.name in seen and (seen[param.name].type, seen[param.name].default) != (mine.type, mine.default):
                raise ValueError(f"stages disagree on parameter {param.name}: {seen[param.name]} vs {mine}")
            seen.setdefault(param.name, mine)
    for param in MAIN_ONLY:
        if param.name in seen:
            raise ValueError(f"main's own parameter {param.name} is also a stage parameter")
        seen[param.name] = param
    weeks = [p for p in seen.values() if p.name in ("start_week", "end_week", "next_week")]  # what a user sets first
    return tuple(weeks + [p for p in seen.values() if p not in weeks])


def stage(name: str) -> Stage:
    """The registered stage ``name``."""
    try:
        return STAGES[name]
    except KeyError:
        raise KeyError(f"no stage {name!r}; the registry has {', '.join(STAGES)}") from None


def check_registry(registry: Mapping[str, Stage] | None = None) -> None:
    """Refuse an inconsistent registry: unknown or cyclic upstream stages, parameter clashes.

    Parameters
    ----------
    registry : mapping, optional
        ``{name: Stage}``; this module's ``STAGES`` by default.

    Raises
    ------
    ValueError
        Saying which stage and what.
    """
    from graphlib import CycleError, TopologicalSorter

    registry = STAGES if registry is None else registry
    for s in registry.values():
        for u in s.upstream:
            if u not in registry:
                raise ValueError(f"stage {s.name}: unknown upstream stage {u}")
            if s.in_main and not registry[u].in_main:
                raise ValueError(f"stage {s.name} runs in main but its upstream {u} does not")
        names = [p.name for p in s.all_params]
        if len(names) != len(set(names)):
            raise ValueError(f"stage {s.name}: a parameter is declared twice: {names}")
        for p in s.all_params:
            if p.type not in MLPROJECT_TYPES:
                raise ValueError(f"stage {s.name}: parameter {p.name} has unsupported type {p.type}")
    try:
        TopologicalSorter({s.name: s.upstream for s in registry.values()}).prepare()
    except CycleError as exc:
        raise ValueError(f"the stages form a cycle: {exc.args[1]}") from None
    main_params([s for s in registry.values() if s.in_main])


def mlproject_params(params) -> dict[str, dict]:
    """How MLproject declares ``params``: ``{name: {"type": ..., "default": ...}}``."""
    out = {}
    for p in params:
        spec = {"type": MLPROJECT_TYPES[p.type]}
        if not p.required:
            spec["default"] = p.text(p.default) if p.type is bool else p.default
        out[p.name] = spec
    return out


def mlproject_disagreements(project_dir) -> list[str]:
    """Where ``MLproject`` and this registry disagree, one line each (empty: they agree).

    Checks every registered stage's entry point and ``main``'s: parameter names, types and
    defaults, and that the command passes each parameter as its option (``--name {name}``).
    """
    import os

    import yaml

    with open(os.path.join(project_dir, "MLproject"), encoding="utf-8") as f:
        entry_points = yaml.safe_load(f)["entry_points"]
    expected = {"main": main_params(), **{s.name: s.all_params for s in STAGES.values()}}
    problems = []
    for name, params in expected.items():
        entry = entry_points.get(name)
        if entry is None:
            problems.append(f"MLproject has no entry point {name}")
            continue
        declared = {}
        for param, spec in (entry.get("parameters") or {}).items():
            declared[param] = spec if isinstance(spec, dict) else {"type": spec}
            declared[param].setdefault("type", "string")
        wanted = mlproject_params(params)
        for param in sorted(set(declared) | set(wanted)):
            if param not in wanted:
                problems.append(f"MLproject entry point {name} declares {param}, which the registry does not")
            elif param not in declared:
                problems.append(f"MLproject entry point {name} lacks parameter {param}")
            elif declared[param] != wanted[param]:
                problems.append(f"MLproject entry point {name}, parameter {param}: {declared[param]} "
                                f"but the registry says {wanted[param]}")
        command = " ".join(str(entry.get("command", "")).split())
        for p in params:
            if f"{p.option} {{{p.name}}}" not in command:
                problems.append(f"MLproject entry point {name}: its command does not pass {p.option} {{{p.name}}}")
    return problems


def levels(pipeline=None) -> tuple[tuple[str, ...], ...]:
    """The stages of ``main`` by depth in the DAG, with its default options: a level's stages can
    run at the same time."""
    pipeline = PIPELINE if pipeline is None else tuple(pipeline)
    defaults = {p.name: p.default for p in main_params(pipeline)}
    depth: dict[str, int] = {}
    for s in pipeline:  # the registry lists a stage after those it takes from or waits for
        before = set(s.upstream) | set(s.waits_for(defaults) if s.waits_for else ())
        depth[s.name] = 1 + max((depth[u] for u in before if u in depth), default=-1)
    return tuple(tuple(s.name for s in pipeline if depth[s.name] == d) for d in range(max(depth.values()) + 1))
