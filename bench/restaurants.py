"""Forecasts per restaurant: a rolling backtest per restaurant, the chain built from them, and the time.

On a generated chain (``python -m foodcast generate --restaurants N --weeks A-B --seed S`` into a
temporary directory, read back into the long form with ``orders.read_batches`` and
``core.hourly.hourly_cash_in`` per restaurant), for each target week w, with the core's
``restaurant_backtest`` functions:

* ``restaurant_week_sets``: the training rows of weeks w-window .. w-1 and the prediction rows
  of week w (``closed_weeks`` 4), as a weekly run of restaurants builds them; then
  ``RestaurantModel(kind=...)`` fitted and predicting, for each kind (``local``, ``global``) and
  each reconciliation (``quantiles``, ``proportions``, ``bottom_up``: applied at prediction, one
  fit per kind);
* ``score_restaurants``: each restaurant's forecast scored as the weekly scorecard scores the
  chain (``scoring.score_week``: model, seasonal naive, 4-week same-hour mean, coverage of the
  0.8 interval; ``coverage open``: among the hours that can sell) against its own cash-in of
  week w, and the chain's rows against the chain's total;
* beside them the chain-level model (``backtest.backtest_week`` on ``chain_total``: what
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


def read_long(directory: Path, first: int = 1, last: int = 10_000):
    """The long hourly cash-in of every restaurant: every hour of the weeks ``first .. last`` it
    has batches for."""
    import pandas as pd

    from foodcast.core.hourly import hourly_cash_in
    from foodcast.data.batch_files import list_batches
    from foodcast.data.orders import read_batches

    frames = []
    for name, batches in sorted(list_batches(directory).items()):
        weeks = sorted(w for w in batches if first <= w <= last)
        orders = read_batches([batches[w] for w in weeks])
        hourly = hourly_cash_in(orders, weeks)
        hourly.insert(0, "restaurant", name)
        frames.append(hourly)
    return pd.concat(frames, ignore_index=True)


def weeks_between(hourly, first: int, last: int):
    """The rows of weeks ``first .. last`` of a long frame."""
    from foodcast.core.weeks import week_start

    rows = (hourly["order_date"] >= week_start(first)) & (hourly["order_date"] < week_start(last + 1))
    return hourly[rows].reset_index(drop=True)


def backtest(hourly, targets: range, window: int, kinds: list[tuple[str, str]]):
    """The scored rows (``restaurant_backtest.WEEK_COLUMNS`` and ``kind``) of every target week
    and model, and the chain-level model's scores of the same weeks."""
    import pandas as pd

    from foodcast.core import restaurants as r
    from foodcast.core.backtest import backtest_week
    from foodcast.core.estimators import DEFAULT_MODEL
    from foodcast.core.features import DEFAULT_FEATURES
    from foodcast.core.restaurant_backtest import restaurant_week_sets, score_restaurants

    total = r.chain_total(hourly)
    scored, chain_level = [], []
    for week in targets:
        started = time.perf_counter()
        x, y, x_pred, notes = restaurant_week_sets(hourly, week, window, closed_weeks=4)
        level = backtest_week(total, week, window, DEFAULT_FEATURES, DEFAULT_MODEL)
        chain_level.append(level)
        fitted: dict = {}  # a reconciliation is applied at prediction: one fit per kind
        for kind, reconciliation in kinds:
            if kind not in fitted:
                fitted[kind] = r.RestaurantModel(kind=kind).fit(x, y)
            preds = fitted[kind].set_params(reconciliation=reconciliation).predict_frame(x_pred)
            rows = score_restaurants(preds, hourly, week, window, total)
            scored.append(rows.assign(kind=f"{kind} {reconciliation}"))
        c.log(
            f"week {week}: {len(x_pred) // 168 - 1} restaurants forecast, {len(notes)} left out, "
            f"chain-level MAE {level['mae_model']:.1f}, {time.perf_counter() - started:.1f} s"
        )
    return pd.concat(scored, ignore_index=True), pd.DataFrame(chain_level)


