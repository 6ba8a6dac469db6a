"""mlflow_log_pandas / mlflow_log_plotly: artifacts on the active run, no files left behind;
check_run: the upstream runs a stage accepts."""

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import mlflow
import pandas as pd
import plotly.graph_objects as go
import pytest

from foodcast.errors import FoodcastError
from foodcast.tracking import names
from foodcast.tracking.artifacts import mlflow_log_pandas, mlflow_log_plotly, model_checksums, model_problem
from foodcast.tracking.plot_files import png_painter
from foodcast.tracking.runs import check_run


@pytest.fixture(scope="module")
def experiment_id(tmp_path_factory):
    """One real sqlite tracking store for the module (creating one takes a few seconds)."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        try:
            yield mlflow.create_experiment("mlflow-utils", artifact_location=(root / "artifacts").as_uri())
        finally:
            mlflow.set_tracking_uri(None)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory, and a private temp directory to check for leftovers."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return cwd, tmp


@pytest.fixture
def run(experiment_id, workdir):
    with mlflow.start_run(experiment_id=experiment_id) as active:
        yield active


def listing(path):
    return sorted(os.path.relpath(os.path.join(d, f), path) for d, _, files in os.walk(path) for f in files) + sorted(
        os.path.relpath(os.path.join(d, s), path) for d, subs, _ in os.walk(path) for s in subs
    )


def download(run, artifact, dst):
    return mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=artifact, dst_path=str(dst))


def logged(run, artifact_path):
    client = mlflow.MlflowClient()
    return [f.path for f in client.list_artifacts(run.info.run_id, artifact_path)]


def frame():
    return pd.DataFrame(
        {
            "order_date": pd.date_range("2015-01-05", periods=5, freq="h"),
            "cash_in": [0.0, 12.5, 3.1415926535, 1e6 + 0.01, 42.0],
            "label": ["a", "b", "c,d", "e", "f"],
        }
    )


def test_csv_round_trips_without_files_in_cwd(run, workdir, tmp_path):
    cwd, tmp = workdir
    before = listing(cwd)
    df = frame()

    mlflow_log_pandas(df, "tables", "preds.csv")

    assert listing(cwd) == before == []
    assert listing(tmp) == []
    assert logged(run, "tables") == ["tables/preds.csv"]
    back = pd.read_csv(download(run, "tables/preds.csv", tmp_path / "dl"), parse_dates=["order_date"])
    assert list(back.columns) == list(df.columns)
    back["order_date"] = back["order_date"].dt.as_unit("ns")
    df["order_date"] = df["order_date"].dt.as_unit("ns")
    # Money to the cent, the rest untouched.
    pd.testing.assert_frame_equal(back, df.assign(cash_in=df["cash_in"].round(2)), check_dtype=False)
    text = Path(download(run, "tables/preds.csv", tmp_path / "dl2")).read_text().splitlines()
    assert text[1:4] == [
        "2015-01-05T00:00:00,0.0,a",
        "2015-01-05T01:00:00,12.5,b",
        '2015-01-05T02:00:00,3.14,"c,d"',
    ]  # ISO timestamps, cents


def test_only_money_columns_are_rounded():
    from foodcast.tracking.artifacts import to_cents

    df = pd.DataFrame(
        {"hour_cos_1": [0.8660254037844387], "lag_1W": [12.3451], "y_pred_3": [1.005001], "y_lower": [0.123], "n": [7]}
    )
    out = to_cents(df)
    assert out["hour_cos_1"].iloc[0] == df["hour_cos_1"].iloc[0]
    assert out[["lag_1W", "y_pred_3", "y_lower"]].iloc[0].tolist() == [12.35, 1.01, 0.12]
    assert out["n"].iloc[0] == 7


def test_json_records_with_iso_dates(run, workdir, tmp_path):
    cwd, tmp = workdir
    df = frame()

    mlflow_log_pandas(df, "tables", "preds.json")

    assert listing(cwd) == [] and listing(tmp) == []
    with open(download(run, "tables/preds.json", tmp_path / "dl"), encoding="utf-8") as f:
        records = json.load(f)
    assert isinstance(records, list) and len(records) == 5
    assert set(records[1]) == {"order_date", "cash_in", "label"}
    assert records[1]["cash_in"] == 12.5 and records[2]["label"] == "c,d"
    assert pd.Timestamp(records[1]["order_date"]).tz_localize(None) == pd.Timestamp("2015-01-05 01:00")
    assert records[1]["order_date"].startswith("2015-01-05T01:00:00")


@pytest.mark.parametrize("name", ["preds.txt", "preds.parquet", "preds"])
def test_other_extensions_are_refused(run, workdir, name):
    with pytest.raises(ValueError):
        mlflow_log_pandas(frame(), "tables", name)
    assert logged(run, "tables") == []
    assert listing(workdir[0]) == []


def test_plotly_html_is_self_contained(run, workdir, tmp_path):
    cwd, tmp = workdir
    fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[4.0, 1.0, 7.0], name="cash-in"))

    mlflow_log_plotly(fig, "plots", "forecast.html")

    assert listing(cwd) == [] and listing(tmp) == []
    assert logged(run, "plots") == ["plots/forecast.html"]  # no PNG: FOODCAST_PLOT_PNG=0 (conftest.py)
    with open(download(run, "plots/forecast.html", tmp_path / "dl"), encoding="utf-8") as f:
        html = f.read()
    assert "<html" in html.lower()
    assert '<script src="http' not in html and "<script src='http" not in html
    assert re.findall(r"<script[^>]*\bsrc=", html) == []  # no external script at all
    # plotly.js (4.8 MB) is in the page, packed: the page weighs 2.0 MB, not 4.8.
    assert 1_500_000 < len(html.encode()) < 2_200_000
    assert "cash-in" in html


def test_the_page_draws_its_figure_in_chromium_offline(run, workdir, tmp_path):
    """What a user gets opening the artifact in a browser with no network: the figure, titled."""
    ui_harness = pytest.importorskip("ui_harness")  # Playwright and Debian's Chromium, as tests/test_ui.py
    fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[4.0, 1.0, 7.0], name="cash-in"))
    fig.update_layout(title={"text": "Forecast of week 201", "subtitle": {"text": "not scored yet"}})
    mlflow_log_plotly(fig, "plots", "forecast.html")
    page_file = Path(download(run, "plots/forecast.html", tmp_path / "dl"))

    with ui_harness.browser_page(viewport=(1000, 600), local_storage={}) as page:
        page.context.set_offline(True)
        requested = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(page_file.as_uri())
        page.locator("#figure .main-svg").first.wait_for(timeout=60_000)
        assert page.title() == "Forecast of week 201 · not scored yet"
        assert "Forecast of week 201" in page.locator("#figure .gtitle").text_content()
        assert page.locator("#figure .scatterlayer .trace").count() == 1
        assert [url for url in requested if not url.startswith("file:")] == []


def test_a_png_is_logged_beside_the_html(run, workdir, monkeypatch):
    cwd, tmp = workdir
    monkeypatch.setenv("FOODCAST_PLOT_PNG", "1")
    painter = png_painter()  # as a stage starts it: its Chromium boots while the stage works
    fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[4.0, 1.0, 7.0], name="cash-in"))

    mlflow_log_plotly(fig, "plots", "forecast.html", painter)

    assert logged(run, "plots") == ["plots/forecast.html", "plots/forecast.png"]
    path = Path(download(run, "plots/forecast.png", cwd.parent / "dl"))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tags = mlflow.get_run(run.info.run_id).data.tags
    assert tags["foodcast.sha256.plots/forecast.png"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert listing(cwd) == [] and listing(tmp) == []


def test_a_png_that_cannot_be_drawn_is_only_a_warning(run, workdir, monkeypatch, caplog):
    monkeypatch.setenv("FOODCAST_PLOT_PNG", "1")
    monkeypatch.setenv("BROWSER_PATH", str(workdir[0] / "no-chromium-here"))  # where kaleido looks first

    mlflow_log_plotly(go.Figure(go.Scatter(x=[1, 2], y=[3.0, 4.0])), "plots", "forecast.html")

    assert logged(run, "plots") == ["plots/forecast.html"]
    assert any("no plots/forecast.png: kaleido failed" in r.getMessage() for r in caplog.records), caplog.text


def test_plotly_refuses_a_non_html_name(run, workdir):
    fig = go.Figure()
    with pytest.raises(ValueError):
        mlflow_log_plotly(fig, "plots", "forecast.png")
    assert logged(run, "plots") == []


def test_a_deleted_upstream_run_is_refused_in_one_line(experiment_id):
    # The tester's case: predict used a train run its user had deleted (`mlflow runs delete`).
    client = mlflow.MlflowClient()
    run_id = client.create_run(experiment_id, tags={names.STEP_TAG: names.TRAIN}).info.run_id
    client.set_terminated(run_id)
    assert check_run(run_id, names.TRAIN).info.run_id == run_id
    client.delete_run(run_id)
    with pytest.raises(FoodcastError, match=rf"^run {run_id} \(train\) is deleted: restore it .*or give another run$"):
        check_run(run_id, names.TRAIN)
    # Where only its parameters are read (the champion's configuration, in promote).
    assert check_run(run_id, names.TRAIN, deleted_ok=True).info.run_id == run_id


def test_a_model_s_checksum_covers_the_files_it_was_logged_with(tmp_path):
    """A file MLflow adds to a logged model's folder (``registered_model_meta``, when the model is
    loaded or served by a ``models:/`` URI) is not a change; a logged file changed or gone is."""
    model = tmp_path / "multi_model"
    (model / "artifacts").mkdir(parents=True)
    (model / "MLmodel").write_text("flavors: {}\n")
    weights = model / "artifacts" / "model.skops"
    weights.write_bytes(b"weights")
    tags = model_checksums("multi_model", str(model))
    assert model_problem(tags, "multi_model", str(model)) is None

    (model / "registered_model_meta").write_text("model_name: foodcast\nmodel_version: '1'\n")
    assert model_problem(tags, "multi_model", model.as_uri()) is None

    weights.write_bytes(b"weighs")
    assert "has changed since the run finished" in model_problem(tags, "multi_model", str(model))
    weights.unlink()
    assert "has changed since the run finished" in model_problem(tags, "multi_model", str(model))
    shutil.rmtree(model)
    assert model_problem(tags, "multi_model", str(model)) == "model multi_model is missing"
