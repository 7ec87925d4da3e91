"""MLflow tracking: an experiment per sweep, a parent run per launch, a child run per trial.

The child run gets the flattened resolved trainer config and the sampled params, tags
(study, trial, optimizer, state, worker host, device, git commit, package versions),
per-epoch curves (step = epoch) sent as one batched call per epoch off the training
thread, ``batch/loss`` (step = global step), final metrics and the resolved config YAML.
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
    c = client(uri)
    name = f"{sweep} launch {time.strftime('%Y-%m-%d %H:%M:%S')}"
    _EXPERIMENTS.pop((uri, sweep), None)  # a launch looks again (the experiment may be deleted)
    run = c.create_run(experiment_id(uri, sweep), run_name=name,
                       tags={"sweeps.sweep": sweep, "sweeps.kind": "launch", **environment_tags()})
    _log_params_tags(uri, run.info.run_id, flat_params(params))
    for name, text in artifacts.items():
        c.log_text(run.info.run_id, text, name)
    return run.info.run_id


def finish_parent(uri: str, run_id: str, status: str, metrics: Mapping[str, float]) -> None:
    from mlflow.entities import Metric

    c = client(uri)
    now = int(time.time() * 1000)
    if metrics:
        c.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
    c.set_terminated(run_id, status)


def run_name(optimizer: str, number: int, suffix: str = "") -> str:
    """``adam #3``, ``adam #3 seed 2``: names the MLflow UI's run table and charts can compare."""
    return f"{optimizer} #{number}{' ' + suffix if suffix else ''}"


def start_trial(uri: str, sweep: str, parent_run_id: str | None, study: str, number: int,
                optimizer: str, config: Mapping[str, Any], params: Mapping[str, Any],
                device: str, on_created: Callable[[str], None] | None = None,
                background: Background | None = None, *, kind: str = "trial",
                name: str | None = None, extra_tags: Mapping[str, str] | None = None,
                pending: RunRef | None = None) -> str:
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
    if on_created is not None:
        on_created(run_id)  # record the id before anything else can be interrupted
    all_params = {**flat_params(config), **{f"sampled.{k}": redact(str(v)) for k, v in params.items()}}
    import yaml

    text = yaml.safe_dump(dict(config), sort_keys=False)
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
class RunRef:
    """The id of a trial's MLflow run, which the background thread creates: until then (a
    tracking server that is down), training goes on and writes queue up behind it."""

    id: str | None = None
    done: threading.Event = field(default_factory=threading.Event)
    # written with the run's first metrics / its last write, from the background thread only
    params: dict[str, str] = field(default_factory=dict)
    first_metrics: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> text

    def write(self, uri: str, metrics: list[Any], tags: Mapping[str, str] | None = None) -> None:
        """One batch of metrics (and tags), with the params still to send (background thread)."""
        if self.id is None:  # the run could not be created: Optuna has it all
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        first = [Metric(k, v, now, 0) for k, v in self.first_metrics.items()]
        log_batch(uri, self.id, first + metrics, self.params, tags)
        self.params, self.first_metrics = {}, {}

    def write_artifacts(self, uri: str, files: Mapping[str, Path]) -> None:
        """The pending texts and `files` in one artifact upload (background thread)."""
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
                client(uri).log_artifacts(self.id, tmp)
        self.artifacts = {}

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


def start_trial_async(uri: str, background: Background, *args: Any, **kwargs: Any) -> RunRef:
    """`start_trial` from the background thread: returns at once with a RunRef."""
    ref = RunRef()

    def create() -> None:
        try:
            ref.id = start_trial(uri, *args, pending=ref, **kwargs)
        finally:
            ref.done.set()

    background.submit(create)
    return ref


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


def in_outage() -> bool:
    """Whether this process's tracking writes are waiting for a server that stopped answering."""
    return _down_since is not None


