"""MLflow tracking: an experiment per sweep, a parent run per launch, a child run per trial.

The child run gets the flattened resolved trainer config and the sampled params, tags
(study, trial, optimizer, state, worker host, device, git commit, package versions),
per-epoch curves (step = epoch), ``batch/loss`` (step = global step), final metrics and the
resolved config YAML. Every write goes through the worker's one writer (`Background`: a
thread, or a child process where a core is spare), in order, batched: a short trial's run
costs 4 requests, and training never waits for them.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeps.storage import redact
from trainer.callbacks import Callback, RunInfo
from trainer.errors import UserError

if TYPE_CHECKING:
    from trainer.loop import FitResult

log = logging.getLogger("sweeps")
STATES = ("running", "complete", "pruned", "failed", "diverged")
_MLFLOW_STATUS = {"complete": "FINISHED", "pruned": "FINISHED", "failed": "FAILED",
                  "diverged": "FAILED", "interrupted": "KILLED"}
MAX_BATCH = 100  # MLflow's per-request limit for params/tags
MAX_ENTRIES = 1000  # and for metrics + params + tags together
FLUSH_EVERY_S = 2.0  # a trial's curves go to MLflow at most this often (and at its end)


def resolve_uri(uri: str | None) -> str:
    """The tracking URI to use: the configured one, else MLflow's own default (./mlflow.db)."""
    if uri:
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            return "sqlite:///" + str(Path(uri[len("sqlite:///"):]).resolve())
        return uri
    import mlflow  # ~1 s to import: only when MLflow must pick its default

    mlflow.set_tracking_uri(None)  # reset, so MLflow picks its default for this directory
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


def check_reachable(uri: str) -> None:
    """One-line UserError unless the tracking store can be used; writes nothing."""
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
            return  # it answered (e.g. 401 behind basic auth): reachable
        except Exception as err:
            raise UserError(f"tracking.uri={redact(uri)}: MLflow server not reachable "
                            f"({redact(str(err))})") from None
    elif uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):])
        if not path.parent.is_dir():
            raise UserError(f"tracking.uri={uri}: directory {path.parent} does not exist")


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


@functools.lru_cache(maxsize=1)
def environment_tags() -> dict[str, str]:
    """Host, git commit and package versions: what is needed to re-run a trial."""
    tags = {"sweeps.host": socket.gethostname()}
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    tags["sweeps.git_commit"] = commit or "unknown"
    versions = {}
    for pkg in ("optimizer-sweeps", "torch", "torchvision", "optuna", "mlflow", "hydra-core"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = "unknown"
    tags["sweeps.versions"] = json.dumps(versions, sort_keys=True)
    return tags


def config_yaml(config: Mapping[str, Any]) -> str:
    """A trial's config as YAML, for its run's config.yaml: with libyaml's emitter where
    PyYAML has it (~1 ms against ~7 ms in pure Python, per trial, on the MLflow writer)."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(dict(config), Dumper=dumper, sort_keys=False)


def flat_params(d: Mapping[str, Any]) -> dict[str, str]:
    """MLflow params: flattened keys, values as text, passwords redacted, within MLflow's limit."""
    from trainer.compose import flatten

    return {k: redact(str(v))[:6000] for k, v in flatten(d).items()}


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


def _log_params_tags(uri: str, run_id: str, params: Mapping[str, str],
                     tags: Mapping[str, str] | None = None,
                     metrics: Mapping[str, float] | None = None) -> None:
    """Params, tags and metrics (step 0) in as few requests as MLflow's limits allow."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    log_batch(uri, run_id, [Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()],
              params, tags)


def log_batch(uri: str, run_id: str, metrics: list[Any], params: Mapping[str, str] | None = None,
              tags: Mapping[str, str] | None = None) -> None:
    """Metrics, params and tags in as few requests as MLflow's limits allow (100 params, 100
    tags, 1000 entries in all per request): every request is a database transaction."""
    from mlflow.entities import Param, RunTag

    c = client(uri)
    p = [Param(k, v) for k, v in (params or {}).items()]
    t = [RunTag(k, redact(str(v))) for k, v in (tags or {}).items()]
    m = list(metrics)
    while True:
        bp, bt = p[:MAX_BATCH], t[:MAX_BATCH]
        bm = m[:MAX_ENTRIES - len(bp) - len(bt)]
        c.log_batch(run_id, metrics=bm, params=bp, tags=bt)
        p, t, m = p[len(bp):], t[len(bt):], m[len(bm):]
        if not (p or t or m):
            return


def start_parent(uri: str, sweep: str, params: Mapping[str, Any], artifacts: Mapping[str, str]) -> str:
    """Open a launch's parent run. Each request waits out an outage (`patiently`): the server
    answered the launch's reachability check, and may be restarting a second later."""
    c = client(uri)
    name = f"{sweep} launch {time.strftime('%Y-%m-%d %H:%M:%S')}"
    _EXPERIMENTS.pop((uri, sweep), None)  # a launch looks again (the experiment may be deleted)
    exp = patiently(experiment_id, uri, sweep)
    run = patiently(c.create_run, exp, run_name=name,
                    tags={"sweeps.sweep": sweep, "sweeps.kind": "launch", **environment_tags()})
    patiently(_log_params_tags, uri, run.info.run_id, flat_params(params))
    for name, text in artifacts.items():
        patiently(c.log_text, run.info.run_id, text, name)
    return run.info.run_id


