"""The plots the stages log: a forecast with its interval (and the truth), and a backtest's
weekly errors and coverage."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from foodcast.core.columns import LOWER_COLUMN, POINT_COLUMN, SIMPLE_COLUMN, UPPER_COLUMN, member_columns


def plotly_predictions(preds: pd.DataFrame, y: pd.Series | None = None) -> go.Figure:
    """Plot the point forecast, its interval and, if given, the truth.

    Parameters
    ----------
    preds : DataFrame
        Predictions indexed by timestamp: ``y_pred`` with ``y_lower`` / ``y_upper`` (a
        ``MultiModel``'s), or, from an older model, ``y_pred_simple`` and the members
        ``y_pred_0`` ..., whose min-max is then the band.
    y : Series, optional
        True cash-in indexed by timestamp.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    x = preds.index
    if {LOWER_COLUMN, UPPER_COLUMN} <= set(preds.columns):
        lower, upper, band = preds[LOWER_COLUMN], preds[UPPER_COLUMN], "interval"
    else:
        members = preds[member_columns(preds) or [SIMPLE_COLUMN]]
        lower, upper, band = members.min(axis=1), members.max(axis=1), "multi-model min-max"
    point = preds[POINT_COLUMN] if POINT_COLUMN in preds.columns else preds[SIMPLE_COLUMN]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=upper, mode="lines", line={"width": 0}, name=f"{band} upper", showlegend=False))
    fig.add_trace(
        go.Scatter(
            x=x, y=lower, mode="lines", line={"width": 0}, fill="tonexty", fillcolor="rgba(31,119,180,0.25)", name=band
        )
    )
    fig.add_trace(go.Scatter(x=x, y=point, mode="lines", name="forecast", line={"color": "rgb(31,119,180)"}))
    if y is not None:
        fig.add_trace(go.Scatter(x=y.index, y=y, mode="lines", name="cash-in", line={"color": "black", "width": 1}))
    fig.update_layout(xaxis_title="hour", yaxis_title="cash-in (£)", hovermode="x unified", template="plotly_white")
    return fig


def plotly_backtest(weeks: pd.DataFrame, interval_level: float | None = None) -> go.Figure:
    """Weekly MAE of the model and of the two references, and the interval's coverage.

    Parameters
    ----------
    weeks : DataFrame
        :attr:`Backtest.weeks` (``coverage_open``, if there, is drawn too).
    interval_level : float, optional
        Drawn as the coverage's target line.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.06)
    for column, name, color in (
        ("mae_naive", "seasonal naive", "rgb(180,180,180)"),
        ("mae_mean4", "4-week mean", "rgb(255,127,14)"),
        ("mae_model", "model", "rgb(31,119,180)"),
    ):
        fig.add_trace(
            go.Scatter(x=weeks["week"], y=weeks[column], mode="lines+markers", name=name, line={"color": color}),
            row=1,
            col=1,
        )
    fig.add_trace(
        go.Scatter(
            x=weeks["week"],
            y=weeks["coverage"],
            mode="lines+markers",
            name="interval coverage",
            line={"color": "rgb(44,160,44)"},
        ),
        row=2,
        col=1,
    )
    if "coverage_open" in weeks.columns:
        fig.add_trace(
            go.Scatter(
                x=weeks["week"],
                y=weeks["coverage_open"],
                mode="lines+markers",
                name="interval coverage, open hours",
                line={"color": "rgb(148,103,189)"},
            ),
            row=2,
            col=1,
        )
    if interval_level is not None:
        fig.add_hline(y=float(interval_level), line={"dash": "dash", "color": "gray"}, row=2, col=1)
    fig.update_yaxes(title_text="hourly MAE", row=1, col=1)
    fig.update_yaxes(title_text="coverage", range=[0, 1], row=2, col=1)
    fig.update_xaxes(title_text="target week", row=2, col=1)
    fig.update_layout(template="plotly_white", hovermode="x unified")
    return fig
