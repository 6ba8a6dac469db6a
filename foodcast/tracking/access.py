"""Up-front check that the tracking server answers, accepts the login and lets the user write runs.

Meant to run before the pipeline launches anything: a server that is down, a wrong password or
a READ-only grant then ends the command within seconds with one line, instead of MLflow's
client retrying for minutes or a stage failing half-way. It only reads (GET requests), so it
writes nothing to the store. A local store (sqlite, file, a database URI) is opened instead,
created when new (:func:`open_tracking_store`); and a request the store fails is told in one
line (:func:`store_failure`).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import mlflow
import requests
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.credentials import get_default_host_creds
from mlflow.utils.rest_utils import MlflowHostCreds, http_request
from sqlalchemy.exc import SQLAlchemyError

from foodcast.errors import FoodcastError
from foodcast.tracking.sqlite_store import database_path

# The whole check ends within this many seconds, however the server behaves. MLflow's own
# client waits minutes (MLFLOW_HTTP_REQUEST_MAX_RETRIES=7 with exponential backoff,
# MLFLOW_HTTP_REQUEST_TIMEOUT=120 s per attempt); this check passes its own bounds to
# mlflow.utils.rest_utils.http_request, for its requests only: no retry, and connect and read
# timeouts that together never exceed what is left of the budget.
CHECK_BUDGET = 12.0
CONNECT_TIMEOUT = 3.0

CURRENT_USER = "/api/2.0/mlflow/users/current"
GET_EXPERIMENT = "/api/2.0/mlflow/experiments/get"
GET_EXPERIMENT_BY_NAME = "/api/2.0/mlflow/experiments/get-by-name"
GET_RUN = "/api/2.0/mlflow/runs/get"
USER_PERMISSION = "/api/3.0/mlflow/users/permissions/get"

# Permissions of MLflow's basic-auth app that allow creating and updating runs
# (``can_update`` in mlflow.server.auth.permissions, not imported: that package needs Flask).
WRITE_PERMISSIONS = ("EDIT", "MANAGE")
NEEDED = "EDIT"


def check_tracking_access(experiment_id_or_name: str | None = None, tracking_uri: str | None = None) -> None:
    """Refuse, in one line and within seconds, a tracking server the pipeline cannot write to.

    Parameters
    ----------
    experiment_id_or_name : str, optional
        The experiment the pipeline will write to: an id, or a name. By default the one MLflow
        will use: the experiment of ``MLFLOW_RUN_ID`` (set by ``mlflow run``), else
        ``MLFLOW_EXPERIMENT_ID``, else ``MLFLOW_EXPERIMENT_NAME``, else the Default experiment.
    tracking_uri : str, optional
        Default: ``mlflow.get_tracking_uri()``.

    Raises
    ------
    FoodcastError
        The server does not answer within ~12 s; it refuses the login (MLFLOW_TRACKING_USERNAME /
        MLFLOW_TRACKING_PASSWORD); or the user may read the experiment but not write runs to it
        (the message names the user's permission and the one needed).

    Notes
    -----
    Against a server without MLflow's basic-auth app there are no users to check, only that it
    answers. An experiment named but not created yet is left to the pipeline, which creates it
    and so owns it. Administrators may write everywhere.
    """
    uri = tracking_uri or mlflow.get_tracking_uri()
    if urlparse(uri).scheme not in ("http", "https"):
        return
    probe = _Probe(get_default_host_creds(uri))
    user = probe.current_user()
    if user is None or user.get("is_admin"):
        return
    experiment = probe.experiment(experiment_id_or_name)
    if experiment is None:
        return
    permission = probe.permission(user["username"], experiment["experiment_id"])
    if permission is not None and permission not in WRITE_PERMISSIONS:
        raise FoodcastError(
            f"user {user['username']} has {permission} on experiment '{experiment['name']}' "
            f"(id {experiment['experiment_id']}) of {uri}; launching the pipeline needs {NEEDED} "
            "(an admin of the server can grant it)"
        )


class _Probe:
    """GET requests to one server, all within one time budget; each status turned into a verdict."""

    def __init__(self, creds: MlflowHostCreds) -> None:
        self.creds = creds
        self.deadline = time.monotonic() + CHECK_BUDGET

    def get(self, endpoint: str, params: dict[str, str]) -> requests.Response:
        """The response (any status), or FoodcastError when nothing answers in time."""
        left = self.deadline - time.monotonic()
        if left < 1.0:
            raise self._unreachable(f"no answer within {CHECK_BUDGET:.0f} s")
        connect = min(CONNECT_TIMEOUT, left / 2)
        try:
            response: requests.Response = http_request(
                self.creds,
                endpoint,
                "GET",
                params=params,
                max_retries=0,
                backoff_factor=0,
                backoff_jitter=0,
                timeout=(connect, left - connect),
                raise_on_status=False,
            )
        except MlflowException as exc:
            waited = time.monotonic() - (self.deadline - CHECK_BUDGET)
            raise self._unreachable(_network_reason(exc, waited)) from None
        return response

    def _unreachable(self, reason: str) -> FoodcastError:
        return FoodcastError(
            f"tracking server {self.creds.host} is unreachable ({reason}); "
            "check MLFLOW_TRACKING_URI and that the server runs"
        )

    def current_user(self) -> dict[str, Any] | None:
        """``{"username", "is_admin"}`` of the login, or None on a server without logins."""
        response = self.get(CURRENT_USER, {})
        if response.status_code == 200:
            user: dict[str, Any] = response.json()["user"]
            return user
        if response.status_code == 401:
            username = self.creds.username
            if not username:
                raise FoodcastError(
                    f"tracking server {self.creds.host} needs a login: set MLFLOW_TRACKING_USERNAME "
                    "and MLFLOW_TRACKING_PASSWORD"
                )
            raise FoodcastError(
                f"tracking server {self.creds.host} refused the login of user {username}: wrong "
                "MLFLOW_TRACKING_USERNAME or MLFLOW_TRACKING_PASSWORD"
            )
        if response.status_code == 404:  # no basic-auth app: anyone may write
            return None
        raise _unexpected(self.creds.host, CURRENT_USER, response)

    def experiment(self, experiment_id_or_name: str | None) -> dict[str, Any] | None:
        """The experiment the pipeline will write to, or None when it does not exist yet."""
        ident = experiment_id_or_name
        if ident is None:
            run_id = os.environ.get("MLFLOW_RUN_ID")
            if run_id:
                response = self.get(GET_RUN, {"run_id": run_id})
                if response.status_code == 200:
                    ident = response.json()["run"]["info"]["experiment_id"]
        if ident is None:
            ident = os.environ.get("MLFLOW_EXPERIMENT_ID") or os.environ.get("MLFLOW_EXPERIMENT_NAME") or "0"
        ident = str(ident)
        if ident.isdigit():
            response = self.get(GET_EXPERIMENT, {"experiment_id": ident})
            label = f"experiment id {ident}"
        else:
            response = self.get(GET_EXPERIMENT_BY_NAME, {"experiment_name": ident})
            label = f"experiment '{ident}'"
        if response.status_code == 200:
            experiment: dict[str, Any] = response.json()["experiment"]
            return experiment
        if response.status_code == 404:
            if ident.isdigit():
                raise FoodcastError(f"{label} does not exist on {self.creds.host}")
            return None
        if response.status_code == 403:
            raise FoodcastError(
                f"user {self.creds.username} may not read {label} of {self.creds.host}; launching "
                f"the pipeline needs {NEEDED} on it (an admin of the server can grant it)"
            )
        raise _unexpected(self.creds.host, label, response)

    def permission(self, username: str, experiment_id: str) -> str | None:
        """The user's effective permission on the experiment, as the server resolves it for a
        real request; None when the server has no such endpoint (then it alone decides)."""
        response = self.get(
            USER_PERMISSION,
            {
                "username": username,
                "resource_type": "experiment",
                "resource_id": experiment_id,
            },
        )
        if response.status_code == 200:
            permission: str = response.json()["permission"]
            return permission
        if response.status_code == 404:
            return None
        raise _unexpected(self.creds.host, USER_PERMISSION, response)


def _network_reason(exc: Exception, waited: float) -> str:
    """A few words from requests' long message: the OS's reason, or the wait."""
    text = str(exc)
    if "timed out" in text.lower():
        return f"no answer within {waited:.0f} s"
    errno = re.search(r"\[Errno -?\d+\] ([^'\")(]+)", text)
    return errno.group(1).strip().lower() if errno else "no connection"


def _unexpected(host: str, what: str, response: requests.Response) -> FoodcastError:
    body = " ".join(response.text.split())[:200]
    return FoodcastError(f"tracking server {host} answered HTTP {response.status_code} about {what}: {body}")


def open_tracking_store(tracking_uri: str | None = None) -> None:
    """Open a local tracking store (sqlite, a database URI, a directory), creating it when new,
    and read from it once: one that cannot be opened or created is refused in one line before
    anything is written. A tracking server is left to :func:`check_tracking_access`.

    Raises
    ------
    FoodcastError
        Naming the store and why (a directory that cannot be created, a file that is not a
        database...).
    """
    uri = tracking_uri or mlflow.get_tracking_uri()
    if urlparse(uri).scheme in ("http", "https"):
        return
    try:
        path = database_path(uri)
        if path is not None and not path.startswith("file:"):  # (a file: URI's options are sqlite's)
            # Opened here first: MLflow retries a database it cannot open for ~100 s (meant
            # for a database server that is starting), where a file fails at once.
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            with contextlib.closing(sqlite3.connect(path)) as database:
                database.execute("PRAGMA schema_version")
        MlflowClient(uri).search_experiments(max_results=1)
    except sqlite3.Error as exc:
        raise FoodcastError(f"the tracking store {uri} cannot be opened or created ({exc})") from None
    except OSError as exc:
        reason = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc)
        raise FoodcastError(f"the tracking store {uri} cannot be opened or created ({reason})") from None
    except (MlflowException, SQLAlchemyError) as exc:
        reason = _database_reason(str(exc)) or _first_line(exc)
        raise FoodcastError(f"the tracking store {uri} cannot be opened or created ({reason})") from None


# A database driver's error as SQLAlchemy words it: "(sqlite3.OperationalError) <message>".
_DRIVER_ERROR = re.compile(r"\((?:sqlite3|psycopg2?|pymysql|MySQLdb|pyodbc)[\w.]*\) ([^\n]+)")


def _database_reason(text: str) -> str | None:
    """The database's own message in an error SQLAlchemy raised (behind MLflow's words, such as
    an "autoflush"), or ``None``; a database opened read-only is said so."""
    match = _DRIVER_ERROR.search(text)
    if match is None:
        return None
    message = match.group(1).strip()
    if "readonly database" in message:
        return f"read-only database ({message})"
    return message


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def store_failure(exc: Exception) -> str:
    """One line for a request the tracking store failed (an ``MlflowException``): for an HTTP
    request, which endpoint and the underlying cause; for a database, the database's own
    message; else MLflow's message, first line, cut to a readable length."""
    text = _database_reason(str(exc)) or _first_line(exc)
    request = re.match(r"API request to (\S+) failed", text)
    if request is not None:
        cause = re.search(r"Caused by \w+\((['\"])(.+?)\1\)", text)
        endpoint = urlparse(request.group(1)).path
        text = f"{endpoint} failed" + (f" ({cause.group(2)})" if cause else "")
    if len(text) > 300:
        text = text[:297] + "..."
    return f"the tracking store failed: {text}"
