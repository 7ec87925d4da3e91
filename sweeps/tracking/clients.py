"""MLflow tracking URIs and clients: the default store, reachability, the sweep's experiment."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any

from sweeps.store.secrets import with_secret
from sweeps.store.urls import check_port, redact
from trainer.api import UserError, check_writable

log = logging.getLogger("sweeps")



def resolve_uri(uri: str | None) -> str:
    """The tracking URI to use: the configured one, else MLflow's own default (./mlflow.db).
    A stored one (kept without its password) gets the password this machine's
    `$MLFLOW_TRACKING_URI` gives for the same server (`secrets.with_secret`)."""
    if uri:
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            return "sqlite:///" + str(Path(uri[len("sqlite:///"):]).resolve())
        return with_secret(uri, ("MLFLOW_TRACKING_URI",))
    import mlflow  # ~1 s to import: only when MLflow must pick its default

    mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None resets it: MLflow's default here
    return mlflow.get_tracking_uri()


def ui_url(base: str, uri: str, sweep: str | None) -> str:
    """The UI address that opens a sweep's runs in MLflow 3's model-training view.

    MLflow 3's UI keeps a global "GenAI | Model training" switch that starts on GenAI (traces,
    evaluations); ``workflowType=machine_learning`` in the address selects model training.
    """
    view = "workflowType=machine_learning"
    if sweep:
        try:
            exp = client(uri).get_experiment_by_name(sweep)
            if exp is not None:
                return f"{base.rstrip('/')}/#/experiments/{exp.experiment_id}/runs?{view}"
        except Exception:  # the address without the experiment is still right
            pass
    return f"{base.rstrip('/')}/#/experiments?{view}"


# MLflow's tracking store schemes (mlflow.tracking._tracking_service.utils), "" for a directory
SCHEMES = ("", "file", "http", "https", "sqlite", "postgresql", "mysql", "mssql", "databricks",
           "databricks-uc", "uc")


def check_login(uri: str, base: str) -> None:
    """One line unless the server takes this machine's login (the URL's user and password,
    else `$MLFLOW_TRACKING_USERNAME`/`PASSWORD`, as MLflow sends them): checked with one read
    before a launch changes anything, so a wrong password cannot leave a study half-updated."""
    import base64
    import urllib.error
    import urllib.parse
    import urllib.request

    parts = urllib.parse.urlsplit(uri)
    user = urllib.parse.unquote(parts.username) if parts.username else os.environ.get(
        "MLFLOW_TRACKING_USERNAME")
    password = urllib.parse.unquote(parts.password) if parts.password else os.environ.get(
        "MLFLOW_TRACKING_PASSWORD")
    request = urllib.request.Request(base + "/api/2.0/mlflow/experiments/search?max_results=1")
    if user:
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            resp.read()
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            raise UserError(f"tracking.uri={redact(uri)}: the MLflow server refused this login "
                            f"({err.code} {err.reason}); give the user and password in the URL or "
                            "in $MLFLOW_TRACKING_USERNAME and $MLFLOW_TRACKING_PASSWORD") from None
    except Exception:
        pass


def check_reachable(uri: str, login: bool = True) -> None:
    """One-line UserError unless the tracking store can be used (`login`: an MLflow server
    takes this machine's login too); writes nothing."""
    check_port(uri, "tracking.uri")
    if uri.startswith(("http://", "https://")):
        import urllib.error
        import urllib.parse
        import urllib.request

        parts = urllib.parse.urlsplit(uri)  # credentials in the URL are MLflow's, not urllib's
        bare = parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")) \
            if parts.hostname else parts
        try:
            with urllib.request.urlopen(urllib.parse.urlunsplit(bare).rstrip("/") + "/health",
                                        timeout=5) as resp:
                resp.read()
        except urllib.error.HTTPError:
            pass  # it answered (e.g. 401 behind basic auth): reachable
        except Exception as err:
            raise UserError(f"tracking.uri={redact(uri)}: MLflow server not reachable "
                            f"({redact(str(err))})") from None
        if login:
            check_login(uri, urllib.parse.urlunsplit(bare).rstrip("/"))
    elif uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):])
        if not path.parent.is_dir():
            raise UserError(f"tracking.uri={uri}: directory {path.parent} does not exist")
        try:
            check_writable(path.parent, "dir")  # MLflow's file and its write-ahead log go there
        except UserError as err:
            raise UserError(f"tracking.uri={uri}: directory {path.parent} "
                            f"{str(err).split(': ', 1)[-1]}") from None
        if path.exists() and not os.access(path, os.W_OK):
            raise UserError(f"tracking.uri={uri}: {path} is not writable by this user")
    else:
        scheme = uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else ""
        if scheme not in SCHEMES:
            raise UserError(f"tracking.uri={redact(uri)}: unknown scheme {scheme!r}; allowed: "
                            "http(s)://HOST:PORT (an MLflow server), sqlite:///FILE, "
                            "postgresql://, mysql://, mssql://, file:///DIR, databricks")
        if scheme in ("postgresql", "mysql", "mssql"):
            from sweeps.store.urls import check_database

            check_database(uri, "tracking.uri")


