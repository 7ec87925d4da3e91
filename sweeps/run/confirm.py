"""`sweeps confirm`: queue the seed re-runs a comparison needs, and run them.

Everything is checked before anything is written (K >= 2, N >= 1, completed trials to
confirm, a reachable tracking store); then the missing re-runs are queued in the sweep's
confirm study and run by local worker processes, or by `sweeps worker` on any machine
(``--workers 0`` only queues them).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import optuna
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from sweeps.report import comparison, summary
from sweeps.run import processes as local
from sweeps.search import allowed_targets, confirm_jobs
from sweeps.search import studies as study_mod
from sweeps.search.load import load_sweep
from sweeps.search.spec import MAX_WORKERS, SweepSpec
from sweeps.search.validate import check_for_processes
from sweeps.store import urls
from sweeps.store.storages import open_storage
from sweeps.tracking import clients
from trainer.api import UserError

MAX_SEEDS, MAX_TOP = 1000, 100  # beyond these a request exhausts the storage before it helps
ASK_ABOVE = 100  # more new runs than this are queued only with --yes, after the plan is shown


def check_request(seeds: int, top: int, workers: int | None) -> None:
    if not 2 <= seeds <= MAX_SEEDS:
        raise UserError(f"--seeds {seeds}: must be in [2, {MAX_SEEDS}] (a spread over seeds needs "
                        "at least two)")
    if not 1 <= top <= MAX_TOP:
        raise UserError(f"--top {top}: must be in [1, {MAX_TOP}] (how many configurations per "
                        "optimizer)")
    if workers is not None and not 0 <= workers <= MAX_WORKERS:
        raise UserError(f"--workers {workers}: must be in [0, {MAX_WORKERS}] (0: only queue the runs)")


def check_size(studies: Sequence[optuna.Study], new_runs: int, workers: int, yes: bool) -> None:
    """A large request is shown as a plan first: how many runs and about how long."""
    if new_runs <= ASK_ABOVE or yes:
        return
    times = sorted(float(t.user_attrs["duration_s"]) for s in studies
                   for t in s.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                   if isinstance(t.user_attrs.get("duration_s"), int | float))
    took = ""
    if times:
        seconds = times[len(times) // 2] * new_runs / max(workers, 1)
        when = f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{max(1, round(seconds / 60))} min"
        took = (f", ~{when} at the sweep's speed ({max(workers, 1)} worker(s), "
                f"{times[len(times) // 2]:.1f} s a run)")
    raise UserError(f"{new_runs:,} confirm runs to queue{took}: add --yes to queue them, or ask for "
                    "fewer (--seeds, --top)")


def _progress(confirm: optuna.Study | None, jobs: Sequence[confirm_jobs.Job]) -> tuple[int, int, int]:
    """(done, running, waiting) among the requested jobs."""
    wanted = {j.key for j in jobs}
    states: dict[tuple[str, int, int], str] = {}
    for t in confirm.get_trials(deepcopy=False) if confirm is not None else []:
        if "source_study" in t.user_attrs:
            key = confirm_jobs.Job.from_attrs(t.user_attrs).key
            if key in wanted:
                state = confirm_jobs.job_state(t)
                state = "running" if state == "queued" and t.state.name == "RUNNING" else state
                if states.get(key) != "done":
                    states[key] = state
    values = list(states.values())
    return values.count("done"), values.count("running"), values.count("queued")


def confirm(name: str, studies: Sequence[optuna.Study], url: str, tracking_uri: str | None,
            seeds: int, top: int, workers: int | None, console: Console, yes: bool = False,
            config_dir: str | None = None, allowed: Sequence[str] = ()) -> int:
    """Queue and run the re-runs; returns the exit code. `config_dir`: the user's, where the
    sweep's recorded one is not on this machine; `allowed`: packages whose `_target_`s this
    machine may call beyond its config dir's (`search.allowed_targets`)."""
    check_request(seeds, top, workers)
    storage = open_storage(url)
    latest = study_mod.latest_attrs(studies)
    optimizers = summary.sweep_optimizers(studies)
    existing = confirm_jobs.load(storage, name)
    plan = confirm_jobs.plan(studies, existing, top, seeds, optimizers)
    if not plan.jobs:
        raise UserError(f"sweep {name!r} has no completed trial to confirm yet; let `sweeps launch` "
                        "finish some trials first")
    uri = clients.resolve_uri(tracking_uri or latest.get("tracking_uri"))
    clients.check_reachable(uri)
    may_call = allowed_targets.for_this_machine(config_dir, allowed, study_mod.recorded_config_dir(studies))
    spec = load_sweep(latest.get("sweep_overrides", []), study_mod.config_dir_for(studies, config_dir),
                      may_call)
    n_workers = spec.workers if workers is None else workers
    if n_workers > 0:
        check_for_processes(spec)  # a class of the caller's script cannot reach a worker process
    check_size(studies, len(plan.missing), n_workers, yes)

    confirm_study = confirm_jobs.open_or_create(storage, name, studies)
    confirm_jobs.enqueue(confirm_study, plan.missing, studies)
    n_opts = len({j.optimizer for j in plan.jobs})
    console.print(f"confirming sweep [bold]{name}[/]: the top {top} configuration(s) of "
                  f"{n_opts} optimizer(s), seeds "
                  f"{_seed_text(plan.seeds)}: {len(plan.jobs)} runs, {len(plan.done)} done before, "
                  f"{len(plan.queued)} already queued, {len(plan.missing)} queued now", highlight=False)
    for opt in plan.without_trials:
        console.print(f"[yellow]note:[/] {opt} has no completed trial: nothing to confirm for it")
    if n_workers == 0:
        console.print("no local workers (--workers 0): run them from any machine with\n"
                      f"  sweeps worker --study {name} --storage '{urls.redact(url)}'",
                      highlight=False)
        return 0
    if plan.missing or plan.queued:
        code = _run_local(name, studies, confirm_study, plan, url, uri, n_workers, spec, top, seeds,
                          optimizers, console, tuple(may_call.packages))
        if code is not None:
            return code
    _, running, waiting = _progress(confirm_study, plan.jobs)
    if not console.is_terminal or not (plan.missing or plan.queued):
        console.print(confirm_table(studies, confirm_study))
    if running or waiting:
        console.print(f"{running} run(s) still running and {waiting} waiting on other workers")
    console.print(f"next: sweeps report {name}   (the ranking, paired tests and plots)", highlight=False)
    return 0


