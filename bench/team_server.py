"""Team server vs sqlite, side by side in one run: the default pipeline cold and warm, a load of
concurrent clients, and cache scaling; and where the server's time goes.

One team server for the whole benchmark (``python -m foodcast server start`` in a temporary
directory, stopped at the end); the pipeline runs against it as a non-admin user with a login,
in experiments that user creates (and so holds MANAGE on). Parts (``--parts``, default all):

ratio    Per repeat, in this order: a fresh sqlite store (created before timing) gets a cold
         ``mlflow run`` of the default pipeline (every stage launched, checked) then a warm one
         (every stage reused); then, for each server configuration (``--configs``; the server restarted
         with it outside the timings), the same two runs in a fresh experiment (so "cold" means
         no stage cached, as for sqlite). Ratios per repeat (server / sqlite of the same repeat),
         reported as the median with their range. For each configuration, where the time goes:
         the requests the server received during the cold and the warm run, by endpoint (its
         access log), with how many distinct runs the ``runs/get`` requests asked for; the CPU
         seconds the server used (the MLflow server's processes, and PostgreSQL's); the latency
         of one authenticated GET (experiments/get) against /health, which checks no login.
load     ``--clients`` concurrent clients (threads, each running ``mlflow run`` after
         ``mlflow run``) share ``--pipelines`` default pipelines, each with its own n_estimators
         (10, 11, ...), first on a fresh sqlite store, then in a fresh experiment of the server:
         wall time, time of each pipeline, and every failure (exit status, last error line).
scaling  bench/cache_scaling.py's measurement on both stores, size by size side by side: one
         cold run, then the experiment filled with fake finished runs (written straight into
         the store's database: the server's PostgreSQL for the server) to 100, 1,000 and
         10,000 other runs; at each size, in a fresh interpreter, Pipeline.run resolving the
         cached stages and the find_reusable lookups alone, then the warm ``mlflow run``.

Server configurations (``--configs`` for the ratio part, ``--load-configs`` for the load part;
the scaling part uses ``project``): ``project`` is what ``python -m foodcast server start``
runs by default (1 worker, a login trusted for 60 s once checked: auth_cache_ttl_seconds);
``default`` is MLflow's own (4 workers, every request hashes the password: auth cache off);
``cached-4w`` and ``cached-2w`` cache logins like ``project``, with 4 or 2 workers (uvicorn's
multi-worker mode leaves Nagle's algorithm on: ~40 ms per request on a kept-alive connection).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c
import cache_scaling

from foodcast.teamserver import server as teamserver

CONFIGS = {
    # what `python -m foodcast server start` runs by default
    "project": {"workers": teamserver.DEFAULT_WORKERS, "auth_cache_seconds": teamserver.DEFAULT_AUTH_CACHE_SECONDS},
    # MLflow's own settings: 4 workers, the password hashed on every request
    "default": {"workers": 4, "auth_cache_seconds": 0},
    "cached-4w": {"workers": 4, "auth_cache_seconds": 60},
    "cached-2w": {"workers": 2, "auth_cache_seconds": 60},
}
USER, PASSWORD = "bench-editor", "bench-editor-pass-1"
ACCESS_LINE = re.compile(r'"(GET|POST|PUT|PATCH|DELETE) ([^ ?"]+)\??([^ "]*) HTTP/[0-9.]+" (\d{3})')
GOAL_RATIO = 1.5  # cold and warm against the server, each over the same on sqlite
PARTS = ("ratio", "load", "scaling")


class TeamServer:
    """The benchmark's team server, driven through the project's command."""

    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="foodcast-bench-team-"))
        self.base.chmod(0o711)  # PostgreSQL runs as user postgres when we are root
        self.dir = self.base / "server"
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.uri = f"http://127.0.0.1:{self.port}"
        self.config = None
        self.user_created = False

    def command(self, *args):
        return c.run(
            [c.PYTHON, "-m", "foodcast", "server", *map(str, args), "--dir", str(self.dir)],
            env=os.environ.copy(),
            cwd=self.base,
        )

    def use(self, name: str) -> None:
        if self.config == name:
            return
        self.command("stop")
        options = CONFIGS[name]
        self.command(
            "start",
            "--port",
            self.port,
            "--workers",
            options["workers"],
            "--auth-cache-seconds",
            options["auth_cache_seconds"],
        )
        self.config = name

    @contextlib.contextmanager
    def login(self, username: str, password: str):
        """This process's MLflow clients log in as ``username`` meanwhile."""
        os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = username, password
        try:
            yield
        finally:
            os.environ.pop("MLFLOW_TRACKING_USERNAME")
            os.environ.pop("MLFLOW_TRACKING_PASSWORD")

    def create_user(self) -> None:
        if self.user_created:
            return
        from mlflow.server.auth.client import AuthServiceClient

        with self.login(*teamserver.admin_login(self.dir)):
            AuthServiceClient(self.uri).create_user(USER, PASSWORD)
        self.user_created = True

    def experiment_id(self, name: str) -> str:
        from mlflow.tracking import MlflowClient

        with self.login(USER, PASSWORD):
            return MlflowClient(self.uri).get_experiment_by_name(name).experiment_id

    def env(self, experiment: str) -> dict:
        # The user creates the experiment on its first run, and so holds MANAGE on it.
        return c.bench_env(
            self.base,
            extra={
                "MLFLOW_TRACKING_URI": self.uri,
                "MLFLOW_TRACKING_USERNAME": USER,
                "MLFLOW_TRACKING_PASSWORD": PASSWORD,
                "MLFLOW_EXPERIMENT_NAME": experiment,
            },
        )

    def log_offset(self) -> int:
        return (self.dir / "mlflow.log").stat().st_size

    def requests_between(self, start: int, end: int) -> dict:
        """Requests in the access log between two offsets: ``by_endpoint`` (counts),
        ``errors`` (status >= 400, by endpoint and status), and ``runs_get`` (requests,
        distinct runs asked for, most requests for one run)."""
        with open(self.dir / "mlflow.log", "rb") as f:
            f.seek(start)
            text = f.read(end - start).decode(errors="replace")
        counts, errors, runs = collections.Counter(), collections.Counter(), collections.Counter()
        for method, path, query, status in ACCESS_LINE.findall(text):
            family = f"{method} {endpoint_family(path)}"
            counts[family] += 1
            if int(status) >= 400:
                errors[f"{family} {status}"] += 1
            if path.endswith("/runs/get"):
                runs[parse_qs(query).get("run_id", ["?"])[0]] += 1
        return {
            "by_endpoint": dict(counts),
            "errors": dict(errors),
            "runs_get": {
                "requests": sum(runs.values()),
                "runs": len(runs),
                "most_for_one_run": max(runs.values(), default=0),
            },
        }

    def cpu_seconds(self) -> dict:
        """CPU used so far by the MLflow server's processes and by PostgreSQL's (live processes,
        plus what their parents collected from children that ended)."""
        pgid = int((self.dir / "mlflow.pid").read_text().split()[0])
        postmaster = int((self.dir / "pgdata" / "postmaster.pid").read_text().split()[0])
        mlflow_cpu = pg_cpu = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            ppid, group = int(fields[1]), int(fields[2])
            own = (int(fields[11]) + int(fields[12])) / tick
            children = (int(fields[13]) + int(fields[14])) / tick
            if group == pgid:
                mlflow_cpu += own + (children if int(entry.name) == pgid else 0.0)
            if int(entry.name) == postmaster:
                pg_cpu += own + children
            elif ppid == postmaster:
                pg_cpu += own
        return {"mlflow": mlflow_cpu, "postgres": pg_cpu}

    def latency(self, n: int = 30) -> dict:
        """Median seconds of one GET over a kept-alive connection: /health, and experiments/get
        as the user (a login check and a permission check)."""
        import requests

        out = {}
        with requests.Session() as session:
            for name, url, auth in (
                ("health", f"{self.uri}/health", None),
                ("authenticated GET", f"{self.uri}/api/2.0/mlflow/experiments/get?experiment_id=0", (USER, PASSWORD)),
            ):
                samples = []
                for _ in range(n):
                    started = time.perf_counter()
                    session.get(url, auth=auth, timeout=30).raise_for_status()
                    samples.append(time.perf_counter() - started)
                out[name] = c.median(samples)
        return out

    def close(self) -> None:
        try:
            if self.config is not None:
                self.command("stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


def endpoint_family(path: str) -> str:
    if "/mlflow-artifacts/artifacts" in path:
        return "artifacts (proxied upload/download/list)"
    if "/logged-models/" in path and path.rstrip("/").split("/")[-1] not in ("search", "create"):
        return "/api/2.0/mlflow/logged-models/<id>/..."
    return re.sub(r"/[0-9a-f]{32}(?=/|$)", "/<id>", path)


def pipeline(env: dict, cwd, expect_launched: int) -> float:
    """Wall seconds of one `mlflow run` of the default pipeline, checked to have launched
    ``expect_launched`` stages (every stage: cold, 0: warm)."""
    result = c.run(c.mlflow_run_cmd(), env, cwd)
    summary = c.main_summary(result.stdout)
    if not summary or summary[0] != expect_launched or summary[0] + summary[1] != c.DEFAULT_RUNS:
        raise RuntimeError(f"expected {expect_launched} stages launched, got {summary}\n{result.stdout[-2000:]}")
    return result.seconds


def server_pair(server: TeamServer, env: dict) -> dict:
    """Cold then warm run against the server, with the requests and server CPU of each."""
    out = {}
    for phase, launched in (("cold", c.DEFAULT_RUNS), ("warm", 0)):
        offset, cpu = server.log_offset(), server.cpu_seconds()
        seconds = pipeline(env, server.base, launched)
        time.sleep(0.5)  # the access log's last lines
        after = server.cpu_seconds()
        out[phase] = {
            "seconds": seconds,
            "requests": server.requests_between(offset, server.log_offset()),
            "cpu": {k: after[k] - cpu[k] for k in cpu},
        }
    return out


def measure_ratio(server: TeamServer, repeats: int, configs: list[str]) -> dict:
    rows = []
    for i in range(repeats):
        row = {}
        with c.Store() as store:
            store.init()
            c.log(f"ratio, repeat {i + 1}/{repeats}: sqlite cold + warm")
            row["sqlite"] = {
                "cold": {"seconds": pipeline(store.env(), store.dir, c.DEFAULT_RUNS)},
                "warm": {"seconds": pipeline(store.env(), store.dir, 0)},
            }
        for name in configs:
            server.use(name)
            server.create_user()
            c.log(f"ratio, repeat {i + 1}/{repeats}: team server ({name}) cold + warm")
            row[name] = server_pair(server, server.env(f"bench-{name}-{i}-{time.time_ns()}"))
            row[name]["latency"] = server.latency()
        rows.append(row)
        c.log(
            "  "
            + ", ".join(
                f"{k}: cold {v['cold']['seconds']:.1f} s, warm {v['warm']['seconds']:.1f} s" for k, v in row.items()
            )
        )
    return {"configs": {name: CONFIGS[name] for name in configs}, "repeats": rows}


def load_clients(env: dict, cwd, clients: int, pipelines: int) -> dict:
    """``pipelines`` default pipelines (n_estimators 10, 11, ...) run by ``clients`` threads
    at once, each thread running its share one after the other; wall time and each run's
    outcome."""
    results: list[dict | None] = [None] * pipelines

    def client(k: int) -> None:
        for i in range(k, pipelines, clients):
            n_estimators = 10 + i
            r = c.run(c.mlflow_run_cmd(params={"n_estimators": n_estimators}), env, cwd, check=False)
            summary = c.main_summary(r.stdout)
            errors = [ln for ln in r.stderr.splitlines() if ln.startswith("Error") or "Exception:" in ln]
            results[i] = {
                "n_estimators": n_estimators,
                "client": k,
                "seconds": r.seconds,
                "returncode": r.returncode,
                "summary": summary,
                "finished": r.returncode == 0 and bool(summary) and summary[0] + summary[1] == c.DEFAULT_RUNS,
                "error": (errors or r.stderr.strip().splitlines() or [""])[-1][:300],
            }

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"wall": time.perf_counter() - started, "pipelines": results}


