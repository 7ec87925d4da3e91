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
from rich.console import Console
from rich.markup import escape

from sweeps.report import failures, summary
from sweeps.run import checkpoints, fail_fast, lost_trials, progress, slurm_jobs, slurm_launch, warmup
from sweeps.run import processes as local
from sweeps.search import allowed_targets
from sweeps.search import budget as study_budget
from sweeps.search import studies as study_mod
from sweeps.search.load import load_sweep
from sweeps.search.spec import SweepSpec
from sweeps.search.validate import check_for_processes
from sweeps.store import existing, locks, urls
from sweeps.store.storages import open_storage
from sweeps.tracking import clients, outage
from sweeps.tracking import params as tracking_params
from sweeps.tracking import runs as tracking_runs
from trainer.api import UserError


@dataclass
class Prepared:
    spec: SweepSpec
    url: str
    uri: str
    checkpoint_dir: str


def prepare(spec: SweepSpec, workers: local.LocalWorkers | None = None) -> Prepared:
    """Validate everything, including one batch through each model (in the first of the
    launch's `workers` where they are started already); write nothing."""
    if spec.launcher["name"] == "slurm":
        slurm_jobs.preflight(spec.launcher)  # before the stores: would Slurm take the job at all
    checkpoint_dir = str(checkpoints.check_writable(spec.checkpoint_dir))
    url = str(spec.storage["url"])
    urls.check_reachable(url)
    uri = clients.resolve_uri(spec.tracking_uri)
    clients.check_reachable(uri)
    if urls.exists(url):
        if not urls.is_database(url):  # a file that is not a journal is not made one
            existing.check(url)
        study_mod.check_compatible(open_storage(url, spec.storage), spec)
    if workers is not None:
        clients.preload(uri)  # while the first worker still starts up
        workers.check_models(spec)
    else:
        warmup.check_models(spec)
    return Prepared(spec, url, uri, checkpoint_dir)


def _say_shadowed(console: Console, config_dir: str | None) -> None:
    """Name the user's config files that replace bundled ones (the user's win)."""
    from pathlib import Path

    from trainer.api import conf_dir, user_dir

    user = Path(config_dir) if config_dir else None
    for name in user_dir.shadowed(conf_dir(), user):
        console.print(f"note: {name} from the config dir {user} replaces the bundled {name}",
                      highlight=False)


def _parent_params(p: Prepared) -> dict[str, Any]:
    s = p.spec
    return {"sweep": dict(p.spec.raw["sweep"]), "storage": urls.redact(p.url),
            "tracking_uri": urls.redact(p.uri), "overrides": " ".join(s.overrides),
            "threads_per_worker": s.threads_per_worker,
            "studies": ",".join(st.name for st in s.studies),
            **tracking_params.constant_config(s)}  # what every trial shares: not on its run


def _artifacts(spec: SweepSpec) -> dict[str, str]:
    spaces = {st.name: st.space.describe() for st in spec.studies}
    return {
        "search_space.yaml": yaml.safe_dump(spaces, sort_keys=False),
        "sweep.yaml": yaml.safe_dump({"sweep": dict(spec.raw["sweep"]),
                                      "base_config": {st.name: dict(st.base) for st in spec.studies}},
                                     sort_keys=False),
        "config.yaml": tracking_params.constant_yaml(spec),
    }


