"""`sweeps launch`: validate, create or resume the studies, open the parent run, run workers.

Order matters: everything that can be wrong with the input (config, search space,
storage reachability, an existing study with another space) is checked before the
first write, so a rejected launch leaves the study and tracking stores untouched.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
import yaml
from rich.console import Console, Group
from rich.text import Text

from sweeps import checkpoints, local, summary, tracking
from sweeps import storage as storage_mod
from sweeps import study as study_mod
from sweeps.config import SweepSpec, load_sweep


@dataclass
class Prepared:
    spec: SweepSpec
    url: str
    uri: str
    checkpoint_dir: str


def prepare(overrides: Sequence[str]) -> Prepared:
    """Validate everything; write nothing."""
    spec = load_sweep(overrides)
    checkpoint_dir = str(checkpoints.check_writable(spec.checkpoint_dir))
    url = str(spec.storage["url"])
    storage_mod.check_reachable(url)
    uri = tracking.resolve_uri(spec.tracking_uri)
    tracking.check_reachable(uri)
    if storage_mod.exists(url):
        study_mod.check_compatible(storage_mod.open_storage(url, spec.storage), spec)
    return Prepared(spec, url, uri, checkpoint_dir)


def _parent_params(p: Prepared) -> dict[str, Any]:
    s = p.spec
    return {"sweep": dict(p.spec.raw["sweep"]), "storage": storage_mod.redact(p.url),
            "tracking_uri": storage_mod.redact(p.uri), "overrides": " ".join(s.overrides),
            "threads_per_worker": s.threads_per_worker,
            "studies": ",".join(st.name for st in s.studies)}


def _artifacts(spec: SweepSpec) -> dict[str, str]:
    spaces = {st.name: st.space.describe() for st in spec.studies}
    return {
        "search_space.yaml": yaml.safe_dump(spaces, sort_keys=False),
        "sweep.yaml": yaml.safe_dump({"sweep": dict(spec.raw["sweep"]),
                                      "base_config": {st.name: dict(st.base) for st in spec.studies}},
                                     sort_keys=False),
    }


def _progress_line(studies: Sequence[optuna.Study], total: int, restarts: int = 0) -> str:
    rows = summary.study_rows(studies)
    counts = {s: sum(r.counts[s] for r in rows) for s in summary.STATE_COLUMNS}
    best = summary.overall_best(studies)
    done = summary.finished_count(studies)
    text = (f"[{done}/{total}] complete {counts['complete']}  pruned {counts['pruned']}  "
            f"failed {counts['failed']}  diverged {counts['diverged']}  running {counts['running']}")
    retried = summary.retried_count(studies)
    if retried or restarts:
        text += f"  retried {retried}  worker restarts {restarts}"
    if best is not None:
        study, t = best
        text += f"  | best val/acc {t.value:.4f} ({study.study_name} #{t.number})"
    return text


def _render(studies: Sequence[optuna.Study], title: str, total: int, restarts: int = 0) -> Group:
    return Group(Text(_progress_line(studies, total, restarts)), summary.status_table(studies, title))


def _best_metrics(studies: Sequence[optuna.Study]) -> dict[str, float]:
    best = summary.best_per_optimizer(studies)
    metrics = {f"best/val_acc/{opt}": t.value for opt, (_, t) in best.items() if t.value is not None}
    overall = summary.overall_best(studies)
    if overall is not None and overall[1].value is not None:
        metrics["best/val_acc"] = overall[1].value
    return metrics


def launch(overrides: Sequence[str], console: Console | None = None) -> int:
    """Run a sweep to its budget (or timeout); returns the process exit code."""
    console = console or Console()
    p = prepare(overrides)
    with storage_mod.launch_lock(p.url, p.spec.name):
        return _launch(p, console)


def _launch(p: Prepared, console: Console) -> int:
    spec = p.spec
    storage = storage_mod.open_storage(p.url, spec.storage)
    study_mod.create_studies(storage, spec, p.uri, p.checkpoint_dir)
    studies = study_mod.sweep_studies(storage, spec.name)
    stale = study_mod.fail_dead_local_trials(studies)
    if stale:
        console.print(f"marked {len(stale)} trial(s) of dead local workers as failed")
    tracking.PATIENCE_S = spec.tracking_patience_s  # an outage from here on is waited out
    parent = tracking.start_parent(p.uri, spec.name, _parent_params(p), _artifacts(spec))
    for s in studies:
        s.set_user_attr("parent_run_id", parent)
    total = sum(st.budget for st in spec.studies)
    if spec.mode == "compare" and spec.n_trials % len(spec.optimizers):
        console.print(f"[yellow]note:[/] {spec.n_trials} trials do not split equally between "
                      f"{len(spec.optimizers)} optimizers: {total} will run "
                      f"({total // len(spec.optimizers)} each)")
    console.print(f"sweep [bold]{spec.name}[/] ({spec.mode}): {len(studies)} stud"
                  f"{'y' if len(studies) == 1 else 'ies'}, {total} trials, {spec.workers} worker(s) "
                  f"x {spec.threads_per_worker} thread(s); storage {storage_mod.redact(p.url)}; "
                  f"tracking {storage_mod.redact(p.uri)}", highlight=False)
    if spec.workers == 0:
        tracking.finish_parent(p.uri, parent, "FINISHED", {})
        console.print("no local workers (sweep.workers=0): join from any machine with\n"
                      f"  sweeps worker --study {spec.name} --storage '{storage_mod.redact(p.url)}'")
        return 0
    if all(study_mod.used_budget(s) >= int(s.user_attrs.get("budget", 0)) for s in studies):
        tracking.finish_parent(p.uri, parent, "FINISHED", {})
        console.print("the budget of every study is already spent; raise sweep.n_trials to run more")
        console.print(summary.status_table(studies, f"sweep {spec.name}"))
        return 0
    deadline = time.time() + spec.timeout if spec.timeout else None
    plan = local.WorkerPlan(p.url, spec.name, p.uri, spec.workers, ("search",), deadline,
                            threads=spec.threads_per_worker, storage_cfg=dict(spec.storage),
                            max_restarts=spec.max_worker_restarts, devices=spec.worker_devices)
    title = f"sweep {spec.name}"
    outcome: local.Outcome | None = None
    try:
        outcome = local.run(plan, lambda: studies,
                            lambda: _render(studies, title, total, plan.restarts),
                            lambda: _progress_line(studies, total, plan.restarts), console, parent)
    finally:  # the parent run is closed whatever happened, with the best values so far
        killed = outcome is None or outcome.interrupted
        if not tracking.finish_parent(p.uri, parent, "KILLED" if killed else "FINISHED",
                                      _best_metrics(studies)):
            console.print(f"[yellow]MLflow stayed unreachable[/] past tracking.patience_s="
                          f"{spec.tracking_patience_s:g}: the launch's run {parent} is left open "
                          "(the sweep itself is complete in the Optuna storage)", highlight=False)
    if not outcome.interrupted:
        _complete_tracking(studies, storage, spec.name, p.uri, console)
    code = 0
    if outcome.interrupted:
        code = 130
    elif outcome.gave_up:
        console.print(f"[red]{len(outcome.dead)} worker(s) died[/] and sweep.max_worker_restarts="
                      f"{spec.max_worker_restarts} is used up; their trials are marked failed. "
                      "Run the same command again to continue the sweep (lost trials are retried "
                      "from their checkpoints).")
        code = 1
    elif outcome.dead:
        console.print(f"{len(outcome.dead)} worker(s) died and were restarted; "
                      f"{summary.retried_count(studies)} trial(s) retried from their last "
                      "checkpoint.", highlight=False)
    if code in (0, 1):
        if not console.is_terminal:
            console.print(summary.status_table(studies, title))
        from sweeps import comparison
        from sweeps import confirm as confirm_mod

        comp = comparison.build(studies, confirm_mod.load(storage, spec.name))
        console.print(summary.best_table(comp))
        for line in summary.best_notes(comp):
            console.print(line, highlight=False, soft_wrap=True)
        console.print(f"next: sweeps confirm {spec.name} | sweeps report {spec.name} | "
                      f"sweeps best {spec.name} | sweeps ui", highlight=False)
    return code


def _complete_tracking(studies: Sequence[optuna.Study], storage: Any, sweep: str, uri: str,
                       console: Console) -> None:
    """A worker of this host that died took its queued MLflow writes with it (runs left
    RUNNING, epochs never sent): write them from the Optuna record, as `sweeps sync` does."""
    from sweeps import confirm as confirm_mod
    from sweeps import sync

    try:
        tracking.check_reachable(uri)
        done = sync.sync(studies, confirm_mod.load(storage, sweep), uri, sweep, dead_local_only=True)
    except Exception as err:  # the search is over and recorded in Optuna; tracking can wait
        console.print(f"[yellow]MLflow not brought up to date[/] ({str(err).splitlines()[0][:200]}); "
                      f"run `sweeps sync {sweep}` when it is reachable", highlight=False)
        return
    if done.created or done.completed:
        console.print(f"MLflow: {done.created + done.completed} run(s) of dead workers completed "
                      "from the Optuna record", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(launch(sys.argv[1:]))
