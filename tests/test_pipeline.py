"""End to end: the MLflow project run as a user runs it, against a real temporary sqlite store."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from test_readme import console_shape, readme_sample

from conftest import SMALL, SMALL_NODES, Runner, error_lines, stage_lines
from fixtures import make_batches
from foodcast.core.windows import forecast_history
from foodcast.pipeline import params
from foodcast.pipeline import stage_table as stages
from foodcast.settings import PROJECT_ROOT
from foodcast.tracking import names
from foodcast.tracking.models import resolve_model

STAGES = [s.name for s in stages.PIPELINE]


@pytest.fixture
def small_store(small):
    """The session's store with the small pipeline's cold run (conftest.SmallStore)."""
    return small.runner, small.uri, small.cold


def client_for(uri):
    mlflow.set_tracking_uri(uri)
    return MlflowClient(uri)


def read_artifact(client, run_id, path) -> bytes:
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path)
    return Path(local).read_bytes()


def test_monday_command_on_the_shipped_data(tmp_path):
    """README: `mlflow run . --env-manager local`, no parameter, on the shipped data (weeks
    1-260): week 261 forecast from the 21 weeks before it, in experiment foodcast; the console
    says so in a line per stage and the closing block, without MLflow's INFO lines. (The one
    full run on the shipped data: shared by every check of what a first run gives.)"""
    if not list(Path(PROJECT_ROOT, "data").glob("*/week_*.csv*")):
        pytest.fail("the default dataset data/ is missing")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    runner = Runner(tmp_path, uri, data_dir=None)
    runner.env.pop("FOODCAST_DATA_DIR", None)
    runner.env.pop("MLFLOW_EXPERIMENT_NAME")
    proc = runner.mlflow_run()
    lines = stage_lines(proc.stdout)
    out = proc.stdout.splitlines()
    assert out[0].endswith(
        f"forecasting week 261 from weeks 240-260 (the 21 weeks before it: the last complete week of "
        f"{PROJECT_ROOT / 'data'} is 260)"
    ), out[0]
    # week 261 has no data yet, and no earlier run forecast week 260: nothing to score
    assert {s: status for s, (status, _) in lines.items()} == dict.fromkeys(
        [s for s in STAGES if s != names.EVALUATE], "launched"
    )
    assert out[1 : 1 + len(lines)] == [line for line in out if stage_lines(line)]
    block = out[1 + len(lines) :]
    assert block[0].startswith(f"main: {len(lines)} launched, 0 reused in ") and all(
        line.startswith("  ") for line in block[1:]
    ), proc.stdout
    fields = {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in block[1:])}
    assert len(fields) == len(block) - 1  # one line each: week, forecast, scorecard, promote, UI
    assert fields["week"] == "week 261 (Mon 2019-12-23 to Sun 2019-12-29)"
    assert fields["scorecard"].startswith("week 260 not scored: no FINISHED predict run with week 260")
    assert fields["promote"].startswith("Challenger version 1 promoted: the first model")
    client = client_for(uri)
    experiment = client.get_experiment_by_name("foodcast").experiment_id
    parents = client.search_runs([experiment], filter_string="tags.`foodcast.step` = 'main'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    assert fields["UI"].startswith(f"http://127.0.0.1:5000/#/experiments/{experiment}/runs/{parent.info.run_id} ")
    # README's sample of this first run is what it prints (ids, seconds and paths aside).
    assert console_shape(readme_sample()) == console_shape(out), proc.stdout
    # MLflow's INFO lines: only those of the `mlflow run` that starts main (the store it creates,
    # the command it runs and how it ended), none of main's launches or of the stages; and
    # no "View run" lines, nor registering's prints.
    created = f"Created directory {tempfile.gettempdir()}/tmp"  # under $TMPDIR, which .ci/run sets
    launcher = ("mlflow.store.db.utils", created, "'python main.py", f"ID '{parent.info.run_id}'")
    info = [line for line in proc.stderr.splitlines() if " INFO " in line]
    assert [line for line in info if not any(text in line for text in launcher)] == [], proc.stderr
    assert "registered model" not in proc.stderr and "View run" not in proc.stdout + proc.stderr
    children = client.search_runs([experiment], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(r.data.tags[names.STEP_TAG] for r in children) == sorted(lines)
    assert all(r.info.status == "FINISHED" for r in children)
    by_stage = {r.data.tags[names.STEP_TAG]: r for r in children}
    for stage in [s for s in stages.PIPELINE if s.name in lines]:
        run_id = by_stage[stage.name].info.run_id
        for directory, name in stage.artifacts:
            listed = {f.path for f in client.list_artifacts(run_id, directory)}
            assert f"{directory}/{name}" in listed, (stage, directory, name)

    data = pd.read_csv(read_artifact_path(by_stage["load"].info.run_id, names.DATA))
    assert len(data) == 21 * 168
    y_pred = pd.read_csv(read_artifact_path(by_stage["predict"].info.run_id, names.Y_PRED), parse_dates=["order_date"])
    assert len(y_pred) == 168
    assert y_pred["order_date"].min() == pd.Timestamp("2014-12-29") + pd.Timedelta(weeks=260)
    assert (
        Path(fields["forecast"]).read_bytes()
        == Path(read_artifact_path(by_stage["predict"].info.run_id, names.Y_PRED)).read_bytes()
    )
    assert (y_pred.drop(columns="order_date") >= 0).all().all()
    assert y_pred["y_pred_simple"].sum() > 0
    # The point forecast and its interval, beside the tutorial's members and simple forecast.
    assert list(y_pred.columns) == [
        "order_date",
        *[f"y_pred_{i}" for i in range(10)],
        "y_pred_simple",
        "y_pred",
        "y_lower",
        "y_upper",
    ]
    assert (y_pred["y_lower"] <= y_pred["y_pred"]).all() and (y_pred["y_pred"] <= y_pred["y_upper"]).all()
    assert (y_pred["y_upper"] - y_pred["y_lower"]).mean() > 1

    # Lineage on the parent, and validation headline metrics copied there.
    lineage = json.loads(Path(read_artifact_path(parent.info.run_id, (names.LINEAGE_FILE,))).read_text())
    assert {s: v["run_id"] for s, v in lineage.items()} == {s: rid for s, (_, rid) in lines.items()}
    parent = client.get_run(parent.info.run_id)
    assert parent.data.tags["foodcast.predict_run_id"] == by_stage["predict"].info.run_id
    assert parent.data.metrics["MAE_SIMPLE_MEAN"] == by_stage["validate"].data.metrics["MAE_SIMPLE_MEAN"]
    # Each step names the runs it consumed.
    assert by_stage["predict"].data.tags[names.upstream_tag("train")] == by_stage["train"].info.run_id
    assert by_stage["features"].data.tags[names.upstream_tag("load")] == by_stage["load"].info.run_id


def read_artifact_path(run_id, artifact) -> str:
    return mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="/".join(artifact))


def test_second_run_reuses_every_stage(small_store):
    runner, uri, cold = small_store
    warm = runner.mlflow_run(**SMALL)
    cold_lines, warm_lines = stage_lines(cold.stdout), stage_lines(warm.stdout)
    assert {s: st for s, (st, _) in warm_lines.items()} == dict.fromkeys(SMALL_NODES, "reused")
    assert {s: rid for s, (_, rid) in warm_lines.items()} == {s: rid for s, (_, rid) in cold_lines.items()}


def test_loading_the_champion_leaves_the_next_pipeline_reused(small_store):
    """Loading ``models:/foodcast@champion`` as docs/registry.md shows makes MLflow write
    ``registered_model_meta`` into the logged model's folder: not a change of the model, so the
    next pipeline reuses train (and every stage) and registers nothing."""
    runner, uri, cold = small_store
    client = client_for(uri)
    versions = [(v.version, v.aliases) for v in client.search_model_versions("name = 'foodcast'")]
    _, logged_model = resolve_model(model_uri="models:/foodcast@champion")
    mlflow.pyfunc.load_model("models:/foodcast@champion")
    folder = Path(logged_model.artifact_location.removeprefix("file://"))
    assert (folder / "registered_model_meta").is_file()  # what MLflow wrote

    warm = runner.mlflow_run(**SMALL)
    assert {s: st for s, (st, _) in stage_lines(warm.stdout).items()} == dict.fromkeys(SMALL_NODES, "reused")
    assert [(v.version, v.aliases) for v in client.search_model_versions("name = 'foodcast'")] == versions


def test_show_prints_the_latest_forecast_as_a_table(small):
    proc = subprocess.run(
        [sys.executable, "-m", "foodcast", "show"],  # (the experiment: MLFLOW_EXPERIMENT_NAME)
        cwd=small.project,
        env=small.runner.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("week 13 (Mon 2015-03-23 to Sun 2015-03-29): hourly cash-in forecast")
    assert small.lines["predict"][1] in lines[0]
    assert lines[1].split() == ["day", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    rows = {line.split()[0]: [int(v) for v in line.split()[1:]] for line in lines[3:-1]}
    assert list(rows) == [f"{h:02d}h" for h in range(24)] + ["total"]
    client_for(small.uri)
    y_pred = pd.read_csv(read_artifact_path(small.lines["predict"][1], names.Y_PRED))
    assert lines[-1] == f"week total: {y_pred['y_pred'].sum():.0f}"
    assert abs(sum(rows["total"]) - y_pred["y_pred"].sum()) <= 7  # (each day rounded)


def test_changed_model_parameter_relaunches_only_what_depends_on_it(small_store):
    runner, uri, cold = small_store
    proc = runner.mlflow_run(**{**SMALL, "n_estimators": 20})
    status = {s: st for s, (st, _) in stage_lines(proc.stdout).items()}
    assert status == {
        "load": "reused",
        "features": "reused",
        "future": "reused",
        "validate": "launched",
        "train": "launched",
        "promote": "launched",
        "predict": "launched",
        "evaluate[13]": "launched",
    }


def test_upgraded_scikit_learn_relaunches_what_depends_on_it(small_store, tmp_path):
    """Another scikit-learn version in the environment: the stages that use it are relaunched.

    A distribution's metadata found first on the path is what `importlib.metadata` reports, so
    a `scikit_learn-99.0.dist-info` ahead of site-packages reads as an upgrade (the library
    imported stays the real one).
    """
    runner, uri, cold = small_store
    shadow = tmp_path / "upgraded"
    (shadow / "scikit_learn-99.0.dist-info").mkdir(parents=True)
    (shadow / "scikit_learn-99.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: scikit-learn\nVersion: 99.0\n"
    )
    before = runner.env.get("PYTHONPATH")
    runner.env["PYTHONPATH"] = os.pathsep.join([str(shadow), *([before] if before else [])])
    try:
        proc = runner.mlflow_run(**SMALL)
    finally:  # the shared store's runner as it was (the warm servers refuse another PYTHONPATH)
        if before is None:
            runner.env.pop("PYTHONPATH")
        else:
            runner.env["PYTHONPATH"] = before
    status = {s: st for s, (st, _) in stage_lines(proc.stdout).items()}
    assert status == {
        "load": "reused",
        "features": "reused",
        "future": "reused",
        "validate": "launched",
        "train": "launched",
        "promote": "launched",
        "predict": "launched",
        "evaluate[13]": "launched",
    }


def test_each_monday_s_run_scores_last_week_s_forecast(tmp_path):
    """The weekly scorecard: week 13's forecast cannot be scored before its batches exist (one
    line); next Monday's run scores it, once, from the forecast the earlier run made."""
    data = make_batches(tmp_path / "data", range(1, 13))  # "today" is the Monday of week 13
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    runner = Runner(tmp_path, uri, data)
    # A team's settings in a parameters file (logged on the parent run), -P for the rest; verbose:
    # the stages left out are listed, with why.
    (tmp_path / "team.yaml").write_text("n_fold: 3\nn_models: 3\nlevel_weeks: 6\n")
    settings = {k: v for k, v in SMALL.items() if k not in ("n_fold", "n_models")}
    first = runner.mlflow_run(**settings, params=tmp_path / "team.yaml", verbose="true")
    assert "evaluate[13]: skipped (week 13 has no data yet)" in first.stdout
    assert "evaluate[12]: skipped (no FINISHED predict run with week 12 in the experiment)" in first.stdout
    assert "  scorecard: week 12 not scored: no FINISHED predict run with week 12 in the experiment" in first.stdout
    assert "foodcast.step: train: run" in first.stderr  # (and the stages' log lines)
    forecast = stage_lines(first.stdout)["predict"][1]
    parent_id = next(line.split()[2] for line in first.stdout.splitlines() if line.startswith("main: run"))
    client = client_for(uri)
    parent = client.get_run(parent_id)
    assert {k: parent.data.params[k] for k in ("n_fold", "n_models", "level_weeks")} == {
        "n_fold": "3",
        "n_models": "3",
        "level_weeks": str(SMALL["level_weeks"]),  # -P over the file
    }
    assert [f.path for f in client.list_artifacts(parent_id, "parameters")] == ["parameters/team.yaml"]
    proc = runner.mlflow_run("evaluate", check=False, predict_run_id=forecast)
    errors = error_lines(proc.stderr)
    assert proc.returncode != 0 and len(errors) == 1, proc.stderr[-3000:]
    assert "week 13 has no data yet" in errors[0]

    make_batches(data, [13])  # week 13's batches arrive
    monday = {**SMALL, "start_week": 3, "end_week": 13, "next_week": 14}
    second = runner.mlflow_run(**monday)
    lines = stage_lines(second.stdout)
    assert lines["evaluate[13]"][0] == "launched" and "evaluate[14]" not in second.stdout
    assert "  scorecard: Week 13's forecast: hourly MAE" in second.stdout  # last week's scorecard
    scored = client.get_run(lines["evaluate[13]"][1])
    assert scored.data.params["predict_run_id"] == forecast
    assert scored.data.tags[names.WEEK_TAG] == "13"
    assert {"mae_model", "mae_naive", "mae_mean4"} <= set(scored.data.metrics)
    table = pd.read_csv(read_artifact_path(scored.info.run_id, names.EVALUATION))
    assert len(table) == 168 and table["actual"].sum() > 0
    parent = client.get_run(
        next(line.split()[2] for line in second.stdout.splitlines() if line.startswith("main: run"))
    )
    assert "Week 13's forecast: hourly MAE" in parent.data.tags["mlflow.note.content"]
    assert parent.data.metrics["evaluate.13.mae_model"] == scored.data.metrics["mae_model"]

    third = runner.mlflow_run(**monday)  # scored once: not again
    assert "  scorecard: week 13 not scored: predict run" in third.stdout
    assert "has its evaluate run already" in third.stdout


