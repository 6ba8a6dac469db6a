"""Forecast accuracy: the library's rolling-origin backtest on the default data, step by step.

For each target week w (default 160..259, 100 weeks) ``foodcast.core.backtest.backtest``
trains on weeks w-21..w-1 and forecasts week w through the pipeline's own functions (``etl``,
``features_offline``, ``prediction_set``'s ``week_rows``, ``estimators.forecast_model``); see
its docstring. This script only chooses configurations and prints tables.

Rows (the step table): how the default configuration was reached, from the tutorial's model,
one change at a time, then checks around the default. The default configuration is also run at
interval levels 0.5 and 0.95 (``--levels``). ``y_pred`` and the interval do not depend on the
bootstrap members, so every row but the default fits one member (``n_models=1``); the default
row fits the pipeline's 10. Last, the fit of the default ``MultiModel`` and of the previous
default (step 7) on the pipeline's default training weeks 180-200 is timed (``--no-fit-time``
skips it).

MAE = hourly mean absolute error over the 168 hours of every target week (GBP);
ratio = model MAE / seasonal-naive MAE (the same hour one week earlier). Coverage, open hours:
share of the hours inside ``[y_lower, y_upper]`` among those whose interval is not ``[0, 0]`` or
whose truth is not 0 (the interval is calibrated on those); all hours: among the 168.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

GOAL_RATIO = 0.73  # model / seasonal naive
GOAL_MEAN4 = 0.90  # model / 4-week same-hour mean
GOAL_WEEKS = 0.90  # share of target weeks where the model beats seasonal naive
LEVEL_TOLERANCE = 0.05  # coverage within +-5 points of the interval's level
FIT_WEEKS = (180, 200)  # the pipeline's default training weeks, on which the fit is timed
PREVIOUS_DEFAULT = 7  # row of the step table: the default before the profile


# Feature and model settings that the steps before the profile used (the defaults now differ).
NO_PROFILE = {"level_halflife": 0.0, "profile_weeks": 0}
BOOSTING = {
    "model": "gradient_boosting",
    "n_estimators": 100,
    "max_depth": 5,
    "min_samples_leaf": 1,
    "level_scaled": True,
}


def step(name, features=None, model=None, window=21, n_models=1, level=0.8):
    from foodcast.core.estimators import DEFAULT_MODEL
    from foodcast.core.features import DEFAULT_FEATURES

    return {
        "name": name,
        "features": {**DEFAULT_FEATURES, **(features or {})},
        "model": {**DEFAULT_MODEL, **(model or {}), "n_models": n_models, "interval_level": level},
        "window": window,
    }


def steps() -> list[dict]:
    """The configurations tried, in the order they were tried; the first row is the default."""
    from foodcast.core.estimators import TUTORIAL_MODEL
    from foodcast.core.features import TUTORIAL_FEATURES

    calendar = {"lag_in_week": 0, "level_weeks": 0, "calendar_index": False, **NO_PROFILE}
    level5 = {"lag_in_week": 0, "level_weeks": 5, "calendar_index": True, **NO_PROFILE}
    forest = {**TUTORIAL_MODEL}
    return [
        step("11 DEFAULT = 10 (10 members)", n_models=10),
        step("1 tutorial: forest of 10 trees, weekday + hour harmonic + lag_1W", TUTORIAL_FEATURES, forest),
        step("2 drop lag_1W (calendar only)", calendar, forest),
        step(
            "3 + level_5W feature, target / level (level_scaled)",
            {**level5, "calendar_index": False},
            {**forest, "level_scaled": True},
        ),
        step(
            "4 + forest leaves of >= 20 hours",
            {**level5, "calendar_index": False},
            {**forest, "level_scaled": True, "min_samples_leaf": 20, "n_estimators": 50},
        ),
        step(
            "5 median (absolute-error boosting), depth 3",
            {**level5, "calendar_index": False},
            {**BOOSTING, "max_depth": 3},
        ),
        step("6 + weekday and hour index columns (calendar_index)", level5, {**BOOSTING, "max_depth": 3}),
        step("7 previous default: 6 with depth 5", level5, BOOSTING),
        step(
            "8 + profile_21W feature (week shape of the 21 weeks, 2 day groups)",
            {**level5, "profile_weeks": 21},
            BOOSTING,
        ),
        step(
            "9 profile model: level x profile x median ratio (5 groups of hours)",
            {**level5, "profile_weeks": 21},
            {"model": "profile", "n_bins": 5},
        ),
        step("10 + level of 8 weeks weighted with a half-life of 2 weeks", {}, {}),
        step("check: profile_groups 1 (one shape of day)", {"profile_groups": 1}, {}),
        step("check: profile_groups 7 (no pooling of days)", {"profile_groups": 7}, {}),
        step("check: profile_groups 3", {"profile_groups": 3}, {}),
        step("check: n_bins 3", {}, {"n_bins": 3}),
        step("check: n_bins 8", {}, {"n_bins": 8}),
        step("check: profile of 16 weeks", {"profile_weeks": 16}, {}),
        step("check: plain level of 6 weeks", {"level_weeks": 6, "level_halflife": 0.0}, {}),
        step("check: no level (level_scaled false)", {"level_weeks": 0}, {"level_scaled": False}),
        step("check: window 52 weeks", {}, {}, window=52),
    ]


def level_rows(levels) -> list[dict]:
    return [step(f"DEFAULT at interval_level {level}", level=level) for level in levels]


def fit_seconds(config: dict, hourly, repeats: int = 3) -> dict:
    """Wall time of ``forecast_model(**model).fit`` on the pipeline's default training weeks (:data:`FIT_WEEKS`).

    Median of ``repeats`` fits, ``n_models`` as in the pipeline's default (10).
    """
    import statistics

    from foodcast.core.features import features_offline
    from foodcast.core.hourly import week_slice
    from foodcast.core.multi_model import forecast_model

    train = features_offline(week_slice(hourly, *FIT_WEEKS), **config["features"])
    x, y = train.drop(columns=["order_date", "cash_in"]), train["cash_in"]
    model = {**config["model"], "n_models": 10}
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        forecast_model(**model).fit(x, y)
        times.append(time.perf_counter() - started)
    return {"name": config["name"], "rows": len(x), "seconds": statistics.median(times), "all": times}


def run(config: dict, weeks, jobs: int, data_dir, hourly) -> dict:
    from foodcast.core.backtest import backtest

    started = time.perf_counter()

    def progress(done, total, row):
        if done % 10 == 0 or done == total:
            c.log(
                f"  {config['name']}: {done}/{total} weeks (week {row['week']}: "
                f"model {row['mae_model']:.1f}, naive {row['mae_naive']:.1f})"
            )

    result = backtest(
        hourly,
        weeks[0],
        weeks[-1],
        window_weeks=config["window"],
        features=config["features"],
        model=config["model"],
        jobs=jobs,
        progress=progress,
    )
    s = result.summary
    c.log(
        f"{config['name']}: model/naive {s['ratio_naive']:.4f}, model/mean4 {s['ratio_mean4']:.4f}, "
        f"weeks beating naive {s['share_weeks_beating_naive']:.0%}, coverage {s['coverage_open']:.1%} "
        f"(all hours {s['coverage']:.1%}), width {s['width']:.1f}, {time.perf_counter() - started:.0f} s"
    )
    return {
        "config": config,
        "weeks": result.weeks.to_dict(orient="records"),
        "summary": result.summary,
        "seconds": time.perf_counter() - started,
    }


def report(data: dict) -> str:
    weeks = data["weeks"]
    default = data["results"][0]
    s = default["summary"]
    goal = c.verdict
    out = [
        c.table(
            ["forecast", "hourly MAE (GBP)", "/ seasonal naive"],
            [
                (f"model y_pred ({default['config']['name']})", s["mae_model"], f"{s['ratio_naive']:.4f}"),
                ("seasonal naive (same hour, week before)", s["mae_naive"], "1.000"),
                ("mean of same hour, 4 previous weeks", s["mae_mean4"], f"{s['mean4_ratio_naive']:.4f}"),
            ],
            title=f"Forecast accuracy, rolling origin: target weeks {weeks[0]}-{weeks[-1]} ({len(weeks)} weeks), "
            f"train on the {default['config']['window']} weeks before each",
        )
    ]
    rows = [
        (f"model / seasonal naive <= {GOAL_RATIO}", f"{s['ratio_naive']:.4f}", goal(s["ratio_naive"], GOAL_RATIO)),
        (f"model / 4-week mean <= {GOAL_MEAN4}", f"{s['ratio_mean4']:.4f}", goal(s["ratio_mean4"], GOAL_MEAN4)),
        (
            f"weeks where the model beats seasonal naive >= {GOAL_WEEKS:.0%}",
            f"{s['share_weeks_beating_naive']:.0%}",
            "MET" if s["share_weeks_beating_naive"] >= GOAL_WEEKS else "NOT MET",
        ),
    ]
    for r in [default] + data["levels"]:
        level = r["config"]["model"]["interval_level"]
        g = r["summary"]
        rows.append(
            (
                f"coverage of the {level:.0%} interval, open hours, in {level - LEVEL_TOLERANCE:.0%}-"
                f"{level + LEVEL_TOLERANCE:.0%} (all hours {g['coverage']:.1%}; mean width GBP {g['width']:.1f})",
                f"{g['coverage_open']:.1%}",
                "MET" if abs(g["coverage_open"] - level) <= LEVEL_TOLERANCE + 1e-12 else "NOT MET",
            )
        )
    out += ["", c.table(["goal", "value", "status"], rows)]
    rows = []
    for r in data["results"] + data["levels"]:
        g = r["summary"]
        rows.append(
            (
                r["config"]["name"],
                g["mae_model"],
                f"{g['ratio_naive']:.4f}",
                f"{g['ratio_mean4']:.4f}",
                f"{g['share_weeks_beating_naive']:.0%}",
                f"{g['coverage_open']:.1%}",
                f"{g['coverage']:.1%}",
                f"{g['width']:.1f}",
                f"{r['seconds']:.0f}",
            )
        )
    out += [
        "",
        c.table(
            ["configuration", "MAE", "/naive", "/mean4", "weeks>naive", "coverage open", "coverage all", "width", "s"],
            rows,
            title="Configurations tried, one change at a time (interval level 0.8 unless said)",
        ),
    ]
    if data.get("fits"):
        out += [
            "",
            c.table(
                ["configuration", "training rows", "fit s (median of 3)"],
                [(f["name"], f["rows"], f"{f['seconds']:.2f}") for f in data["fits"]],
                title="Fit of the MultiModel (10 members and the interval) on weeks 180-200",
            ),
        ]
    out += [
        "",
        f"{default['config']['name']}: features "
        + repr(default["config"]["features"])
        + ", model "
        + repr(default["config"]["model"]),
    ]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--first-week", type=int, default=160, help="first target week (default 160)")
    parser.add_argument("--last-week", type=int, default=259, help="last target week (default 259)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2: the machine has 2 cores)")
    parser.add_argument("--quick", action="store_true", help="target weeks 170-209 (40 weeks)")
    parser.add_argument("--default-only", action="store_true", help="only the default configuration and its levels")
    parser.add_argument("--only", help="comma-separated row numbers of the step table to run (0 = default)")
    parser.add_argument(
        "--levels", default="0.5,0.95", help="other interval levels of the default (default 0.5,0.95; '' for none)"
    )
    parser.add_argument(
        "--no-fit-time",
        action="store_true",
        help="skip timing the fit of the default and of the previous default on weeks 180-200",
    )
    parser.add_argument("--repeats", type=int, help="ignored (deterministic); accepted for run_all.py")
    args = parser.parse_args()

    from foodcast.data.chain import etl
    from foodcast.settings import data_dir

    first, last = (170, 209) if args.quick else (args.first_week, args.last_week)
    weeks = list(range(first, last + 1))
    configs = steps()
    if args.default_only:
        configs = configs[:1]
    elif args.only:
        configs = [configs[int(i)] for i in args.only.split(",")]
    levels = level_rows([float(v) for v in args.levels.split(",") if v.strip()])
    oldest, newest = min(first - max(cfg["window"], 4) for cfg in configs + levels), last
    if not args.no_fit_time:
        oldest, newest = min(oldest, FIT_WEEKS[0]), max(newest, FIT_WEEKS[1])
    c.log(f"loading hourly cash-in of weeks {oldest}-{newest}")
    hourly = etl(data_dir(), oldest, newest)
    results, at_levels = [], []
    for cfg in configs:
        c.log(f"backtest: {cfg['name']}")
        results.append(run(cfg, weeks, args.jobs, data_dir(), hourly))
    for cfg in levels:
        c.log(f"backtest: {cfg['name']}")
        at_levels.append(run(cfg, weeks, args.jobs, data_dir(), hourly))
    fits = []
    if not args.no_fit_time:
        for cfg in (steps()[0], steps()[PREVIOUS_DEFAULT]):
            c.log(f"fit time: {cfg['name']}")
            fits.append(fit_seconds(cfg, hourly))
    data = {"weeks": weeks, "results": results, "levels": at_levels, "fits": fits}
    text = report(data)
    c.save("forecast_accuracy", data, text)
    print(text)


if __name__ == "__main__":
    main()
