"""A local team tracking server: a PostgreSQL cluster and ``mlflow server`` with logins, in one directory.

``start`` initialises (once) a PostgreSQL cluster in ``DIR/pgdata`` listening on loopback,
creates the role ``mlflow`` and its databases ``mlflow`` (runs, models) and ``mlflow_auth``
(users and permissions of the basic-auth app), then starts

    mlflow server --app-name basic-auth --artifacts-destination DIR/artifacts --host 127.0.0.1

with the tracking store in PostgreSQL. Artifacts are proxied: clients upload and download them
through the server and never see ``DIR/artifacts``. ``stop`` stops what ``start`` started;
``status`` tells what is running. Everything lives in ``DIR``:

    pgdata/            the PostgreSQL cluster (owned by the user PostgreSQL runs as)
    postgresql.log     PostgreSQL's log
    mlflow.log         the MLflow server's log (its workers included)
    mlflow.pid         "<pid> <start time>" of the MLflow server, the leader of its process group
    artifacts/         the artifact store behind the proxy
    credentials.json   0600: admin login, database passwords, Flask secret, ports
    basic_auth.ini     0600: the auth app's configuration (MLFLOW_AUTH_CONFIG_PATH)
    .initialised       written once the cluster, role and databases exist
    .lock              held by start and stop, so two of them never interleave

PostgreSQL refuses to run as root: when this runs as root, ``initdb``, ``pg_ctl`` and the
server run as the ``postgres`` user (``runuser -u postgres --``), which owns ``pgdata``.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import importlib.util
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foodcast.errors import FoodcastError

HOST = "127.0.0.1"
DEFAULT_PORT = 5731  # not 5000 (mlflow ui) nor 5001 (mlflow models serve in the docs)
# One uvicorn worker: with more, uvicorn binds the listening socket itself without telling the
# kernel it is TCP (proto 0), so asyncio leaves Nagle's algorithm on for every connection, and
# each request after the first on a kept-alive connection waits ~40 ms for the client's delayed
# ACK (uvicorn issue #3149): 44 ms instead of 1.6 ms for /health, a cold pipeline 1.3x and a
# warm one 1.6x slower (bench/team_server.py). One worker serves requests on threads; its CPU
# use (a few seconds per cold pipeline with the login cache) leaves room for many clients.
DEFAULT_WORKERS = 1
# Seconds a worker trusts a login it checked: MLflow hashes passwords with PBKDF2 (werkzeug:
# 1,000,000 rounds), a few hundred ms of CPU on every request when not cached. The price: a
# password changed or a user deleted through another worker is still accepted by this one for
# up to this long (grants are not cached; they apply at once).
DEFAULT_AUTH_CACHE_SECONDS = 60
PG_OS_USER = "postgres"  # the account PostgreSQL runs as when we are root
PG_SUPERUSER = "postgres"
DB_ROLE = "mlflow"
TRACKING_DB = "mlflow"
AUTH_DB = "mlflow_auth"
STARTUP_TIMEOUT = 180.0  # first start: the schema migrations of both databases
STOP_TIMEOUT = 20.0
# Set in the environment of the MLflow server, so that `stop` also finds processes of ours
# whose pid file was lost (a start killed at the wrong moment).
MARKER_VARIABLE = "FOODCAST_TEAMSERVER_DIR"


class Layout:
    """The paths of one team server directory (see the module's docstring)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self.pgdata = self.root / "pgdata"
        self.pg_log = self.root / "postgresql.log"
        self.mlflow_log = self.root / "mlflow.log"
        self.mlflow_pid = self.root / "mlflow.pid"
        self.artifacts = self.root / "artifacts"
        self.credentials = self.root / "credentials.json"
        self.auth_config = self.root / "basic_auth.ini"
        self.initialised = self.root / ".initialised"
        self.lock = self.root / ".lock"


@dataclass(frozen=True)
class Status:
    """What runs in a team server directory."""

    postgres_running: bool
    mlflow_pid: int | None
    answering: bool
    tracking_uri: str | None
    admin_username: str | None


# ---------------------------------------------------------------- PostgreSQL binaries and user


def postgres_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: ``$FOODCAST_PG_BIN``, else the newest
    Debian ``/usr/lib/postgresql/<version>/bin``, else the one on ``PATH``."""
    configured = os.environ.get("FOODCAST_PG_BIN")
    candidates = [Path(configured)] if configured else []
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: _version_key(Path(p).parent.name))
    candidates += [Path(p) for p in reversed(debian)]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    raise FoodcastError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install them with "
        "`apt-get update && apt-get install -y postgresql` (or set FOODCAST_PG_BIN to their directory)"
    )


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in name.split("."))


def _running_as_root() -> bool:
    return os.geteuid() == 0


def _as_pg_user(command: list[str]) -> list[str]:
    """``command`` run as the account PostgreSQL runs as (itself when we are not root)."""
    if not _running_as_root():
        return command
    if shutil.which("runuser") is None:
        raise FoodcastError("running as root needs `runuser` (util-linux) to start PostgreSQL as user postgres")
    return ["runuser", "-u", PG_OS_USER, "--", *command]


def _give_to_pg_user(path: Path) -> None:
    if _running_as_root():
        shutil.chown(path, user=PG_OS_USER, group=PG_OS_USER)


def _check_server_dependencies() -> None:
    missing = [name for name in ("psycopg", "flask_wtf") if not _importable(name)]
    if missing:
        raise FoodcastError(
            f"the team server needs {', '.join(missing)}: install the server extra, `pip install -e '.[server]'`"
        )


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


# ---------------------------------------------------------------- small helpers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (created 0600, never wider)."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except FileNotFoundError:
        return "(no log)"
    return lines[-1] if lines else "(empty log)"


def _run(command: list[str], what: str, log: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        reason = detail[-1] if detail else f"exit status {proc.returncode}"
        where = f" (see {log})" if log else ""
        raise FoodcastError(f"{what} failed: {reason}{where}")
    return proc


def _wait_for(done: Callable[[], bool], timeout: float = STOP_TIMEOUT) -> None:
    """Poll ``done()`` until it holds or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        time.sleep(0.1)


@contextlib.contextmanager
def _locked(layout: Layout) -> Iterator[None]:
    """Hold ``DIR/.lock``; the kernel releases it when the process ends, even when killed."""
    try:
        handle = open(layout.lock, "a")  # noqa: SIM115 - closed below; the open alone may fail
    except OSError as exc:
        raise FoodcastError(f"cannot use {layout.root} as the server's directory: {exc.strerror}") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _load_credentials(layout: Layout) -> dict[str, Any]:
    try:
        credentials = json.loads(layout.credentials.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:  # unreadable, not JSON, not text
        raise FoodcastError(
            f"cannot read {layout.credentials}: {exc}; restore it (it holds the admin and database "
            "passwords) or, for a server whose data you can lose, remove its directory"
        ) from None
    if not isinstance(credentials, dict):
        raise FoodcastError(f"{layout.credentials} holds no JSON object; restore it")
    return credentials


def _save_credentials(layout: Layout, credentials: dict[str, Any]) -> None:
    _write_private(layout.credentials, json.dumps(credentials, indent=2, sort_keys=True) + "\n")


def _db_uri(credentials: dict[str, Any], database: str) -> str:
    # postgresql+psycopg: the driver the `server` extra installs (psycopg 3).
    return (
        f"postgresql+psycopg://{DB_ROLE}:{credentials['db_password']}@{HOST}:{credentials['postgres_port']}/{database}"
    )


# ---------------------------------------------------------------- PostgreSQL


def _pg_ctl(layout: Layout, *args: str) -> list[str]:
    return _as_pg_user([str(postgres_bin_dir() / "pg_ctl"), "-D", str(layout.pgdata), *args])


def postgres_running(layout: Layout) -> bool:
    """Whether the cluster in ``DIR/pgdata`` has a live server (``pg_ctl status``)."""
    if not (layout.pgdata / "PG_VERSION").is_file():
        return False
    proc = subprocess.run(_pg_ctl(layout, "status"), capture_output=True, text=True, stdin=subprocess.DEVNULL)
    return proc.returncode == 0


def _start_postgres(layout: Layout) -> bool:
    """Start the cluster unless it runs; True when this call started it."""
    if postgres_running(layout):
        return False
    if not layout.pg_log.exists():
        layout.pg_log.touch()
        _give_to_pg_user(layout.pg_log)
    port = _load_credentials(layout).get("postgres_port")
    if port and _port_in_use(port):
        raise FoodcastError(f"PostgreSQL port {port} of {layout.root} is taken by another program; stop it and retry")
    _run(_pg_ctl(layout, "-l", str(layout.pg_log), "-w", "-t", "60", "start"), "starting PostgreSQL", layout.pg_log)
    return True


def _stop_postgres(layout: Layout, mode: str = "fast") -> bool:
    if not postgres_running(layout):
        return False
    _run(_pg_ctl(layout, "-m", mode, "-w", "-t", "60", "stop"), "stopping PostgreSQL", layout.pg_log)
    return True


def _check_reachable_by_pg_user(layout: Layout) -> None:
    if not _running_as_root():
        return
    probe = subprocess.run(_as_pg_user(["test", "-w", str(layout.pgdata)]), stdin=subprocess.DEVNULL)
    if probe.returncode != 0:
        raise FoodcastError(
            f"user {PG_OS_USER} cannot reach {layout.pgdata}: a parent directory is not searchable "
            f"by it; chmod o+x the parents or choose a --dir elsewhere (e.g. under /var/tmp)"
        )


def _initialise(layout: Layout) -> None:
    """Create the cluster, the ``mlflow`` role and its two databases, and the credentials.

    Run when ``.initialised`` is missing: what a killed earlier attempt left (a cluster that may
    even be running) is discarded, since nothing was ever stored in it.
    """
    _discard_cluster(layout)
    layout.pgdata.mkdir(mode=0o700)
    _give_to_pg_user(layout.pgdata)
    _check_reachable_by_pg_user(layout)

    credentials = _load_credentials(layout)
    credentials.setdefault("admin_username", os.environ.get("MLFLOW_AUTH_ADMIN_USERNAME") or "admin")
    credentials.setdefault("admin_password", os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD") or secrets.token_urlsafe(18))
    credentials.setdefault("superuser_password", secrets.token_urlsafe(24))
    credentials.setdefault("db_password", secrets.token_urlsafe(24))
    credentials.setdefault("flask_secret_key", secrets.token_hex(32))
    credentials["postgres_port"] = _free_port()
    _save_credentials(layout, credentials)

    pwfile = layout.root / ".pgpass.tmp"
    _write_private(pwfile, credentials["superuser_password"] + "\n")
    _give_to_pg_user(pwfile)
    try:
        _run(
            _as_pg_user(
                [
                    str(postgres_bin_dir() / "initdb"),
                    "-D",
                    str(layout.pgdata),
                    "-U",
                    PG_SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-local=peer",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            "initdb",
        )
    finally:
        pwfile.unlink(missing_ok=True)
    # Loopback TCP only: no unix socket, so no socket path to fit in 107 bytes. Each server
    # worker holds pools on two databases, hence more connections than the default 100.
    with open(layout.pgdata / "postgresql.conf", "a", encoding="utf-8") as conf:
        conf.write(
            "\n# foodcast team server\n"
            f"listen_addresses = '{HOST}'\n"
            f"port = {credentials['postgres_port']}\n"
            "unix_socket_directories = ''\n"
            "max_connections = 300\n"
        )
    _start_postgres(layout)
    _create_role_and_databases(credentials)
    layout.initialised.write_text("")


def _discard_cluster(layout: Layout) -> None:
    """Remove an unfinished cluster, first killing its server if one runs.

    Not through ``pg_ctl stop``, which refuses to stop the single-user backend initdb runs:
    the postmaster.pid file names either (negated for single-user), and SIGQUIT ends both at once.
    """
    try:
        pid = abs(int((layout.pgdata / "postmaster.pid").read_text().split()[0]))
    except (FileNotFoundError, IndexError, ValueError):
        pid = 0
    if pid and _state(pid) not in (None, "Z"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)
        _wait_for(lambda: _state(pid) in (None, "Z"))
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(layout.pgdata, ignore_errors=True)


def _create_role_and_databases(credentials: dict[str, Any]) -> None:
    # The server extra's driver: imported here so that a machine without the extra gets
    # _check_server_dependencies' one line rather than an ImportError.
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    with psycopg.connect(
        host=HOST,
        port=credentials["postgres_port"],
        user=PG_SUPERUSER,
        password=credentials["superuser_password"],
        dbname="postgres",
        autocommit=True,
        connect_timeout=10,
    ) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(DB_ROLE), sql.Literal(credentials["db_password"])
            )
        )
        for database in (TRACKING_DB, AUTH_DB):
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(database), sql.Identifier(DB_ROLE))
            )


# ---------------------------------------------------------------- the MLflow server


def _write_auth_config(layout: Layout, credentials: dict[str, Any], auth_cache_seconds: int) -> None:
    _write_private(
        layout.auth_config,
        (
            "[mlflow]\n"
            # What a user gets on an experiment nobody granted them anything on: they can read every
            # run and model, and write only where an admin granted EDIT (or MANAGE).
            "default_permission = READ\n"
            # Users and grants live in PostgreSQL next to the runs: one database server to back up,
            # and every worker (or server replica) sees the same users at once.
            f"database_uri = {_db_uri(credentials, AUTH_DB)}\n"
            f"admin_username = {credentials['admin_username']}\n"
            # The password is handed over in MLFLOW_AUTH_ADMIN_PASSWORD, read on the first start only.
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            f"auth_cache_ttl_seconds = {auth_cache_seconds}\n"
        ),
    )


def _process_start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat: tells a process from a later one given the same pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _record_own_pid(pid_file: str) -> None:
    """Run in the MLflow server's process between fork and exec: it records its own pid, so
    no instant exists where the server runs and the file does not name it."""
    pid = os.getpid()
    tmp = pid_file + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(f"{pid} {_process_start_time(pid)}\n")
    os.replace(tmp, pid_file)


def mlflow_server_pid(layout: Layout) -> int | None:
    """The pid of the running MLflow server of ``DIR`` (the leader of its process group), or
    None: none recorded, or the recorded process has ended (a killed server: its orphaned
    workers, if any, are :func:`stray_processes`), or the pid is now another program's.
    """
    try:
        pid_text, start_time = layout.mlflow_pid.read_text().split()
        pid = int(pid_text)
    except (FileNotFoundError, ValueError):
        return None
    if _state(pid) in (None, "Z") or _process_start_time(pid) != start_time:
        return None
    return pid


def stray_processes(layout: Layout) -> list[int]:
    """Processes of an MLflow server of ``DIR`` that is not running (its workers, orphaned when
    it was killed): they may still hold its port; ``stop`` ends them."""
    if mlflow_server_pid(layout) is not None:
        return []
    return [pid for pid in _marked_processes(layout) if _state(pid) not in (None, "Z")]


def _marked_processes(layout: Layout) -> list[int]:
    """Processes whose environment names this directory: every process of the MLflow server."""
    marker = f"{MARKER_VARIABLE}={layout.root}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def _stop_mlflow(layout: Layout) -> bool:
    """Stop the MLflow server and its workers: SIGTERM, then SIGKILL what is left."""
    stopped = False
    pgid = mlflow_server_pid(layout)
    if pgid is not None:
        stopped = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        _wait_for(lambda: not _group_alive(pgid))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    for pid in _marked_processes(layout):  # strays, e.g. from a start killed mid-way
        stopped = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: not _marked_processes(layout))
    layout.mlflow_pid.unlink(missing_ok=True)
    return stopped


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # Zombies of the group still count for killpg; they are gone once the group has no live member.
    return any(_state(pid) not in (None, "Z") for pid in _group_members(pgid))


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _request(url: str, auth: tuple[str, str] | None = None, timeout: float = 5.0) -> int:
    """HTTP status of a GET (0 when nothing answers)."""
    request = urllib.request.Request(url)
    if auth:
        token = b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            code: int = response.status
            return code
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def _start_mlflow(
    layout: Layout, credentials: dict[str, Any], port: int, workers: int, auth_cache_seconds: int
) -> subprocess.Popen[bytes]:
    _write_auth_config(layout, credentials, auth_cache_seconds)
    layout.artifacts.mkdir(exist_ok=True)
    env = dict(os.environ)
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        env.pop(name, None)  # the server's own clients must not aim at another server
    env.update(
        {
            MARKER_VARIABLE: str(layout.root),
            # In the environment rather than on the command line, where `ps` would show the password.
            "MLFLOW_BACKEND_STORE_URI": _db_uri(credentials, TRACKING_DB),
            "MLFLOW_AUTH_CONFIG_PATH": str(layout.auth_config),
            # Read once, when the admin user is created on the first start (see basic_auth.ini).
            "MLFLOW_AUTH_ADMIN_PASSWORD": credentials["admin_password"],
            "MLFLOW_FLASK_SERVER_SECRET_KEY": credentials["flask_secret_key"],
            # The job runner serves GenAI scorers, which this project has none of: one process fewer.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
    )
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--app-name",
        "basic-auth",
        "--artifacts-destination",
        str(layout.artifacts),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with open(layout.mlflow_log, "ab") as log:
        return subprocess.Popen(
            command,
            cwd=layout.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            # Its own session: a Ctrl-C or kill of `start` leaves the server (and its workers,
            # in the same group) running, and `stop` ends the whole group at once.
            start_new_session=True,
            preexec_fn=lambda: _record_own_pid(str(layout.mlflow_pid)),
        )


def _wait_until_answering(
    layout: Layout, credentials: dict[str, Any], port: int, proc: subprocess.Popen[bytes] | None
) -> None:
    uri = f"http://{HOST}:{port}"
    login = (credentials["admin_username"], credentials["admin_password"])
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise FoodcastError(
                f"mlflow server exited with status {proc.returncode}: {_last_line(layout.mlflow_log)} "
                f"(see {layout.mlflow_log})"
            )
        if proc is None and mlflow_server_pid(layout) is None:
            raise FoodcastError(f"mlflow server of {layout.root} stopped (see {layout.mlflow_log})")
        if _request(f"{uri}/health") == 200:
            status = _request(f"{uri}/api/2.0/mlflow/users/current", auth=login)
            if status == 200:
                return
            if status == 401:
                raise FoodcastError(
                    f"the server at {uri} refuses the admin login stored in {layout.credentials} "
                    "(was the admin password changed? update that file)"
                )
        time.sleep(0.5)
    raise FoodcastError(
        f"mlflow server did not answer on {uri} within {STARTUP_TIMEOUT:.0f} s (see {layout.mlflow_log})"
    )


# ---------------------------------------------------------------- the commands


def start(
    directory: str | os.PathLike[str],
    port: int | None = None,
    workers: int | None = None,
    auth_cache_seconds: int | None = None,
) -> tuple[Status, bool]:
    """Start (initialising on first use) the team server of ``directory``.

    A start that fails leaves nothing of its own running: the MLflow server it started is
    stopped, and PostgreSQL too unless it was running before.

    Parameters
    ----------
    directory : path
        The server's directory; created if missing.
    port : int, optional
        The MLflow server's port on 127.0.0.1 (default: the port of the last start, else 5731).
    workers : int, optional
        Worker processes of the MLflow server (default ``DEFAULT_WORKERS``).
    auth_cache_seconds : int, optional
        How long a worker trusts a login it checked (0: hash the password on every request;
        default ``DEFAULT_AUTH_CACHE_SECONDS``).

    Returns
    -------
    (Status, bool)
        What runs now, and whether it was already running before this call (with the options
        asked for: a server running with others is an error).

    Raises
    ------
    FoodcastError
        PostgreSQL binaries or the server extra missing, a directory it cannot create or use,
        unreadable credentials, port taken, the server already running with other options, a
        part failing to start.
    """
    layout = Layout(directory)
    postgres_bin_dir()  # first, so that a machine without PostgreSQL is told so at once
    _check_server_dependencies()
    # Searchable by the postgres user when we are root; the files holding secrets are 0600.
    try:
        layout.root.mkdir(parents=True, exist_ok=True, mode=0o711 if _running_as_root() else 0o700)
    except OSError as exc:
        raise FoodcastError(f"cannot create the server's directory {layout.root}: {exc.strerror}") from None
    with _locked(layout):
        _load_credentials(layout)  # a corrupt file: said before anything starts
        postgres_before = layout.initialised.exists() and postgres_running(layout)
        try:
            already = _start_locked(layout, port, workers, auth_cache_seconds)
        except BaseException:
            if not postgres_before:  # refused, failed or interrupted: leave nothing of ours running
                with contextlib.suppress(FoodcastError):
                    _stop_postgres(layout)
            raise
    return status(directory), already


def _start_locked(layout: Layout, port: int | None, workers: int | None, auth_cache_seconds: int | None) -> bool:
    """:func:`start` under the directory's lock; whether the server was running already."""
    if not layout.initialised.exists():
        _initialise(layout)
    credentials = _load_credentials(layout)
    _start_postgres(layout)
    pid = mlflow_server_pid(layout)
    if pid is not None:
        running = {
            "--port": credentials.get("mlflow_port"),
            "--workers": credentials.get("mlflow_workers"),
            "--auth-cache-seconds": credentials.get("auth_cache_seconds"),
        }
        asked = {"--port": port, "--workers": workers, "--auth-cache-seconds": auth_cache_seconds}
        other = [f"{name} {asked[name]}" for name in asked if asked[name] is not None and asked[name] != running[name]]
        if other:
            now = ", ".join(f"{name} {value}" for name, value in running.items() if value is not None)
            raise FoodcastError(
                f"the team server of {layout.root} already runs (pid {pid}, {now}); "
                f"to start it with {', '.join(other)}, stop it first (foodcast server stop --dir {layout.root})"
            )
        _wait_until_answering(layout, credentials, credentials.get("mlflow_port", port or DEFAULT_PORT), None)
        return True
    port = port or credentials.get("mlflow_port") or DEFAULT_PORT
    workers = workers or DEFAULT_WORKERS
    auth_cache_seconds = DEFAULT_AUTH_CACHE_SECONDS if auth_cache_seconds is None else auth_cache_seconds
    if _marked_processes(layout):
        _stop_mlflow(layout)  # workers orphaned by a killed server: they hold the port
    if _port_in_use(port):
        raise FoodcastError(f"port {port} on {HOST} is in use by another program; choose another with --port")
    credentials.update(mlflow_port=port, mlflow_workers=workers, auth_cache_seconds=auth_cache_seconds)
    _save_credentials(layout, credentials)
    proc = _start_mlflow(layout, credentials, port, workers, auth_cache_seconds)
    try:
        _wait_until_answering(layout, credentials, port, proc)
    except BaseException:
        _stop_mlflow(layout)
        raise
    return False


def stop(directory: str | os.PathLike[str]) -> list[str]:
    """Stop the MLflow server (with its workers), then PostgreSQL; the names of what was stopped.

    Idempotent: a directory with nothing running (or no directory) gives an empty list.
    """
    layout = Layout(directory)
    if not layout.root.is_dir():
        return []
    with _locked(layout):
        stopped = []
        if _stop_mlflow(layout):
            stopped.append("mlflow server")
        if (layout.pgdata / "PG_VERSION").is_file() and _stop_postgres(layout):
            stopped.append("PostgreSQL")
    return stopped


def status(directory: str | os.PathLike[str]) -> Status:
    """What runs in ``directory`` (reads only; takes no lock)."""
    layout = Layout(directory)
    credentials = _load_credentials(layout)
    running_pg = layout.root.is_dir() and postgres_running(layout)
    pid = mlflow_server_pid(layout) if layout.root.is_dir() else None
    port = credentials.get("mlflow_port")
    uri = f"http://{HOST}:{port}" if port else None
    answering = bool(pid and uri and _request(f"{uri}/health", timeout=2.0) == 200)
    return Status(running_pg, pid, answering, uri, credentials.get("admin_username"))


def tracking_store_uri(directory: str | os.PathLike[str]) -> str:
    """The server's backend store (``postgresql+psycopg://…/mlflow``, password included), for
    the administration commands that work on the database itself, e.g. ``mlflow gc
    --backend-store-uri`` or ``mlflow db upgrade``."""
    credentials = _load_credentials(Layout(directory))
    if "db_password" not in credentials:
        raise FoodcastError(f"no team server credentials in {directory}")
    return _db_uri(credentials, TRACKING_DB)


def admin_login(directory: str | os.PathLike[str]) -> tuple[str, str]:
    """``(username, password)`` of the admin user, as stored in ``DIR/credentials.json``."""
    credentials = _load_credentials(Layout(directory))
    if "admin_password" not in credentials:
        raise FoodcastError(f"no team server credentials in {directory}")
    return credentials["admin_username"], credentials["admin_password"]