def patiently(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call `fn`; while the tracking server is unreachable, retry with backoff (2 s doubling
    to 10 s), so an outage delays the writes and loses none. The patience (PATIENCE_S) runs
    from the start of the outage, not per call: past it, queued writes fail at once (the
    Optuna record keeps everything; `sweeps sync` writes it later)."""
    global _down_since
    delay = 2.0
    while True:
        try:
            result = fn(*args, **kwargs)
            _down_since = None
            return result
        except Exception as err:
            if not unreachable(err):
                raise
            now = time.monotonic()
            _down_since = now if _down_since is None else _down_since
            if now + delay > _down_since + PATIENCE_S:
                raise
            log.warning("MLflow unreachable (%s); retrying in %.0f s", str(err).splitlines()[0][:160],
                        delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


class Background:
    """One background thread per process that writes to MLflow, so training never waits.

    Not MLflow's own asynchronous logging: its queue takes about a second per run to
    shut down when the run is terminated (measured with benchmarks/sweep_overhead.py).
    Writes keep their order; `wait()` returns when all of them are done.
    """

    _executor: ThreadPoolExecutor | None = None
    _all: list[Future[Any]] = []  # every write of this process not yet known to be done
    # Writes waiting for an unreachable server: bounded, so that a long outage makes
    # training wait for room rather than grow memory without limit.
    MAX_PENDING = 20_000
    _room = threading.BoundedSemaphore(MAX_PENDING)

    def __init__(self) -> None:
        if Background._executor is None:
            Background._executor = ThreadPoolExecutor(1, thread_name_prefix="sweeps-mlflow")
        self._futures: list[Future[Any]] = []

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        assert Background._executor is not None
        Background._room.acquire()
        future = Background._executor.submit(patiently, fn, *args, **kwargs)
        future.add_done_callback(lambda _: Background._room.release())
        self._futures = [f for f in self._futures if not f.done()] + [future]
        Background._all = [f for f in Background._all if not f.done()] + [future]

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
    """Streams one trial's curves to its MLflow run from the background thread: per-epoch
    metrics in one batched write at most every FLUSH_EVERY_S seconds (a trial of short
    epochs writes its curves once, at its end; one of long epochs, every epoch)."""

    def __init__(self, uri: str, run: str | RunRef | None, background: Background | None = None,
                 *, wait_at_end: bool = True, flush_every_s: float = FLUSH_EVERY_S) -> None:
        self.uri = uri
        self.ref = run if isinstance(run, RunRef) else RunRef.of(run)
        self.background = background or Background()
        self.wait_at_end = wait_at_end  # a worker does not: the next trial need not wait for MLflow
        self.flush_every_s = flush_every_s
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

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        self._last_flush = time.monotonic()
        self.background.submit(self.ref.write, self.uri, batch)

    def on_fit_end(self, run: RunInfo, result: FitResult) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), now, len(result.history))
                          for k, v in result.final.items()]
        if result.status == "diverged" and result.history:
            last = result.history[-1]
            self._pending += [Metric(k, float(v), now, int(last["epoch"])) for k, v in last.items()
                              if k != "epoch"]
        self._flush()
        self.background.submit(self.ref.write_artifacts, self.uri,
                               {"history.json": Path(result.output_dir) / "history.json"})
        if self.wait_at_end:
            self.background.wait()


def end_trial(uri: str, run_id: str, state: str, reason: str | None = None,
              value: float | None = None, extra_tags: Mapping[str, str] | None = None,
              ref: RunRef | None = None) -> None:
    """State tags and the objective in one write (with whatever `ref` has not sent yet: a
    trial that failed before training), then the run's terminal status."""
    from mlflow.entities import Metric

    tags = {"sweeps.state": state, **(extra_tags or {})}
    if reason:
        tags["sweeps.failure_reason"] = reason[:5000]
    now = int(time.time() * 1000)
    metrics = [] if value is None else [Metric("objective", float(value), now, 0)]
    ref = ref if ref is not None else RunRef.of(run_id)
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
