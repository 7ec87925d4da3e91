"""MLflow runs of a sweep: the parent run of a launch, the child run of a trial, their writes.

The parent run holds the sweep's settings and the config every trial shares; a child run
the params that vary (`sweeps.tracking.params`), tags (study, trial, optimizer, state,
worker host, device, git commit, package versions, the `sweeps reproduce` command), final
metrics and the resolved config YAML. Each function makes the fewest requests
MLflow's limits allow; `sweeps.tracking.run_writes` sends them through the worker's writer.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from sweeps.store import owners
from sweeps.store.urls import redact
from sweeps.tracking import clients, outage
from sweeps.tracking.params import flat_params, trial_params

log = logging.getLogger("sweeps")


STATES = ("running", "complete", "pruned", "failed", "diverged")


# pruned: KILLED, so that the runs list tells a pruned run (stopped early on purpose) from a
# completed one at a glance; its `sweeps.state` tag says "pruned"
_MLFLOW_STATUS = {"complete": "FINISHED", "pruned": "KILLED", "failed": "FAILED",
                  "diverged": "FAILED", "interrupted": "KILLED"}


MAX_BATCH = 100  # MLflow's per-request limit for params/tags

MARKED = ("pruned", "failed", "diverged")  # states a run's name shows: "sgd #3 (pruned)"


def marked_name(name: str, state: str) -> str:
    """``sgd #3`` -> ``sgd #3 (pruned)``, once (a run closed again keeps one mark)."""
    base = name
    for s in MARKED:
        base = base.removesuffix(f" ({s})")
    return f"{base} ({state})"


MAX_ENTRIES = 1000  # and for metrics + params + tags together


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
    from mlflow.entities import Metric, Param, RunTag

    c = clients.client(uri)
    p = [Param(k, v) for k, v in (params or {}).items()]
    t = [RunTag(k, redact(str(v))) for k, v in (tags or {}).items()]
    # the training side sends (key, value, timestamp ms, step) tuples: it never imports mlflow
    m = [x if isinstance(x, Metric) else Metric(*x) for x in metrics]
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
    c = clients.client(uri)
    name = f"{sweep} launch {time.strftime('%Y-%m-%d %H:%M:%S')}"
    clients.forget_experiment(uri, sweep)  # a launch looks again (the experiment may be deleted)
    exp = outage.patiently(clients.experiment_id, uri, sweep)
    run = outage.patiently(c.create_run, exp, run_name=name,
                    tags={"sweeps.sweep": sweep, "sweeps.kind": "launch",
                          LAUNCH_PROCESS: owners.process_id(), **environment_tags()})
    outage.patiently(_log_params_tags, uri, run.info.run_id, flat_params(params))
    for name, text in artifacts.items():
        outage.patiently(c.log_text, run.info.run_id, text, name)
    return run.info.run_id


LAUNCH_PROCESS = "sweeps.launch_process"  # host:pid:start of the launch that holds the run open
DETACHED = "sweeps.detached"  # the launch left; its Slurm array's last task closes the run


def close_orphan_parents(uri: str, sweep: str, tidying: bool = False) -> list[str]:
    """Close (KILLED, with the reason in `sweeps.end_reason`) the sweep's launch runs still
    RUNNING whose launch process has ended without closing them (SIGKILL, the OOM killer, a
    lost session); returns their ids. Only launches of this host can be told dead from here;
    a detached Slurm launch's run is its array's to close. `tidying`: a failure is a warning
    (tidying up must not stop the command that does it)."""
    if tidying:
        try:
            return close_orphan_parents(uri, sweep)
        except Exception as err:
            log.warning("could not check for launch runs left RUNNING: %s",
                        (str(err).strip().splitlines() or [type(err).__name__])[0][:200])
            return []
    c = clients.client(uri)
    exp = c.get_experiment_by_name(sweep)
    if exp is None:
        return []
    found = c.search_runs([exp.experiment_id], "tags.sweeps.kind = 'launch' and "
                          "attributes.status = 'RUNNING'", max_results=200)
    closed = []
    for run in found:
        ident = run.data.tags.get(LAUNCH_PROCESS, "")
        if run.data.tags.get(DETACHED) == "1" or owners.process_gone(ident) is not True:
            continue
        host, pid = ident.split(":")[:2]
        c.set_tag(run.info.run_id, "sweeps.end_reason",
                  f"its launch (PID {pid} on {host}) ended without closing it (killed)")
        c.set_terminated(run.info.run_id, "KILLED")
        closed.append(run.info.run_id)
    return closed


def mark_detached(uri: str, run_id: str) -> None:
    """The launch leaves its run open on purpose: a detached Slurm array's task closes it."""
    outage.patiently(clients.client(uri).set_tag, run_id, DETACHED, "1")


def finish_parent(uri: str, run_id: str, status: str, metrics: Mapping[str, float]) -> bool:
    """Close a launch's parent run with its best values, waiting out an outage; False (and a
    warning) if MLflow stayed away past the patience: the sweep itself is done and recorded."""
    from mlflow.entities import Metric

    c = clients.client(uri)
    now = int(time.time() * 1000)
    try:
        if metrics:
            outage.patiently(c.log_batch, run_id,
                             metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()])
        outage.patiently(c.set_terminated, run_id, status)
    except Exception as err:
        if not outage.unreachable(err):
            raise
        log.warning("could not close the launch's MLflow run %s: %s", run_id, str(err).splitlines()[0][:200])
        return False
    return True