def test_backtest_logs_a_step_per_week_and_its_table(small_store):
    runner, uri, _ = small_store
    # The default features need more weeks than the data have: a 4-week level, an 8-week profile.
    proc = runner.mlflow_run(
        "backtest", first_week=11, last_week=13, window_weeks=8, level_weeks=4, profile_weeks=8, n_models=2
    )
    assert [line.split()[2] for line in proc.stdout.splitlines() if line.startswith("backtest: week")] == [
        "11",
        "12",
        "13",
    ]
    client = client_for(uri)
    [run] = client.search_runs(["0"], filter_string="tags.`foodcast.step` = 'backtest'")
    for metric in ("mae_model", "mae_naive", "mae_mean4", "coverage", "width"):
        assert [m.step for m in client.get_metric_history(run.info.run_id, metric)] == [11, 12, 13], metric
    assert {"ratio_naive", "ratio_mean4", "share_weeks_beating_naive"} <= set(run.data.metrics)
    weeks = pd.read_csv(read_artifact_path(run.info.run_id, names.BACKTEST_WEEKS))
    assert list(weeks.columns) == ["week", "mae_model", "mae_naive", "mae_mean4", "coverage", "width", "coverage_open"]
    assert weeks["week"].tolist() == [11, 12, 13]
    history = client.get_metric_history(run.info.run_id, "mae_model")
    assert [round(m.value, 2) for m in history] == weeks["mae_model"].round(2).tolist()


