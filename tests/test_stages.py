"""The stage table and what is read from it: MLproject agreement, click options, main's
options and checks, the DAG plan, parameters, cache keys and reuse checks. Pure functions
and a temporary sqlite store: no `mlflow run` here."""

from __future__ import annotations

import dataclasses
import datetime
import importlib
import shutil

import click
import mlflow
import pytest

import main as main_module
from conftest import PROJECT, copy_project
from fixtures import make_batches
from foodcast.data.batch_files import WEEK_ONE, last_complete_week
from foodcast.errors import FoodcastError
from foodcast.pipeline import main_options, params
from foodcast.pipeline import stage_table as stages
from foodcast.pipeline.cache import cache_key, environment_fingerprint, outputs_present, package_versions
from foodcast.pipeline.plan import Node, Resolution, plan, stage_params
from foodcast.pipeline.stage import Skipped, Stage
from foodcast.tracking import names

FEATURES, FUTURE, LOAD, PREDICT, TRAIN, EVALUATE = (
    stages.STAGES[n] for n in (names.FEATURES, names.FUTURE, names.LOAD, names.PREDICT, names.TRAIN, names.EVALUATE)
)

OPTIONS = {
    "start_week": 2,
    "end_week": 12,
    "next_week": 13,
    "n_fold": 3,
    "n_estimators": 5,
    "n_models": 3,
    "degree": 1,
    "lag_in_week": 1,
    "level_weeks": 0,
    "level_halflife": 0.0,
    "calendar_index": False,
    "profile_weeks": 0,
    "profile_groups": 2,
    "n_bins": 5,
    "estimator": "random_forest",
    "max_depth": 0,
    "min_samples_leaf": 1,
    "level_scaled": False,
    "interval_level": 0.8,
    "calibration_folds": 4,
    "allow_missing": False,
    "use_cache": True,
    "registered_model_name": "foodcast",
    "gate_weeks": 2,
    "gate_margin": 0.0,
    "model": "trained",
    "engine": "local",
}


def test_stage_table_is_consistent_and_agrees_with_mlproject():
    stages.check_stage_table()
    assert stages.mlproject_disagreements(PROJECT) == []


def test_a_parameter_renamed_in_mlproject_only_is_caught(tmp_path):
    project = copy_project(tmp_path / "project")
    mlproject = project / "MLproject"
    text = mlproject.read_text()
    assert "      degree: {type: int, default: 1}\n" in text
    mlproject.write_text(
        text.replace("      degree: {type: int, default: 1}\n", "      degrees: {type: int, default: 1}\n", 1)
    )
    problems = stages.mlproject_disagreements(project)
    assert any("declares degrees" in p for p in problems), problems
    assert any("lacks parameter degree" in p for p in problems), problems


def test_a_changed_default_in_mlproject_is_caught(tmp_path):
    project = copy_project(tmp_path / "project")
    mlproject = project / "MLproject"
    text = mlproject.read_text()
    mlproject.write_text(text.replace("n_fold: {type: int, default: 10}", "n_fold: {type: int, default: 5}"))
    problems = stages.mlproject_disagreements(project)
    assert any("n_fold" in p and "'default': 5" in p for p in problems), problems


@pytest.mark.parametrize("name", list(stages.STAGES))
def test_step_options_are_the_stage_table_s(name):
    command = importlib.import_module(f"steps.{name}").__dict__[name]
    stage = stages.STAGES[name]
    options = {p.name: p for p in command.params if isinstance(p, click.Option)}
    assert list(options) == [p.name for p in stage.all_params]
    for param in stage.all_params:
        option = options[param.name]
        assert option.opts == [param.option]
        assert option.required == param.required
        assert option.default == (None if param.required else param.default)
        kind = option.type
        if param.type is bool:
            assert kind is click.BOOL
        elif param.type in (int, float):
            assert isinstance(kind, click.IntRange if param.type is int else click.FloatRange), param.name
            assert (kind.min, kind.max) == (param.min, param.max), param.name
        elif param.choices:
            assert tuple(kind.choices) == param.choices
        else:
            assert kind.name == "text"
    assert command.help and len(command.help) > 80  # says what it reads and writes