def reproduce_command(sweep: str, study: str, number: int, storage_url: str | None) -> str:
    """The `sweeps reproduce` line of one trial (its `sweeps.reproduce` tag): the storage is
    named unless it is the default journal of the launch directory."""
    line = f"sweeps reproduce {sweep} --trial {study}:{number}"
    if storage_url and storage_url not in ("sweeps.journal", "./sweeps.journal"):
        line += f" --storage '{redact(storage_url)}'"
    return line


def run_name(optimizer: str, number: int, suffix: str = "") -> str:
    """``adam #3``, ``adam #3 seed 2``: names the MLflow UI's run table and charts can compare."""
    return f"{optimizer} #{number}{' ' + suffix if suffix else ''}"


def start_trial(uri: str, sweep: str, parent_run_id: str | None, study: str, number: int,
                optimizer: str, config: Mapping[str, Any], params: Mapping[str, Any],
                device: str, on_created: Callable[[str], None] | None = None, *, kind: str = "trial",
                name: str | None = None, extra_tags: Mapping[str, str] | None = None,
                pending: RunState | None = None, constant: Mapping[str, str] | None = None) -> str:
    """Open the child run of one trial (or of a confirm / reproduce run of it); returns its id.
    Its params are what differs from `constant`, the config its parent run holds (None:
    the whole config, for a run without a parent)."""
    c = clients.client(uri)
    tags = {"sweeps.sweep": sweep, "sweeps.study": study, "sweeps.trial": str(number),
            "sweeps.optimizer": optimizer, "sweeps.kind": kind, "sweeps.state": "running",
            "sweeps.device": device, "sweeps.worker": f"{socket.gethostname()}:{os.getpid()}",
            **environment_tags(), **(extra_tags or {})}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run = outage.patiently(lambda: c.create_run(clients.experiment_id(uri, sweep),
                                         run_name=name or run_name(optimizer, number), tags=tags))
    run_id = run.info.run_id
    if pending is not None:
        pending.id, pending.artifact_uri = run_id, run.info.artifact_uri
    if on_created is not None:
        on_created(run_id)  # record the id before anything else can be interrupted
    all_params = trial_params(config, params, constant if parent_run_id else None)
    text = config_yaml(config)
    if pending is not None:  # sent with the run's first metrics and its history (fewer writes)
        pending.params = all_params
        pending.artifacts["config.yaml"] = text
    else:
        outage.patiently(_log_params_tags, uri, run_id, all_params)
        outage.patiently(c.log_text, run_id, text, "config.yaml")
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
                    clients.client(uri).log_artifacts(self.id, tmp)
                else:
                    _artifact_repo(uri, self.artifact_uri).log_artifacts(tmp)
        self.artifacts = {}


def _artifact_repo(uri: str, artifact_uri: str) -> Any:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.utils.uri import add_databricks_profile_info_to_artifact_uri

    return get_artifact_repository(add_databricks_profile_info_to_artifact_uri(artifact_uri, uri),
                                   tracking_uri=uri)


def mark_run(uri: str, run_id: str, state: str, reason: str | None = None) -> None:
    """Set a run's sweeps.state tag and terminal status (used for failures seen from outside)."""
    try:
        c = clients.client(uri)
        outage.patiently(c.set_tag, run_id, "sweeps.state", state)
        if reason:
            outage.patiently(c.set_tag, run_id, "sweeps.failure_reason", reason[:5000])
        outage.patiently(c.set_terminated, run_id, _MLFLOW_STATUS.get(state, "FAILED"))
    except Exception as err:  # tracking must never take a worker down
        log.warning("could not update MLflow run %s: %s", run_id, err)


def mark_trial_runs(uri: str, sweep: str, study: str, number: int, state: str, reason: str,
                    run_id: str | None = None) -> list[str]:
    """Close a dead trial's run, found by its id or, where the id never reached Optuna (the
    worker died first, or the server was away), by its study and trial-number tags."""
    runs = [run_id] if run_id else []
    if not runs:
        try:
            c = clients.client(uri)
            exp = outage.patiently(c.get_experiment_by_name, sweep)
            if exp is not None:
                found = outage.patiently(c.search_runs, [exp.experiment_id],
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
        c = clients.client(uri)
        for key, value in tags.items():
            outage.patiently(c.set_tag, run_id, key, value)
    except Exception as err:  # tracking must never take a worker down
        log.warning("could not tag MLflow run %s: %s", run_id, err)


def close_orphans(uri: str, parent_run_id: str, reason: str, workers: set[str] | None = None) -> int:
    """Terminate child runs of `parent_run_id` still RUNNING (after Ctrl-C); returns how many.

    `workers` (``host:pid`` tags) limits it to runs opened by those processes, so that a
    Ctrl-C here never touches the runs of workers on other machines.
    """
    c = clients.client(uri)
    parent = c.get_run(parent_run_id)
    runs = c.search_runs([parent.info.experiment_id],
                         filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}' "
                                       "and attributes.status = 'RUNNING'")
    runs = [r for r in runs if workers is None or r.data.tags.get("sweeps.worker") in workers]
    for run in runs:
        mark_run(uri, run.info.run_id, "failed", reason)
    return len(runs)


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
    if state in MARKED:  # the runs list then says it in the name; a complete run stays as named
        name = outage.patiently(lambda: clients.client(uri).get_run(run_id).info.run_name) or ""
        tags["mlflow.runName"] = marked_name(name, state)
    now = int(time.time() * 1000)
    metrics = [] if value is None else [Metric("objective", float(value), now, 0)]
    ref = ref if ref is not None else RunState(run_id)
    outage.patiently(ref.write, uri, metrics, tags)
    if ref.artifacts:
        outage.patiently(ref.write_artifacts, uri, {})
    outage.patiently(clients.client(uri).set_terminated, run_id, _MLFLOW_STATUS.get(state, "FAILED"))
