"""What a generated chain costs to make, and how good the best forecast possible is on it.

    python bench/chain_generator.py                       # 20 and 200 restaurants x weeks 150-209; oracle on 50
    python bench/chain_generator.py --restaurants 200 --oracle-restaurants 0

1. ``python -m foodcast generate --restaurants N --weeks A-B`` into a temporary directory, once
   per N, under ``/usr/bin/time -v``: wall time, CPU time (user + system) and peak memory.
2. On a chain of ``--oracle-restaurants`` restaurants, each restaurant's hourly cash-in (as read
   back from its batches) against its oracle (``oracle_cash_in``, the expected cash-in from the
   drawn parameters), over the last ``--targets`` weeks: the oracle's hourly MAE divided by the
   seasonal naive's (same hour a week before) and by the 4-week same-hour mean's, on the hours
   of weeks each restaurant trades after 4 weeks of history; median and worst of the
   restaurants trading throughout, newly opened ones apart, and the chain of those restaurants.
   This is the floor any forecast of the chain can reach (in MAE, each hour's median would do a
   little better than the mean). Not a test: figures only.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

from foodcast.core.hourly import hourly_cash_in
from foodcast.core.weeks import week_start
from foodcast.data.batch_files import list_batches
from foodcast.data.chain_generator import generate_chain, oracle_cash_in, read_parameters
from foodcast.data.generator import DEFAULT_SEED
from foodcast.data.orders import read_batches


def weeks_arg(text: str) -> tuple[int, int]:
    first, _, last = text.partition("-")
    return int(first), int(last or first)


def time_generation(restaurants: int, weeks: tuple[int, int], seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="chain-bench-") as tmp:
        cmd = [sys.executable, "-m", "foodcast", "generate", "--restaurants", str(restaurants)]
        cmd += ["--weeks", f"{weeks[0]}-{weeks[1]}", "--seed", str(seed), "--data-dir", f"{tmp}/data"]
        before = os.times()
        began = time.perf_counter()
        _, peak_kib = c.run_time_v(cmd, env=os.environ.copy(), cwd=c.REPO)
        wall = time.perf_counter() - began
        after = os.times()
        size = sum(p.stat().st_size for p in Path(tmp, "data").rglob("*") if p.is_file())
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return {"restaurants": restaurants, "wall_s": wall, "cpu_s": cpu, "peak_mb": peak_kib / 1024, "size_mb": size / 1e6}


def mae_ratios(truth: np.ndarray, oracle: np.ndarray, scored: np.ndarray) -> tuple[float, float]:
    """Oracle MAE / seasonal naive MAE and / 4-week same-hour mean MAE, on the ``scored`` hours."""
    lagged = [np.r_[np.full(168 * k, np.nan), truth[: -168 * k]] for k in range(1, 5)]
    naive, mean4 = lagged[0], np.mean(lagged, axis=0)
    mask = scored & ~np.isnan(mean4)

    def mae(forecast: np.ndarray) -> float:
        return float(np.abs(truth[mask] - forecast[mask]).mean())

    return mae(oracle) / mae(naive), mae(oracle) / mae(mean4)


def oracle_accuracy(restaurants: int, weeks: tuple[int, int], targets: int, seed: int) -> tuple[pd.DataFrame, dict]:
    first, last = weeks
    with tempfile.TemporaryDirectory(prefix="chain-bench-") as tmp:
        generate_chain(tmp, restaurants, seed=seed, first_week=first, last_week=last)
        parameters = read_parameters(tmp)
        batches = list_batches(tmp)
        rows, chain_truth, chain_oracle = [], 0.0, 0.0
        for r in parameters["restaurants"]:
            lines = read_batches(list(batches[r["name"]].values()))
            truth = hourly_cash_in(lines, range(first, last + 1))["cash_in"].to_numpy()
            oracle = oracle_cash_in(parameters, r["name"], first, last)
            hours = oracle["order_date"]
            scored = (hours >= week_start(max(last - targets + 1, r["first_week"] + 4))) & (
                hours < week_start(r["last_week"] + 1)
            )
            if scored.sum() < 4 * 168:
                continue
            naive, mean4 = mae_ratios(truth, oracle["cash_in"].to_numpy(), scored.to_numpy())
            kind = (
                "opened"
                if r["opening_week"] is not None
                else "closed"
                if r["closing_week"] is not None
                else "established"
            )
            rows.append(
                {
                    "restaurant": r["name"],
                    "kind": kind,
                    "orders_per_day": r["orders_per_day"],
                    "naive": naive,
                    "mean4": mean4,
                }
            )
            if kind == "established":
                chain_truth = chain_truth + truth
                chain_oracle = chain_oracle + oracle["cash_in"].to_numpy()
    scored_chain = np.arange(len(chain_truth)) >= max(last - targets + 1 - first, 0) * 168
    chain = dict(zip(("naive", "mean4"), mae_ratios(chain_truth, chain_oracle, scored_chain), strict=True))
    return pd.DataFrame(rows), chain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restaurants", default="20,200", help="chain sizes to time, comma-separated")
    parser.add_argument("--weeks", type=weeks_arg, default=(150, 209), help="weeks generated (A-B)")
    parser.add_argument("--oracle-restaurants", type=int, default=50, help="chain size for the oracle (0: skip)")
    parser.add_argument("--targets", type=int, default=50, help="last weeks scored for the oracle")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()

    timings = []
    for n in [int(v) for v in args.restaurants.split(",") if v]:
        c.log(f"generating {n} restaurants x weeks {args.weeks[0]}-{args.weeks[1]}")
        timings.append(time_generation(n, args.weeks, args.seed))
    text = c.table(
        ["restaurants", "wall s", "CPU s", "peak MB", "size MB"],
        [[t["restaurants"], t["wall_s"], t["cpu_s"], t["peak_mb"], t["size_mb"]] for t in timings],
        title=f"generate --restaurants N --weeks {args.weeks[0]}-{args.weeks[1]} (wall: machine load)",
    )
    data: dict = {"timings": timings}
    if args.oracle_restaurants:
        c.log(f"oracle on {args.oracle_restaurants} restaurants")
        per_restaurant, chain = oracle_accuracy(args.oracle_restaurants, args.weeks, args.targets, args.seed)
        summary = []
        for kind, group in per_restaurant.groupby("kind"):
            summary.append(
                [
                    kind,
                    len(group),
                    group["naive"].median(),
                    group["naive"].max(),
                    group["mean4"].median(),
                    group["mean4"].max(),
                ]
            )
        summary.append(["chain (established)", "", chain["naive"], "", chain["mean4"], ""])
        text += "\n\n" + c.table(
            ["restaurants", "n", "median / naive", "worst / naive", "median / 4-week mean", "worst / 4-week mean"],
            summary,
            title=f"oracle hourly MAE over the last {args.targets} weeks, {args.oracle_restaurants} restaurants",
        )
        data["oracle"] = {"per_restaurant": per_restaurant.to_dict("records"), "chain": chain}
    print(text)
    c.save("chain_generator", data, text)


if __name__ == "__main__":
    main()