def measure_load(server: TeamServer, clients: int, pipelines: int, configs: list[str]) -> dict:
    out = {"clients": clients, "pipelines": pipelines, "configs": {name: CONFIGS[name] for name in configs}}
    with c.Store() as store:
        store.init()
        c.log(f"load: {pipelines} pipelines from {clients} clients on sqlite")
        out["sqlite"] = load_clients(store.env(), store.dir, clients, pipelines)
    for name in configs:
        server.use(name)
        server.create_user()
        c.log(f"load: {pipelines} pipelines from {clients} clients on the team server ({name})")
        offset, cpu = server.log_offset(), server.cpu_seconds()
        part = load_clients(server.env(f"bench-load-{name}-{time.time_ns()}"), server.base, clients, pipelines)
        time.sleep(0.5)
        after = server.cpu_seconds()
        part["requests"] = server.requests_between(offset, server.log_offset())
        part["cpu"] = {k: after[k] - cpu[k] for k in cpu}
        out[f"team server ({name})"] = part
    return out


def measure_scaling(server: TeamServer, sizes: list[int], resolve_repeats: int, run_repeats: int, workers: int) -> dict:
    server.use("project")
    server.create_user()
    out = {"sqlite": {"sizes": []}, "team server": {"sizes": []}}
    with c.Store() as store:
        store.init()
        experiment = f"bench-scaling-{time.time_ns()}"
        targets = {
            "sqlite": cache_scaling.Target(store.env(), store.dir, store.uri),
            "team server": cache_scaling.Target(
                server.env(experiment), server.base, teamserver.tracking_store_uri(server.dir)
            ),
        }
        for label, target in targets.items():
            c.log(f"scaling: {label}: cold run")
            out[label]["cold"] = c.cold_run(target)[0].seconds
        targets["team server"].experiment_id = server.experiment_id(experiment)
        have = 0
        for size in sizes:
            for label, target in targets.items():
                c.log(f"scaling: {label}")
                out[label]["sizes"].append(
                    cache_scaling.measure_size(target, have, size, resolve_repeats, run_repeats, workers)
                )
            have = size
    return out


