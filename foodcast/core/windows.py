"""Which weeks each computation reads, in week numbers: one function per question.

Pure arithmetic on week numbers (no dates, no pandas), so that ``main``'s checks and the stage
table's hooks can answer without importing the data stack.
"""

from __future__ import annotations

from collections.abc import Iterable

from foodcast.errors import FoodcastError

#: The weeks of the "4-week same-hour mean" reference, and so the weeks before a scored week
#: that scoring reads.
REFERENCE_WEEKS = 4


def describe_weeks(weeks: Iterable[int]) -> str:
    """Compact text for a set of week numbers, e.g. ``1-52, 60, 70-72`` (``none`` if empty)."""
    ordered = sorted({int(w) for w in weeks})
    if not ordered:
        return "none"
    parts: list[str] = []
    first = prev = ordered[0]
    for w in ordered[1:]:
        if w == prev + 1:
            prev = w
            continue
        parts.append(str(first) if first == prev else f"{first}-{prev}")
        first = prev = w
    parts.append(str(first) if first == prev else f"{first}-{prev}")
    return ", ".join(parts)


def history_weeks(lag_in_week: int = 1, level_weeks: int = 0, profile_weeks: int = 0, **_other: object) -> int:
    """How many weeks before an hour its lags, level and profile read (0: calendar features only).

    The defaults are those of ``features_offline`` (the tutorial's); other feature settings
    (``degree``...) are accepted and do not matter.

    Raises
    ------
    FoodcastError
        If a setting is negative.
    """
    for name, value in (("lag_in_week", lag_in_week), ("level_weeks", level_weeks), ("profile_weeks", profile_weeks)):
        if int(value) < 0:
            raise FoodcastError(f"{name} must be >= 0, got {value}")
    return max(int(lag_in_week), int(level_weeks), int(profile_weeks))


def forecast_history(lag_in_week: int = 1, level_weeks: int = 0, profile_weeks: int = 0, **_other: object) -> int:
    """How many weeks before the forecast week a forecast reads: :func:`history_weeks`, at
    least 1 (calendar-only features need no past, but a data directory without the week before
    the forecast is refused all the same)."""
    return max(history_weeks(lag_in_week, level_weeks, profile_weeks), 1)


def forecast_weeks(
    next_week: int, lag_in_week: int = 1, level_weeks: int = 0, profile_weeks: int = 0, **_other: object
) -> tuple[int, int]:
    """The weeks a forecast of ``next_week`` reads: the :func:`forecast_history` weeks before
    it. The first may be before week 1 (the caller refuses such a forecast)."""
    week = int(next_week)
    return week - forecast_history(lag_in_week, level_weeks, profile_weeks), week - 1


def scored_weeks(week: int) -> tuple[int, int]:
    """The weeks scoring ``week``'s forecast reads: the week and the reference weeks before it."""
    return max(1, int(week) - REFERENCE_WEEKS), int(week)


def backtest_reach(window_weeks: int, history: int) -> int:
    """How many weeks before its first target week a backtest reads: each target week's
    training window, the ``history`` weeks its prediction rows read (:func:`forecast_history`)
    and the reference weeks."""
    return max(int(window_weeks), REFERENCE_WEEKS, int(history))


def backtest_weeks(first_week: int, last_week: int, window_weeks: int, history: int) -> tuple[int, int]:
    """The weeks of batches a backtest of target weeks ``first_week .. last_week`` reads (from
    week 1 at the earliest)."""
    return max(1, int(first_week) - backtest_reach(window_weeks, history)), int(last_week)


def gate_targets(end_week: int, gate_weeks: int) -> tuple[int, int]:
    """The target weeks of the champion gate: the ``gate_weeks`` weeks that end with the
    challenger's last training week."""
    return int(end_week) - int(gate_weeks) + 1, int(end_week)


def gate_window(start_week: int, end_week: int, gate_weeks: int) -> int:
    """Training weeks before each gate week: as many as the challenger had, fewer when the data
    cannot go back that far.

    Raises
    ------
    FoodcastError
        If the first gate week leaves fewer than the reference weeks before it.
    """
    first, _ = gate_targets(end_week, gate_weeks)
    if first - REFERENCE_WEEKS < 1:
        raise FoodcastError(
            f"the gate's first week {first} has fewer than {REFERENCE_WEEKS} weeks before it: lower gate_weeks"
        )
    return min(int(end_week) - int(start_week) + 1, first - 1)


def gate_weeks_read(start_week: int, end_week: int, gate_weeks: int, history: int = 1) -> tuple[int, int]:
    """The weeks of batches the gate's backtests read (see :func:`backtest_weeks`)."""
    first, last = gate_targets(end_week, gate_weeks)
    return backtest_weeks(first, last, gate_window(start_week, end_week, gate_weeks), history)


def check_week_range(start_week: int, end_week: int) -> None:
    """Refuse a week range that cannot hold data (start after end, or a week before 1)."""
    if start_week < 1 or end_week < 1:
        raise FoodcastError(f"weeks start at 1 (week 1 = 2014-12-29), got {start_week}..{end_week}")
    if start_week > end_week:
        raise FoodcastError(f"start_week {start_week} is after end_week {end_week}")
