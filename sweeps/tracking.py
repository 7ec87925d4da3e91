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
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import Any

from sweeps.storage import redact
from trainer.callbacks import Callback, RunInfo
from trainer.config import flatten
from trainer.errors import UserError
from trainer.fit import FitResult

log = logging.getLogger("sweeps")
STATES = ("running", "complete", "pruned", "failed", "diverged")
_MLFLOW_STATUS = {"complete": "FINISHED", "pruned": "FINISHED", "failed": "FAILED",
                  "diverged": "FAILED", "interrupted": "KILLED"}
MAX_BATCH = 100  # MLflow's per-request limit for params/tags


def resolve_uri(uri: str | None) -> str:
    """The tracking URI to use: the configured one, else MLflow's own default (./mlflow.db)."""
    import mlflow

    if uri:
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            return "sqlite:///" + str(Path(uri[len("sqlite:///"):]).resolve())
        return uri
    mlflow.set_tracking_uri(None)  # reset, so MLflow picks its default for this directory
    return mlflow.get_tracking_uri()


def check_reachable(uri: str) -> None:
    """One-line UserError unless the tracking store can be used; writes nothing."""
    if uri.startswith(("http://", "https://")):
        import urllib.request

        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=5) as resp:
                resp.read()
        except Exception as err:
            raise UserError(f"tracking.uri={redact(uri)}: MLflow server not reachable ({err})") from None
    elif uri.startswith("sqlite:///"):
        path = Path(uri[len("sqlite:///"):])
        if not path.parent.is_dir():
            raise UserError(f"tracking.uri={uri}: directory {path.parent} does not exist")


@functools.lru_cache(maxsize=8)
def client(uri: str) -> Any:
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=uri)


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
    return {k: redact(str(v))[:6000] for k, v in flatten(d).items()}


def experiment_id(uri: str, name: str) -> str:
    c = client(uri)
    exp = c.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            c.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    try:
        return c.create_experiment(name)
    except Exception:  # created by another process meanwhile
        exp = c.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def _log_params_tags(uri: str, run_id: str, params: Mapping[str, str],
                     tags: Mapping[str, str] | None = None,
                     metrics: Mapping[str, float] | None = None) -> None:
    """Params, tags and metrics in as few requests as MLflow's limits allow."""
    from mlflow.entities import Metric, Param, RunTag

    c = client(uri)
    now = int(time.time() * 1000)
    p = [Param(k, v) for k, v in params.items()]
    t = [RunTag(k, redact(str(v))) for k, v in (tags or {}).items()]
    m = [Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()]
    for i in range(0, max(len(p), len(t), 1), MAX_BATCH):
        c.log_batch(run_id, params=p[i:i + MAX_BATCH], tags=t[i:i + MAX_BATCH],
                    metrics=m if i == 0 else [])


def start_parent(uri: str, sweep: str, params: Mapping[str, Any], artifacts: Mapping[str, str]) -> str:
    c = client(uri)
    name = f"{sweep} launch {time.strftime('%Y-%m-%d %H:%M:%S')}"
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


def start_trial(uri: str, sweep: str, parent_run_id: str | None, study: str, number: int,
                optimizer: str, config: Mapping[str, Any], params: Mapping[str, Any],
                device: str, on_created: Callable[[str], None] | None = None,
                background: Background | None = None) -> str:
    """Open the child run of one trial; returns its run id."""
    c = client(uri)
    tags = {"sweeps.sweep": sweep, "sweeps.study": study, "sweeps.trial": str(number),
            "sweeps.optimizer": optimizer, "sweeps.state": "running", "sweeps.device": device,
            "sweeps.worker": f"{socket.gethostname()}", **environment_tags()}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run = c.create_run(experiment_id(uri, sweep), run_name=f"{study} #{number}", tags=tags)
    run_id = run.info.run_id
    if on_created is not None:
        on_created(run_id)  # record the id before anything else can be interrupted
    all_params = {**flat_params(config), **{f"sampled.{k}": redact(str(v)) for k, v in params.items()}}
    import yaml

    text = yaml.safe_dump(dict(config), sort_keys=False)
    if background is None:
        _log_params_tags(uri, run_id, all_params, metrics={"trial": float(number)})
        c.log_text(run_id, text, "config.yaml")
    else:
        background.submit(_log_params_tags, uri, run_id, all_params, metrics={"trial": float(number)})
        background.submit(c.log_text, run_id, text, "config.yaml")
    return run_id