def report_ratio(data: dict) -> str:
    rows = data["repeats"]
    configs = list(data["configs"])

    def seconds(store, phase):
        return [r[store][phase]["seconds"] for r in rows]

    table = [["sqlite", c.median(seconds("sqlite", "cold")), c.median(seconds("sqlite", "warm")), "", "", ""]]
    for name in configs:
        ratios = {
            phase: [a / b for a, b in zip(seconds(name, phase), seconds("sqlite", phase), strict=True)]
            for phase in ("cold", "warm")
        }
        worst = max(c.median(ratios["cold"]), c.median(ratios["warm"]))
        table.append(
            [
                f"team server ({name})",
                c.median(seconds(name, "cold")),
                c.median(seconds(name, "warm")),
                *(f"{c.median(ratios[p]):.2f}x ({c.spread(ratios[p])})" for p in ("cold", "warm")),
                f"<= {GOAL_RATIO}: {c.verdict(worst, GOAL_RATIO)}",
            ]
        )
    out = [
        c.table(
            ["store", "cold s", "warm s", "cold / sqlite", "warm / sqlite", "goal"],
            table,
            title=f"Default pipeline, medians of {len(rows)} repeats measured side by side",
        )
    ]
    for name in configs:
        out.append("")
        out.append(f"team server ({name}: {data['configs'][name]})")
        health = c.median([r[name]["latency"]["health"] for r in rows])
        authed = c.median([r[name]["latency"]["authenticated GET"] for r in rows])
        out.append(
            f"  one GET over a kept-alive connection: /health {health * 1000:.1f} ms, "
            f"experiments/get as the user {authed * 1000:.1f} ms"
        )
        for phase in ("cold", "warm"):
            mlflow_cpu = c.median([r[name][phase]["cpu"]["mlflow"] for r in rows])
            pg_cpu = c.median([r[name][phase]["cpu"]["postgres"] for r in rows])
            out.extend(
                request_lines(
                    rows[0][name][phase]["requests"],
                    f"  {phase}: {{total}} requests (first repeat); server CPU (medians) "
                    f"{mlflow_cpu:.1f} s MLflow + {pg_cpu:.1f} s PostgreSQL",
                )
            )
    return "\n".join(out)