def test_parameter_defaults_are_the_core_s_and_the_tutorial_configuration_is_reachable():
    from foodcast.core.estimators import DEFAULT_MODEL, TUTORIAL_MODEL
    from foodcast.core.features import DEFAULT_FEATURES, TUTORIAL_FEATURES

    defaults = {p.name: p.default for p in stages.main_params()}
    assert params.feature_settings(defaults) == DEFAULT_FEATURES
    assert {k: v for k, v in params.model_settings(defaults).items() if k in DEFAULT_MODEL} == DEFAULT_MODEL
    tutorial = {**TUTORIAL_FEATURES, **{("estimator" if k == "model" else k): v for k, v in TUTORIAL_MODEL.items()}}
    for name, value in tutorial.items():  # each one a value the parameter takes
        param = next(p for p in stages.main_params() if p.name == name)
        assert param.cast(value) == value and (param.min is None or value >= param.min), name
        assert param.choices is None or value in param.choices, name


def test_main_options_are_what_the_stages_consume_plus_its_own():
    consumed = {p.name for s in stages.PIPELINE for p in s.params if p.name not in s.late}
    options = {p.name: p for p in main_module.main.params if isinstance(p, click.Option)}
    assert set(options) == consumed | {p.name for p in params.MAIN_ONLY}
    assert FUTURE.params[0].default == 201
    for week in ("start_week", "end_week", "next_week"):  # main reads 0 as: from the other weeks, or the data
        assert options[week].default == 0 and options[week].type.min == 0, week


@pytest.mark.parametrize(
    "given, weeks",
    [
        ((0, 0, 0), None),
        ((180, 0, 0), (180, 200, 201)),  # the design card's -P start_week=180
        ((0, 200, 0), (180, 200, 201)),
        ((0, 0, 201), (180, 200, 201)),
        ((2, 12, 0), (2, 12, 13)),
        ((2, 12, 14), (2, 12, 14)),
    ],
)
def test_main_s_weeks_follow_from_those_given_or_the_data(tmp_path, given, weeks):
    data = make_batches(tmp_path / "data", range(1, 13), restaurants=("alpha",))
    for week in (10, 11):  # beta opened in week 10; its export of week 12 has not come yet
        make_batches(data, [week], restaurants=("beta",))
    resolved = main_options.resolve_weeks(*given, data)
    if given != (0, 0, 0):
        assert (resolved.start, resolved.end, resolved.next) == weeks
        return
    # Monday: the week after the last complete one (12 lacks beta's batch), on the 21 weeks
    # before it (from week 1 here)
    assert (resolved.start, resolved.end, resolved.next) == (1, 11, 12)
    assert resolved.line() == (
        f"forecasting week 12 from weeks 1-11 (the 11 weeks before it: the last complete week of {data} is 11)"
    )
    # a week that has not ended is not complete either
    sunday_of_week_11 = WEEK_ONE + datetime.timedelta(weeks=10, days=6)
    assert last_complete_week(data, today=sunday_of_week_11) == 10


def test_stages_that_disagree_on_a_shared_parameter_are_refused():
    other = dataclasses.replace(
        FUTURE,
        params=(
            params.NEXT_WEEK,
            params.DEGREE.but(default=2),
            params.LAG_IN_WEEK,
            params.LEVEL_WEEKS,
            params.CALENDAR_INDEX,
        ),
    )
    with pytest.raises(ValueError, match="disagree on parameter degree"):
        stages.main_params([FEATURES, other])


def test_unknown_or_cyclic_upstream_is_refused():
    table = dict(stages.STAGES)
    table["load"] = dataclasses.replace(LOAD, upstream=("features",))
    with pytest.raises(ValueError, match="cycle"):
        stages.check_stage_table(table)
    table = dict(stages.STAGES, evaluate=Stage("evaluate", "scores", upstream=("nowhere",)))
    with pytest.raises(ValueError, match="unknown upstream stage nowhere"):
        stages.check_stage_table(table)


