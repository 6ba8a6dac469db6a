"""What a user reads in the MLflow UI: run names and descriptions (markdown) with links.

Every stage run's description says in its first two lines what it did, from which inputs
(each a link to the upstream run's artifact or model), and lists what it wrote. The parent
``main`` run is named after the week it forecasts and its description is a table of the
stages — reused or launched, a link to each run, its key parameters — with links to the
forecast and the plots. Links are relative (``#/experiments/...``), so they work whatever
host, port or prefix serves the UI.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mlflow.entities import Run

from foodcast.pipeline.stage import Stage
from foodcast.tracking import names
from foodcast.tracking.ui_links import compare_href, md_link, md_table, run_href, runs_table_href

MAX_NOTE = 8000  # characters MLflow keeps in a tag


def short(run_id: str) -> str:
    """The first 8 characters of a run id, as the UI shows them."""
    return run_id[:8]


def _reads(stage: Stage, run: Run) -> list[str]:
    """One markdown item per input ``run`` recorded: an upstream artifact (a link to it in its
    run's Artifacts tab, then a link to that run), a model (a link to its page), the batches."""
    experiment_id, params = run.info.experiment_id, run.data.params
    upstream = {value: name[: -len("_run_id")] for name, value in params.items() if name.endswith("_run_id") and value}
    items, linked = [], set()
    for dataset_input in run.inputs.dataset_inputs if run.inputs else []:
        dataset = dataset_input.dataset
        try:
            uri = json.loads(dataset.source).get("uri", "")
        except (TypeError, ValueError, AttributeError):
            uri = ""
        if uri.startswith("runs:/"):
            run_id, path = uri[len("runs:/") :].split("/", 1)
            who = f"{upstream.get(run_id, 'run')} {short(run_id)}"
            items.append(
                f"{md_link(path, run_href(experiment_id, run_id, path))} of "
                f"{md_link(who, run_href(experiment_id, run_id))}"
            )
            linked.add(run_id)
        elif uri:
            items.append(f"{dataset.name} from {uri}")
    for model_input in run.inputs.model_inputs if run.inputs else []:
        model_id = model_input.model_id
        items.append(f"model {md_link(model_id, f'#/experiments/{experiment_id}/models/{model_id}')}")
    items += [
        md_link(f"{u} {short(rid)}", run_href(experiment_id, rid)) for rid, u in upstream.items() if rid not in linked
    ]
    return items


def _params_text(stage: Stage, params: Mapping[str, str]) -> str:
    return ", ".join(f"{p.name}={params[p.name]}" for p in stage.params if p.name in params)


def stage_description(stage: Stage, run: Run, error: str | None = None) -> str:
    """Markdown description of a stage run: what it did, its inputs (links), its outputs.

    Parameters
    ----------
    stage : Stage
        The run's stage.
    run : mlflow.entities.Run
        The run, with its parameters, tags and inputs.
    error : str, optional
        Why it failed, if it did.
    """
    experiment_id, run_id = run.info.experiment_id, run.info.run_id
    params = run.data.params
    what = f"{stage.name} {stage.summary}"
    if _params_text(stage, params):
        what += f" ({_params_text(stage, params)})"
    first = f"FAILED: {what}: {error}" if error else what[0].upper() + what[1:] + "."
    lines = [first]
    reads = _reads(stage, run)
    if reads:
        lines.append("Read: " + " · ".join(reads))
    if run.data.tags.get(names.SUMMARY_TAG):
        lines.append(run.data.tags[names.SUMMARY_TAG])
    if run.data.tags.get(names.COVERAGE_TAG):
        lines.append(f"Batches: {run.data.tags[names.COVERAGE_TAG]}")
    outputs = [md_link(f"{d}/{f}", run_href(experiment_id, run_id, f"{d}/{f}")) for d, f in stage.artifacts]
    outputs += [f"model {name}" for name in stage.models]
    if outputs and not error:
        lines.append("Wrote: " + " · ".join(outputs))
    return "\n\n".join(lines)[:MAX_NOTE]


def main_name(options: Mapping[str, Any]) -> str:
    """The parent run's name: ``main · week <next_week>``."""
    return f"main · week {options['next_week']}"


def scorecard_line(week: str | int | None, metrics: Mapping[str, float]) -> str:
    """One line saying how a week's forecast did, from an evaluate run's metrics."""
    text = (
        f"Week {week}'s forecast: hourly MAE {metrics.get('mae_model', float('nan')):.2f}, against "
        f"{metrics.get('mae_naive', float('nan')):.2f} for seasonal naive and "
        f"{metrics.get('mae_mean4', float('nan')):.2f} for the 4-week mean"
    )
    if "coverage" in metrics:
        text += f"; the interval held {100 * metrics['coverage']:.0f} % of hours"
    return text + "."


def main_description(
    experiment_id: str,
    options: Mapping[str, Any],
    rows: list[dict[str, str]],
    forecast: tuple[str, str] | None,
    plots: list[tuple[str, str]],
    error: str | None = None,
    scores: list[str] | tuple[str, ...] = (),
) -> str:
    """Markdown description of a ``main`` run.

    Parameters
    ----------
    experiment_id : str
    options : dict
        main's checked options.
    rows : list of dict
        One per stage node: ``label``, ``run_id``, ``status`` (``reused`` / ``launched``),
        ``params`` (its key parameters, as text).
    forecast : (str, str), optional
        ``(run id, artifact path)`` of the predictions.
    plots : list of (str, str)
        ``(run id, artifact path)`` of the plots to link.
    error : str, optional
        Why the pipeline failed, if it did.
    scores : list of str
        Scorecard lines (:func:`scorecard_line`) of the forecasts scored.
    """
    launched = sum(r["status"] == "launched" for r in rows)
    reused = sum(r["status"] == "reused" for r in rows)
    first = (
        f"Forecast of week {options['next_week']} from weeks {options['start_week']}–{options['end_week']}"
        f" · {launched} launched, {reused} reused"
    )
    if error:
        first = f"FAILED: {first}: {error}"
    lines = [first]
    if forecast is not None:
        run_id, path = forecast
        link = md_link(path, run_href(experiment_id, run_id, path))
        plot_links = " · ".join(md_link(p, run_href(experiment_id, rid, p)) for rid, p in plots)
        lines.append(f"Forecast: {link}" + (f" · plots: {plot_links}" if plot_links else ""))
    lines += list(scores)
    ids = [r["run_id"] for r in rows]
    if ids:
        lines.append(
            f"All stages: {md_link('runs table', runs_table_href(experiment_id, ids))} · "
            f"{md_link('side by side', compare_href(experiment_id, ids))}"
        )
        table = md_table(
            ["stage", "run", "reused or launched", "parameters"],
            [
                [
                    r["label"],
                    md_link(short(r["run_id"]), run_href(experiment_id, r["run_id"])),
                    r["status"],
                    r["params"],
                ]
                for r in rows
            ],
        )
        lines.append(table)
    return "\n\n".join(lines)[:MAX_NOTE]
