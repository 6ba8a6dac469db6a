"""``main``'s options checked together, before anything is launched.

Bounds of single parameters are checked by their click options; this checks how they fit
together, with the data directory and with MLproject. Imports nothing heavy (no pandas, no
scikit-learn, no MLflow): the checks answer before the pipeline's libraries load.
"""

from __future__ import annotations

from typing import Any

from foodcast.core.model_settings import check_model_settings
from foodcast.core.windows import check_week_range, describe_weeks, forecast_history, forecast_weeks
from foodcast.data.batch_files import available_weeks
from foodcast.errors import FoodcastError
from foodcast.pipeline.params import model_settings
from foodcast.pipeline.stage_table import check_stage_table, mlproject_disagreements
from foodcast.settings import PROJECT_ROOT, data_dir


def check_options(options: dict[str, Any]) -> dict[str, Any]:
    """Refuse bad parameters before anything is launched; resolve ``next_week``.

    Options come from the stage table (an option no stage takes cannot exist, and click refuses
    any other).

    Returns
    -------
    dict
        The options, ``next_week`` resolved (0: ``end_week + 1``).

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
    start, end = options["start_week"], options["end_week"]
    check_week_range(start, end)
    if options["next_week"] == 0:
        options["next_week"] = end + 1
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
    if options["estimator"] == "profile" and not options["profile_weeks"]:
        raise FoodcastError("estimator=profile forecasts from the profile feature: it needs profile_weeks >= 1")
    check_model_settings(**model_settings(options))  # what the model would refuse, without scikit-learn
    if options["model"] == "champion" and not options["registered_model_name"]:
        raise FoodcastError(
            "model=champion predicts with the registered model's champion: give a registered_model_name"
        )
    return options