def test_use_cache_false_relaunches_all_and_is_deterministic(small):
    # The cold run started its stages cold (each in a fresh interpreter); this one forks them
    # from a server of pre-imported libraries: the same forecast, byte for byte. (The suite's
    # server of the project, named in FOODCAST_PREFORK_SOCKET: main then starts none of its own.)
    proc = small.runner.mlflow_run(**{**SMALL, "use_cache": "false"})
    try:
        lines = stage_lines(proc.stdout)
        assert {s: st for s, (st, _) in lines.items()} == dict.fromkeys(SMALL_NODES, "launched")
        client_for(small.uri)
        outputs = [
            Path(read_artifact_path(run_id, names.Y_PRED)).read_bytes()
            for run_id in (small.lines["predict"][1], lines["predict"][1])
        ]
    finally:
        small.forget(proc.stdout)
    assert outputs[0] == outputs[1]


def test_single_stages_run_on_their_own(small_store):
    runner, uri, cold = small_store
    lines = stage_lines(cold.stdout)
    # A features run on the load run main made, then a standalone load and features on it.
    proc = runner.mlflow_run("features", load_run_id=lines["load"][1])
    assert "features: run" in proc.stderr
    # Too few weeks for the default level: the features stage refuses, in one line.
    runner.mlflow_run("load", start_week=3, end_week=9)
    client = client_for(uri)
    short = client.search_runs(["0"], filter_string="params.start_week = '3' AND tags.`foodcast.step` = 'load'")[0]
    proc = runner.mlflow_run("features", check=False, load_run_id=short.info.run_id)
    errors = error_lines(proc.stderr)
    assert proc.returncode != 0 and len(errors) == 1, proc.stderr[-3000:]
    assert "no hour has all its lags, level and profile" in errors[0] and "Traceback" not in proc.stderr
    runner.mlflow_run("load", start_week=3, end_week=12)
    load = client.search_runs(
        ["0"], filter_string="params.end_week = '12' AND params.start_week = '3' AND tags.`foodcast.step` = 'load'"
    )[0]
    runner.mlflow_run("features", load_run_id=load.info.run_id)
    features = client.search_runs(["0"], filter_string=f"tags.`foodcast.upstream.load_run_id` = '{load.info.run_id}'")
    assert [r.info.status for r in features] == ["FINISHED"]
    x_train = pd.read_csv(read_artifact_path(features[0].info.run_id, names.X_TRAIN))
    # Weeks 11-12: weeks 3-10 only provide the default 8-week level (and lags, if any).
    history = forecast_history(params.LAG_IN_WEEK.default, params.LEVEL_WEEKS.default)
    assert len(x_train) == (12 - 3 + 1 - history) * 168
    # The features run records its input table, with the load artifact as its source.
    inputs = client.get_run(features[0].info.run_id).inputs.dataset_inputs
    assert any(load.info.run_id in i.dataset.source for i in inputs)