def test_stage_params_never_fill_in_a_default():
    resolved = {("load", None): Resolution("a" * 32, "reused", "k")}
    node = Node(FEATURES, inputs={"load": ("load", None)})
    assert stage_params(node, OPTIONS, resolved) == {
        "load_run_id": "a" * 32,
        "degree": 1,
        "lag_in_week": 1,
        "level_weeks": 0,
        "level_halflife": 0.0,
        "calendar_index": False,
        "profile_weeks": 0,
        "profile_groups": 2,
        "engine": "local",
    }
    renamed = {k: v for k, v in OPTIONS.items() if k != "degree"} | {"degrees": 1}
    with pytest.raises(KeyError, match="takes degree"):
        stage_params(node, renamed, resolved)
    earlier = Node(EVALUATE, "12", inputs={"predict": "b" * 32})
    assert stage_params(earlier, OPTIONS, resolved) == {"predict_run_id": "b" * 32, "allow_missing": False}
    # what main works out when the stage is about to run
    predict = Node(PREDICT, inputs={"future": ("future", None)})
    resolved[("future", None)] = Resolution("c" * 32, "launched", "k")
    late = {"train_run_id": "d" * 32, "model_uri": ""}
    assert stage_params(predict, OPTIONS, resolved, late) == {"future_run_id": "c" * 32, **late, "engine": "local"}
    with pytest.raises(KeyError, match="no value worked out for train_run_id"):
        stage_params(predict, OPTIONS, resolved)


def test_plan_leaves_out_an_optional_stage_and_what_depends_on_it():
    assert [n.stage.name for n in plan(OPTIONS)] == [s.name for s in stages.PIPELINE]
    skipped = dataclasses.replace(FUTURE, nodes=lambda o: [Skipped(None, "no data yet")])
    pipeline = [skipped if s.name == "future" else s for s in stages.PIPELINE]
    assert [n.stage.name for n in plan(OPTIONS, pipeline)] == ["load", "features", "validate", "train", "promote"]


def test_cache_key_follows_the_packages_each_stage_depends_on():
    real = package_versions(p for s in stages.STAGES.values() for p in s.packages)
    upgraded = {**real, "scikit-learn": "99.0"}
    changed = set()
    for stage in stages.STAGES.values():
        mine = {p: real[p] for p in stage.packages}
        theirs = {p: upgraded[p] for p in stage.packages}
        if environment_fingerprint(PROJECT, stage.packages, mine) != environment_fingerprint(
            PROJECT, stage.packages, theirs
        ):
            changed.add(stage.name)
    assert changed == {"validate", "train", "predict", "promote", "backtest"}  # the stages that fit or load models
    assert environment_fingerprint(PROJECT, ["pandas"]) == environment_fingerprint(PROJECT, ["pandas"])


def test_cache_key_follows_the_dependency_files(tmp_path):
    for name in ("pyproject.toml", "conda.yaml"):
        shutil.copy2(PROJECT / name, tmp_path / name)
    before = environment_fingerprint(tmp_path, ["pandas"])
    (tmp_path / "conda.yaml").write_text((tmp_path / "conda.yaml").read_text() + "  # pinned\n")
    assert environment_fingerprint(tmp_path, ["pandas"]) != before


def test_cache_key_follows_every_input():
    base = {"entry_point": "load", "params": {"start_week": 2}, "sources": "s", "batches": "b", "environment": "e"}
    key = cache_key(**base)
    for field, other in (
        ("entry_point", "future"),
        ("params", {"start_week": 3}),
        ("sources", "t"),
        ("batches", "c"),
        ("environment", "f"),
    ):
        assert cache_key(**{**base, field: other}) != key, field