def request_lines(requests: dict, head: str, top: int = 12) -> list[str]:
    """The access-log summary of ``requests``: the total (after ``head``), the busiest
    endpoints, the runs/get repetition and the errors."""
    by_endpoint = requests["by_endpoint"]
    runs = requests["runs_get"]
    lines = [head.format(total=sum(by_endpoint.values()))]
    for endpoint, count in sorted(by_endpoint.items(), key=lambda kv: (-kv[1], kv[0]))[:top]:
        lines.append(f"    {count:5d}  {endpoint}")
    lines.append(
        f"    runs/get asked {runs['requests']} times for {runs['runs']} distinct runs "
        f"(up to {runs['most_for_one_run']} times for one run)"
    )
    if requests["errors"]:
        lines.append("    errors: " + ", ".join(f"{k} x{v}" for k, v in sorted(requests["errors"].items())))
    return lines


def report_load(data: dict) -> str:
    rows, failures = [], []
    stores = ["sqlite", *(f"team server ({name})" for name in data["configs"])]
    for store in stores:
        part = data[store]
        times = [p["seconds"] for p in part["pipelines"]]
        finished = [p for p in part["pipelines"] if p["finished"]]
        rows.append([store, part["wall"], f"{len(finished)}/{len(part['pipelines'])}", c.median(times), max(times)])
        failures += [
            f"  {store}: n_estimators={p['n_estimators']} exit {p['returncode']}: {p['error']}"
            for p in part["pipelines"]
            if not p["finished"]
        ]
    n_first, n_last = 10, 10 + data["pipelines"] - 1
    out = [
        c.table(
            ["store", "wall s", "finished", "median pipeline s", "slowest pipeline s"],
            rows,
            title=f"Load: {data['pipelines']} default pipelines (n_estimators {n_first}-{n_last}) "
            f"from {data['clients']} concurrent clients",
        )
    ]
    out.append("failures:" if failures else "failures: none")
    out += failures
    for store in stores[1:]:
        part = data[store]
        out += request_lines(
            part["requests"],
            f"{store}: {{total}} requests; server CPU "
            f"{part['cpu']['mlflow']:.1f} s MLflow + {part['cpu']['postgres']:.1f} s PostgreSQL",
            top=6,
        )
    return "\n".join(out)