def preload(uri: str) -> None:
    """Import MLflow's client, and its SQL store for a database URI (~3 s), before the first
    write needs them. The launch calls this while its workers start up, just before it waits
    on the first one (so the import costs no wall time there). On this thread, never on a
    thread of its own: two threads importing SQLAlchemy at once can each see the other's
    half-initialised package (`cannot import name ... from partially initialized module
    'sqlalchemy.engine'`)."""
    import mlflow.tracking  # noqa: F401

    if not uri.startswith(("http:", "https:", "file:", "databricks")):
        from mlflow.store.tracking import sqlalchemy_store  # noqa: F401


@functools.lru_cache(maxsize=8)
def client(uri: str) -> Any:
    # MLflow prints "View run ... at: URL" on every run it ends on a server: one line per
    # trial in the worker's output. The sweep prints its own progress; keep theirs out.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    # MLflow's own retries back off up to minutes; ours (`patiently`) wait for the server to
    # return and notice it within seconds, so keep theirs short.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    # Nor its INFO lines about creating the tables of a new mlflow.db (alembic's included).
    for name in ("mlflow.store.db.utils", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if uri.startswith("sqlite:"):
        sqlite_wal()
        from sweeps.tracking.store_template import create_from_template

        create_from_template(uri)  # a new mlflow.db without MLflow's ~2 s of migrations
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


@functools.lru_cache(maxsize=1)
def sqlite_wal() -> None:
    """SQLite stores (MLflow's default mlflow.db) in write-ahead-log mode, synchronous=NORMAL.

    In its default rollback-journal mode every commit syncs the disk several times: about
    16 ms per MLflow write here, ten writes per trial, which made MLflow the limit of a sweep
    of short trials. WAL commits append to one log: still atomic and never corrupt after a
    crash, a power cut may lose the last commits (`sweeps sync` rewrites them from Optuna).
    The mode is stored in the database file; readers (the MLflow UI) need nothing."""
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        if not isinstance(dbapi_connection, sqlite3.Connection):
            return
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.OperationalError as err:  # busy switching modes: the next connection will
            log.debug("SQLite WAL not set: %s", err)
        finally:
            cursor.close()


# Without this tag MLflow 3's UI opens an experiment in its GenAI view ("Evaluations",
# traces) instead of the model-training view with runs, metrics and charts.
EXPERIMENT_TAGS = {"mlflow.experimentKind": "custom_model_development"}


def experiment_id(uri: str, name: str) -> str:
    """The sweep's experiment (created or restored if needed), looked up once per process:
    every trial's run goes into it."""
    key = (uri, name)
    if key not in _EXPERIMENTS:
        _EXPERIMENTS[key] = _experiment_id(uri, name)
    return _EXPERIMENTS[key]


_EXPERIMENTS: dict[tuple[str, str], str] = {}


def _experiment_id(uri: str, name: str) -> str:
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is None:
        try:
            return c.create_experiment(name, tags=EXPERIMENT_TAGS)
        except Exception:  # created by another process meanwhile
            exp = c.get_experiment_by_name(name)
            if exp is None:
                raise
    if exp.lifecycle_stage == "deleted":
        c.restore_experiment(exp.experiment_id)
    for key, value in EXPERIMENT_TAGS.items():
        if exp.tags.get(key) != value:  # an experiment made before the tag existed
            c.set_experiment_tag(exp.experiment_id, key, value)
    return exp.experiment_id


def forget_experiment(uri: str, name: str) -> None:
    """Look the experiment up again next time (a launch: it may have been deleted since)."""
    _EXPERIMENTS.pop((uri, name), None)
