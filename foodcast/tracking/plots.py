"""The plots the stages log: a forecast with its interval (and the truth), and a backtest's
weekly errors and coverage."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from foodcast.core.columns import LOWER_COLUMN, POINT_COLUMN, SIMPLE_COLUMN, UPPER_COLUMN, member_columns
from foodcast.core.restaurants import CASH_IN, CHAIN, FALLBACK, ORDER_DATE, RESTAURANT

_BAND_AND_POINT = (LOWER_COLUMN, UPPER_COLUMN, POINT_COLUMN)


def scores_text(mae_model: float, mae_naive: float | None = None, coverage: float | None = None) -> str:
    """The error figures in one line: the model's hourly MAE, against seasonal naive's when
    known, and the interval's coverage when known."""
    text = f"MAE £{mae_model:,.2f} an hour"
    if mae_naive is not None and mae_naive > 0:
        text += f" vs seasonal naive £{mae_naive:,.2f} (×{mae_model / mae_naive:.2f})"
    if coverage is not None:
        text += f" · interval coverage {100 * coverage:.0f} %"
    return text


def forecast_title(week: int | str, scores: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The title of a week's forecast plot: the week, and with ``scores`` (evaluate's metrics
    ``mae_model``, ``mae_naive``, ``coverage``) its error figures."""
    if scores is None:
        return {
            "text": f"Forecast of week {week}",
            "subtitle": {"text": "not scored yet: evaluate scores it once the week's cash-in is in"},
        }
    return {
        "text": f"Week {week}: forecast and cash-in",
        "subtitle": {"text": scores_text(scores["mae_model"], scores.get("mae_naive"), scores.get("coverage"))},
    }


def validation_title(n_fold: int, mae: float) -> dict[str, Any]:
    """The title of validate's plot: its folds and the point forecast's mean MAE over them."""
    return {
        "text": f"Cross-validation: out-of-fold forecasts of the training weeks ({n_fold} folds)",
        "subtitle": {"text": f"point forecast: mean {scores_text(mae)}"},
    }


def plotly_predictions(
    preds: pd.DataFrame, y: pd.Series | None = None, title: str | Mapping[str, Any] | None = None
) -> go.Figure:
    """Plot the point forecast, its interval and, if given, the truth.

    Hovering an hour shows the forecast with its interval and the truth.

    Parameters
    ----------
    preds : DataFrame
        Predictions indexed by timestamp: ``y_pred`` with ``y_lower`` / ``y_upper`` (a
        ``MultiModel``'s), or, from an older model, ``y_pred_simple`` and the members
        ``y_pred_0`` ..., whose min-max is then the band.
    y : Series, optional
        True cash-in indexed by timestamp.
    title : str or dict, optional
        plotly's ``layout.title`` (:func:`forecast_title` makes one).

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
    fig.add_trace(
        go.Scatter(
            x=x, y=upper, mode="lines", line={"width": 0}, name=f"{band} upper", showlegend=False, hoverinfo="skip"
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=lower,
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor="rgba(31,119,180,0.25)",
            name=band,
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=point,
            mode="lines",
            name="forecast",
            line={"color": "rgb(31,119,180)"},
            customdata=np.column_stack([lower.to_numpy(dtype="float64"), upper.to_numpy(dtype="float64")]),
            hovertemplate=f"£%{{y:,.2f}} ({band} £%{{customdata[0]:,.2f}} – £%{{customdata[1]:,.2f}})",
        )
    )
    if y is not None:
        fig.add_trace(
            go.Scatter(
                x=y.index,
                y=y,
                mode="lines",
                name="cash-in",
                line={"color": "black", "width": 1},
                hovertemplate="£%{y:,.2f}",
            )
        )
    fig.update_layout(
        xaxis={"title": "hour", "hoverformat": "%a %d %b %Y, %H:00"},
        yaxis_title="cash-in (£)",
        hovermode="x unified",
        template="plotly_white",
    )
    if title is not None:
        fig.update_layout(title=title)
    return fig


def plotly_restaurant_predictions(
    preds: pd.DataFrame, truth: pd.DataFrame | None = None, title: str | Mapping[str, Any] | None = None
) -> go.Figure:
    """A long forecast (every restaurant and the chain), one restaurant at a time: a dropdown
    picks it, the chain's total first (what the figure shows at first, and its PNG; without
    chain rows, the first restaurant).

    The figure is :func:`plotly_predictions`' for the chain; each entry of the dropdown puts
    the restaurant's forecast, interval and cash-in in its traces (its label says when its
    forecast is the fallback's).

    Parameters
    ----------
    preds : DataFrame
        ``restaurant``, ``order_date``, ``y_pred``, ``y_lower``, ``y_upper`` (and ``fallback``):
        predict's long table, the chain's total as its rows named ``chain``.
    truth : DataFrame, optional
        ``restaurant``, ``order_date``, ``cash_in``: the week's cash-in, long too.
    title : str or dict, optional
        plotly's ``layout.title``.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    named = [str(r) for r in dict.fromkeys(preds[RESTAURANT])]
    restaurants = [CHAIN, *(r for r in named if r != CHAIN)] if CHAIN in named else named
    by_restaurant = {str(name): rows for name, rows in preds.groupby(RESTAURANT, sort=False)}
    actuals = {str(name): rows for name, rows in truth.groupby(RESTAURANT, sort=False)} if truth is not None else {}

    def rows(name: str) -> tuple[pd.DataFrame, pd.Series | None]:
        forecast = by_restaurant[name].set_index(ORDER_DATE)
        if truth is None:
            return forecast, None
        cash = actuals.get(name)
        series = cash.set_index(ORDER_DATE)[CASH_IN] if cash is not None else pd.Series(dtype="float64")
        return forecast, series.reindex(forecast.index)

    forecast, cash = rows(restaurants[0])
    fig = plotly_predictions(forecast, cash, title)
    buttons = []
    for name in restaurants:
        forecast, cash = rows(name)
        lower, upper, point = (np.round(forecast[c].to_numpy(dtype="float64"), 2) for c in _BAND_AND_POINT)
        values: dict[str, list[Any]] = {
            "y": [upper, lower, point],
            "customdata": [None, None, np.column_stack([lower, upper])],
        }
        if cash is not None:
            values["y"].append(np.round(cash.to_numpy(dtype="float64"), 2))
            values["customdata"].append(None)
        fallback = FALLBACK in forecast.columns and bool((forecast[FALLBACK] > 0).any())
        label = f"{name} (fallback)" if fallback else ("the chain (total)" if name == CHAIN else name)
        buttons.append({"label": label, "method": "restyle", "args": [values, list(range(len(values["y"])))]})
    fig.update_layout(
        updatemenus=[
            {
                "buttons": buttons,
                "active": 0,
                "direction": "down",
                "showactive": True,
                "x": 1.0,
                "xanchor": "right",
                "y": 1.02,
                "yanchor": "bottom",
            }
        ]
    )
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
    fig.update_layout(template="plotly_white", hovermode="x unified", title=backtest_title(weeks, interval_level))
    return fig


def backtest_title(weeks: pd.DataFrame, interval_level: float | None = None) -> dict[str, Any]:
    """The weeks a backtest replayed, and its error figures over them: the means over weeks
    (every week has 168 hours, so these are hourly MAEs, as the run's ``mean_*`` metrics)."""
    if weeks.empty:
        return {"text": "Backtest of no week"}
    s = weeks[["mae_model", "mae_naive", "coverage"]].mean()
    target = f" (target {100 * interval_level:.0f} %)" if interval_level is not None else ""
    beating = int((weeks["mae_model"] < weeks["mae_naive"]).sum())
    return {
        "text": f"Backtest of weeks {weeks['week'].min()}–{weeks['week'].max()} ({len(weeks)} weeks)",
        "subtitle": {
            "text": f"mean {scores_text(s['mae_model'], s['mae_naive'], s['coverage'])}{target} · "
            f"model better than naive in {beating} of {len(weeks)} weeks"
        },
    }
