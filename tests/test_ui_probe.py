"""The MLflow UI in a real browser, over a store made by one pipeline run: the pages a user
opens show the runs, parameters and datasets the tracking store holds, and the links of
foodcast.application.ui_links lead where they say.

Needs Debian's Chromium (``apt-get install -y chromium``) and the ``playwright`` package (dev
extra); Playwright drives the system browser and never downloads one. Set
FOODCAST_UI_SCREENSHOTS=<dir> to keep the screenshots.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from conftest import SMALL, Runner, stage_lines
from fixtures import make_batches
from mlflow.tracking import MlflowClient

import ui_harness as ui_h
from foodcast.application import catalog
from foodcast.application.ui_links import compare_href, md_link, md_table, run_href, runs_table_href


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """One cold `main` run on the small fixture data: (store root, client, parent run,
    {stage: run})."""
    root = tmp_path_factory.mktemp("ui")
    uri = f"sqlite:///{root}/mlflow.db"
    proc = Runner(root, uri, make_batches(root / "data", range(1, 15))).mlflow_run(**SMALL)
    client = MlflowClient(uri)
    parent = client.search_runs(["0"], filter_string=f"tags.`{catalog.STEP_TAG}` = 'main'")[0]
    runs = {stage: client.get_run(run_id) for stage, (_, run_id) in stage_lines(proc.stdout).items()}
    assert sorted(runs) == sorted(catalog.STAGES)
    return root, client, parent, runs


@pytest.fixture(scope="module")
def browser(pipeline, tmp_path_factory):
    """The UI served over the pipeline's store, and one browser page on it. Served under a
    path prefix, as behind a reverse proxy, so that only relative links work."""
    root, client, _, _ = pipeline
    logs = tmp_path_factory.mktemp("ui-logs")
    with ui_h.mlflow_ui(client.tracking_uri, root / "mlruns", static_prefix="/mlflow", log_dir=logs) as ui, \
            ui_h.browser_page() as page:
        yield ui, page


@pytest.fixture
def shots(tmp_path):
    shots = Path(os.environ.get("FOODCAST_UI_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    return shots


def test_run_pages_show_what_the_store_holds(pipeline, browser, shots, tmp_path):
    _, client, parent, runs = pipeline
    ui, page = browser
    experiment_id = parent.info.experiment_id

    ui_h.open_run(page, ui, experiment_id, parent.info.run_id)
    assert ui_h.run_name(page) == parent.info.run_name
    assert ui_h.read_params(page) == parent.data.params
    page.screenshot(path=shots / "main-run.png")

    train = runs["train"]
    ui_h.open_run(page, ui, experiment_id, train.info.run_id)
    assert ui_h.run_name(page) == "train"
    shown = ui_h.read_params(page)
    assert shown == train.data.params
    assert shown["features_run_id"] == runs["features"].info.run_id
    page.screenshot(path=shots / "train-run.png")

    # The dataset drawer of a stage shows the tables the store recorded as its inputs.
    features = runs["features"]
    ui_h.open_run(page, ui, experiment_id, features.info.run_id)
    shown = {d["name"]: d for d in ui_h.read_datasets(page)}
    stored = {i.dataset.name: i.dataset for i in features.inputs.dataset_inputs}
    assert {n: d["digest"] for n, d in shown.items()} == {n: d.digest for n, d in stored.items()}
    data = pd.read_csv(client.download_artifacts(runs["load"].info.run_id, "/".join(catalog.DATA), str(tmp_path)))
    assert shown["/".join(catalog.DATA)]["profile"]["num rows"] == str(len(data))

    # The runs table nests every stage of this run under its parent.
    ui_h.open_runs_table(page, ui, experiment_id)
    table = ui_h.read_runs_table(page)
    page.screenshot(path=shots / "runs-table.png")
    assert table[0] == ui_h.RunRow(parent.info.run_name, parent.info.run_id, 0)
    assert sorted(table[1:]) == sorted(ui_h.RunRow(stage, run.info.run_id, 1) for stage, run in runs.items())

    for name in ("main-run.png", "train-run.png", "runs-table.png"):
        assert (shots / name).stat().st_size > 10_000, name


def test_description_links_lead_where_they_say(pipeline, browser, shots, tmp_path):
    _, client, parent, runs = pipeline
    ui, page = browser
    experiment_id = parent.info.experiment_id
    predict, train = runs["predict"], runs["train"]
    y_pred = "/".join(catalog.Y_PRED)
    stage_ids = [runs[stage].info.run_id for stage in catalog.STAGES]
    # A run of its own carries the description, so the pipeline's runs stay as main left them.
    note = "\n".join([
        f"Links to {md_link('predict [stage]', run_href(experiment_id, predict.info.run_id))} "
        f"and its {md_link('y_pred.csv', run_href(experiment_id, predict.info.run_id, y_pred))}.",
        "",
        md_table(["stage", "run", "note"], [
            ["train", md_link("train", run_href(experiment_id, train.info.run_id)), "a | b"],
            ["all", md_link("all stages", runs_table_href(experiment_id, stage_ids)),
             md_link("compare", compare_href(experiment_id, stage_ids))],
        ]),
    ])
    probe = client.create_run(experiment_id, run_name="link probe", tags={"mlflow.note.content": note})
    client.set_terminated(probe.info.run_id)

    ui_h.open_run(page, ui, experiment_id, probe.info.run_id)
    text = ui_h.read_description(page)
    assert text.startswith("Links to predict [stage] and its y_pred.csv.")
    assert "a | b" in text and "|" not in text.replace("a | b", "")  # a table, not raw markdown
    page.screenshot(path=shots / "description.png")

    tab = ui_h.click_to_new_tab(page, ui_h.description_link(page, "predict [stage]"))
    ui_h.wait_for_run_page(tab)
    assert ui_h.run_name(tab) == "predict"
    tab.close()

    tab = ui_h.click_to_new_tab(page, ui_h.description_link(page, "y_pred.csv"))
    ui_h.wait_for_run_page(tab, overview=False)
    preview = ui_h.read_artifact_preview(tab)
    local = pd.read_csv(client.download_artifacts(predict.info.run_id, y_pred, str(tmp_path)))
    assert (ui_h.run_name(tab), preview["path"], preview["columns"]) == ("predict", y_pred, list(local.columns))
    assert len(preview["rows"]) == len(local)
    tab.close()

    tab = ui_h.click_to_new_tab(page, ui_h.description_link(page, "train"))
    ui_h.wait_for_run_page(tab)
    assert ui_h.read_params(tab) == train.data.params
    tab.close()

    tab = ui_h.click_to_new_tab(page, ui_h.description_link(page, "all stages"))
    listed = ui_h.read_runs_table(tab)
    assert {r.run_id for r in listed if r.level == 1} == set(stage_ids)
    tab.close()

    tab = ui_h.click_to_new_tab(page, ui_h.description_link(page, "compare"))
    tab.get_by_text("Comparing 6 Runs").wait_for()
    for stage in catalog.STAGES:
        assert tab.get_by_role("link", name=runs[stage].info.run_id[:8]).count() == 1, stage
    tab.close()
