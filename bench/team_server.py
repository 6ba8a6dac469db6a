"""Team server vs sqlite: the default pipeline cold and warm, side by side, and where the time goes.

Per repeat, in this order: a fresh sqlite store (created before timing) gets a cold `mlflow run`
(six stages launched, checked) then a warm one (six reused, checked); then, for each server
configuration, the team server of this benchmark (`python -m foodcast server start`, one
directory for the whole benchmark, restarted with that configuration outside the timings) gets
the same two runs as a non-admin user holding EDIT, in a fresh experiment (so "cold" means no
stage cached, as for sqlite). Ratios are per repeat (server / sqlite of the same repeat), reported
as the median with their range.

Where the time goes, for each server configuration:
* requests the server received during the cold and the warm run, by endpoint (its access log);
* CPU seconds the server used during each run: the MLflow server's processes, and PostgreSQL's;
* the latency of one authenticated GET (experiments/get) against /health, which checks no
  login, over a kept-alive connection: the per-request cost of the login check.

Server configurations (``--configs``): ``default`` is MLflow's own (4 workers, every request
hashes the password: auth cache off); ``cached`` is the project's (4 workers, a worker trusts a
login it checked for 60 s: auth_cache_ttl_seconds); ``cached-2w`` the same with 2 workers.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c  # noqa: E402

CONFIGS = {
    "default": {"workers": 4, "auth_cache_seconds": 0},
    "cached": {"workers": 4, "auth_cache_seconds": 60},
    "cached-2w": {"workers": 2, "auth_cache_seconds": 60},
}
USER, PASSWORD = "bench-editor", "bench-editor-pass-1"
ACCESS_LINE = re.compile(r'"(GET|POST|PUT|PATCH|DELETE) ([^ ?"]+)[^"]*" (\d{3})')


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
        return c.run([c.PYTHON, "-m", "foodcast", "server", *map(str, args), "--dir", str(self.dir)],
                     env=os.environ.copy(), cwd=self.base)

    def use(self, name: str) -> None:
        if self.config == name:
            return
        self.command("stop")
        options = CONFIGS[name]
        self.command("start", "--port", self.port, "--workers", options["workers"],
                     "--auth-cache-seconds", options["auth_cache_seconds"])
        self.config = name

    def create_user(self) -> None:
        from mlflow.server.auth.client import AuthServiceClient

        credentials = json.loads((self.dir / "credentials.json").read_text())
        os.environ["MLFLOW_TRACKING_USERNAME"] = credentials["admin_username"]
        os.environ["MLFLOW_TRACKING_PASSWORD"] = credentials["admin_password"]
        try:
            AuthServiceClient(self.uri).create_user(USER, PASSWORD)
            self.user_created = True
        finally:
            os.environ.pop("MLFLOW_TRACKING_USERNAME")
            os.environ.pop("MLFLOW_TRACKING_PASSWORD")

    def env(self, experiment: str) -> dict:
        # The user creates the experiment on its first run, and so holds MANAGE on it.
        return c.bench_env(self.base, extra={
            "MLFLOW_TRACKING_URI": self.uri, "MLFLOW_TRACKING_USERNAME": USER,
            "MLFLOW_TRACKING_PASSWORD": PASSWORD, "MLFLOW_EXPERIMENT_NAME": experiment})

    def log_offset(self) -> int:
        return (self.dir / "mlflow.log").stat().st_size

    def requests_between(self, start: int, end: int) -> dict:
        """Requests in the access log between two offsets, counted by endpoint."""
        with open(self.dir / "mlflow.log", "rb") as f:
            f.seek(start)
            text = f.read(end - start).decode(errors="replace")
        counts = collections.Counter()
        for method, path, _status in ACCESS_LINE.findall(text):
            counts[f"{method} {endpoint_family(path)}"] += 1
        return dict(counts)

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
            for name, url, auth in (("health", f"{self.uri}/health", None),
                                    ("authenticated GET", f"{self.uri}/api/2.0/mlflow/experiments/get?experiment_id=0",
                                     (USER, PASSWORD))):
                samples = []
                for _ in range(n):
                    started = time.perf_counter()
                    session.get(url, auth=auth, timeout=30).raise_for_status()
                    samples.append(time.perf_counter() - started)
                out[name] = c.median(samples)
        return out

    def close(self) -> None:
        try:
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
    ``expect_launched`` stages (6: cold, 0: warm)."""
    result = c.run(c.mlflow_run_cmd(), env, cwd)
    summary = c.main_summary(result.stdout)
    if not summary or summary[0] != expect_launched or summary[0] + summary[1] != 6:
        raise RuntimeError(f"expected {expect_launched} stages launched, got {summary}\n{result.stdout[-2000:]}")
    return result.seconds


