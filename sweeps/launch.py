"""`sweeps launch`: validate, create or resume the studies, open the parent run, run workers.

Order matters: everything that can be wrong with the input (config, search space,
storage reachability, an existing study with another space) is checked before the
first write, so a rejected launch leaves the study and tracking stores untouched.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from sweeps import storage as storage_mod
from sweeps import study as study_mod
from sweeps import summary, tracking
from sweeps.config import SweepSpec, load_sweep
from sweeps.worker import run_worker


@dataclass
class Prepared:
    spec: SweepSpec
    url: str
    uri: str


def prepare(overrides: Sequence[str]) -> Prepared:
    """Validate everything; write nothing."""
    spec = load_sweep(overrides)
    url = str(spec.storage["url"])
    storage_mod.check_reachable(url)
    uri = tracking.resolve_uri(spec.tracking_uri)
    tracking.check_reachable(uri)
    if storage_mod.exists(url):
        study_mod.check_compatible(storage_mod.open_storage(url, spec.storage), spec)
    return Prepared(spec, url, uri)


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


def _progress_line(studies: Sequence[optuna.Study], total: int) -> str:
    rows = summary.study_rows(studies)
    counts = {s: sum(r.counts[s] for r in rows) for s in summary.STATE_COLUMNS}
    best = summary.overall_best(studies)
    done = summary.finished_count(studies)
    text = (f"[{done}/{total}] complete {counts['complete']}  pruned {counts['pruned']}  "
            f"failed {counts['failed']}  diverged {counts['diverged']}  running {counts['running']}")
    if best is not None:
        study, t = best
        text += f"  | best val/acc {t.value:.4f} ({study.study_name} #{t.number})"
    return text


def _render(studies: Sequence[optuna.Study], title: str, total: int) -> Group:
    return Group(Text(_progress_line(studies, total)), summary.status_table(studies, title))


def launch(overrides: Sequence[str], console: Console | None = None) -> int:
    """Run a sweep to its budget (or timeout); returns the process exit code."""
    console = console or Console()
    p = prepare(overrides)
    spec = p.spec
    storage = storage_mod.open_storage(p.url, spec.storage)
    study_mod.create_studies(storage, spec, p.uri)
    studies = study_mod.sweep_studies(storage, spec.name)
    stale = study_mod.fail_dead_local_trials(studies)
    if stale:
        console.print(f"marked {len(stale)} trial(s) of dead local workers as failed")
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
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=run_worker, name=f"sweeps-worker-{i}",
                         args=(p.url, spec.name, i, None, p.uri, deadline, "outputs", True,
                               dict(spec.storage)))
             for i in range(spec.workers)]
    for proc in procs:
        proc.start()
    reported: set[int] = set()
    status = "FINISHED"
    code = 0
    title = f"sweep {spec.name}"
    live_ok = console.is_terminal
    last_line = ""
    try:
        with Live(_render(studies, title, total), console=console, refresh_per_second=2,
                  transient=False) if live_ok else _NullLive() as live:
            while any(proc.is_alive() for proc in procs):
                time.sleep(1.0)
                _check_dead(procs, reported, studies, console)
                if live_ok:
                    live.update(_render(studies, title, total))
                else:
                    line = _progress_line(studies, total)
                    if line != last_line:
                        console.print(line, highlight=False)
                        last_line = line
            _check_dead(procs, reported, studies, console)
            if live_ok:
                live.update(_render(studies, title, total))
    except KeyboardInterrupt:
        status, code = "KILLED", 130
        _stop_workers(procs)
        n = len(study_mod.fail_dead_local_trials(studies, {pr.pid for pr in procs if pr.pid},
                                                 "interrupted (Ctrl-C)"))
        tracking.close_orphans(p.uri, parent, "interrupted (Ctrl-C)")
        console.print(f"[yellow]interrupted[/]: {n} running trial(s) marked failed (interrupted); "
                      "run the same command again to resume")
    finally:
        best = summary.best_per_optimizer(studies)
        metrics = {f"best/val_acc/{opt}": t.value for opt, (_, t) in best.items() if t.value is not None}
        overall = summary.overall_best(studies)
        if overall is not None and overall[1].value is not None:
            metrics["best/val_acc"] = overall[1].value
        tracking.finish_parent(p.uri, parent, status, metrics)
    if code == 0 and reported:
        console.print(f"[red]{len(reported)} worker(s) died[/]; their trials are marked failed. "
                      "Run the same command again to continue the sweep.")
        code = 1
    if code in (0, 1):
        if not live_ok:
            console.print(summary.status_table(studies, title))
        console.print(summary.best_table(studies))
        console.print(f"next: sweeps best {spec.name} | sweeps reproduce {spec.name} | sweeps ui",
                      highlight=False)
    return code


class _NullLive:
    def __enter__(self) -> _NullLive:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, *args: Any) -> None:
        return None


def _check_dead(procs: Sequence[Any], reported: set[int], studies: Sequence[optuna.Study],
                console: Console) -> None:
    for proc in procs:
        if proc.exitcode not in (None, 0) and proc.pid not in reported:
            reported.add(proc.pid)
            failed = study_mod.fail_dead_local_trials(
                studies, {proc.pid}, f"worker died (exit code {proc.exitcode})")
            console.print(f"[red]worker {proc.name} (pid {proc.pid}) died with exit code "
                          f"{proc.exitcode}[/]; {len(failed)} running trial(s) marked failed")


def _stop_workers(procs: Sequence[Any], timeout: float = 30.0) -> None:
    """Workers get SIGINT from the terminal too; make sure, then wait, then force."""
    for proc in procs:
        if proc.is_alive() and proc.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGINT)
    end = time.time() + timeout
    for proc in procs:
        proc.join(max(0.0, end - time.time()))
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
            proc.join(5)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(launch(sys.argv[1:]))