def report_scaling(data: dict) -> str:
    rows = []
    for store in ("sqlite", "team server"):
        for s in data[store]["sizes"]:
            r = s["resolve"]
            lookup = r["find_reusable"] / c.DEFAULT_RUNS if r["find_reusable"] else float("nan")
            rows.append(
                [
                    store,
                    f"{s['size']:,}",
                    f"{lookup * 1000:.0f}",
                    r["find_reusable"],
                    r["run"],
                    c.median(s["warm_main"]),
                    c.median(s["warm_run"]),
                    len(r["run_samples"]),
                    len(s["warm_run"]),
                    s["fill_seconds"],
                ]
            )
    out = [
        c.table(
            [
                "store",
                "other runs",
                "one lookup ms",
                f"{c.DEFAULT_RUNS}x find_reusable s",
                "Pipeline.run s",
                "main 'in X s'",
                "warm mlflow run s",
                "n res",
                "n run",
                "fill s",
            ],
            rows,
            title="Cache scaling: the cached stages resolved with N other runs in the experiment (medians)",
        )
    ]
    ratio_rows = []
    for store in ("sqlite", "team server"):
        sizes = data[store]["sizes"]
        first, last = sizes[0], sizes[-1]
        for label, get in (
            ("cache lookup (find_reusable)", lambda s: s["resolve"]["find_reusable"]),
            ("Pipeline.run (in-process)", lambda s: s["resolve"]["run"]),
            ("warm mlflow run", lambda s: c.median(s["warm_run"])),
        ):
            a, b = get(first), get(last)
            ratio = b / a if a and b else float("nan")
            ratio_rows.append(
                [
                    store,
                    f"{label}: {last['size']:,} / {first['size']:,}",
                    f"{ratio:.2f}x",
                    f"<= {cache_scaling.GOAL}",
                    c.verdict(ratio, cache_scaling.GOAL),
                ]
            )
    out.append("")
    out.append(c.table(["store", "ratio", "value", "goal", "status"], ratio_rows))
    return "\n".join(out)