def mark_run(uri: str, run_id: str, state: str, reason: str | None = None) -> None:
    """Set a run's sweeps.state tag and terminal status (used for failures seen from outside)."""
    try:
        c = client(uri)
        c.set_tag(run_id, "sweeps.state", state)
        if reason:
            c.set_tag(run_id, "sweeps.failure_reason", reason[:5000])
        c.set_terminated(run_id, _MLFLOW_STATUS.get(state, "FAILED"))
    except Exception as err:  # tracking must never take a worker down
        log.warning("could not update MLflow run %s: %s", run_id, err)


def close_orphans(uri: str, parent_run_id: str, reason: str) -> int:
    """Terminate child runs of `parent_run_id` still RUNNING (after Ctrl-C); returns how many."""
    c = client(uri)
    parent = c.get_run(parent_run_id)
    runs = c.search_runs([parent.info.experiment_id],
                         filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}' "
                                       "and attributes.status = 'RUNNING'")
    for run in runs:
        mark_run(uri, run.info.run_id, "failed", reason)
    return len(runs)


class Background:
    """One background thread per process that writes to MLflow, so training never waits.

    Not MLflow's own asynchronous logging: its queue takes about a second per run to
    shut down when the run is terminated (measured with benchmarks/sweep_overhead.py).
    Writes keep their order; `wait()` returns when all of them are done.
    """

    _executor: ThreadPoolExecutor | None = None

    def __init__(self) -> None:
        if Background._executor is None:
            Background._executor = ThreadPoolExecutor(1, thread_name_prefix="sweeps-mlflow")
        self._futures: list[Future[Any]] = []

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        assert Background._executor is not None
        self._futures.append(Background._executor.submit(fn, *args, **kwargs))

    def wait(self) -> None:
        for future in self._futures:
            try:
                future.result()
            except Exception as err:  # tracking must never take a trial down
                log.warning("MLflow logging failed: %s", err)
        self._futures = []


class TrialLogger(Callback):
    """Streams one trial's curves to its MLflow run: one batched write per epoch, sent
    from the background thread."""

    def __init__(self, uri: str, run_id: str, background: Background | None = None) -> None:
        self.uri, self.run_id = uri, run_id
        self.background = background or Background()
        self._pending: list[Any] = []

    def on_step(self, run: RunInfo, step: int, metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), now, step) for k, v in metrics.items()]

    def on_epoch_end(self, run: RunInfo, epoch: int, metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, epoch) for k, v in metrics.items() if k != "epoch"]
        batch += self._pending
        self._pending = []
        self._send(batch)

    def _send(self, metrics: list[Any]) -> None:
        for i in range(0, len(metrics), 1000):
            self.background.submit(client(self.uri).log_batch, self.run_id,
                                   metrics=metrics[i:i + 1000])

    def on_fit_end(self, run: RunInfo, result: FitResult) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        final = [Metric(k, float(v), now, len(result.history)) for k, v in result.final.items()]
        if result.status == "diverged" and result.history:
            last = result.history[-1]
            final += [Metric(k, float(v), now, int(last["epoch"])) for k, v in last.items()
                      if k != "epoch"]
        self._send(self._pending + final)
        self._pending = []
        history = Path(result.output_dir) / "history.json"
        if history.exists():
            self.background.submit(client(self.uri).log_artifact, self.run_id, str(history))
        self.background.wait()



def end_trial(uri: str, run_id: str, state: str, reason: str | None = None,
              value: float | None = None) -> None:
    tags = {"sweeps.state": state}
    if reason:
        tags["sweeps.failure_reason"] = reason[:5000]
    _log_params_tags(uri, run_id, {}, tags, {} if value is None else {"objective": float(value)})
    client(uri).set_terminated(run_id, _MLFLOW_STATUS.get(state, "FAILED"))