def test_predict_records_the_model_it_used(small_store):
    runner, uri, cold = small_store
    lines = stage_lines(cold.stdout)
    client = client_for(uri)
    predict = client.get_run(lines["predict"][1])
    train = client.get_run(lines["train"][1])
    multi = [
        o.model_id for o in train.outputs.model_outputs if client.get_logged_model(o.model_id).name == names.MULTI_MODEL
    ]
    assert [m.model_id for m in predict.inputs.model_inputs] == multi


def test_reused_run_whose_artifacts_are_gone_or_changed_is_relaunched(small):
    runner, lines = small.runner, small.lines
    client = client_for(small.uri)
    x_pred = Path(client.get_run(lines["future"][1]).info.artifact_uri.removeprefix("file://")) / names.X_PRED[0]
    features_dir = Path(client.get_run(lines["features"][1]).info.artifact_uri.removeprefix("file://"))
    x_train = features_dir / names.artifact_path(names.X_TRAIN)
    kept, good = x_pred.with_name("kept-by-the-test"), x_train.read_bytes()
    shutil.copytree(x_pred, kept)
    shutil.rmtree(x_pred)
    x_train.write_bytes(b"")  # truncated
    relaunch = None
    try:
        # A stage reading the changed artifact refuses it, naming the run and the artifact.
        proc = runner.mlflow_run("train", check=False, features_run_id=lines["features"][1])
        errors = error_lines(proc.stderr)
        assert proc.returncode != 0 and len(errors) == 1, proc.stderr[-3000:]
        assert f"run {lines['features'][1]} (features): artifact training_set/x_train.csv has changed" in errors[0]

        # The cache relaunches both, and what depends on them; it reuses the rest.
        relaunch = runner.mlflow_run(**SMALL)
        status = {s: st for s, (st, _) in stage_lines(relaunch.stdout).items()}
        assert status == {
            "load": "reused",
            "features": "launched",
            "validate": "launched",
            "train": "launched",
            "promote": "launched",
            "future": "launched",
            "predict": "launched",
            "evaluate[13]": "launched",
        }
    finally:  # the cold run's outputs as they were, and the cache finding them again
        shutil.rmtree(x_pred, ignore_errors=True)
        shutil.move(kept, x_pred)
        x_train.write_bytes(good)
        if relaunch is not None:
            small.forget(relaunch.stdout)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"start_week": 12, "end_week": 2}, "start_week 12 is after end_week 2"),  # main's own checks
        ({"start_week": 2, "end_week": 12, "n_fold": 1}, "'--n-fold': 1 is not in the range x>=2"),  # an option's bound
        # the file's next_week over the default, -P's end_week over the file's (30)
        ({"params": "end_week: 30\nnext_week: 12\n", "end_week": 12}, "next_week 12 must come after end_week 12"),
        ({"params": "n_folds: 3\n"}, "team.yaml: unknown parameter n_folds"),
    ],
)
def test_bad_main_parameters_fail_with_one_line(tmp_path, small_data, params, message):
    """Through `mlflow run`: one `Error:` line, no traceback, one run: FAILED, named for what it
    is, with the reason (the other checks are unit-tested in test_stages.py). A parameters file
    (``params``: its text here) gives values that -P overrides."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    runner = Runner(tmp_path, uri, small_data)
    if "params" in params:
        (tmp_path / "team.yaml").write_text(params["params"])
        params = {**params, "params": tmp_path / "team.yaml"}
    proc = runner.mlflow_run(check=False, **params)
    assert proc.returncode != 0
    errors = error_lines(proc.stderr)
    assert len(errors) == 1 and message in errors[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    client = client_for(uri)
    [run] = client.search_runs(["0"])
    assert run.info.status == "FAILED" and run.info.run_name == "main (refused)"
    assert message in run.data.tags[names.ERROR_TAG]


@pytest.mark.parametrize("store_kind", ["cannot be created", "read-only"])
def test_a_tracking_store_that_cannot_be_opened_or_written_fails_with_one_line(tmp_path, small_data, store_kind):
    """main and a stage command, run as commands: one line, no traceback. (Under ``mlflow run``,
    MLflow's own command opens the store first, before any code of the project runs.)"""
    if store_kind == "cannot be created":
        (tmp_path / "a-file").write_text("")
        uri, message = f"sqlite:///{tmp_path}/a-file/mlflow.db", f"(File exists: {tmp_path}/a-file)"
    else:
        database = tmp_path / "read-only.db"
        MlflowClient(f"sqlite:///{database}").search_experiments()
        uri, message = f"sqlite:///file:{database}?mode=ro&uri=true", "read-only database"
    runner = Runner(tmp_path, uri, small_data)
    weeks = ["--start-week", "2", "--end-week", "12"]
    for command in (
        [str(PROJECT_ROOT / "main.py"), *weeks, "--next-week", "13", "--level-weeks", "4", "--profile-weeks", "8"],
        [str(PROJECT_ROOT / "steps" / "load.py"), *weeks],
    ):
        proc = runner.run(sys.executable, *command, check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
        errors = error_lines(proc.stderr)
        assert len(errors) == 1 and message in errors[0], proc.stderr[-3000:]
        assert proc.stderr.strip() == errors[0]


def test_bad_run_ids_fail_with_one_line(small_store):
    runner, uri, cold = small_store
    lines = stage_lines(cold.stdout)
    client = client_for(uri)
    running = client.create_run("0", tags={names.STEP_TAG: "load"}).info.run_id
    cases = [
        ({"load_run_id": "0123456789abcdef0123456789abcdef"}, "does not exist"),
        ({"load_run_id": lines["train"][1]}, "is a train run, not a load run"),
        ({"load_run_id": running}, "is RUNNING, not FINISHED"),
        ({"load_run_id": ""}, "'--load-run-id': must not be empty"),
    ]
    for values, message in cases:
        before = {r.info.run_id for r in client.search_runs(["0"], max_results=1000)}
        proc = runner.mlflow_run("features", check=False, **values)
        assert proc.returncode != 0
        errors = error_lines(proc.stderr)
        assert len(errors) == 1 and message in errors[0], proc.stderr[-3000:]
        new = [r for r in client.search_runs(["0"], max_results=1000) if r.info.run_id not in before]
        assert [r.info.status for r in new] == ["FAILED"]
        assert message in new[0].data.tags[names.ERROR_TAG]


def test_predict_on_a_model_whose_files_are_gone_or_corrupt_fails_with_one_line(small_store):
    runner, uri, cold = small_store
    lines = stage_lines(cold.stdout)
    client = client_for(uri)
    runner.mlflow_run("train", features_run_id=lines["features"][1], n_estimators=2, n_models=2)
    train = client.search_runs(["0"], filter_string="tags.`foodcast.step` = 'train' AND params.n_estimators = '2'")[0]
    multi = [client.get_logged_model(o.model_id) for o in client.get_run(train.info.run_id).outputs.model_outputs]
    multi = next(m for m in multi if m.name == names.MULTI_MODEL)
    files = Path(multi.artifact_location.removeprefix("file://"))

    (files / "MLmodel").write_text("flavors: [not, a, model\n")  # corrupt
    proc = runner.mlflow_run("predict", check=False, train_run_id=train.info.run_id, future_run_id=lines["future"][1])
    errors = error_lines(proc.stderr)
    assert proc.returncode != 0 and len(errors) == 1, proc.stderr[-3000:]
    assert f"runs:/{train.info.run_id}/multi_model" in errors[0] and "cannot be loaded" in errors[0]
    assert "Traceback" not in proc.stderr

    shutil.rmtree(files)  # gone
    proc = runner.mlflow_run("predict", check=False, train_run_id=train.info.run_id, future_run_id=lines["future"][1])
    errors = error_lines(proc.stderr)
    assert proc.returncode != 0 and len(errors) == 1, proc.stderr[-3000:]
    assert f"run {train.info.run_id} (train): the files of its model multi_model" in errors[0]
    assert "Traceback" not in proc.stderr


def test_predict_with_a_model_that_is_not_a_forecast_model_fails_with_one_line(small_store):
    # The tester's case: the simple_model's id as model_uri ended in `AttributeError ... 'index'`,
    # the run FAILED without its error.
    runner, uri, cold = small_store
    lines = stage_lines(cold.stdout)
    client = client_for(uri)
    outputs = client.get_run(lines["train"][1]).outputs.model_outputs
    [simple] = [m for m in (client.get_logged_model(o.model_id) for o in outputs) if m.name == names.SIMPLE_MODEL]
    uri = f"models:/{simple.model_id}"
    proc = runner.mlflow_run("predict", check=False, future_run_id=lines["future"][1], model_uri=uri)
    errors = error_lines(proc.stderr)
    assert proc.returncode != 0 and len(errors) == 1, proc.stderr[-3000:]
    assert f"the model {uri} ({simple.model_id}) is not a forecast model" in errors[0]
    assert "Traceback" not in proc.stderr
    [run] = client.search_runs(
        ["0"], filter_string=f"tags.`foodcast.step` = 'predict' AND params.model_uri = '{uri}'", max_results=1
    )
    assert run.info.status == "FAILED" and "is not a forecast model" in run.data.tags[names.ERROR_TAG]


def test_failing_stage_fails_main_and_next_run_reuses_finished_stages(tmp_path):
    data = make_batches(tmp_path / "data", range(1, 15))
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    runner = Runner(tmp_path, uri, data)
    # A malformed batch inside the training weeks: load fails, future (weeks 5-12) does not.
    batch = data / "beta" / "week_003.csv.gz"
    good = batch.read_bytes()
    lines = gzip.decompress(good).decode().splitlines()
    fields = lines[3].split(",")
    fields[4] = "-" + fields[4]
    lines[3] = ",".join(fields)
    batch.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))

    proc = runner.mlflow_run(check=False, **SMALL)
    assert proc.returncode != 0
    # The stage printed its own error line; main's, last, repeats it with the stage and run id.
    errors = error_lines(proc.stderr)
    assert errors and "stage load failed" in errors[-1], proc.stderr[-3000:]
    assert "row 3, column 'Product Price'" in errors[-1]
    assert "Traceback" not in proc.stderr
    future_run = stage_lines(proc.stdout)["future"][1]

    batch.write_bytes(good)
    status = stage_lines(runner.mlflow_run(**SMALL).stdout)
    assert status["future"] == ("reused", future_run)
    assert status["load"][0] == "launched"


