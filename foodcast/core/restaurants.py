"""Forecasts per restaurant, coherent with the chain's total: feature rows and one model for all.

The chain's forecast (``granularity=chain``) describes one hourly series; this module describes
many, one per restaurant, in a *long* form: ``restaurant``, ``order_date``, ``cash_in``. Every
restaurant's features are the chain's features (:func:`foodcast.core.features.build_features`)
computed on its own history, so a restaurant is described exactly as the chain would be if it
were the only restaurant. The chain's total is the :data:`CHAIN` rows: its features are those
of the summed series (:func:`chain_total`), and its forecast is always the sum of its
restaurants', so that the two agree to the cent hour by hour: by default the chain model's
forecast split among the restaurants, each moved to the same quantile of its own forecast (see
:class:`RestaurantModel`'s ``reconciliation``).

A restaurant whose own history is too short for a feature (a new one, or one back from weeks
without batches) gets *fallback* features, marked by ``fallback = 1.0``: its level is the mean
hourly cash-in of its complete weeks before (as many as it has, up to ``level_weeks``) and its
profile the chain's, that is the chain's weekly shape scaled to the restaurant's own size. A
restaurant without orders in the ``closed_weeks`` weeks before the forecast week is left out of
the forecast, with a one-line note.

:class:`RestaurantModel` predicts every restaurant and the chain with ``MultiModel``\\ s: one per
restaurant (``kind="local"``) or one pooled over the restaurants (``kind="global"``), the
pooled one also answering fallback rows and restaurants with too few weeks. The per-restaurant
work runs on the core's process pool (:func:`foodcast.core.pool.fan_out`); every fit is seeded,
so the result does not depend on the number of workers.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

from foodcast.core.columns import LOWER_COLUMN, MEMBER_PREFIX, POINT_COLUMN, SIMPLE_COLUMN, UPPER_COLUMN
from foodcast.core.estimators import DEFAULT_MODEL
from foodcast.core.features import (
    DEFAULT_FEATURES,
    build_features,
    check_feature_frame,
    features_offline,
    history_columns,
    level_column,
    profile_column,
)
from foodcast.core.forecast import span_future, week_rows
from foodcast.core.multi_model import MultiModel, forecast_model
from foodcast.core.pool import fan_out
from foodcast.core.weeks import HOURS_PER_WEEK, week_start, weeks_of
from foodcast.errors import FoodcastError

RESTAURANT = "restaurant"
CHAIN = "chain"
FALLBACK = "fallback"
ORDER_DATE = "order_date"
CASH_IN = "cash_in"
KINDS = ("local", "global", "both")
#: How the restaurants' and the chain's point forecasts are made to agree (see RestaurantModel).
RECONCILIATIONS = ("quantiles", "proportions", "bottom_up")
DEFAULT_RECONCILIATION = "quantiles"
#: Complete weeks a restaurant needs before the forecast week to be forecast: one to describe
#: it (the fallback's level) and one the model was fitted on (a training hour needs a complete
#: week before its own), so that the model fitted on the same weeks knows the restaurant.
MIN_FORECAST_WEEKS = 2
_POOLED = "\0pooled"  # key of the pooled model among the fits (no restaurant is named so)
_CHAIN_MODEL = "\0chain"


def _settings(features: dict[str, Any]) -> dict[str, Any]:
    """The feature settings: the pipeline's defaults, overridden by those given."""
    return {**DEFAULT_FEATURES, **features}


def _restaurant_hourly(hourly: pd.DataFrame) -> pd.DataFrame:
    """The restaurants' rows of a long hourly frame (its CHAIN rows, if any, are left: the
    chain's total is always the sum of the restaurants'), checked."""
    missing = [c for c in (RESTAURANT, ORDER_DATE, CASH_IN) if c not in hourly.columns]
    if missing:
        raise FoodcastError(
            f"the hourly cash-in per restaurant lacks the column(s) {', '.join(missing)} "
            f"(expected {RESTAURANT}, {ORDER_DATE}, {CASH_IN})"
        )
    frame = hourly.loc[hourly[RESTAURANT].astype(str) != CHAIN, [RESTAURANT, ORDER_DATE, CASH_IN]]
    frame = pd.DataFrame(
        {
            RESTAURANT: frame[RESTAURANT].astype(str).to_numpy(),
            ORDER_DATE: pd.to_datetime(frame[ORDER_DATE]).dt.as_unit("us").to_numpy(),
            CASH_IN: frame[CASH_IN].to_numpy(dtype="float64"),
        }
    )
    return frame.sort_values([RESTAURANT, ORDER_DATE], kind="stable").reset_index(drop=True)


