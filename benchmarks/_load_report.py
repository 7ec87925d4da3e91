"""The load benchmark's record of one run (`Result`) and what it prints of it: the table,
where a worker's time went, the CPU bound, the targets met or missed and, for a target
missed, what the run measured that bounds it (`benchmarks/load.py`)."""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field

# the targets: 64 workers x 10 s trials >= 90 % of the ideal; 8 x 1 s >= 85 % (a fixed cost
# per trial <= 100 ms); claims >= 30 a second; trials/s >= the peer's at every size
TARGET_SHARE, TARGET_SHARE_SHORT, TARGET_FIXED_MS, TARGET_CLAIMS = 0.90, 0.85, 100.0, 30.0


@dataclass
class Result:
    workers: int
    length: float
    backend: str
    n_trials: int
    tool: str = "sweeps"
    span_s: float = 0.0
    startup_s: float = 0.0
    load_s: float = 0.0  # from the gate opening to the last process's exit (the CPU shares' span)
    counted: int = 0
    errors: list[str] = field(default_factory=list)
    running: int = 0
    runs_running: int = 0
    runs_missing: int = 0
    ask_to_run: list[float] = field(default_factory=list)
    cycles: list[float] = field(default_factory=list)  # one worker's trial start to its next
    first_starts: list[float] = field(default_factory=list)  # each worker's first trial, after the gate
    cpu: dict[str, float] = field(default_factory=dict)
    parts: list[tuple[str, float, float, float]] = field(default_factory=list)

    @property
    def ideal(self) -> float:
        return self.workers / self.length

    @property
    def rate(self) -> float:
        return self.counted / self.span_s if self.span_s else 0.0

    @property
    def fixed_ms(self) -> float:
        """What each trial cost a worker beyond its training, in the steady state: the median
        time from one of a worker's trials starting to its next starting, less L (the start
        of the run, when every worker claims at once, and its tail are left out)."""
        if not self.cycles:
            return float("nan")
        return 1000 * (statistics.median(self.cycles) - self.length)

    @property
    def cpu_s_per_trial(self) -> float:
        """CPU seconds per counted trial, the workers', PostgreSQL's and the MLflow server's
        together: what the machine's cores must supply for each trial."""
        if not self.counted:
            return float("nan")
        return sum(self.cpu.values()) * (os.cpu_count() or 1) * self.load_s / self.counted

    @property
    def start_bound(self) -> float:
        """The most of the ideal this run could reach after its start, whatever came after:
        the budget is N x R trials of L s, and a worker works only from its first trial on, so
        the run lasts at least R x L + the workers' mean first start (measured from the gate)."""
        if not self.first_starts:
            return float("nan")
        work = self.n_trials * self.length / self.workers
        return work / (work + statistics.mean(self.first_starts))

    @property
    def steady_share(self) -> float:
        """The share a longer sweep tends to: L / (L + the steady state's fixed cost a trial)."""
        return self.length / (self.length + self.fixed_ms / 1000)

    def part(self, name: str) -> tuple[float, float, float] | None:
        """A part of "where a worker's time went": ms per trial, ms per call, calls per trial."""
        return next(((a, b, c) for part, a, b, c in self.parts if part == name), None)

    @property
    def claims_per_s(self) -> float:
        """What the budget lock allows: 1 / the time it is held per claim."""
        found = self.part("claim: lock held")
        held = found[1] if found else 0.0
        return 1000 / held if held else float("nan")

    @property
    def clean(self) -> bool:
        return (self.counted == self.n_trials and not self.errors and not self.running
                and not self.runs_running and not self.runs_missing)


