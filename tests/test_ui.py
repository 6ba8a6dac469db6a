"""The lineage as a user reads it: the MLflow UI in a real browser, over a store made by one
pipeline run and a second, partly reused one.

Needs Debian's Chromium (``apt-get install -y chromium``) and the ``playwright`` package (dev
extra); Playwright drives the system browser and never downloads one. The UI is served under a
path prefix, as behind a reverse proxy, so that only relative links work. Set
FOODCAST_UI_SCREENSHOTS=docs to refresh the screenshots of docs/lineage.md.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import ui_harness as ui_h
from conftest import SMALL, SMALL_NODES, Runner, stage_lines
from fixtures import make_batches
from foodcast.tracking import names
from foodcast.tracking.ui_links import run_href


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A cold run, then one with another n_estimators (load, features, future reused)."""
    root = tmp_path_factory.mktemp("ui")
    uri = f"sqlite:///{root}/mlflow.db"
    runner = Runner(root, uri, make_batches(root / "data", range(1, 15)))
    first = stage_lines(runner.mlflow_run(**SMALL).stdout)
    second = stage_lines(runner.mlflow_run(**{**SMALL, "n_estimators": 7}).stdout)
    assert {s: second[s][0] for s in ("load", "features", "future")} == dict.fromkeys(
        ("load", "features", "future"), "reused"
    )
    client = MlflowClient(uri)
    parents = client.search_runs(
        ["0"], filter_string=f"tags.`{names.STEP_TAG}` = 'main'", order_by=["attributes.start_time DESC"]
    )
    return root, client, first, second, parents[0]


@pytest.fixture(scope="module")
def ui(store, tmp_path_factory):
    root, client, *_ = store
    with (
        ui_h.mlflow_ui(
            client.tracking_uri, root / "mlruns", static_prefix="/mlflow", log_dir=tmp_path_factory.mktemp("ui-logs")
        ) as server,
        ui_h.browser_page(local_storage={**ui_h.ASSISTANT_CLOSED, **ui_h.MODEL_TRAINING_VIEW}) as page,
    ):
        # a user who clicked "Model training" once, as docs/lineage.md says
        yield server, page


@pytest.fixture
def shots(tmp_path) -> Path:
    where = Path(os.environ.get("FOODCAST_UI_SCREENSHOTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


def test_today_s_parent_shows_every_stage_with_the_reused_ones_marked(store, ui, shots):
    _, client, first, second, parent = store
    server, page = ui
    experiment_id = parent.info.experiment_id
    ui_h.open_run(page, server, experiment_id, parent.info.run_id)
    assert ui_h.run_name(page) == "main · week 13"
    assert ui_h.read_params(page)["next_week"] == "13"
    text = ui_h.read_description(page)
    # The second pipeline reuses load, features and future and launches the rest.
    launched = len(SMALL_NODES) - 3
    assert text.startswith(f"Forecast of week 13 from weeks 2–12 · {launched} launched, 3 reused"), text
    page.screenshot(path=shots / "lineage-main.png", full_page=True)
    rows = {line.split()[0]: line for line in text.splitlines() if line.split() and line.split()[0] in SMALL_NODES}
    assert sorted(rows) == sorted(SMALL_NODES), text
    for stage, (status, run_id) in second.items():
        assert run_id[:8] in rows[stage] and status in rows[stage], (stage, rows[stage])

    # A reused stage is one click away, though it stays nested under the run that launched it.
    tab = ui_h.click_to_new_tab(page, ui_h.description_link(page, second["load"][1][:8]))
    ui_h.wait_for_run_page(tab)
    assert ui_h.run_name(tab) == "load"
    assert second["load"][1] == first["load"][1] and tab.url.endswith(second["load"][1])
    tab.close()


def _overview(tab) -> None:
    """From a run's Artifacts tab to its Overview, as a user clicks it."""
    tab.get_by_role("tab", name="Overview").click()
    ui_h.wait_for_run_page(tab)


def _follow(page, text: str, expected_stage: str):
    tab = ui_h.click_to_new_tab(page, ui_h.description_link(page, text))
    ui_h.wait_for_run_page(tab)
    assert ui_h.run_name(tab) == expected_stage, (text, tab.url)
    return tab


def test_from_the_forecast_to_its_weeks_of_data_by_clicking_only(store, ui, shots, tmp_path):
    _, client, _, second, parent = store
    server, page = ui
    ids = {stage: run_id[:8] for stage, (_, run_id) in second.items()}
    ui_h.open_run(page, server, parent.info.experiment_id, parent.info.run_id)

    y_pred = names.artifact_path(names.Y_PRED)
    forecast = ui_h.click_to_new_tab(page, ui_h.description_link(page, y_pred))
    ui_h.wait_for_run_page(forecast, overview=False)
    preview = ui_h.read_artifact_preview(forecast)
    assert (ui_h.run_name(forecast), preview["path"], len(preview["rows"])) == ("predict", y_pred, 168)
    assert re.fullmatch(r"2015-03-23T00:00:00", preview["rows"][0][0])  # ISO, Monday of week 13
    _overview(forecast)
    train = _follow(forecast, f"train {ids['train']}", "train")
    features = _follow(train, f"features {ids['features']}", "features")
    load = _follow(features, f"load {ids['load']}", "load")
    params = ui_h.read_params(load)
    assert (params["start_week"], params["end_week"]) == ("2", "12")
    assert "Batches: weeks 2-12 of 2 restaurants" in ui_h.read_description(load)
    load.screenshot(path=shots / "lineage-load.png", full_page=True)
    for tab in (forecast, train, features, load):
        tab.close()


def test_a_dataset_panel_shows_the_run_and_artifact_it_came_from(store, ui, shots):
    _, client, _, second, parent = store
    server, page = ui
    experiment_id = parent.info.experiment_id
    future_id = second["future"][1]
    ui_h.open_run(page, server, experiment_id, second["predict"][1])
    [x_pred] = ui_h.read_datasets(page)
    assert x_pred["name"] == f"x_pred.csv · future {future_id[:8]}"
    assert x_pred["source_type"] == "HTTP"  # shown as a link
    assert x_pred["href"] == run_href(experiment_id, future_id, names.artifact_path(names.X_PRED))
    assert x_pred["profile"]["num rows"] == "168"

    ui_h.open_run(page, server, experiment_id, second["load"][1])
    [batches] = ui_h.read_datasets(page)
    assert batches["name"].startswith("batches · weeks 2-12")
    assert batches["profile"]["allow missing"] == "false" and batches["profile"]["missing"] == "none"
    # the drawer of the predict run, for docs/lineage.md
    ui_h.open_run(page, server, experiment_id, second["predict"][1])
    ui_h.read_datasets(page, keep_open=True)
    page.screenshot(path=shots / "lineage-dataset.png")
    page.keyboard.press("Escape")

    # Its link opens the upstream run's artifact.
    ui_h.open_run(page, server, experiment_id, second["features"][1])
    [data] = ui_h.read_datasets(page)
    page.goto(f"{server.url}/{data['href']}")
    ui_h.wait_for_run_page(page, overview=False)
    preview = ui_h.read_artifact_preview(page)
    assert (ui_h.run_name(page), preview["path"]) == ("load", names.artifact_path(names.DATA))
    local = pd.read_csv(client.download_artifacts(second["load"][1], names.artifact_path(names.DATA)))
    assert len(preview["rows"]) == min(len(local), 500)