def launch(overrides: Sequence[str], console: Console | None = None, detach: bool = False,
           config_dir: str | None = None) -> int:
    """Run a sweep to its budget (or timeout); returns the process exit code.

    The steps, in order, each a call into the package that owns it:

    1. load and validate the sweep (`load_sweep`), then start the local workers at once
       (`_start_workers`: run.processes, run.start_gate): they warm up and wait at the gate;
    2. check every store it names and, in the first worker, every model (`prepare`: search,
       store, tracking, run.warmup; nothing is written before this passes);
    3. create or resume its studies (`_open_studies`: search.studies), open the launch's
       parent run (`_open_parent`: tracking.runs);
    4. release the local workers and follow them to the budget (`_run_workers`), or submit
       them as a Slurm array job and follow that (`_run_array`: run.slurm_launch), closing
       the parent run whatever happens (a launch that gives up first stops its workers);
    5. finish: bring MLflow up to date, say how it ended, print the best trials
       (`_finish`: tracking.sync, report.summary).
    """
    console = console or Console()
    spec = load_sweep(overrides, config_dir)
    slurm = spec.launcher["name"] == "slurm"
    if slurm or spec.workers > 0:
        check_for_processes(spec)  # a class of the caller's script cannot reach a worker process
    if detach and not slurm:
        raise UserError("--detach: only with launcher=slurm (a local launch's workers are "
                        "processes of the launch itself)")
    workers = _start_workers(spec)  # they start up while this process checks the stores
    try:
        p = prepare(spec, workers)
        if slurm:
            slurm_jobs.check_time(p.spec.launcher, _epoch_estimate(p))
        _say_shadowed(console, spec.config_dir)
        for note in p.spec.notes:
            console.print(note, highlight=False)
        with locks.launch_lock(p.url, p.spec.name):
            storage, studies = _open_studies(p, console)
            parent = _open_parent(p, studies, console)
            if not _has_work(p, studies, parent, console):
                return 0
            if slurm:
                outcome = _run_array(p, studies, parent, console, detach)
                if outcome is None:
                    return 0
            else:
                assert workers is not None  # _has_work: a local launch without workers has none
                started, workers = workers, None  # followed (and stopped) by _run_workers now
                outcome = _run_workers(p, studies, parent, console, started)
            return _finish(p, storage, studies, outcome, console)
    finally:
        if workers is not None:  # given up before the workers were followed
            workers.abort()


def _start_workers(spec: SweepSpec) -> local.LocalWorkers | None:
    """A local launch's workers, started now: each composes the sweep, warms up and waits at
    the start gate until the studies and the parent run exist (`run.start_gate`)."""
    if spec.launcher["name"] != "local" or spec.workers == 0:
        return None
    deadline = time.time() + spec.timeout if spec.timeout else None
    plan = local.WorkerPlan(str(spec.storage["url"]), spec.name, None, spec.workers, ("search",),
                            deadline, threads=spec.threads_per_worker, storage_cfg=dict(spec.storage),
                            max_restarts=spec.max_worker_restarts, devices=spec.worker_devices,
                            overrides=tuple(spec.overrides), config_dir=spec.config_dir,
                            allowed_targets=tuple(sorted(allowed_targets.in_overrides(spec.overrides))),
                            shared_writer=spec.tracking_writer == "process")
    return local.LocalWorkers(plan).start()


def _epoch_estimate(p: Prepared) -> float | None:
    """Seconds per epoch on a resumed sweep's finished trials (None for a new sweep)."""
    if not urls.exists(p.url):
        return None
    return slurm_launch.epoch_seconds(study_mod.sweep_studies(open_storage(p.url, p.spec.storage),
                                                              p.spec.name))


def _open_studies(p: Prepared, console: Console) -> tuple[Any, list[optuna.Study]]:
    """Create (or resume) the studies; trials left RUNNING by dead local workers are failed."""
    storage = open_storage(p.url, p.spec.storage)
    study_mod.create_studies(storage, p.spec, p.uri, p.checkpoint_dir)
    studies = study_mod.sweep_studies(storage, p.spec.name)
    stale = lost_trials.fail_dead_local_trials(studies)
    if stale:
        console.print(f"marked {len(stale)} trial(s) of dead local workers as failed")
    last = fail_fast.clear(studies)  # this launch may claim again
    if last is not None:
        console.print(f"note: the last launch stopped on a repeated error ({last.get('signature')}); "
                      "running again", highlight=False, soft_wrap=True)
    return storage, studies


def _total(spec: SweepSpec) -> int:
    return sum(st.budget for st in spec.studies)


