"""How the sweep's own costs grow with its size: 100, 1,000 and 10,000 trials.

    python benchmarks/growth.py [--sizes 100,1000,10000] [--storage URL] [--claims 20]

For each size, in a new directory: `sweeps launch sweep=quick sweep.optimizers=[adam]
sweep.n_trials=1` runs one real trial (its attributes, curves and MLflow run are the
template); the sweep is then grown to SIZE trials, each a copy of the template with
parameters sampled from the search space and a value that depends on them (Optuna's
`add_trials` on the journal; on a database the rows it would write, one multi-row INSERT
per table), and its budget raised through `sweeps launch ... sweep.workers=0`. Then,
timed: `sweeps status`, `sweeps best`, `sweeps report` (the wall time of each command, the
median of 3 runs after an untimed one), and a worker's per-trial cost, measured in this
process on the real worker objects: claiming a trial under the budget lock
(`Claims.next_job`) and sampling its parameters with the sweep's TPE sampler, each the
median over `--claims` trials, which are told a value like the others.

One study holds every trial (the worst case for a sampler, which reads its study's
history). `--storage postgresql://...` runs the same on PostgreSQL. Targets:
claim + sample at 10,000 trials within 2x of at 100; status and best <= 2 s (<= 1 s on
PostgreSQL); report <= 30 s.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import optuna
from _common import add_trials

TARGETS = {"sweeps status": 2.0, "sweeps best": 2.0, "sweeps report": 30.0}  # the journal
# on PostgreSQL, where a sweep of many workers lives: the reads are a few queries each
PG_TARGETS = {**TARGETS, "sweeps status": 1.0, "sweeps best": 1.0}
PER_TRIAL_GROWTH = 2.0  # claim + sample at the largest size / at the smallest
REPEATS = 3  # each command's time: the median of this many runs, after one untimed
STUDY = "adam"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}


def _sweeps(cwd: Path, *args: str) -> float:
    """Run one `sweeps` command, which must succeed; its wall time."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sweeps", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True)
    took = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"sweeps {' '.join(args)} failed ({proc.returncode}):\n"
                         f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return took


def storage_args(storage: str | None) -> list[str]:
    return [] if storage is None else ["storage=postgres", f"storage.url={storage}"]


def storage_url(cwd: Path, storage: str | None) -> str:
    return storage if storage is not None else str(cwd / "sweeps.journal")


def launch(cwd: Path, name: str, n_trials: int, storage: str | None, workers: int) -> None:
    _sweeps(cwd, "launch", "sweep=quick", "sweep.optimizers=[adam]", f"sweep.name={name}",
            f"sweep.n_trials={n_trials}", f"sweep.workers={workers}", "trainer.epochs=2",
            *storage_args(storage))


def _value(params: dict[str, Any], rng: random.Random) -> float:
    """A validation accuracy that depends on the parameters (best near lr = 3e-3)."""
    return max(0.1, 0.98 - 0.05 * math.log10(params["lr"] / 3e-3) ** 2 - rng.uniform(0, 0.02))


def grow(study: optuna.Study, size: int, seed: int = 0) -> None:
    """Add trials until the study has `size`, copies of its first (the real one)."""
    template = study.get_trials(deepcopy=False)[0]
    rng = random.Random(seed)
    sampler = optuna.samplers.RandomSampler(seed=seed)
    dists = template.distributions
    made: list[optuna.trial.FrozenTrial] = []
    for _ in range(size - len(study.get_trials(deepcopy=False))):
        params = {k: sampler.sample_independent(study, template, k, d) for k, d in dists.items()}
        value = _value(params, rng)
        epochs = sorted(template.intermediate_values)
        curve = {e: value * (0.85 + 0.15 * (i + 1) / len(epochs)) for i, e in enumerate(epochs)}
        config = dict(template.user_attrs.get("config") or {})
        if "optimizer" in config:
            config["optimizer"] = {**config["optimizer"], "lr": params["lr"]}
        attrs = {**template.user_attrs, "config": config, "mlflow_run_id": uuid.uuid4().hex}
        made.append(optuna.trial.create_trial(
            params=params, distributions=dists, value=value, intermediate_values=curve,
            user_attrs=attrs))
        if len(made) == 500:
            add_trials(study, made)
            made = []
    add_trials(study, made)


def per_trial_costs(url: str, name: str, claims: int) -> tuple[float, float]:
    """Median seconds to claim a trial and to sample its parameters, on the worker's objects."""
    from sweeps.run.worker import Worker

    worker = Worker.connect(url, name, quiet=True)
    spec = worker.spec.study(worker.studies[0].study_name)
    rng = random.Random(1)
    claim_s, sample_s = [], []
    for _ in range(claims + 1):
        t0 = time.perf_counter()
        job = worker.claims.next_job()
        t1 = time.perf_counter()
        if job is None:
            raise SystemExit(f"no budget left for the measured claims of {name}")
        study, trial, _ = job
        params, _ = spec.space.sample(trial, spec.base, spec.bases)
        t2 = time.perf_counter()
        study.tell(trial, _value(params, rng))
        claim_s.append(t1 - t0)
        sample_s.append(t2 - t1)
    return statistics.median(claim_s[1:]), statistics.median(sample_s[1:])  # the first: caches