def server_pair(server: TeamServer, env: dict) -> dict:
    """Cold then warm run against the server, with the requests and server CPU of each."""
    out = {}
    for phase, launched in (("cold", 6), ("warm", 0)):
        offset, cpu = server.log_offset(), server.cpu_seconds()
        seconds = pipeline(env, server.base, launched)
        time.sleep(0.5)  # the access log's last lines
        after = server.cpu_seconds()
        out[phase] = {"seconds": seconds, "requests": server.requests_between(offset, server.log_offset()),
                      "cpu": {k: after[k] - cpu[k] for k in cpu}}
    return out


def measure(repeats: int, configs: list[str]) -> dict:
    rows = []
    server = TeamServer()
    try:
        for i in range(repeats):
            row = {}
            with c.Store() as store:
                store.init()
                c.log(f"repeat {i + 1}/{repeats}: sqlite cold + warm")
                row["sqlite"] = {"cold": {"seconds": pipeline(store.env(), store.dir, 6)},
                                 "warm": {"seconds": pipeline(store.env(), store.dir, 0)}}
            for name in configs:
                server.use(name)
                if not server.user_created:
                    server.create_user()
                c.log(f"repeat {i + 1}/{repeats}: team server ({name}) cold + warm")
                row[name] = server_pair(server, server.env(f"bench-{name}-{i}-{time.time_ns()}"))
                row[name]["latency"] = server.latency()
            rows.append(row)
            c.log("  " + ", ".join(f"{k}: cold {v['cold']['seconds']:.1f} s, warm {v['warm']['seconds']:.1f} s"
                                   for k, v in row.items()))
    finally:
        server.close()
    return {"configs": {name: CONFIGS[name] for name in configs}, "repeats": rows}


def report(data: dict) -> str:
    rows = data["repeats"]
    configs = list(data["configs"])

    def seconds(store, phase):
        return [r[store][phase]["seconds"] for r in rows]

    table = [["sqlite", c.median(seconds("sqlite", "cold")), c.median(seconds("sqlite", "warm")), "", ""]]
    for name in configs:
        ratios = {phase: [a / b for a, b in zip(seconds(name, phase), seconds("sqlite", phase))]
                  for phase in ("cold", "warm")}
        table.append([f"team server ({name})", c.median(seconds(name, "cold")), c.median(seconds(name, "warm")),
                      *(f"{c.median(ratios[p]):.2f}x ({c.spread(ratios[p])})" for p in ("cold", "warm"))])
    out = [c.table(["store", "cold s", "warm s", "cold / sqlite", "warm / sqlite"], table,
                   title=f"Default pipeline, medians of {len(rows)} repeats measured side by side")]
    for name in configs:
        out.append("")
        out.append(f"team server ({name}: {data['configs'][name]})")
        health = c.median([r[name]["latency"]["health"] for r in rows])
        authed = c.median([r[name]["latency"]["authenticated GET"] for r in rows])
        out.append(f"  one GET over a kept-alive connection: /health {health * 1000:.1f} ms, "
                   f"experiments/get as the user {authed * 1000:.1f} ms")
        for phase in ("cold", "warm"):
            mlflow_cpu = c.median([r[name][phase]["cpu"]["mlflow"] for r in rows])
            pg_cpu = c.median([r[name][phase]["cpu"]["postgres"] for r in rows])
            requests = rows[0][name][phase]["requests"]
            out.append(f"  {phase}: {sum(requests.values())} requests (first repeat); server CPU (medians) "
                       f"{mlflow_cpu:.1f} s MLflow + {pg_cpu:.1f} s PostgreSQL")
            for endpoint, count in sorted(requests.items(), key=lambda kv: (-kv[1], kv[0]))[:10]:
                out.append(f"    {count:5d}  {endpoint}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="repeats (default 3)")
    parser.add_argument("--configs", default="default,cached",
                        help=f"server configurations, comma-separated, among {', '.join(CONFIGS)} (default: default,cached)")
    parser.add_argument("--report", action="store_true", help="print the last results without measuring")
    args = parser.parse_args()
    if args.report:
        data = json.loads((c.RESULTS / "team_server.json").read_text())
    else:
        configs = [name for name in args.configs.split(",") if name]
        unknown = set(configs) - set(CONFIGS)
        if unknown:
            sys.exit(f"unknown configurations {sorted(unknown)}; choose among {sorted(CONFIGS)}")
        data = measure(args.repeats, configs)
    text = report(data)
    if not args.report:
        c.save("team_server", data, text)
    print(text)


if __name__ == "__main__":
    main()