def _by_restaurant(hourly: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """``(restaurant, its order_date / cash_in rows)``, restaurants sorted."""
    return [
        (str(name), rows[[ORDER_DATE, CASH_IN]].reset_index(drop=True))
        for name, rows in hourly.groupby(RESTAURANT, sort=True)
    ]


def chain_total(hourly: pd.DataFrame) -> pd.DataFrame:
    """The chain's hourly cash-in: the sum over restaurants of each hour.

    Parameters
    ----------
    hourly : DataFrame
        ``restaurant``, ``order_date``, ``cash_in`` (rows of :data:`CHAIN`, if any, are left out).

    Returns
    -------
    DataFrame
        ``order_date`` (every hour some restaurant has, ascending) and ``cash_in``, rounded to
        the cent as the hourly cash-in of one restaurant is (a sum of floats is not exact).
    """
    frame = _restaurant_hourly(hourly)
    total = frame.groupby(ORDER_DATE, sort=True)[CASH_IN].sum().round(2)
    return pd.DataFrame({ORDER_DATE: total.index.to_numpy(), CASH_IN: total.to_numpy(dtype="float64")})


def _complete_week_means(history: pd.DataFrame) -> pd.Series:
    """Mean hourly cash-in of each complete week (all 168 hours) of ``history``, by week number."""
    weeks = weeks_of(history[ORDER_DATE]).to_numpy()
    grouped = history[CASH_IN].groupby(weeks)
    means = grouped.mean()[grouped.count() == HOURS_PER_WEEK]
    return means.sort_index()


def _fallback_level(means: pd.Series, week: int, level_weeks: int, halflife: float) -> float:
    """The level of a fallback row of ``week``: the mean of the complete weeks before it.

    The last ``level_weeks`` (at least 1) of them, weighted as ``build_features`` weighs its
    level (the k-th most recent by ``0.5 ** ((k - 1) / halflife)``); NaN if there is none.
    """
    before = means[means.index < week].to_numpy(dtype="float64")[::-1][: max(int(level_weeks), 1)]
    if not len(before):
        return float("nan")
    weights = 0.5 ** (np.arange(len(before)) / halflife) if halflife > 0 else np.ones(len(before))
    return float(weights @ before / weights.sum())


def _with_fallback(
    rows: pd.DataFrame, history: pd.DataFrame, chain_profile: pd.Series | None, settings: dict[str, Any]
) -> pd.DataFrame:
    """``rows`` (``build_features``' output) with a ``fallback`` column after ``order_date``.

    Rows whose own history lacks a lag, the level or the profile take the fallback features
    (see the module's docstring): the level of the complete weeks before, the chain's profile
    at that hour, and for a lag the hour's expected cash-in (level times profile). Rows that
    cannot have them (no complete week before, or no chain profile) are dropped.
    """
    rows = rows.copy()
    rows.insert(1, FALLBACK, 0.0)
    columns = history_columns(rows)
    lacking = rows[columns].isna().any(axis=1).to_numpy()
    if not lacking.any():
        return rows
    stamps = pd.Series(pd.to_datetime(rows.loc[lacking, ORDER_DATE]).to_numpy())
    means = _complete_week_means(history)
    level_weeks, halflife = int(settings["level_weeks"]), float(settings["level_halflife"])
    week_level = {
        int(w): _fallback_level(means, int(w), level_weeks, halflife) for w in np.unique(weeks_of(stamps).to_numpy())
    }
    level = np.array([week_level[int(w)] for w in weeks_of(stamps).to_numpy()], dtype="float64")
    profile = np.ones(len(stamps))
    if int(settings["profile_weeks"]):
        if chain_profile is None:
            raise ValueError("a fallback profile needs the chain's profile")
        profile = chain_profile.reindex(pd.DatetimeIndex(stamps).as_unit("us")).to_numpy(dtype="float64")
        rows.loc[lacking, profile_column(int(settings["profile_weeks"]))] = profile
    if level_weeks:
        rows.loc[lacking, level_column(level_weeks)] = level
    for lag in range(1, int(settings["lag_in_week"]) + 1):
        rows.loc[lacking, f"lag_{lag}W"] = level * profile
    rows.loc[lacking, FALLBACK] = 1.0
    usable = np.ones(len(rows), dtype=bool)
    usable[lacking] = np.isfinite(level) & np.isfinite(profile)
    return rows[usable].reset_index(drop=True)


def _chain_profile(chain: pd.DataFrame, settings: dict[str, Any]) -> pd.Series | None:
    """The chain's profile feature at each of its hours (as a training row's), by hour; None
    without a profile feature."""
    weeks = int(settings["profile_weeks"])
    if not weeks:
        return None
    # Only the profile is wanted: no lag, no level, no harmonics (their settings do not change it).
    rows = build_features(
        chain[ORDER_DATE], chain, 0, 0, 0, profile_weeks=weeks, profile_groups=int(settings["profile_groups"])
    )
    return pd.Series(
        rows[profile_column(weeks)].to_numpy(dtype="float64"), index=pd.DatetimeIndex(rows[ORDER_DATE]).as_unit("us")
    )


def _training_block(
    item: tuple[str, pd.DataFrame], chain_profile: pd.Series | None, settings: dict[str, Any]
) -> pd.DataFrame:
    """One restaurant's training rows (see :func:`training_rows`)."""
    name, history = item
    rows = build_features(history[ORDER_DATE], history, **settings)
    rows[CASH_IN] = history[CASH_IN].to_numpy(dtype="float64")
    rows = _with_fallback(rows, history, chain_profile, settings)
    rows.insert(0, RESTAURANT, name)
    return rows


def training_rows(hourly: pd.DataFrame, workers: int = 1, **features: Any) -> pd.DataFrame:
    """Training rows of every restaurant and of the chain's total.

    Parameters
    ----------
    hourly : DataFrame
        Long hourly cash-in: ``restaurant``, ``order_date``, ``cash_in``.
    workers : int, default 1
        Processes computing the restaurants' features (0: all cores); the rows do not depend on it.
    **features
        Settings of ``features_offline`` (``degree``, ``lag_in_week``, ``level_weeks`` ...);
        those not given are :data:`foodcast.core.features.DEFAULT_FEATURES`'.

    Returns
    -------
    DataFrame
        ``restaurant``, ``order_date``, ``fallback``, the feature columns of ``features_offline``,
        ``cash_in``: one block per restaurant (sorted), each in time order, then the
        :data:`CHAIN` block (``features_offline`` of :func:`chain_total`, ``fallback`` 0). A
        restaurant's row is ``build_features`` of its own history where that history holds every
        lag, level and profile (``fallback`` 0.0, the rows ``features_offline`` of the
        restaurant alone would keep), otherwise its fallback (1.0; see the module's docstring);
        hours without a complete week before them are dropped.

    Raises
    ------
    FoodcastError
        If a column is missing, or the chain's total is too short for the features.
    """
    settings = _settings(features)
    frame = _restaurant_hourly(hourly)
    chain = chain_total(frame)
    chain_rows = features_offline(chain, **settings)
    chain_rows.insert(0, RESTAURANT, CHAIN)
    chain_rows.insert(2, FALLBACK, 0.0)
    build = partial(_training_block, chain_profile=_chain_profile(chain, settings), settings=settings)
    blocks = fan_out(build, _by_restaurant(frame), workers)
    return pd.concat([*blocks, chain_rows], ignore_index=True)[list(chain_rows.columns)]


def _left_out(name: str, history: pd.DataFrame, next_week: int, closed_weeks: int) -> str | None:
    """Why a restaurant is not forecast for ``next_week`` (one line), or None if it is."""
    weeks = weeks_of(history[ORDER_DATE]).to_numpy()
    traded = weeks[history[CASH_IN].to_numpy() > 0]
    if closed_weeks > 0:
        if not len(traded):
            return (
                f"restaurant {name}: no orders in the weeks read ({int(weeks.min())}-{int(weeks.max())}): not forecast"
            )
        last = int(traded.max())
        idle = next_week - 1 - last
        if idle >= closed_weeks:
            return (
                f"restaurant {name}: no orders since week {last} ({idle} weeks before week {next_week}): not forecast"
            )
    complete = len(_complete_week_means(history))
    if complete < MIN_FORECAST_WEEKS:
        return (
            f"restaurant {name}: {complete} complete week(s) before week {next_week}, "
            f"{MIN_FORECAST_WEEKS} needed: not forecast"
        )
    return None


def _prediction_block(
    item: tuple[str, pd.DataFrame], next_week: int, chain_profile: pd.Series | None, settings: dict[str, Any]
) -> pd.DataFrame:
    """One restaurant's prediction rows (see :func:`prediction_rows`)."""
    name, history = item
    # The horizon as week_rows anchors it: on the calendar, not on the last hour in the data.
    horizon = span_future(week_start(next_week) - pd.Timedelta(hours=1))
    rows = build_features(horizon[ORDER_DATE], history, **settings)
    rows = _with_fallback(rows, history, chain_profile, settings)
    rows.insert(0, RESTAURANT, name)
    return rows


def prediction_rows(
    past: pd.DataFrame, next_week: int, closed_weeks: int, workers: int = 1, **features: Any
) -> tuple[pd.DataFrame, list[str]]:
    """Prediction rows of the 168 hours of ``next_week`` for every open restaurant and the chain.

    Parameters
    ----------
    past : DataFrame
        Long hourly cash-in (``restaurant``, ``order_date``, ``cash_in``) of the weeks before
        ``next_week`` (``windows.forecast_weeks`` says which); later rows are not read.
    next_week : int
        Week to forecast.
    closed_weeks : int
        A restaurant without any order in the ``closed_weeks`` weeks before ``next_week`` is
        not forecast (0: none is left out for that).
    workers : int, default 1
        Processes computing the restaurants' features (0: all cores); the rows do not depend on it.
    **features
        Settings of ``features_online``, as for :func:`training_rows`.

    Returns
    -------
    x_pred : DataFrame
        ``restaurant``, ``order_date``, ``fallback`` and the feature columns: 168 rows per
        restaurant forecast (sorted), then 168 :data:`CHAIN` rows (``week_rows`` of the chain's
        total, as ``granularity=chain`` builds them). A restaurant's rows are ``build_features``
        of its own past where it holds every lag, level and profile (``fallback`` 0.0; its
        profile from the complete weeks it has, as a training row's), otherwise its fallback.
    notes : list of str
        One line per restaurant left out: closed (no orders since a week), or fewer than
        :data:`MIN_FORECAST_WEEKS` complete weeks of history.

    Raises
    ------
    FoodcastError
        If a column is missing or the chain's past lacks a week the features need.
    """
    settings = _settings(features)
    next_week, closed_weeks = int(next_week), int(closed_weeks)
    if closed_weeks < 0:
        raise FoodcastError(f"closed_weeks must be >= 0, got {closed_weeks}")
    frame = _restaurant_hourly(past)
    frame = frame[frame[ORDER_DATE] < week_start(next_week)]
    chain_rows = week_rows(chain_total(frame), next_week, **settings)
    chain_profile = None
    if int(settings["profile_weeks"]):
        profile = profile_column(int(settings["profile_weeks"]))
        chain_profile = pd.Series(
            chain_rows[profile].to_numpy(dtype="float64"), index=pd.DatetimeIndex(chain_rows[ORDER_DATE]).as_unit("us")
        )
    chain_rows.insert(0, RESTAURANT, CHAIN)
    chain_rows.insert(2, FALLBACK, 0.0)
    notes: list[str] = []
    kept: list[tuple[str, pd.DataFrame]] = []
    for name, history in _by_restaurant(frame):
        note = _left_out(name, history, next_week, closed_weeks)
        if note is None:
            kept.append((name, history))
        else:
            notes.append(note)
    build = partial(_prediction_block, next_week=next_week, chain_profile=chain_profile, settings=settings)
    blocks = fan_out(build, kept, workers)
    x_pred = pd.concat([*blocks, chain_rows], ignore_index=True)[list(chain_rows.columns)]
    return x_pred, notes


def _shares(candidates: list[np.ndarray], hour: np.ndarray, hours: int) -> np.ndarray:
    """Each row's share of its hour: its value of the first candidate whose sum over the hour is
    positive, over that sum; equal shares where none is."""
    share = np.full(len(hour), np.nan)
    for values in candidates:
        total = np.bincount(hour, weights=values, minlength=hours)[hour]
        share = np.where(np.isnan(share) & (total > 0), values / np.where(total > 0, total, 1.0), share)
    counts = np.bincount(hour, minlength=hours)[hour]
    return np.where(np.isnan(share), 1.0 / counts, share)


def _split(
    values: np.ndarray, upper: np.ndarray, point: np.ndarray, target: np.ndarray, hour: np.ndarray
) -> np.ndarray:
    """One column of the restaurant rows moved so that each hour's sum is ``target`` (per hour).

    Every restaurant is moved to the same quantile of its own forecast: the split of a given
    sum that minimises the sum of their expected absolute errors (the slope of a restaurant's
    expected error at its quantile q is 2q - 1, and at the optimum the slopes are equal). Its
    quantiles between the median (``point``) and the upper bound (quantile ``(1 + level) / 2``)
    read linearly, a rise of the hour's sum is shared in proportion to ``upper - point``. A
    fall (rare: the median of a sum of right-skewed parts is above the sum of their medians)
    scales the values down in proportion, so that none goes below 0.
    """
    hours = len(target)
    total = np.bincount(hour, weights=values, minlength=hours)
    gap = (target - total)[hour]
    rise = values + gap * _shares([upper - point, values, upper], hour, hours)
    fall = values * (target / np.where(total > 0, total, 1.0))[hour]
    moved: np.ndarray = np.where(gap >= 0, rise, fall)
    return moved


def _fit_rows(task: tuple[dict[str, Any], np.ndarray], features: pd.DataFrame, target: np.ndarray) -> MultiModel:
    """A ``MultiModel`` of ``settings`` fitted on the ``rows`` of ``features`` (``task``: the
    two). The rows are cut here, one task at a time, not all at once before the pool: the
    pooled model's alone are a copy of every restaurant's."""
    settings, rows = task
    return forecast_model(**settings).fit(features.iloc[rows], target[rows])


def _time_index(X: Any) -> pd.DataFrame:
    """``X`` as a DataFrame indexed by ``order_date`` (an ``order_date`` column becomes the index)."""
    frame = pd.DataFrame(X)
    if ORDER_DATE in frame.columns:
        frame = frame.set_index(ORDER_DATE)
    missing = [c for c in (RESTAURANT, FALLBACK) if c not in frame.columns]
    if missing:
        raise FoodcastError(f"the rows lack the column(s) {', '.join(missing)}: a restaurant model needs them")
    return frame


class RestaurantModel(RegressorMixin, BaseEstimator):
    """Forecasts of every restaurant and of the chain's total, coherent hour by hour.

    Parameters
    ----------
    model : dict, optional
        ``forecast_model(**model)`` settings of every ``MultiModel`` inside (default
        :data:`foodcast.core.estimators.DEFAULT_MODEL`).
    kind : {"local", "global", "both"}
        ``local``: one ``MultiModel`` per restaurant with at least ``min_weeks`` weeks of
        non-fallback rows, fitted on those rows; the pooled model answers the other
        restaurants and every fallback row. ``global``: the pooled model answers every row.
        ``both``: as ``local``, a restaurant's own model's columns averaged with the pooled
        model's (bench/restaurants.py: local has the better median restaurant and worst
        coverage, global the better worst restaurant; both sits between).
    workers : int, default 1
        Processes fitting the models (0: all cores); every fit is seeded, so the model does
        not depend on it.
    min_weeks : int, default 4
        Weeks of non-fallback rows a restaurant needs for a model of its own.
    reconciliation : {"quantiles", "proportions", "bottom_up"}
        How the forecasts of an hour are made coherent (the restaurants' sum = the chain's).
        Each restaurant's point is a median (the absolute error's best), and a sum of medians
        of skewed hourly cash-ins is well below the median of their sum: ``bottom_up`` (each
        restaurant keeps its own model's forecast, the chain's is their sum) gave the chain
        1.30 x the chain model's error on a generated chain of 20 restaurants, 1.66 x on 50
        (bench/restaurants.py). The two others take the chain model's members and point for
        the chain and split them among the restaurants of the hour: ``proportions`` (top-down
        by forecast proportions) in the proportions of the restaurants' own points;
        ``quantiles`` by moving every restaurant to the same quantile of its own forecast (the
        split that minimises the sum of their absolute errors; see :func:`_split`), which on
        the 20-restaurant chain kept the worst restaurant at 0.805 x seasonal naive (0.820
        with the proportions) and the median at 0.747 (0.741). Used at prediction only (it
        can be changed on a fitted model).

    Attributes
    ----------
    restaurants_ : list of str
        The restaurants the model was fitted with (sorted): those it answers, with :data:`CHAIN`.
    feature_names_in_ : ndarray of str
        The feature columns (not ``restaurant`` nor ``fallback``).
    pooled_model_ : MultiModel
        Fitted on every restaurant row (not the chain's), in time order, level-scaled
        (``level_scaled=True`` whatever ``model`` says) so that restaurants of any size pool.
    local_models_ : dict of str to MultiModel
        The restaurants' own models (``kind="local"``).
    chain_model_ : MultiModel or None
        Fitted on the :data:`CHAIN` rows: the chain's interval, and unless ``bottom_up`` its
        point and members (None if fitted without them).
    """

    def __init__(
        self,
        model: dict[str, Any] | None = None,
        kind: str = "local",
        workers: int = 1,
        min_weeks: int = 4,
        reconciliation: str = DEFAULT_RECONCILIATION,
    ) -> None:
        self.model = model
        self.kind = kind
        self.workers = workers
        self.min_weeks = min_weeks
        self.reconciliation = reconciliation

    def _model_settings(self) -> dict[str, Any]:
        return dict(DEFAULT_MODEL if self.model is None else self.model)

    def fit(self, X: Any, y: Any) -> RestaurantModel:
        """Fit the pooled model, the restaurants' own (``kind="local"``) and the chain's.

        Parameters
        ----------
        X : DataFrame
            :func:`training_rows` without ``cash_in``, indexed by ``order_date`` (or with it
            as a column): ``restaurant``, ``fallback`` and the features.
        y : Series or array
            ``cash_in``, aligned with ``X``.

        Returns
        -------
        RestaurantModel
            ``self``.

        Raises
        ------
        FoodcastError
            On an unknown ``kind`` or ``reconciliation``, missing columns, or no restaurant row.
        """
        return self.fit_rows(X, y)

    def fit_rows(self, X: Any, y: Any, rows: Any = None) -> RestaurantModel:
        """:meth:`fit` on the rows ``rows`` of ``X`` and ``y`` (positions; all if None), as
        ``fit(X.iloc[rows], y[rows])`` without copying them: each model's rows are cut as it is
        fitted (a cross-validation's folds, each on most of the rows). Returns and raises as
        :meth:`fit`.
        """
        if self.kind not in KINDS:
            raise FoodcastError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.reconciliation not in RECONCILIATIONS:
            raise FoodcastError(
                f"reconciliation must be one of {', '.join(RECONCILIATIONS)}, got {self.reconciliation!r}"
            )
        frame = _time_index(X)
        target = np.asarray(y, dtype="float64").ravel()
        if len(target) != len(frame):
            raise ValueError(f"X has {len(frame)} rows and y {len(target)}")
        rows = np.arange(len(frame)) if rows is None else np.asarray(rows, dtype=np.intp)
        names = frame[RESTAURANT].astype(str).to_numpy()[rows]
        fallback = (frame[FALLBACK].to_numpy(dtype="float64") > 0)[rows]
        features = frame.drop(columns=[RESTAURANT, FALLBACK])
        chain = names == CHAIN
        if chain.all():
            raise FoodcastError("no restaurant rows to fit a restaurant model on (only the chain's)")
        settings = self._model_settings()
        # Rows in time order, restaurants of one hour together: the interval's calibration cuts
        # the rows into consecutive blocks, which are then blocks of weeks as for the chain.
        stamps = pd.DatetimeIndex(features.index[rows])
        own = np.flatnonzero(~chain)
        # (positions among ``rows`` below; the tasks carry positions in ``features``)
        pooled = own[np.lexsort((names[own], stamps[own].asi8))]
        tasks: list[tuple[str, tuple[dict[str, Any], np.ndarray]]] = [
            (_POOLED, ({**settings, "level_scaled": True}, rows[pooled]))
        ]
        if self.kind != "global":
            weeks = weeks_of(pd.Series(stamps)).to_numpy()
            for name in sorted(set(names[~chain])):
                mine = np.flatnonzero((names == name) & ~fallback)
                if len(np.unique(weeks[mine])) >= int(self.min_weeks):
                    tasks.append((name, (settings, rows[mine])))
        if chain.any():
            tasks.append((_CHAIN_MODEL, (settings, rows[np.flatnonzero(chain)])))
        fit = partial(_fit_rows, features=features, target=target)
        fitted = dict(
            zip([key for key, _ in tasks], fan_out(fit, [task for _, task in tasks], self.workers), strict=True)
        )
        self.pooled_model_ = fitted.pop(_POOLED)
        self.chain_model_: MultiModel | None = fitted.pop(_CHAIN_MODEL, None)
        self.local_models_: dict[str, MultiModel] = fitted
        self.restaurants_: list[str] = sorted(set(names[~chain]))
        self.feature_names_in_ = np.asarray(features.columns, dtype=object)
        return self

    def predict_frame(self, X: Any) -> pd.DataFrame:
        """Every prediction for the rows of ``X``: restaurants' and the chain's.

        Parameters
        ----------
        X : DataFrame
            :func:`prediction_rows`' ``x_pred`` indexed by ``order_date`` (or with it as a
            column): ``restaurant``, ``fallback`` and the features.

        Returns
        -------
        DataFrame
            Indexed by ``order_date`` (``X``'s index, or its ``order_date`` column), in the
            order of ``X``'s rows: ``restaurant``, ``fallback``, the members ``y_pred_0`` ..,
            ``y_pred_simple``, ``y_pred``, ``y_lower``, ``y_upper``. A restaurant's row is its
            model's (``MultiModel.predict_frame``), reconciled at the hours that have a
            :data:`CHAIN` row (see ``reconciliation``; its interval then stretched to hold its
            point). A chain row's members, ``y_pred_simple`` and ``y_pred`` are the sums of the
            restaurant rows of ``X`` at the same ``order_date`` (coherent to the cent); its
            interval is the chain model's (with ``bottom_up``: shifted by the sum minus the
            chain model's point, clipped at 0), stretched to hold ``y_pred``. Unless
            ``bottom_up``, an hour's chain forecast is split among the restaurant rows of ``X``
            at that hour: send them all (``prediction_rows`` does).

        Raises
        ------
        FoodcastError
            On a restaurant the model was not fitted with (named, with a few known ones), a
            fallback other than 0 or 1, a bad feature value, or a chain row at an hour
            without restaurant rows.
        """
        check_is_fitted(self, "pooled_model_")
        frame = _time_index(X)
        names = frame[RESTAURANT].astype(str).to_numpy()
        known = set(self.restaurants_)
        unknown = sorted({n for n in names if n != CHAIN and n not in known})
        if unknown:
            shown = ", ".join(self.restaurants_[:5]) + (", ..." if len(self.restaurants_) > 5 else "")
            raise FoodcastError(
                f"unknown restaurant {unknown[0]!r}: the model knows {len(self.restaurants_)} restaurants "
                f"({shown}) and {CHAIN!r}"
            )
        fallback = pd.to_numeric(frame[FALLBACK], errors="coerce").to_numpy(dtype="float64")
        if not np.isin(fallback, (0.0, 1.0)).all():
            raise FoodcastError(f"column {FALLBACK!r} must be 0 or 1")
        features = check_feature_frame(frame.drop(columns=[RESTAURANT, FALLBACK]), list(self.feature_names_in_))
        columns = [*self._member_columns(), SIMPLE_COLUMN, POINT_COLUMN, LOWER_COLUMN, UPPER_COLUMN]
        values = np.full((len(frame), len(columns)), np.nan)
        chain = names == CHAIN
        keys = np.array(
            [
                n if self.kind != "global" and n in self.local_models_ and f == 0 else _POOLED
                for n, f in zip(names, fallback, strict=True)
            ],
            dtype=object,
        )
        keys[chain] = _CHAIN_MODEL
        for key in sorted(set(keys[~chain])):
            rows = np.flatnonzero(keys == key)
            model = self.pooled_model_ if key == _POOLED else self.local_models_[key]
            values[rows] = model.predict_frame(features.iloc[rows])[columns].to_numpy(dtype="float64")
            if self.kind == "both" and key != _POOLED:
                pooled = self.pooled_model_.predict_frame(features.iloc[rows])[columns].to_numpy(dtype="float64")
                values[rows] = (values[rows] + pooled) / 2
        if chain.any():
            self._reconcile(features, names, values, columns)
        out = pd.DataFrame(values, columns=columns, index=frame.index)
        out.insert(0, RESTAURANT, names)
        out.insert(1, FALLBACK, fallback)
        return out

    def _member_columns(self) -> list[str]:
        return [f"{MEMBER_PREFIX}{i}" for i in range(len(self.pooled_model_.estimators_))]

    def _reconcile(self, features: pd.DataFrame, names: np.ndarray, values: np.ndarray, columns: list[str]) -> None:
        """Make the rows of each hour that has a chain row coherent, in place (see ``reconciliation``)."""
        if self.reconciliation not in RECONCILIATIONS:
            raise FoodcastError(
                f"reconciliation must be one of {', '.join(RECONCILIATIONS)}, got {self.reconciliation!r}"
            )
        if self.chain_model_ is None:
            raise FoodcastError("the model was fitted without the chain's rows: it cannot forecast the chain")
        chain = names == CHAIN
        stamps = pd.DatetimeIndex(features.index).as_unit("us")
        wanted = stamps[chain]
        if wanted.has_duplicates:
            raise FoodcastError(f"the chain has two rows at {wanted[wanted.duplicated()][0]}")
        # The restaurant rows of the chain's hours, and for each the position of its hour among them.
        hour = wanted.get_indexer(stamps)
        rows = np.flatnonzero(~chain & (hour >= 0))
        hour = hour[rows]
        lacking = np.setdiff1d(np.arange(len(wanted)), hour)
        if len(lacking):
            raise FoodcastError(
                f"a chain row at {wanted[lacking[0]]} has no restaurant rows at that hour: the chain's forecast is "
                "that of its restaurants"
            )
        sums = [*self._member_columns(), SIMPLE_COLUMN, POINT_COLUMN]
        summed = [columns.index(c) for c in sums]
        low, high, mid = columns.index(LOWER_COLUMN), columns.index(UPPER_COLUMN), columns.index(POINT_COLUMN)
        own = self.chain_model_.predict_frame(features[chain])[columns].to_numpy(dtype="float64")
        if self.reconciliation == "proportions":
            # The chain model may see trade where no restaurant's median does: the upper bounds split it.
            share = _shares([values[rows, mid], values[rows, high]], hour, len(wanted))
            values[rows[:, None], summed] = share[:, None] * own[hour][:, summed]
        elif self.reconciliation == "quantiles":
            upper, point = values[rows, high], values[rows, mid]
            for column in summed:
                values[rows, column] = _split(values[rows, column], upper, point, own[:, column], hour)
        if self.reconciliation != "bottom_up":
            values[rows, low] = np.minimum(values[rows, low], values[rows, mid])
            values[rows, high] = np.maximum(values[rows, high], values[rows, mid])
        total = np.zeros((len(wanted), len(summed)))
        np.add.at(total, hour, values[rows][:, summed])
        out = np.full((len(wanted), len(columns)), np.nan)
        out[:, summed] = total
        point = out[:, mid]
        # bottom_up: the chain model's interval moved by the bottom-up point minus its own point
        # (0 with the other reconciliations, up to rounding), clipped at 0 and stretched to hold the point.
        shift = point - own[:, mid]
        out[:, low] = np.minimum(np.clip(own[:, low] + shift, 0, None), point)
        out[:, high] = np.maximum(np.clip(own[:, high] + shift, 0, None), point)
        values[np.flatnonzero(chain)] = out

    def predict(self, X: Any) -> np.ndarray:
        """The point forecast ``y_pred`` of every row of ``X`` (see :meth:`predict_frame`).

        Parameters
        ----------
        X : DataFrame

        Returns
        -------
        ndarray
        """
        point: np.ndarray = self.predict_frame(X)[POINT_COLUMN].to_numpy(dtype="float64")
        return point