def summary(scored, chain_level, kinds: list[str]) -> tuple[list[list], dict]:
    """One table row per model and its figures (``restaurant_backtest.summarise_restaurants``)."""
    from foodcast.core.restaurant_backtest import summarise_restaurants

    rows, figures = [], {}
    level = {
        "mae": float(chain_level["mae_model"].mean()),
        "ratio_naive": float(chain_level["mae_model"].mean() / chain_level["mae_naive"].mean()),
        "coverage": float(chain_level["coverage"].mean()),
        "coverage_open": float(chain_level["coverage_open"].mean()),
    }
    figures["chain_level_model"] = level
    for kind in kinds:
        _, f = summarise_restaurants(scored[scored["kind"] == kind])
        f["chain_over_chain_model"] = f["chain_mae_model"] / level["mae"]
        figures[kind] = f
        rows.append(
            [
                kind,
                f["n_established"],
                f"{f['ratio_naive_median']:.3f} / {f['ratio_naive_worst']:.3f}",
                f"{f['ratio_mean4_median']:.3f} / {f['ratio_mean4_worst']:.3f}",
                f"{f['coverage_median']:.2f} / {f['coverage_worst']:.2f}",
                f"{f['coverage_open_median']:.2f} / {f['coverage_open_worst']:.2f}",
                f"{f['fallback_weeks']}: {f['fallback_ratio_naive']:.3f}, {f['fallback_coverage_open']:.2f}",
                f"{f['chain_over_chain_model']:.3f}",
                f"{f['chain_ratio_naive']:.3f} ({level['ratio_naive']:.3f})",
                f"{f['chain_coverage']:.2f} ({level['coverage']:.2f})",
                f"{f['chain_coverage_open']:.2f} ({level['coverage_open']:.2f})",
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
    parser.add_argument("--reconciliations", default="quantiles,proportions,bottom_up")
    parser.add_argument("--time-restaurants", default="10,50", help="chains timed with workers 1 and 2 ('' : none)")
    parser.add_argument("--repeats", type=int, default=2, help="repeats of each timing (median)")
    parser.add_argument("--no-backtest", action="store_true", help="only the timings")
    parser.add_argument(
        "--data-dir", help="backtest the batches of this directory (e.g. data/) instead of a generated chain"
    )
    args = parser.parse_args()
    first, last = (int(w) for w in args.targets.split("-"))
    kinds = [(k, rec) for k in args.kinds.split(",") for rec in args.reconciliations.split(",")]
    text_parts, data = [], {"args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="foodcast-bench-restaurants-") as tmp:
        if not args.no_backtest:
            directory = Path(args.data_dir or Path(tmp) / "chain")
            started = time.perf_counter()
            if not args.data_dir:
                generate(directory, args.restaurants, first - args.window, last, args.seed)
            hourly = read_long(directory, first - args.window, last)
            c.log(f"read {hourly['restaurant'].nunique()} restaurants in {time.perf_counter() - started:.0f} s")
            source = args.data_dir or f"{args.restaurants} generated restaurants (seed {args.seed})"
            scored, chain_level = backtest(hourly, range(first, last + 1), args.window, kinds)
            rows, figures = summary(scored, chain_level, [f"{k} {rec}" for k, rec in kinds])
            data.update(
                scored=scored.to_dict(orient="records"),
                chain_level=chain_level.to_dict(orient="records"),
                figures=figures,
            )
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
                        f"Per-restaurant backtest: {source}, target weeks "
                        f"{first}-{last}, window {args.window} weeks, default features and model"
                    ),
                )
            )
        timings = []
        sizes = [int(v) for v in args.time_restaurants.split(",") if v]
        chains = {}
        for n in sizes:
            directory = Path(tmp) / f"time{n}"
            generate(directory, n, 180, 201, args.seed)
            chains[n] = read_long(directory)
        if sizes:
            # The first call on a pool starts its processes, which import pandas and scikit-learn
            # (joblib then keeps them for the process's later calls, as a stage makes them): apart.
            data["first_call"] = time_fit(chains[sizes[0]], 201, 21, 2)["total"]
            c.log(f"first call with workers=2 ({sizes[0]} restaurants): {data['first_call']:.1f} s")
        for n in sizes:
            samples: dict[int, list[dict]] = {1: [], 2: []}
            for _ in range(args.repeats):
                for workers in (1, 2):
                    samples[workers].append(time_fit(chains[n], 201, 21, workers))
            # Side by side in each repeat: the ratio per repeat, then its median (the machine is shared).
            ratios = [two["total"] / one["total"] for one, two in zip(samples[1], samples[2], strict=True)]
            for workers in (1, 2):
                median = {k: statistics.median(s[k] for s in samples[workers]) for k in samples[workers][0]}
                ratio = statistics.median(ratios) if workers == 2 else 1.0
                spread = f" ({c.spread(ratios)})" if workers == 2 else ""
                timings.append({"restaurants": n, "workers": workers, **median, "ratio": ratio, "ratios": ratios})
                c.log(f"{n} restaurants, workers={workers}: {median['total']:.1f} s{spread}")
        if timings:
            data["timings"] = timings
            text_parts.append(
                c.table(
                    ["restaurants", "workers", "training_rows", "fit", "prediction_rows", "predict", "total", "/ w=1"],
                    [
                        [
                            t["restaurants"],
                            t["workers"],
                            *(f"{t[k]:.2f}s" for k in ("training_rows", "fit", "prediction_rows", "predict", "total")),
                            f"{t['ratio']:.2f}x" + (f" ({c.spread(t['ratios'])})" if t["workers"] == 2 else ""),
                        ]
                        for t in timings
                    ],
                    title="One week's forecast (weeks 180-200 -> 201, local model), median of "
                    f"{args.repeats} repeats, workers 1 and 2 side by side in each; shared 2-core machine; the "
                    f"first call with workers=2 (the pool's start and imports) took {data['first_call']:.1f} s",
                )
            )
    text = "\n\n".join(text_parts)
    print(text)
    c.save("restaurants", data, text)


if __name__ == "__main__":
    main()