def _open_parent(p: Prepared, studies: Sequence[optuna.Study], console: Console) -> str:
    """The launch's MLflow parent run, recorded in every study; then the sweep's line."""
    spec = p.spec
    outage.set_patience(spec.tracking_patience_s)  # an outage from here on is waited out
    _close_orphans(p.uri, spec.name, console)
    parent = tracking_runs.start_parent(p.uri, spec.name, _parent_params(p), _artifacts(spec))
    for s in studies:
        s.set_user_attr("parent_run_id", parent)
    total = _total(spec)
    if spec.mode == "compare" and spec.n_trials % len(spec.optimizers):
        console.print(f"[yellow]note:[/] {spec.n_trials} trials do not split equally between "
                      f"{len(spec.optimizers)} optimizers: {total} will run "
                      f"({total // len(spec.optimizers)} each)")
    where = (f"{spec.workers} worker(s) x {spec.threads_per_worker} thread(s)"
             if spec.launcher["name"] == "local" else
             f"a Slurm array of {spec.launcher['workers']} worker task(s)")
    console.print(f"sweep [bold]{spec.name}[/] ({spec.mode}): {len(studies)} stud"
                  f"{'y' if len(studies) == 1 else 'ies'}, {total} trials, {where}; storage "
                  f"{urls.redact(p.url)}; tracking {urls.redact(p.uri)}", highlight=False)
    return parent


def _close_orphans(uri: str, sweep: str, console: Console) -> None:
    """Earlier launches of this sweep that died without closing their runs (killed): their
    runs closed, and said (their workers left with them: `processes.die_with_parent`)."""
    closed = tracking_runs.close_orphan_parents(uri, sweep, tidying=True)
    if closed:
        console.print(f"[yellow]note:[/] closed {len(closed)} MLflow run(s) of earlier launches of "
                      f"{sweep} that ended without closing them (killed): {', '.join(closed)}",
                      highlight=False, soft_wrap=True)


def _has_work(p: Prepared, studies: Sequence[optuna.Study], parent: str, console: Console) -> bool:
    """False (the parent run closed, and why said) without local workers or budget left."""
    spec = p.spec
    if spec.workers == 0 and spec.launcher["name"] == "local":
        tracking_runs.finish_parent(p.uri, parent, "FINISHED", {})
        console.print("no local workers (sweep.workers=0): join from any machine with\n"
                      f"  sweeps worker --study {spec.name} --storage '{urls.redact(p.url)}'")
        return False
    if all(study_budget.used_budget(s) >= int(s.user_attrs.get("budget", 0)) for s in studies):
        tracking_runs.finish_parent(p.uri, parent, "FINISHED", {})
        console.print("the budget of every study is already spent; raise sweep.n_trials to run more")
        console.print(summary.status_table(studies, f"sweep {spec.name}"))
        return False
    return True


def _run_workers(p: Prepared, studies: Sequence[optuna.Study], parent: str,
                 console: Console, workers: local.LocalWorkers) -> local.Outcome:
    """The local workers (started at the launch's start) released to claim trials and
    followed live until they are done; the parent run is closed whatever happened, with
    the best values so far."""
    spec, plan = p.spec, workers.plan
    plan.uri = p.uri  # the workers read theirs from the studies; a replacement gets it here
    workers.release()
    title, total = f"sweep {spec.name}", _total(spec)
    outcome: local.Outcome | None = None
    try:
        outcome = local.run(plan, lambda: studies,
                            lambda: progress.render(studies, title, total, plan.restarts),
                            lambda: progress.line(studies, total, plan.restarts), console, parent,
                            workers)
    finally:
        _close_parent(p, studies, parent, outcome, console)
    return outcome


def _run_array(p: Prepared, studies: Sequence[optuna.Study], parent: str, console: Console,
               detach: bool) -> local.Outcome | None:
    """The workers as one Slurm array job, followed like local ones (None: detached)."""
    try:
        array = slurm_launch.submit(p, studies, console, detach)
    except BaseException:  # refused by sbatch after all: the launch's run must not stay RUNNING
        tracking_runs.finish_parent(p.uri, parent, "FAILED", {})
        raise
    if detach:
        tracking_runs.mark_detached(p.uri, parent)
        console.print(f"detached: follow with `sweeps status {p.spec.name}`, stop with `scancel "
                      f"{array.job_id}`; the launch's MLflow run is closed by the task that finds "
                      "the budget spent", highlight=False, soft_wrap=True)
        return None
    title, total = f"sweep {p.spec.name}", _total(p.spec)
    outcome: local.Outcome | None = None
    try:
        outcome = slurm_launch.follow(array, studies, lambda: progress.render(studies, title, total), console)
    finally:
        _close_parent(p, studies, parent, outcome, console)
    return outcome