def test_models_load_in_a_fresh_process_and_reproduce_the_predictions(small_store):
    runner, uri, cold = small_store
    lines = stage_lines(cold.stdout)
    script = f"""
import mlflow, pandas as pd
x = pd.read_csv(mlflow.artifacts.download_artifacts(run_id="{lines["future"][1]}",
                artifact_path="{names.artifact_path(names.X_PRED)}"), parse_dates=["order_date"])
x = x.drop(columns="order_date")
multi = mlflow.pyfunc.load_model("runs:/{lines["train"][1]}/{names.MULTI_MODEL}").predict(x)
simple = mlflow.sklearn.load_model("runs:/{lines["train"][1]}/{names.SIMPLE_MODEL}").predict(x)
multi.assign(simple=simple).to_csv("fresh.csv", index=False)
"""
    runner.run(sys.executable, "-c", script)
    fresh = pd.read_csv(runner.workdir / "fresh.csv")
    client_for(uri)
    logged = pd.read_csv(read_artifact_path(lines["predict"][1], names.Y_PRED))
    # predict's file holds the same predictions, written to the cent
    from foodcast.tracking.artifacts import to_cents

    pd.testing.assert_frame_equal(to_cents(fresh.drop(columns="simple")), logged.drop(columns="order_date"))
    simple = to_cents(pd.DataFrame({"y_pred_simple": fresh["simple"].clip(lower=0)}))["y_pred_simple"]
    assert simple.tolist() == logged["y_pred_simple"].tolist()