def finish_parent(uri: str, run_id: str, status: str, metrics: Mapping[str, float]) -> bool:
    """Close a launch's parent run with its best values, waiting out an outage; False (and a
    warning) if MLflow stayed away past the patience: the sweep itself is done and recorded."""
    from mlflow.entities import Metric

    c = client(uri)
    now = int(time.time() * 1000)
    try:
        if metrics:
            patiently(c.log_batch, run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
        patiently(c.set_terminated, run_id, status)
    except Exception as err:
        if not unreachable(err):
            raise
        log.warning("could not close the launch's MLflow run %s: %s", run_id, str(err).splitlines()[0][:200])
        return False
    return True


def run_name(optimizer: str, number: int, suffix: str = "") -> str:
    """``adam #3``, ``adam #3 seed 2``: names the MLflow UI's run table and charts can compare."""
    return f"{optimizer} #{number}{' ' + suffix if suffix else ''}"


def start_trial(uri: str, sweep: str, parent_run_id: str | None, study: str, number: int,
                optimizer: str, config: Mapping[str, Any], params: Mapping[str, Any],
                device: str, on_created: Callable[[str], None] | None = None,
                background: Background | None = None, *, kind: str = "trial",
                name: str | None = None, extra_tags: Mapping[str, str] | None = None,
                pending: RunState | None = None) -> str:
    """Open the child run of one trial (or of a confirm / reproduce run of it); returns its id."""
    c = client(uri)
    tags = {"sweeps.sweep": sweep, "sweeps.study": study, "sweeps.trial": str(number),
            "sweeps.optimizer": optimizer, "sweeps.kind": kind, "sweeps.state": "running",
            "sweeps.device": device, "sweeps.worker": f"{socket.gethostname()}:{os.getpid()}",
            **environment_tags(), **(extra_tags or {})}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run = patiently(lambda: c.create_run(experiment_id(uri, sweep),
                                         run_name=name or run_name(optimizer, number), tags=tags))
    run_id = run.info.run_id
    if pending is not None:
        pending.id, pending.artifact_uri = run_id, run.info.artifact_uri
    if on_created is not None:
        on_created(run_id)  # record the id before anything else can be interrupted
    all_params = {**flat_params(config), **{f"sampled.{k}": redact(str(v)) for k, v in params.items()}}
    text = config_yaml(config)
    if pending is not None:  # sent with the run's first metrics and its history (fewer writes)
        pending.params, pending.first_metrics = all_params, {"trial": float(number)}
        pending.artifacts["config.yaml"] = text
    elif background is None:
        patiently(_log_params_tags, uri, run_id, all_params, metrics={"trial": float(number)})
        patiently(c.log_text, run_id, text, "config.yaml")
    else:
        background.submit(_log_params_tags, uri, run_id, all_params, metrics={"trial": float(number)})
        background.submit(c.log_text, run_id, text, "config.yaml")
    return run_id


@dataclass
class RunState:
    """A trial run's writes still to send, kept where the writes run (the background thread or
    the writer process): params and the first metrics go with the first batch of curves, the
    texts with the last artifact upload, the final curves with the state tags."""

    id: str | None = None
    artifact_uri: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    first_metrics: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> text
    held: list[Any] = field(default_factory=list)  # metrics sent with the end of the run

    def write(self, uri: str, metrics: list[Any], tags: Mapping[str, str] | None = None) -> None:
        """One batch of metrics (and tags), with the params and held metrics still to send."""
        if self.id is None:  # the run could not be created: Optuna has it all
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        first = [Metric(k, v, now, 0) for k, v in self.first_metrics.items()]
        log_batch(uri, self.id, first + self.held + metrics, self.params, tags)
        self.params, self.first_metrics, self.held = {}, {}, []

    def write_artifacts(self, uri: str, files: Mapping[str, Path]) -> None:
        """The pending texts and `files` in one artifact upload. Straight to the run's artifact
        repository: MlflowClient.log_artifacts would first read the whole run back to find it."""
        if self.id is None:
            return
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory(prefix="sweeps-artifacts-") as tmp:
            for name, text in self.artifacts.items():
                (Path(tmp) / name).write_text(text)
            for name, path in files.items():
                if path.exists():
                    shutil.copyfile(path, Path(tmp) / name)
            if any(Path(tmp).iterdir()):
                if self.artifact_uri is None:
                    client(uri).log_artifacts(self.id, tmp)
                else:
                    _artifact_repo(uri, self.artifact_uri).log_artifacts(tmp)
        self.artifacts = {}


def _artifact_repo(uri: str, artifact_uri: str) -> Any:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.utils.uri import add_databricks_profile_info_to_artifact_uri

    return get_artifact_repository(add_databricks_profile_info_to_artifact_uri(artifact_uri, uri),
                                   tracking_uri=uri)


@dataclass
class RunRef:
    """The training side's handle on a trial's MLflow run, which the background writer
    creates: until then (a tracking server that is down) training goes on and its writes
    queue up behind the creation. `key` names the run's RunState where the writes run."""

    id: str | None = None
    done: threading.Event = field(default_factory=threading.Event)
    key: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def of(cls, run_id: str | None) -> RunRef:
        ref = cls(run_id)
        ref.done.set()
        return ref

    def wait(self, timeout: float, outage_grace: float = 5.0) -> str | None:
        """Up to `timeout` for the run to exist, but only `outage_grace` once the server is
        known to be away: a finished trial must not sit RUNNING through an outage."""
        end = time.monotonic() + timeout
        outage_end: float | None = None
        while not self.done.wait(min(1.0, max(0.0, end - time.monotonic()))):
            now = time.monotonic()
            if in_outage():
                outage_end = outage_end or now + outage_grace
            if now >= end or (outage_end is not None and now >= outage_end):
                break
        return self.id


# ------------------------------------------------------------------ writes, where they run
# Module-level functions of plain arguments, so that they run alike on the writer thread
# and in the writer process; a run's pending state stays there, under its RunRef's key.
_RUNS: dict[str, RunState] = {}


def _state(key: str, run_id: str | None) -> RunState:
    return _RUNS.get(key) or RunState(run_id)


def _op_create(key: str, uri: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    state = _RUNS.setdefault(key, RunState())
    start_trial(uri, *args, pending=state, **kwargs)
    return state.id


def _op_write(key: str, run_id: str | None, uri: str, metrics: list[Any], hold: bool = False) -> None:
    """A batch of curves; `hold`: the run's last before its end (`_op_end` sends it, in one
    request with the state tags)."""
    state = _state(key, run_id)
    if hold and key in _RUNS:
        state.held += metrics
    else:
        state.write(uri, metrics)


def _op_artifacts(key: str, run_id: str | None, uri: str, files: Mapping[str, Path]) -> None:
    _state(key, run_id).write_artifacts(uri, files)


def _op_end(key: str, run_id: str | None, uri: str, state: str, reason: str | None,
            value: float | None, tags: Mapping[str, str]) -> None:
    pending = _RUNS.pop(key, None) or RunState(run_id)
    if pending.id is not None:
        end_trial(uri, pending.id, state, reason, value, tags, pending)


def _op_retire(key: str, uri: str, sweep: str, study: str, number: int, old_run: str | None) -> None:
    """A killed attempt's run: FAILED (whoever noticed the death may not have reached
    MLflow), pointing at the run (`key`'s) that continues its curve."""
    new = _RUNS.get(key)
    for run in mark_trial_runs(uri, sweep, study, number, "failed", "worker died; retried", old_run):
        if new is not None and new.id is not None:
            tag_run(uri, run, {"sweeps.retried_by": new.id})


def _op_open(uri: str, sweep: str) -> None:
    """Open the store and look the experiment up before the first trial needs it."""
    experiment_id(uri, sweep)


def start_trial_async(uri: str, background: Background, *args: Any,
                      on_created: Callable[[str], None] | None = None, **kwargs: Any) -> RunRef:
    """`start_trial` on the background writer: returns at once with a RunRef; `on_created`
    gets the run id here, in this process, as soon as the run exists."""
    ref = RunRef()
    # this process's, not the writer's: `close_orphans` picks runs by the worker that opened them
    kwargs["extra_tags"] = {"sweeps.worker": f"{socket.gethostname()}:{os.getpid()}",
                            **(kwargs.get("extra_tags") or {})}

    def created(future: Future[Any]) -> None:
        try:
            ref.id = future.result()
        except BaseException as err:  # reported by drain(); training goes on without a run
            log.debug("MLflow run not created: %s", err)
        finally:
            ref.done.set()
        if ref.id is not None and on_created is not None:
            on_created(ref.id)

    background.submit(_op_create, ref.key, uri, args, kwargs).add_done_callback(created)
    return ref


def end_trial_async(uri: str, background: Background, ref: RunRef, state: str, reason: str | None,
                    value: float | None, tags: Mapping[str, str]) -> None:
    """`end_trial` on the background writer, after the run's other writes."""
    background.submit(_op_end, ref.key, ref.id, uri, state, reason, value, dict(tags))


def retire_async(uri: str, background: Background, ref: RunRef, sweep: str, study: str,
                 number: int, old_run: str | None) -> None:
    background.submit(_op_retire, ref.key, uri, sweep, study, number, old_run)


def mark_run(uri: str, run_id: str, state: str, reason: str | None = None) -> None:
    """Set a run's sweeps.state tag and terminal status (used for failures seen from outside)."""
    try:
        c = client(uri)
        patiently(c.set_tag, run_id, "sweeps.state", state)
        if reason:
            patiently(c.set_tag, run_id, "sweeps.failure_reason", reason[:5000])
        patiently(c.set_terminated, run_id, _MLFLOW_STATUS.get(state, "FAILED"))
    except Exception as err:  # tracking must never take a worker down
        log.warning("could not update MLflow run %s: %s", run_id, err)


def mark_trial_runs(uri: str, sweep: str, study: str, number: int, state: str, reason: str,
                    run_id: str | None = None) -> list[str]:
    """Close a dead trial's run, found by its id or, where the id never reached Optuna (the
    worker died first, or the server was away), by its study and trial-number tags."""
    runs = [run_id] if run_id else []
    if not runs:
        try:
            c = client(uri)
            exp = patiently(c.get_experiment_by_name, sweep)
            if exp is not None:
                found = patiently(c.search_runs, [exp.experiment_id],
                                  f"tags.`sweeps.study` = '{study}' AND tags.`sweeps.trial` = '{number}' "
                                  "AND tags.`sweeps.kind` = 'trial' AND attributes.status = 'RUNNING'")
                runs = [r.info.run_id for r in found]
        except Exception as err:  # tracking must never take a worker down
            log.warning("could not look up the MLflow run of %s #%d: %s", study, number, err)
    for run in runs:
        mark_run(uri, run, state, reason)
    return runs


def tag_run(uri: str, run_id: str, tags: Mapping[str, str]) -> None:
    """Add tags to a run, finished or not (e.g. `sweeps.retried_by` on a killed trial's run)."""
    try:
        c = client(uri)
        for key, value in tags.items():
            patiently(c.set_tag, run_id, key, value)
    except Exception as err:  # tracking must never take a worker down
        log.warning("could not tag MLflow run %s: %s", run_id, err)


def close_orphans(uri: str, parent_run_id: str, reason: str, workers: set[str] | None = None) -> int:
    """Terminate child runs of `parent_run_id` still RUNNING (after Ctrl-C); returns how many.

    `workers` (``host:pid`` tags) limits it to runs opened by those processes, so that a
    Ctrl-C here never touches the runs of workers on other machines.
    """
    c = client(uri)
    parent = c.get_run(parent_run_id)
    runs = c.search_runs([parent.info.experiment_id],
                         filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}' "
                                       "and attributes.status = 'RUNNING'")
    runs = [r for r in runs if workers is None or r.data.tags.get("sweeps.worker") in workers]
    for run in runs:
        mark_run(uri, run.info.run_id, "failed", reason)
    return len(runs)


PATIENCE_S = 600.0  # how long writes wait for an unreachable tracking server (tracking.patience_s)


def unreachable(err: BaseException) -> bool:
    """The server is down or restarting (refused, reset, 502-504), not a bad request."""
    text = str(err)
    markers = ("Connection refused", "Max retries exceeded", "Connection aborted", "RemoteDisconnected",
               "Connection reset", "error code 502", "error code 503", "error code 504",
               "Failed to establish a new connection", "timed out")
    seen: BaseException | None = err
    while seen is not None:
        if type(seen).__name__ in ("ConnectionError", "ConnectTimeout", "ReadTimeout",
                                   "MaxRetryError", "NewConnectionError", "ProtocolError"):
            return True
        seen = seen.__cause__ or seen.__context__
    return any(m in text for m in markers)


_down_since: float | None = None  # when the server stopped answering (None: it answers)


_shared_outage: Any = None  # set by the writer process: a shared flag its parent reads


def in_outage() -> bool:
    """Whether this process's tracking writes (or its writer process's) are waiting for a
    server that stopped answering."""
    return _down_since is not None or bool(_shared_outage is not None and _shared_outage.value)


def _set_down_since(value: float | None) -> None:
    global _down_since
    _down_since = value
    if _shared_outage is not None:
        _shared_outage.value = 1 if value is not None else 0


def patiently(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call `fn`; while the tracking server is unreachable, retry with backoff (2 s doubling
    to 10 s), so an outage delays the writes and loses none. The patience (PATIENCE_S) runs
    from the start of the outage, not per call: past it, queued writes fail at once (the
    Optuna record keeps everything; `sweeps sync` writes it later)."""
    delay = 2.0
    while True:
        try:
            result = fn(*args, **kwargs)
            if _down_since is not None:
                _set_down_since(None)
            return result
        except Exception as err:
            if not unreachable(err):
                raise
            now = time.monotonic()
            if _down_since is None:
                _set_down_since(now)
            assert _down_since is not None
            if now + delay > _down_since + PATIENCE_S:
                raise
            log.warning("MLflow unreachable (%s); retrying in %.0f s", str(err).splitlines()[0][:160],
                        delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def _patiently_with(patience_s: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`patiently` under the submitting process's patience (the writer process has its own copy
    of PATIENCE_S)."""
    global PATIENCE_S
    PATIENCE_S = patience_s
    try:
        return patiently(fn, *args, **kwargs)
    except Exception as err:  # as plain text: not every library's error survives pickling
        raise WriteFailed(str(err) or type(err).__name__) from None


class WriteFailed(Exception):
    """A background MLflow write that failed (after `patiently`'s retries)."""


def thread_writer() -> ThreadPoolExecutor:
    """The writer as a thread of this process."""
    return ThreadPoolExecutor(1, thread_name_prefix="sweeps-mlflow")


class Background:
    """One writer per process that sends MLflow writes in order, so training never waits.

    By default a thread. `use_process()` (sweep workers) moves the writes to a separate
    writer process: MLflow's SQLAlchemy store costs ~50 ms of Python per trial run, which
    on a thread competes with the training loop for the GIL; in a process it runs on a
    spare core. Not MLflow's own asynchronous logging: its queue takes about a second per
    run to shut down when the run is terminated. `wait()` returns when this object's writes
    are done, `drain()` when every write of the process is.
    """

    _executor: Any = None  # ThreadPoolExecutor, or writer_process's ProcessPoolExecutor
    _all: list[Future[Any]] = []  # every write of this process not yet known to be done
    # Writes waiting for an unreachable server: bounded, so that a long outage makes
    # training wait for room rather than grow memory without limit.
    MAX_PENDING = 20_000
    _room = threading.BoundedSemaphore(MAX_PENDING)

    def __init__(self) -> None:
        if Background._executor is None:
            Background._executor = thread_writer()
        self._futures: list[Future[Any]] = []

    @classmethod
    def use_process(cls, uri: str, sweep: str) -> bool:
        """Send this process's MLflow writes through a writer process (started now, opening
        the store while the caller warms up); False where none can be started."""
        global _shared_outage
        if cls._executor is not None and not isinstance(cls._executor, ThreadPoolExecutor):
            return True
        from sweeps import writer_process

        started = writer_process.start()
        if started is None:
            return False
        if cls._executor is not None:  # the thread's writes first, then the process's
            cls.drain()
        cls._executor, _shared_outage = started
        # multiprocessing joins a process's children before its atexit handlers run: without
        # this, a worker process would wait at its exit for a writer nobody shuts down
        from multiprocessing import util

        util.Finalize(None, cls.close_process, exitpriority=100)
        cls._all.append(cls._executor.submit(_patiently_with, PATIENCE_S, _op_open, uri, sweep))
        return True

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        assert Background._executor is not None
        Background._room.acquire()
        try:
            future = Background._executor.submit(_patiently_with, PATIENCE_S, fn, *args, **kwargs)
        except RuntimeError as err:  # the writer process died (BrokenProcessPool): a thread takes over
            log.warning("MLflow writer process lost (%s); writing from this process", err)
            Background._executor = thread_writer()
            future = Background._executor.submit(_patiently_with, PATIENCE_S, fn, *args, **kwargs)
        future.add_done_callback(lambda _: Background._room.release())
        self._futures = [f for f in self._futures if not f.done()] + [future]
        Background._all = [f for f in Background._all if not f.done()] + [future]
        return future

    @classmethod
    def close_process(cls) -> None:
        """Write what is queued, then stop the writer process (at the worker's exit)."""
        executor = cls._executor
        if executor is None or isinstance(executor, ThreadPoolExecutor):
            return
        cls.drain()
        executor.shutdown(wait=True)
        cls._executor = None

    @classmethod
    def drain(cls) -> None:
        """Wait for every queued write of this process (before a worker exits)."""
        for future in list(cls._all):
            try:
                future.result()
            except Exception as err:  # reported, never raised: the Optuna record is the truth
                log.warning("MLflow logging failed: %s", err)
        cls._all = []

    def wait(self) -> None:
        for future in self._futures:
            try:
                future.result()
            except Exception as err:  # tracking must never take a trial down
                log.warning("MLflow logging failed: %s", err)
        self._futures = []


class TrialLogger(Callback):
    """Streams one trial's curves to its MLflow run through the writer: per-epoch
    metrics in one batched write at most every FLUSH_EVERY_S seconds (a trial of short
    epochs writes its curves once, at its end; one of long epochs, every epoch)."""

    def __init__(self, uri: str, run: str | RunRef | None, background: Background | None = None,
                 *, wait_at_end: bool = True, flush_every_s: float = FLUSH_EVERY_S,
                 hold_final: bool = False) -> None:
        self.uri = uri
        self.ref = run if isinstance(run, RunRef) else RunRef.of(run)
        self.background = background or Background()
        self.wait_at_end = wait_at_end  # a worker does not: the next trial need not wait for MLflow
        self.flush_every_s = flush_every_s
        # the last curves wait for the run's end (end_trial_async): one request instead of two
        self.hold_final = hold_final
        self._pending: list[Any] = []
        self._last_flush = time.monotonic()

    def on_fit_start(self, run: RunInfo) -> None:
        """A run resumed from a checkpoint: its earlier epochs go into this run too, so that
        the retry's run holds the whole curve."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), now, int(m["epoch"])) for m in run.history
                          for k, v in m.items() if k != "epoch"]

    def on_step(self, run: RunInfo, step: int, metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), now, step) for k, v in metrics.items()]

    def on_epoch_end(self, run: RunInfo, epoch: int, metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), now, epoch) for k, v in metrics.items() if k != "epoch"]
        if time.monotonic() - self._last_flush >= self.flush_every_s:
            self._flush()

    def _flush(self, hold: bool = False) -> None:
        batch, self._pending = self._pending, []
        self._last_flush = time.monotonic()
        self.background.submit(_op_write, self.ref.key, self.ref.id, self.uri, batch, hold)

    def on_fit_end(self, run: RunInfo, result: FitResult) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), now, len(result.history))
                          for k, v in result.final.items()]
        if result.status == "diverged" and result.history:
            last = result.history[-1]
            self._pending += [Metric(k, float(v), now, int(last["epoch"])) for k, v in last.items()
                              if k != "epoch"]
        self._flush(hold=self.hold_final)
        self.background.submit(_op_artifacts, self.ref.key, self.ref.id, self.uri,
                               {"history.json": Path(result.output_dir) / "history.json"})
        if self.wait_at_end:
            self.background.wait()


def end_trial(uri: str, run_id: str, state: str, reason: str | None = None,
              value: float | None = None, extra_tags: Mapping[str, str] | None = None,
              ref: RunState | None = None) -> None:
    """State tags and the objective in one write (with whatever `ref` has not sent yet: the
    held last curves, or all of a trial that failed before training), then the run's
    terminal status."""
    from mlflow.entities import Metric

    tags = {"sweeps.state": state, **(extra_tags or {})}
    if reason:
        tags["sweeps.failure_reason"] = reason[:5000]
    now = int(time.time() * 1000)
    metrics = [] if value is None else [Metric("objective", float(value), now, 0)]
    ref = ref if ref is not None else RunState(run_id)
    patiently(ref.write, uri, metrics, tags)
    if ref.artifacts:
        patiently(ref.write_artifacts, uri, {})
    patiently(client(uri).set_terminated, run_id, _MLFLOW_STATUS.get(state, "FAILED"))


def log_report(uri: str, run_id: str, files: list[Path]) -> None:
    """Attach the report files to the sweep's parent run (artifact folder ``report/``)."""
    c = client(uri)
    for f in files:
        c.log_artifact(run_id, str(f), "report")


def _open(uri: str) -> None:
    client(uri).get_run  # noqa: B018  (import MLflow and open the store: ~2-4 s)


def _upload(uri: str, run_id: str, files: list[Path]) -> str | None:
    try:
        log_report(uri, run_id, files)
        return None
    except Exception as err:  # reported by the caller as one line
        return (str(err).strip().splitlines() or [type(err).__name__])[0]


class ReportUploader:
    """Logs report files to MLflow from a forked helper that opened the client in advance.

    Importing MLflow and opening its store takes seconds; `sweeps report` starts this helper
    first and builds the report meanwhile. Where the OS cannot fork, it logs in-process.
    """

    def __init__(self, uri: str) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        self.uri = uri
        self._pool: ProcessPoolExecutor | None = None
        if "fork" in mp.get_all_start_methods():
            self._pool = ProcessPoolExecutor(1, mp_context=mp.get_context("fork"))
            self._pool.submit(_open, uri)

    def upload(self, run_id: str, files: list[Path]) -> str | None:
        """Log the files; returns None, or why it failed (one line)."""
        if self._pool is None:
            return _upload(self.uri, run_id, files)
        return self._pool.submit(_upload, self.uri, run_id, files).result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