def _close_parent(p: Prepared, studies: Sequence[optuna.Study], parent: str,
                  outcome: local.Outcome | None, console: Console) -> None:
    killed = outcome is None or outcome.interrupted
    if not tracking_runs.finish_parent(p.uri, parent, "KILLED" if killed else "FINISHED",
                                       summary.best_metrics(studies)):
        console.print(f"[yellow]MLflow stayed unreachable[/] past tracking.patience_s="
                      f"{p.spec.tracking_patience_s:g}: the launch's run {parent} is left open "
                      "(the sweep itself is complete in the Optuna storage)", highlight=False)


def _finish(p: Prepared, storage: Any, studies: Sequence[optuna.Study], outcome: local.Outcome,
            console: Console) -> int:
    """MLflow brought up to date, how the workers ended, the best trials; the exit code."""
    spec = p.spec
    if not outcome.interrupted:
        _complete_tracking(studies, storage, spec.name, p.uri, console)
    code = 0
    halt = fail_fast.halted(studies)
    if outcome.interrupted:
        code = outcome.stop_code
    elif halt is not None:
        _say_halted(studies, halt, spec.name, console)
        return 1
    elif outcome.gave_up and spec.launcher["name"] != "local":
        code = 1  # the follower said which job ended and where its logs are
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
        if summary.overall_best(studies) is None:  # nothing to confirm, report or reproduce
            _say_nothing_completed(studies, spec.name, console)
            return 1
        _print_best(storage, studies, spec.name, console)
    return code


def _say_halted(studies: Sequence[optuna.Study], halt: dict[str, Any], name: str,
                console: Console) -> None:
    """The sweep stopped on a systematic error: the reason once, the trials by reason."""
    if not console.is_terminal:
        console.print(summary.status_table(studies, f"sweep {name}"))
    table = failures.causes_table(studies)
    if table is not None:
        console.print(table)
    lines = fail_fast.describe(halt, name)
    console.print(f"[red]{escape(lines[0])}[/]", highlight=False, soft_wrap=True)
    for line in lines[1:]:
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def _say_nothing_completed(studies: Sequence[optuna.Study], name: str, console: Console) -> None:
    if not console.is_terminal:
        console.print(summary.status_table(studies, f"sweep {name}"))
    table = failures.causes_table(studies)
    if table is not None:
        console.print(table)
    console.print(f"[red]no trial of sweep {name} completed[/]: nothing to compare, confirm or "
                  f"report; see the reasons above and `sweeps status {name}`", highlight=False)


def _print_best(storage: Any, studies: Sequence[optuna.Study], name: str, console: Console) -> None:
    from sweeps.report import comparison
    from sweeps.search import confirm_jobs

    if not console.is_terminal:
        console.print(summary.status_table(studies, f"sweep {name}"))
    table = failures.causes_table(studies)
    if table is not None:
        console.print(table)
    comp = comparison.build(studies, confirm_jobs.load(storage, name))
    console.print(summary.best_table(comp))
    for line in summary.best_notes(comp):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"next: sweeps confirm {name} | sweeps report {name} | "
                  f"sweeps best {name} | sweeps ui", highlight=False)


def _complete_tracking(studies: Sequence[optuna.Study], storage: Any, sweep: str, uri: str,
                       console: Console) -> None:
    """A worker of this host that died took its queued MLflow writes with it (runs left
    RUNNING, epochs never sent): write them from the Optuna record, as `sweeps sync` does."""
    from sweeps.search import confirm_jobs
    from sweeps.tracking import sync

    try:
        clients.check_reachable(uri)
        done = sync.sync(studies, confirm_jobs.load(storage, sweep), uri, sweep, dead_local_only=True)
    except Exception as err:  # the search is over and recorded in Optuna; tracking can wait
        console.print(f"[yellow]MLflow not brought up to date[/] ({str(err).splitlines()[0][:200]}); "
                      f"run `sweeps sync {sweep}` when it is reachable", highlight=False)
        return
    if done.created or done.completed:
        console.print(f"MLflow: {done.created + done.completed} run(s) of dead workers completed "
                      "from the Optuna record", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(launch(sys.argv[1:]))