def _run_local(name: str, studies: Sequence[optuna.Study], confirm_study: optuna.Study,
               plan: confirm_jobs.Plan, url: str, uri: str, n_workers: int, spec: SweepSpec, top: int,
               seeds: int, optimizers: Sequence[str], console: Console,
               allowed: tuple[str, ...] = ()) -> int | None:
    """Local workers until every queued run is done; an exit code if they stopped early.
    `allowed`: the packages this process may call, which its workers may call too."""
    threads = max(1, (os.cpu_count() or 1) // n_workers)
    run_plan = local.WorkerPlan(url, name, uri, n_workers, (study_mod.CONFIRM_KIND,),
                                threads=threads, storage_cfg=dict(spec.storage),
                                max_restarts=spec.max_worker_restarts, config_dir=spec.config_dir,
                                allowed_targets=tuple(allowed),
                                shared_writer=spec.tracking_writer == "process")

    def line() -> str:
        done, running, waiting = _progress(confirm_study, plan.jobs)
        return f"[{done}/{len(plan.jobs)}] confirm runs done  running {running}  waiting {waiting}"

    def render() -> Group:
        return Group(Text(line()), confirm_table(studies, confirm_study))

    while True:
        outcome = local.run(run_plan, lambda: [confirm_study], render, line, console,
                            confirm_study.user_attrs.get("parent_run_id"))
        if outcome.interrupted:
            return outcome.stop_code
        if outcome.gave_up:
            console.print(f"[red]{len(outcome.dead)} worker(s) died[/] and "
                          f"sweep.max_worker_restarts={spec.max_worker_restarts} is used up; "
                          "their runs are marked failed. Run the same command again to finish them.")
            return 1
        if not outcome.dead:
            return None
        # runs lost with a dead worker: queue them again (restarts left bound this loop)
        lost = confirm_jobs.plan(studies, confirm_study, top, seeds, optimizers).missing
        if not lost:
            return None
        confirm_jobs.enqueue(confirm_study, lost, studies)
        console.print(f"re-queued {len(lost)} run(s) lost with a dead worker", highlight=False)


def _seed_text(seeds: Sequence[int]) -> str:
    if len(seeds) > 2 and list(seeds) == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def confirm_table(studies: Sequence[optuna.Study], confirm: optuna.Study | None) -> Table:
    """Per confirmed configuration: seeds done, val and test accuracy mean ± std [95 % CI]."""
    comp = comparison.build(studies, confirm)
    table = Table(title="confirm runs: each configuration over its seeds (mean ± std [95 % CI])")
    task = comp.task
    for col in ("optimizer", "trial", "seeds", task.val_key, task.test_key, "diverged"):
        table.add_column(col, justify="left" if col == "optimizer" else "right")
    for row in comp.rows:
        for cfg in row.configs:
            test = comparison.fmt_summary(cfg.test) if cfg.test is not None or comp.n_test \
                else "no test split"
            table.add_row(row.optimizer, f"#{cfg.trial.number}", cfg.seeds_text(),
                          comparison.fmt_summary(cfg.val), test, str(cfg.diverged))
    return table
