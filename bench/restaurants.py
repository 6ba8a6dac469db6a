"""Forecasts per restaurant: a rolling backtest per restaurant, the chain built from them, and the time.

On a generated chain (``python -m foodcast generate --restaurants N --weeks A-B --seed S`` into a
temporary directory, read back into the long form with ``orders.read_batches`` and
``core.hourly.hourly_cash_in`` per restaurant), for each target week w:

* ``restaurants.training_rows`` of weeks w-window .. w-1, ``restaurants.prediction_rows`` of
  week w from the same weeks (``closed_weeks`` 4), then ``RestaurantModel(kind=...)`` fitted and
  predicting, for each kind (``local``, ``global``) and each reconciliation (``proportions``,
  ``bottom_up``: applied at prediction, so one fit per kind);
* each restaurant forecast is scored as the weekly scorecard scores the chain
  (``scoring.score_week``: model, seasonal naive, 4-week same-hour mean, coverage of the 0.8
  interval), against its own actual cash-in of week w;
* the chain's rows (the sum of the restaurants', bottom-up) are scored against the chain's total
  of week w, beside the chain-level model (``backtest.backtest_week`` on ``chain_total``: what
  ``granularity=chain`` forecasts) on the same weeks.

Per kind, over the *established* restaurants (every week of the window in the data and no
fallback row in the forecast week): the median and the worst restaurant of model MAE / seasonal
naive and / 4-week mean (each restaurant's MAEs are means over the target weeks), and of the
interval's coverage; the restaurants with fallback rows apart (new ones). Last, the fit and
predict (rows, fit, rows, predict) of one week with ``workers=1`` and ``workers=2`` for chains of
10 and 50 restaurants, interleaved, the median of ``--repeats``.

The machine is shared: times move by ±30 % from one minute to the next; the accuracy figures do
not depend on it (everything is seeded).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

GOAL_NAIVE = 0.75  # median restaurant, model / seasonal naive
GOAL_MEAN4 = 0.92  # median restaurant, model / 4-week same-hour mean
GOAL_CHAIN = 1.00  # chain from the restaurants / chain-level model


def generate(directory: Path, restaurants: int, first: int, last: int, seed: int) -> None:
    cmd = [sys.executable, "-m", "foodcast", "generate", "--restaurants", str(restaurants)]
    cmd += ["--weeks", f"{first}-{last}", "--seed", str(seed), "--data-dir", str(directory)]
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def read_long(directory: Path):
    """The long hourly cash-in of every restaurant: every hour of the weeks it has batches for."""
    import pandas as pd

    from foodcast.core.hourly import hourly_cash_in
    from foodcast.data.batch_files import list_batches
    from foodcast.data.orders import read_batches

    frames = []
    for name, weeks in sorted(list_batches(directory).items()):
        orders = read_batches([weeks[w] for w in sorted(weeks)])
        hourly = hourly_cash_in(orders, sorted(weeks))
        hourly.insert(0, "restaurant", name)
        frames.append(hourly)
    return pd.concat(frames, ignore_index=True)


def weeks_between(hourly, first: int, last: int):
    """The rows of weeks ``first .. last`` of a long frame."""
    from foodcast.core.weeks import week_start

    rows = (hourly["order_date"] >= week_start(first)) & (hourly["order_date"] < week_start(last + 1))
    return hourly[rows].reset_index(drop=True)


def score(preds, actual, week: int):
    """``scoring.score_week`` of one series' forecast of ``week``; None if its truth or its
    week before is missing (a restaurant closed in ``week``, or without a batch the week before)."""
    from foodcast.core.scoring import score_week, split_actuals
    from foodcast.core.windows import REFERENCE_WEEKS
    from foodcast.errors import FoodcastError

    try:
        truth, history = split_actuals(weeks_between(actual, week - REFERENCE_WEEKS, week), week)
        metrics, table = score_week(preds, truth, history)
    except FoodcastError:
        return None
    # As backtest.backtest_week: the hours that can sell (the interval is calibrated on those).
    inside = (table["actual"] >= table["y_lower"]) & (table["actual"] <= table["y_upper"])
    open_hours = (table["y_upper"] > 0) | (table["actual"] != 0)
    metrics["coverage_open"] = float(inside[open_hours].mean()) if open_hours.any() else 1.0
    return metrics


def backtest(hourly, targets: range, window: int, kinds: list[tuple[str, str]]) -> tuple[list[dict], list[dict]]:
    """Per restaurant-week and per chain-week rows of the rolling backtest."""
    from foodcast.core import restaurants as r
    from foodcast.core.backtest import backtest_week
    from foodcast.core.estimators import DEFAULT_MODEL
    from foodcast.core.features import DEFAULT_FEATURES

    total = r.chain_total(hourly)
    per_restaurant, per_chain = [], []
    own = {name: rows[["order_date", "cash_in"]] for name, rows in hourly.groupby("restaurant")}
    for week in targets:
        started = time.perf_counter()
        past = weeks_between(hourly, week - window, week - 1)
        train = r.training_rows(past)
        x = train.drop(columns="cash_in").set_index("order_date")
        x_pred, notes = r.prediction_rows(past, week, closed_weeks=4)
        x_pred = x_pred.set_index("order_date")
        weeks_held = past.groupby("restaurant")["order_date"].nunique() // 168
        level = backtest_week(total, week, window, DEFAULT_FEATURES, DEFAULT_MODEL)
        fitted: dict = {}  # a reconciliation is applied at prediction: one fit per kind
        for kind, reconciliation in kinds:
            model = fitted.get(kind) or fitted.setdefault(kind, r.RestaurantModel(kind=kind).fit(x, train["cash_in"]))
            preds = model.set_params(reconciliation=reconciliation).predict_frame(x_pred)
            kind = f"{kind} {reconciliation}"
            for name, rows in preds.groupby("restaurant", sort=False):
                if name == r.CHAIN:
                    continue
                metrics = score(rows, own[name], week)
                if metrics is None:
                    continue
                fallback = bool(rows["fallback"].any())
                per_restaurant.append(
                    {
                        "kind": kind,
                        "week": week,
                        "restaurant": name,
                        "established": int(weeks_held.get(name, 0)) == window and not fallback,
                        "fallback": fallback,
                        **{k: metrics[k] for k in ("mae_model", "mae_naive", "mae_mean4", "coverage", "coverage_open")},
                    }
                )
            chain = preds[preds["restaurant"] == r.CHAIN]
            metrics = score(chain, total, week)
            per_chain.append(
                {
                    "kind": kind,
                    "week": week,
                    "mae_model": metrics["mae_model"],
                    "mae_naive": metrics["mae_naive"],
                    "mae_mean4": metrics["mae_mean4"],
                    "coverage": metrics["coverage"],
                    "coverage_open": metrics["coverage_open"],
                    "mae_chain_model": level["mae_model"],
                    "coverage_chain_model": level["coverage"],
                    "coverage_open_chain_model": level["coverage_open"],
                    "left_out": len(notes),
                }
            )
        c.log(
            f"week {week}: {len(x_pred) // 168 - 1} restaurants forecast, {len(notes)} left out, "
            f"chain-level MAE {level['mae_model']:.1f}, {time.perf_counter() - started:.1f} s"
        )
    return per_restaurant, per_chain


def summary(per_restaurant: list[dict], per_chain: list[dict], kinds: list[str]) -> tuple[list[list], dict]:
    """One table row per kind and its figures."""
    import pandas as pd

    table = pd.DataFrame(per_restaurant)
    chains = pd.DataFrame(per_chain)
    rows, figures = [], {}
    for kind in kinds:
        mine = table[table["kind"] == kind]
        established = mine[mine["established"]]
        by = established.groupby("restaurant")[
            ["mae_model", "mae_naive", "mae_mean4", "coverage", "coverage_open"]
        ].mean()
        naive = by["mae_model"] / by["mae_naive"]
        mean4 = by["mae_model"] / by["mae_mean4"]
        new = mine[mine["fallback"]]
        chain = chains[chains["kind"] == kind]
        f = {
            "restaurants": len(by),
            "naive_median": float(naive.median()),
            "naive_worst": float(naive.max()),
            "mean4_median": float(mean4.median()),
            "mean4_worst": float(mean4.max()),
            "coverage_median": float(by["coverage"].median()),
            "coverage_worst": float(by["coverage"].min()),
            "coverage_open_median": float(by["coverage_open"].median()),
            "coverage_open_worst": float(by["coverage_open"].min()),
            "fallback_weeks": len(new),
            "fallback_naive": float(new["mae_model"].sum() / new["mae_naive"].sum()) if len(new) else float("nan"),
            "fallback_coverage": float(new["coverage_open"].mean()) if len(new) else float("nan"),
            "chain_over_chain_model": float(chain["mae_model"].mean() / chain["mae_chain_model"].mean()),
            "chain_naive": float(chain["mae_model"].mean() / chain["mae_naive"].mean()),
            "chain_model_naive": float(chain["mae_chain_model"].mean() / chain["mae_naive"].mean()),
            "chain_coverage": float(chain["coverage"].mean()),
            "chain_model_coverage": float(chain["coverage_chain_model"].mean()),
            "chain_coverage_open": float(chain["coverage_open"].mean()),
            "chain_model_coverage_open": float(chain["coverage_open_chain_model"].mean()),
        }
        figures[kind] = f
        rows.append(
            [
                kind,
                f["restaurants"],
                f"{f['naive_median']:.3f} / {f['naive_worst']:.3f}",
                f"{f['mean4_median']:.3f} / {f['mean4_worst']:.3f}",
                f"{f['coverage_median']:.2f} / {f['coverage_worst']:.2f}",
                f"{f['coverage_open_median']:.2f} / {f['coverage_open_worst']:.2f}",
                f"{f['fallback_weeks']}: {f['fallback_naive']:.3f}, {f['fallback_coverage']:.2f}",
                f"{f['chain_over_chain_model']:.3f}",
                f"{f['chain_naive']:.3f} ({f['chain_model_naive']:.3f})",
                f"{f['chain_coverage']:.2f} ({f['chain_model_coverage']:.2f})",
                f"{f['chain_coverage_open']:.2f} ({f['chain_model_coverage_open']:.2f})",
            ]
        )
    return rows, figures


def time_fit(hourly, week: int, window: int, workers: int) -> dict:
    """Seconds of each phase of one weekly forecast of every restaurant, with ``workers``."""
    from foodcast.core import restaurants as r

    past = weeks_between(hourly, week - window, week - 1)
    phases = {}
    t0 = time.perf_counter()
    train = r.training_rows(past, workers=workers)
    t1 = time.perf_counter()
    model = r.RestaurantModel(workers=workers).fit(
        train.drop(columns="cash_in").set_index("order_date"), train["cash_in"]
    )
    t2 = time.perf_counter()
    x_pred, _ = r.prediction_rows(past, week, closed_weeks=4, workers=workers)
    t3 = time.perf_counter()
    model.predict_frame(x_pred.set_index("order_date"))
    t4 = time.perf_counter()
    phases.update(training_rows=t1 - t0, fit=t2 - t1, prediction_rows=t3 - t2, predict=t4 - t3, total=t4 - t0)
    return phases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restaurants", type=int, default=20, help="restaurants of the backtest's chain")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--targets", default="198-209", help="target weeks A-B (default 198-209: 12 weeks)")
    parser.add_argument("--window", type=int, default=21, help="training weeks before each target week")
    parser.add_argument("--kinds", default="local,global")
    parser.add_argument("--reconciliations", default="proportions,bottom_up")
    parser.add_argument("--time-restaurants", default="10,50", help="chains timed with workers 1 and 2 ('' : none)")
    parser.add_argument("--repeats", type=int, default=2, help="repeats of each timing (median)")
    args = parser.parse_args()
    first, last = (int(w) for w in args.targets.split("-"))
    kinds = [(k, rec) for k in args.kinds.split(",") for rec in args.reconciliations.split(",")]
    text_parts, data = [], {"args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="foodcast-bench-restaurants-") as tmp:
        directory = Path(tmp) / "chain"
        started = time.perf_counter()
        generate(directory, args.restaurants, first - args.window, last, args.seed)
        hourly = read_long(directory)
        c.log(f"generated and read {args.restaurants} restaurants in {time.perf_counter() - started:.0f} s")
        per_restaurant, per_chain = backtest(hourly, range(first, last + 1), args.window, kinds)
        rows, figures = summary(per_restaurant, per_chain, [f"{k} {rec}" for k, rec in kinds])
        data.update(per_restaurant=per_restaurant, per_chain=per_chain, figures=figures)
        text_parts.append(
            c.table(
                [
                    "kind",
                    "established",
                    "/naive med / worst",
                    "/mean4 med / worst",
                    "cov med / worst",
                    "cov open med / worst",
                    "fallback wks: /naive, cov open",
                    "chain / chain model",
                    "chain /naive (model's)",
                    "chain cov (model's)",
                    "chain cov open (model's)",
                ],
                rows,
                title=(
                    f"Per-restaurant backtest: {args.restaurants} restaurants (seed {args.seed}), target weeks "
                    f"{first}-{last}, window {args.window} weeks, default features and model"
                ),
            )
        )
        timings = []
        if args.time_restaurants:
            # The pool's processes start once per process (joblib keeps them): timed apart.
            from foodcast.core.restaurants import fan_out

            started = time.perf_counter()
            fan_out(abs, [-1, -2], 2)
            data["pool_start"] = time.perf_counter() - started
            c.log(f"joblib's pool of 2 processes started in {data['pool_start']:.1f} s")
        for n in [int(v) for v in args.time_restaurants.split(",") if v]:
            directory = Path(tmp) / f"time{n}"
            generate(directory, n, 180, 201, args.seed)
            chain = read_long(directory)
            samples: dict[int, list[dict]] = {1: [], 2: []}
            for _ in range(args.repeats):
                for workers in (1, 2):
                    samples[workers].append(time_fit(chain, 201, 21, workers))
            for workers in (1, 2):
                median = {k: statistics.median(s[k] for s in samples[workers]) for k in samples[workers][0]}
                timings.append({"restaurants": n, "workers": workers, **median})
                c.log(f"{n} restaurants, workers={workers}: {median['total']:.1f} s")
        if timings:
            data["timings"] = timings
            ratio = {t["restaurants"]: t["total"] for t in timings if t["workers"] == 2}
            base = {t["restaurants"]: t["total"] for t in timings if t["workers"] == 1}
            text_parts.append(
                c.table(
                    ["restaurants", "workers", "training_rows", "fit", "prediction_rows", "predict", "total", "/ w=1"],
                    [
                        [
                            t["restaurants"],
                            t["workers"],
                            *(f"{t[k]:.2f}s" for k in ("training_rows", "fit", "prediction_rows", "predict", "total")),
                            f"{(ratio if t['workers'] == 2 else base)[t['restaurants']] / base[t['restaurants']]:.2f}x",
                        ]
                        for t in timings
                    ],
                    title="One week's forecast (weeks 180-200 -> 201, local model), median of "
                    f"{args.repeats}; shared 2-core machine; the pool of 2 processes started beforehand in "
                    f"{data['pool_start']:.1f} s",
                )
            )
    text = "\n\n".join(text_parts)
    print(text)
    c.save("restaurants", data, text)


if __name__ == "__main__":
    main()