@pytest.fixture
def options_env(monkeypatch, small_data):
    monkeypatch.setenv("FOODCAST_DATA_DIR", str(small_data))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"start_week": 12, "end_week": 2}, "start_week 12 is after end_week 2"),
        ({"start_week": 300, "end_week": 310, "next_week": 0}, "no data for weeks 300-310"),
        ({"next_week": 12}, "next_week 12 must come after end_week 12"),
        ({"end_week": 13, "next_week": 0, "lag_in_week": 1}, None),
        ({"next_week": 20}, "needs weeks 19, but"),
        ({"level_scaled": True}, "needs level_weeks >= 1"),
        ({"estimator": "profile"}, "estimator=profile .* needs profile_weeks >= 1"),
        ({"estimator": "profile", "level_weeks": 8, "level_scaled": True, "profile_weeks": 8}, None),
        (
            {"profile_weeks": 21},
            "with lag_in_week=1 and level_weeks=0 and profile_weeks=21 needs the 21 weeks before it, but week 1",
        ),
        ({"start_week": 5, "level_weeks": 8}, "training on weeks 5-12 .8 weeks. leaves no hour"),
        ({"estimator": "gradient_boosting", "max_depth": 0}, "max_depth=0 .unlimited. is for random_forest"),
        ({"model": "champion", "registered_model_name": ""}, "give a registered_model_name"),
    ],
)
def test_check_options(options_env, change, message):
    options = {**OPTIONS, "allow_missing": False, **change}
    if message is None:
        checked = main_module.check_options(options)
        assert checked["next_week"] == options["end_week"] + 1 and checked["use_cache"] is True
    else:
        with pytest.raises(FoodcastError, match=message):
            main_module.check_options(options)


def test_reuse_check_needs_every_artifact_and_model(store, tmp_path):
    import pandas as pd

    from foodcast.tracking.artifacts import mlflow_log_pandas

    frame = pd.DataFrame({"order_date": ["2015-01-05 00:00:00"], "cash_in": [1.5]})
    with mlflow.start_run() as run:
        mlflow_log_pandas(frame, *names.DATA)
    client = mlflow.tracking.MlflowClient()
    found = client.get_run(run.info.run_id)
    assert outputs_present(client, found, LOAD)
    assert not outputs_present(client, found, FEATURES)  # no training set
    assert not outputs_present(client, found, TRAIN)  # no logged models
    local = found.info.artifact_uri.removeprefix("file://")
    data_file = f"{local}/{names.artifact_path(names.DATA)}"
    with open(data_file, "a") as f:
        f.write("2015-01-05 01:00:00,2.0\n")  # edited after the run finished
    assert not outputs_present(client, found, LOAD)
    shutil.rmtree(f"{local}/{names.DATA[0]}")
    assert not outputs_present(client, found, LOAD)


def test_a_run_without_recorded_checksums_is_not_reused(store):
    import pandas as pd

    frame = pd.DataFrame({"order_date": ["2015-01-05 00:00:00"], "cash_in": [1.5]})
    with mlflow.start_run() as run:
        frame.to_csv("data.csv", index=False)
        mlflow.log_artifact("data.csv", names.DATA[0])  # logged without its checksum
    client = mlflow.tracking.MlflowClient()
    assert not outputs_present(client, client.get_run(run.info.run_id), LOAD)


def test_engine_is_in_no_cache_key(tmp_path, monkeypatch):
    """engine says how a stage computes, not what (both engines give the same numbers): a stage's
    key is the same with engine=local and engine=spark, unlike with another keyed parameter."""
    from foodcast.pipeline.runner import Pipeline

    monkeypatch.setenv("FOODCAST_DATA_DIR", str(make_batches(tmp_path / "data", range(2, 13))))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    node = Node(FEATURES, inputs={"load": ("load", None)})
    resolved = {("load", None): Resolution("a" * 32, "reused", "k")}
    keys = {}
    for engine in ("local", "spark"):
        options = {**OPTIONS, "engine": engine}
        keys[engine] = Pipeline(options, PROJECT, nodes=[node]).node_key(node, stage_params(node, options, resolved))
    assert keys["local"] == keys["spark"]
    options = {**OPTIONS, "degree": 2}
    other = Pipeline(options, PROJECT, nodes=[node]).node_key(node, stage_params(node, options, resolved))
    assert other != keys["local"]
    assert not params.ENGINE.keyed and all(p.keyed for p in params.FEATURE_PARAMS)
