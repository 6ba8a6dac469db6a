"""Log data frames and figures to the active MLflow run without leaving files behind.

Each file logged gets its SHA-256 as a tag of the run (:mod:`foodcast.application.integrity`),
so that whoever reuses or reads it later can tell whether it changed.
"""

from __future__ import annotations

import os

import mlflow

from foodcast.application.catalog import MONEY_COLUMN, TIMESTAMP_FORMAT


def _log_file(write, artifact_path: str, file_name: str) -> None:
    """Write ``file_name`` in a private temporary directory with ``write(path)``, log it, and
    record its checksum."""
    from foodcast.application.integrity import artifact_tag, file_digest
    from foodcast.application.processes import temp_dir

    with temp_dir("log") as tmp:
        path = os.path.join(tmp, file_name)
        write(path)
        digest = file_digest(path)
        mlflow.log_artifact(path, artifact_path)
    mlflow.set_tag(artifact_tag(f"{artifact_path}/{file_name}"), digest)


def to_cents(df):
    """``df`` with its money columns (``catalog.MONEY_COLUMN``: cash-in, lags, predictions,
    interval bounds) rounded to the cent; other columns untouched."""
    import re

    money = [c for c in df.columns if re.fullmatch(MONEY_COLUMN, str(c)) and df[c].dtype.kind == "f"]
    return df.round({c: 2 for c in money}) if money else df


def mlflow_log_pandas(df, artifact_path: str, file_name: str) -> None:
    """Log ``df`` as ``<artifact_path>/<file_name>`` on the active run.

    In a CSV file, money columns are written to the cent (:func:`to_cents`) and timestamps
    in ISO 8601 (``2018-10-29T00:00:00``).

    Parameters
    ----------
    df : DataFrame
        Logged without its index (``reset_index()`` first to keep it).
    artifact_path : str
        Directory inside the run's artifacts.
    file_name : str
        ``*.csv`` or ``*.json`` (records orientation, ISO dates).
    """
    if file_name.endswith(".csv"):
        table = to_cents(df)
        _log_file(lambda p: table.to_csv(p, index=False, lineterminator="\n", date_format=TIMESTAMP_FORMAT),
                  artifact_path, file_name)
    elif file_name.endswith(".json"):
        _log_file(lambda p: df.to_json(p, orient="records", date_format="iso", indent=1),
                  artifact_path, file_name)
    else:
        raise ValueError(f"mlflow_log_pandas writes .csv or .json files, not {file_name!r}")


def mlflow_log_plotly(fig, artifact_path: str, file_name: str) -> None:
    """Log a plotly figure as a self-contained HTML page (plotly.js inlined, no internet needed).

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
    artifact_path : str
        Directory inside the run's artifacts.
    file_name : str
        ``*.html``.
    """
    if not file_name.endswith(".html"):
        raise ValueError(f"mlflow_log_plotly writes .html files, not {file_name!r}")
    _log_file(lambda p: fig.write_html(p, include_plotlyjs=True, full_html=True),
              artifact_path, file_name)