def report(data: dict) -> str:
    sections = {"ratio": report_ratio, "load": report_load, "scaling": report_scaling}
    return "\n\n".join(sections[part](data[part]) for part in PARTS if part in data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"comma-separated, among {', '.join(PARTS)} (default: all)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="ratio: repeats (default 3)")
    parser.add_argument(
        "--configs",
        default="project",
        help=f"ratio: server configurations, comma-separated, among {', '.join(CONFIGS)} (default: project)",
    )
    parser.add_argument(
        "--load-configs", default="project", help="load: server configurations, comma-separated (default: project)"
    )
    parser.add_argument("--clients", type=int, default=4, help="load: concurrent clients (default 4)")
    parser.add_argument("--pipelines", type=int, default=8, help="load: pipelines in all (default 8)")
    parser.add_argument(
        "--sizes", default="100,1000,10000", help="scaling: other runs, increasing (default 100,1000,10000)"
    )
    parser.add_argument("--resolve-repeats", type=int, default=5, help="scaling: timed in-process resolutions per size")
    parser.add_argument("--run-repeats", type=int, default=3, help="scaling: warm mlflow runs per size")
    parser.add_argument("--fill-workers", type=int, default=2, help="scaling: processes filling a store (default 2)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test, NOT a measurement: 1 repeat, 4 pipelines from 2 clients, sizes 100,1000, 2 resolutions, "
        "1 run",
    )
    parser.add_argument("--report", action="store_true", help="print the last results without measuring")
    args = parser.parse_args()
    if args.report:
        print(report(json.loads((c.RESULTS / "team_server.json").read_text())))
        return
    parts = [p for p in args.parts.split(",") if p]
    configs = [name for name in args.configs.split(",") if name]
    load_configs = [name for name in args.load_configs.split(",") if name]
    unknown = (set(parts) - set(PARTS)) | (set(configs + load_configs) - set(CONFIGS))
    if unknown:
        sys.exit(
            f"unknown parts or configurations {sorted(unknown)}; parts: {PARTS}, configurations: {sorted(CONFIGS)}"
        )
    sizes = [int(s) for s in args.sizes.split(",")]
    repeats, clients, pipelines = args.repeats, args.clients, args.pipelines
    resolve_repeats, run_repeats = args.resolve_repeats, args.run_repeats
    if args.quick:
        repeats, clients, pipelines, sizes, resolve_repeats, run_repeats = 1, 2, 4, [100, 1000], 2, 1
    data = {}
    server = TeamServer()
    try:
        if "ratio" in parts:
            data["ratio"] = measure_ratio(server, repeats, configs)
        if "load" in parts:
            data["load"] = measure_load(server, clients, pipelines, load_configs)
        if "scaling" in parts:
            data["scaling"] = measure_scaling(server, sizes, resolve_repeats, run_repeats, args.fill_workers)
    finally:
        server.close()
    text = report(data)
    c.save("team_server", data, text)
    print(text)


if __name__ == "__main__":
    main()