def pct(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def line(r: Result) -> str:
    share = r.rate / r.ideal
    cpu = " ".join(f"{v:>5.0%}" for v in r.cpu.values())
    budget = f"{r.counted}/{r.n_trials}"
    return (f"{r.workers:>3} {r.length:>5.0f} s {r.tool:<7}{r.backend:<11}{r.ideal:>7.2f}{r.rate:>7.2f}"
            f"{share:>7.0%}{r.fixed_ms:>8.0f}  {pct(r.ask_to_run, .5):>6.2f} {pct(r.ask_to_run, .99):>6.2f}"
            f"  {budget:>9} {len(r.errors):>6} {r.running:>4}/{r.runs_running}/{r.runs_missing}"
            f"  {cpu}   {r.startup_s:>5.0f} s")


HEADER = ("  N  trial tool   mlflow store  ideal   got  share  fixed  ask->run s  budget    errors "
          "RUN/runs/miss   pg mlflow workers  start-up\n"
          "                               trials/s        ms/trial p50    p99")


def parts_table(r: Result) -> list[str]:
    out = [f"  where a worker's time went ({r.workers} workers, {r.length:g} s trials): "
           "ms per trial, ms per call, calls per trial"]
    out += [f"    {part:<42}{per_trial:>9.1f}{per_call:>9.1f}{calls:>7.1f}"
            for part, per_trial, per_call, calls in r.parts]
    out.append(f"    claims a second the lock allows: {r.claims_per_s:.0f}")
    return out


def verdicts(results: list[Result], alone: Result | None = None) -> list[str]:
    out = []
    ours = {(r.workers, r.length, r.backend): r for r in results if r.tool == "sweeps"}
    peers = {(r.workers, r.length, r.backend): r for r in results if r.tool == "optuna"}
    for key, r in sorted(ours.items()):
        peer = peers.get(key)
        vs = f"; {r.rate / peer.rate:.2f}x the Optuna peer's trials/s" if peer and peer.rate else ""
        out.append(f"{r.workers:>3} x {r.length:g} s ({r.backend}): {r.rate / r.ideal:.0%} of the ideal, "
                   f"{r.fixed_ms:.0f} ms fixed cost a trial, {r.claims_per_s:.0f} claims/s{vs}; "
                   f"budget {'exact, 0 errors, 0 RUNNING' if r.clean else 'NOT clean'}")
    out += cpu_bounds(list(ours.values()))
    for r in ours.values():
        checks = []
        if r.workers == 64 and r.length == 10:
            checks.append((f">= {TARGET_SHARE:.0%} of the ideal", r.rate / r.ideal >= TARGET_SHARE))
        if r.workers == 8 and r.length == 1:
            share = r.rate / r.ideal
            checks.append((f">= {TARGET_SHARE_SHORT:.0%} of the ideal", share >= TARGET_SHARE_SHORT))
            checks.append((f"fixed cost <= {TARGET_FIXED_MS:.0f} ms", r.fixed_ms <= TARGET_FIXED_MS))
        checks.append((f"claims >= {TARGET_CLAIMS:.0f}/s", r.claims_per_s >= TARGET_CLAIMS))
        peer = peers.get((r.workers, r.length, r.backend))
        if peer is not None:
            checks.append(("trials/s >= the peer's", r.rate >= peer.rate))
        checks.append(("budget exact, 0 errors, 0 RUNNING", r.clean))
        for what, ok in checks:
            out.append(f"target ({r.workers} workers, {r.length:g} s trials, {r.backend}): {what}: "
                       f"{'met' if ok else 'MISSED'}")
        if not all(ok for what, ok in checks if "ideal" in what or "fixed" in what):
            out += [f"    {x}" for x in why_missed(r, alone)]
    return out


def why_missed(r: Result, alone: Result | None) -> list[str]:
    """What this run measured that bounds a share or fixed-cost target it missed."""
    cores = os.cpu_count() or 1
    start = (f"; the start: the workers' first trials ran {statistics.mean(r.first_starts):.2f} s "
             f"after the gate on average (the last {max(r.first_starts):.2f} s), which by itself "
             f"caps this run at {r.start_bound:.0%}") if r.first_starts else "; no trial started"
    out = [f"steady state: {r.fixed_ms:.0f} ms fixed cost a trial, so a longer sweep tends to "
           f"{r.steady_share:.0%} of the ideal{start}"]
    if alone is not None and alone.cycles:
        wait = r.part("claim: lock wait")
        lock = f"; the budget lock's wait is {wait[0]:.1f} ms of it" if wait is not None else ""
        out.append(f"one worker alone pays {alone.fixed_ms:.0f} ms a trial (its round trips and its "
                   f"own CPU); the other {r.fixed_ms - alone.fixed_ms:.0f} ms here is waiting for "
                   f"the {cores} cores and the servers that {r.workers} workers share{lock}")
    need = r.ideal * r.cpu_s_per_trial / cores
    busy = sum(r.cpu.values())
    out.append(f"the ideal {r.ideal:.1f} trials/s at this size's {r.cpu_s_per_trial:.2f} CPU-s a trial "
               f"needs {need:.0%} of the {cores} cores; they were {busy:.0%} busy on average, the "
               f"work coming in bursts as {r.workers} workers' equal trials end together")
    return out


def cpu_bounds(ours: list[Result]) -> list[str]:
    """The CPU floor: each trial costs the machine CPU seconds (workers, PostgreSQL, the MLflow
    server); at the least of them measured in this run, the cores allow so many trials a
    second, whatever the code does around the claim. A target above that is out of reach on
    this machine, and a cluster, where each worker has cores of its own, is bounded by the
    servers' share alone."""
    costs = [r.cpu_s_per_trial for r in ours if r.cpu_s_per_trial == r.cpu_s_per_trial]
    if not costs:
        return []
    least, cores = min(costs), os.cpu_count() or 1
    out = [f"CPU: the least measured here is {least:.2f} CPU-s a trial (all parts), so {cores} cores "
           f"allow at most {cores / least:.1f} trials/s"]
    for r in ours:
        share = r.cpu.get("postgresql", 0) + r.cpu.get("mlflow server", 0)
        servers = share * cores * r.load_s / max(r.counted, 1)
        out.append(f"  {r.workers:>3} x {r.length:g} s: {r.cpu_s_per_trial:.2f} CPU-s a trial "
                   f"({servers:.2f} of them the servers'); the CPU bound is "
                   f"{min(1.0, cores / least / r.ideal):.0%} of this size's ideal")
    return out