def measure(size: int, root: Path, storage: str | None, claims: int, *,
            keep: bool = False) -> dict[str, float]:
    from sweeps.search.studies import sweep_studies
    from sweeps.store.storages import open_storage

    cwd = root / f"n{size}"
    cwd.mkdir()
    name = f"growth{size}x{uuid.uuid4().hex[:6]}"
    launch(cwd, name, 1, storage, 1)  # one real trial: the template
    url = storage_url(cwd, storage)
    (study,) = sweep_studies(open_storage(url), name)
    t0 = time.perf_counter()
    grow(study, size)
    grew = time.perf_counter() - t0
    launch(cwd, name, size + claims + 1, storage, 0)  # the budget for the measured claims
    row = {"grow": grew}
    where = ["--storage", storage] if storage else []
    for cmd in ("status", "best", "report"):
        _sweeps(cwd, cmd, name, *where)  # untimed: a first run also compiles the modules it imports
        row[f"sweeps {cmd}"] = statistics.median(_sweeps(cwd, cmd, name, *where) for _ in range(REPEATS))
    row["claim"], row["sample"] = per_trial_costs(url, name, claims)
    if keep:
        print(f"  kept: sweep {name} ({size:,} trials) in {storage}", flush=True)
    elif storage is not None:
        from sweeps.store.storages import open_storage as again

        st = again(storage)
        for s in st.get_all_studies():
            if s.user_attrs.get("sweep") == name:
                optuna.delete_study(study_name=s.study_name, storage=st)
    return row


def table(rows: dict[int, dict[str, float]], targets: dict[str, float] = TARGETS) -> list[str]:
    sizes = sorted(rows)
    first, last = rows[sizes[0]], rows[sizes[-1]]
    head = f"{'':<26}" + "".join(f"{f'{n:,} trials':>16}" for n in sizes)
    lines = [head + f"{'growth':>10}  target"]
    keys = ["sweeps status", "sweeps best", "sweeps report", "claim", "sample"]
    for k in keys:
        unit = 1000.0 if k in ("claim", "sample") else 1.0
        cells = "".join(f"{rows[n][k] * unit:>13.{0 if unit > 1 else 2}f} {'ms' if unit > 1 else 's':<2}"
                        for n in sizes)
        growth = last[k] / max(first[k], 1e-9)
        target = f"<= {targets[k]:.0f} s at {sizes[-1]:,}" if k in targets else ""
        lines.append(f"{k:<26}{cells}{growth:>9.1f}x  {target}")
    both_first, both_last = first["claim"] + first["sample"], last["claim"] + last["sample"]
    cells = "".join(f"{(rows[n]['claim'] + rows[n]['sample']) * 1000:>13.0f} ms" for n in sizes)
    lines.append(f"{'claim + sample':<26}{cells}{both_last / both_first:>9.1f}x  "
                 f"<= {PER_TRIAL_GROWTH:.0f}x of at {sizes[0]:,}")
    return lines


def verdicts(rows: dict[int, dict[str, float]], targets: dict[str, float] = TARGETS) -> list[str]:
    sizes = sorted(rows)
    last = rows[sizes[-1]]
    out = [f"{k} at {sizes[-1]:,} trials: {last[k]:.2f} s (target <= {t:.0f} s): "
           f"{'met' if last[k] <= t else 'MISSED'}" for k, t in targets.items()]
    growth = (last["claim"] + last["sample"]) / (rows[sizes[0]]["claim"] + rows[sizes[0]]["sample"])
    out.append(f"claim + sample, {sizes[-1]:,} vs {sizes[0]:,} trials: {growth:.1f}x (target <= "
               f"{PER_TRIAL_GROWTH:.0f}x): {'met' if growth <= PER_TRIAL_GROWTH else 'MISSED'}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100,1000,10000")
    ap.add_argument("--storage", default=None, help="a postgresql:// URL (default: the journal)")
    ap.add_argument("--claims", type=int, default=20)
    ap.add_argument("--keep", action="store_true",
                    help="leave the grown sweeps in the --storage database (to time other commands on them)")
    a = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sizes = [int(s) for s in a.sizes.split(",")]
    rows: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="sweeps-growth-") as tmp:
        for n in sizes:
            rows[n] = measure(n, Path(tmp), a.storage, a.claims, keep=a.keep)
            print(f"  {n:,} trials: grown in {rows[n]['grow']:.1f} s", flush=True)
    where = "PostgreSQL" if a.storage else "the journal file"
    print(f"\nGrowth of a sweep's costs (one study, {where}; {os.cpu_count()} cores)")
    targets = PG_TARGETS if a.storage else TARGETS
    print("\n".join(table(rows, targets)))
    print("\n".join(verdicts(rows, targets)))


if __name__ == "__main__":
    from _results import record

    record(main)
