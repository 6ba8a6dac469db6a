"""``main``'s options checked together, before anything is launched.

Bounds of single parameters are checked by their click options; this checks how they fit
together, with the data directory and with MLproject. Imports nothing heavy (no pandas, no
scikit-learn, no MLflow): the checks answer before the pipeline's libraries load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from foodcast.core.model_settings import check_model_settings
from foodcast.core.windows import check_week_range, describe_weeks, forecast_history, forecast_weeks
from foodcast.data.batch_files import available_weeks, last_complete_week
from foodcast.errors import FoodcastError
from foodcast.pipeline.params import PARAMS_FILE, WINDOW_WEEKS_DEFAULT, model_settings
from foodcast.pipeline.stage_table import check_stage_table, mlproject_disagreements
from foodcast.settings import PROJECT_ROOT, data_dir


@dataclass(frozen=True)
class Weeks:
    """The weeks of one run of ``main``, and how they were chosen (for its first line)."""

    start: int
    end: int
    next: int
    why: str  # "" when all three were given

    def line(self) -> str:
        """``forecasting week 261 from weeks 240-260 (...)``."""
        text = f"forecasting week {self.next} from weeks {self.start}-{self.end}"
        return f"{text} ({self.why})" if self.why else text


def resolve_weeks(start: int, end: int, next_week: int, data: str | Path) -> Weeks:
    """The weeks left at 0 worked out from those given, or from the data.

    With none given: ``end`` is the last complete week of ``data``
    (:func:`~foodcast.data.batch_files.last_complete_week`), the run trains on the
    ``WINDOW_WEEKS_DEFAULT`` weeks ending there and forecasts the week after. Otherwise the
    window of that many weeks is anchored on what is given: ``start`` (``-P start_week=180``:
    weeks 180-200, forecast 201), else ``next_week`` (``end = next_week - 1``), else ``end``.

    Raises
    ------
    FoodcastError
        With none given, when the data hold no complete week.
    """
    window = WINDOW_WEEKS_DEFAULT
    why = ""
    if not end:
        if start:
            end = start + window - 1
        elif next_week:
            end = next_week - 1
        else:
            end = last_complete_week(data) or 0
            if not end:
                raise FoodcastError(
                    f"no complete week in {data} to forecast from: give the weeks (-P end_week=N) or add batches"
                )
            why = f"the last complete week of {data} is {end}"
    if not start:
        start = max(1, end - window + 1)
        what = f"the {end - start + 1} weeks before it"
        why = f"{what}: {why}" if why else what
    return Weeks(start, end, next_week or end + 1, why)


def read_params_file(path: str | Path, names: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters a YAML parameters file (``-P params=FILE``) sets: a mapping of main's
    parameter names (``names``) to values.

    Raises
    ------
    FoodcastError
        One line: the file is missing, not YAML, not a mapping, or names an unknown parameter.
    """
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise FoodcastError(f"parameters file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise FoodcastError(f"parameters file {path} is not YAML: {' '.join(str(exc).split())}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise FoodcastError(f"parameters file {path} must map parameter names to values (name: value)")
    unknown = sorted(str(k) for k in values if k not in names or k == PARAMS_FILE.name)
    if unknown:
        raise FoodcastError(f"parameters file {path}: unknown parameter {unknown[0]} (see python main.py --help)")
    return {str(k): v for k, v in values.items()}


def check_options(options: dict[str, Any]) -> dict[str, Any]:
    """Refuse bad parameters before anything is launched; resolve the weeks left at 0
    (:func:`resolve_weeks`).

    Options come from the stage table (an option no stage takes cannot exist, and click refuses
    any other).

    Returns
    -------
    dict
        The options, the weeks resolved.

    Raises
    ------
    FoodcastError
        One line saying which parameters do not fit and how to mend them.
    """
    check_stage_table()  # a table a stage was added to wrongly refuses to run (ValueError: a bug)
    disagreements = mlproject_disagreements(PROJECT_ROOT)
    if disagreements:
        raise FoodcastError(f"MLproject and the stage table disagree: {disagreements[0]}")
    options = dict(options)
    weeks = resolve_weeks(options["start_week"], options["end_week"], options["next_week"], data_dir())
    options.update(start_week=weeks.start, end_week=weeks.end, next_week=weeks.next)
    start, end = weeks.start, weeks.end
    check_week_range(start, end)
    if options["next_week"] <= end:
        raise FoodcastError(
            f"next_week {options['next_week']} must come after end_week {end} "
            f"(e.g. -P next_week={end + 1}, or 0 for end_week + 1)"
        )
    held = set(available_weeks(data_dir()))
    if not held & set(range(start, end + 1)):
        raise FoodcastError(f"no data for weeks {start}-{end} in {data_dir()}; it holds weeks {describe_weeks(held)}")
    history = {k: options[k] for k in ("lag_in_week", "level_weeks", "profile_weeks")}
    before = forecast_history(**history)
    first, last = forecast_weeks(options["next_week"], **history)
    needed = set(range(first, last + 1))
    settings = " and ".join(f"{k}={v}" for k, v in history.items())
    if first < 1:
        raise FoodcastError(
            f"forecasting week {options['next_week']} with {settings} needs the {before} weeks "
            f"before it, but week 1 is the first (lower them, or forecast a later week)"
        )
    if needed - held:
        raise FoodcastError(
            f"forecasting week {options['next_week']} with {settings} needs weeks {describe_weeks(needed)}, "
            f"but {data_dir()} lacks {describe_weeks(needed - held)}"
        )
    loaded = end - start + 1
    if loaded <= options["lag_in_week"] or loaded <= options["level_weeks"]:
        raise FoodcastError(
            f"training on weeks {start}-{end} ({loaded} weeks) leaves no hour with all its lags and level: "
            f"lag_in_week={options['lag_in_week']} and level_weeks={options['level_weeks']} need more than "
            f"{max(options['lag_in_week'], options['level_weeks'])} weeks (lower them or an earlier start_week)"
        )
    if options["level_scaled"] and not options["level_weeks"]:
        raise FoodcastError("level_scaled=true divides by the level feature: it needs level_weeks >= 1")
    if options.get("granularity") == "restaurant" and not options["level_weeks"]:
        raise FoodcastError(
            "granularity=restaurant pools restaurants of every size by dividing by their level feature: "
            "it needs level_weeks >= 1"
        )
    if options["estimator"] == "profile" and not options["profile_weeks"]:
        raise FoodcastError("estimator=profile forecasts from the profile feature: it needs profile_weeks >= 1")
    check_model_settings(**model_settings(options))  # what the model would refuse, without scikit-learn
    if options["model"] == "champion" and not options["registered_model_name"]:
        raise FoodcastError(
            "model=champion predicts with the registered model's champion: give a registered_model_name"
        )
    return options
