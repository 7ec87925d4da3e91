"""Start-up and exit latency of the CLI: launch, confirm and the read-only commands.

    python benchmarks/latency.py [--trials 24] [--repeats 3] [--cold]

Each round runs, in a new directory (the data cache warm, as for any user after the first
run): `sweeps launch sweep=quick sweep.optimizers=[adam] sweep.n_trials=N`; the same
launch again with 2N trials (a directory with an existing sweep: it resumes); `sweeps
confirm --top 1 --seeds 4`; then `sweeps status`, `sweeps best`, `sweeps report` and
`sweeps --help`. A launch or confirm is split, from the trials' own start and end times in
the Optuna record, into command start -> first trial running, the trials' span, and last
trial end -> exit. Beside them, in the same round, the floors: a bare `python -c pass`,
`import torch`, and `import torch, torch._dynamo` (what a worker imports before it may
claim a trial: torch.optim's constructors import torch._dynamo). `--cold` also clears
this tool's caches (composed configs, the empty MLflow store) before each round: the first
sweep on a machine. Medians over the rounds; the targets are issue 20's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna

TARGETS = {  # seconds, on a 2-core machine
    "launch: start -> first trial": 4.0, "launch: last trial -> exit": 1.0,
    "resume: start -> first trial": 4.0, "resume: last trial -> exit": 1.0,
    "confirm: start -> first run": 4.0, "confirm: last run -> exit": 1.0,
    "sweeps status": 1.0, "sweeps best": 1.0, "sweeps --help": 0.5,
}
FLOORS = {"python -c pass": "pass", "import torch": "import torch",
          "import torch, torch._dynamo": "import torch, torch._dynamo"}


@dataclass
class Round:
    times: dict[str, float] = field(default_factory=dict)


def _env(cache: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}
    if cache is not None:
        env["SWEEPS_CACHE_DIR"] = str(cache)
    return env


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(start, end) wall-clock times of one command, which must succeed."""
    start = time.time()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    end = time.time()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return start, end


def _trials(cwd: Path, confirm: bool) -> list[optuna.trial.FrozenTrial]:
    from sweeps.store.storages import open_storage

    storage = open_storage(str(cwd / "sweeps.journal"))
    out = []
    for summary in optuna.get_all_study_summaries(storage):
        if summary.study_name.endswith(".confirm") != confirm:
            continue
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        out += [t for t in study.get_trials(deepcopy=False) if t.datetime_start]
    return out


def _phases(name: str, start: float, end: float, trials: list[optuna.trial.FrozenTrial],
            since: float, unit: str = "trial") -> dict[str, float]:
    """Start -> first job running, the jobs' span, last job end -> exit (jobs begun after
    `since`: a resumed sweep's earlier trials are not this command's)."""
    mine = [t for t in trials if t.datetime_start.timestamp() >= since]
    if not mine:
        raise SystemExit(f"{name}: no {unit} ran")
    first = min(t.datetime_start.timestamp() for t in mine)
    last = max(t.datetime_complete.timestamp() for t in mine if t.datetime_complete)
    return {f"{name}: start -> first {unit}": first - start,
            f"{name}: {unit}s span ({len(mine)})": last - first,
            f"{name}: last {unit} -> exit": end - last,
            f"{name}: whole command": end - start}


def one_round(trials: int, cold: bool) -> Round:
    r = Round()
    with tempfile.TemporaryDirectory(prefix="sweeps-latency-") as tmp:
        cwd, cache = Path(tmp) / "sweep", (Path(tmp) / "cache" if cold else None)
        cwd.mkdir()
        env = _env(cache)
        py = sys.executable
        for label, code in FLOORS.items():
            s, e = _run([py, "-c", code], cwd, env)
            r.times[f"floor: {label}"] = e - s
        base = [py, "-m", "sweeps", "launch", "sweep=quick", "sweep.optimizers=[adam]"]
        s, e = _run([*base, f"sweep.n_trials={trials}"], cwd, env)
        r.times.update(_phases("launch", s, e, _trials(cwd, False), s))
        s, e = _run([*base, f"sweep.n_trials={2 * trials}"], cwd, env)
        r.times.update(_phases("resume", s, e, _trials(cwd, False), s))
        s, e = _run([py, "-m", "sweeps", "confirm", "quick", "--top", "1", "--seeds", "4"], cwd, env)
        r.times.update(_phases("confirm", s, e, _trials(cwd, True), s, unit="run"))
        for label, args in (("sweeps status", ["status", "quick"]), ("sweeps best", ["best", "quick"]),
                            ("sweeps report", ["report", "quick"]), ("sweeps --help", ["--help"])):
            s, e = _run([py, "-m", "sweeps", *args], cwd, env)
            r.times[label] = e - s
    return r


def table(rounds: list[Round], cold: bool) -> str:
    keys = list(rounds[0].times)
    lines = [f"latency, {len(rounds)} round(s), median s; "
             f"{'caches cleared before each round (first run on a machine)' if cold else 'caches warm'}",
             f"{'':40} {'median':>7} {'min':>7} {'max':>7}  target"]
    for k in keys:
        vals = [r.times[k] for r in rounds if k in r.times]
        med = statistics.median(vals)
        target = TARGETS.get(k)
        verdict = "" if target is None else f"<= {target:g}  {'met' if med <= target else 'missed'}"
        lines.append(f"{k:40} {med:7.2f} {min(vals):7.2f} {max(vals):7.2f}  {verdict}")
    floor = statistics.median(r.times["floor: import torch, torch._dynamo"] for r in rounds)
    first = statistics.median(r.times["launch: start -> first trial"] for r in rounds)
    lines.append(f"launch -> first trial over the floor (torch + torch._dynamo): {first - floor:+.2f} s "
                 f"({first / floor:.2f}x)")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="clear the caches before each round")
    args = parser.parse_args()
    rounds = [one_round(args.trials, args.cold) for _ in range(args.repeats)]
    print(f"{os.cpu_count()} cores, python {sys.version.split()[0]}")
    print(table(rounds, args.cold))


if __name__ == "__main__":
    from _results import record

    record(main)
