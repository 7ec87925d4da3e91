"""Reading a study's trials on PostgreSQL: Optuna's `RDBStorage._get_trials` (ORM objects)
against `sweeps.store.trial_reads` (plain rows), side by side on the same study.

    python benchmarks/trial_reads.py [--sizes 1000,10000] [--repeats 5] [--postgres URL]

For each size: one study on PostgreSQL grown to SIZE trials like a sweep's (6 parameters,
a config and final metrics among the user attributes, 3 curve points each), then every
trial read through each path in turn, `--repeats` times, alternating; the medians and their
ratio are printed. Both return the same trials (checked here on every read, and by
`tests/sweeps/test_trial_reads.py`).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import time
import uuid

import optuna
from _common import add_trials

OPTUNA_READ = optuna.storages.RDBStorage._get_trials  # Optuna's own, not the sweep storage's
PG = os.environ.get("SWEEPS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def grow(study: optuna.Study, size: int) -> None:
    rng = random.Random(0)
    dists = {k: optuna.distributions.FloatDistribution(1e-6, 1e-1, log=True)
             for k in ("lr", "one_minus_beta1", "one_minus_beta2", "eps", "weight_decay")}
    dists["batch_size"] = optuna.distributions.CategoricalDistribution([64, 128, 256])
    trials = []
    for i in range(size):
        params: dict[str, object] = {k: math.exp(rng.uniform(math.log(1e-6), math.log(1e-1)))
                                     for k in dists if k != "batch_size"}
        params["batch_size"] = rng.choice([64, 128, 256])
        value = rng.uniform(0.8, 0.98)
        trials.append(optuna.trial.create_trial(
            params=params, distributions=dists, value=value,
            intermediate_values={1: value - 0.1, 2: value - 0.05, 3: value},
            user_attrs={"config": {"optimizer": {"name": "adam", **params}, "trainer": {"epochs": 3}},
                        "final": {"val/acc": value, "train/acc": value + 0.01}, "optimizer": "adam",
                        "state": "complete", "worker": f"host:{i % 8}", "mlflow_run_id": uuid.uuid4().hex}))
    add_trials(study, trials)  # on PostgreSQL: one multi-row INSERT per table


def main() -> None:
    from sweeps.store.storages import open_storage
    from sweeps.store.trial_reads import read_trials

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--postgres", default=PG)
    a = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(a.postgres)
    rdb = storage._backend if hasattr(storage, "_backend") else storage
    print(f"Reading every trial of a study on PostgreSQL ({os.cpu_count()} cores), "
          f"median of {a.repeats}")
    print(f"{'trials':>8} {'Optuna (ORM)':>14} {'plain rows':>12} {'ratio':>7}")
    for size in [int(s) for s in a.sizes.split(",")]:
        name = f"reads{uuid.uuid4().hex[:8]}"
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
        try:
            grow(study, size)
            times: dict[str, list[float]] = {"optuna": [], "rows": []}
            sid = study._study_id
            reads = {"optuna": lambda sid=sid: OPTUNA_READ(rdb, sid, None, set(), -1),
                     "rows": lambda sid=sid: read_trials(rdb, sid, None, set(), -1)}
            for r in range(a.repeats):
                got = {}
                for path in (("optuna", "rows") if r % 2 == 0 else ("rows", "optuna")):  # alternating
                    t0 = time.perf_counter()
                    got[path] = reads[path]()
                    times[path].append(time.perf_counter() - t0)
                assert got["rows"] == got["optuna"]  # every field (no NaN here; dicts in any order)
            slow, fast = statistics.median(times["optuna"]), statistics.median(times["rows"])
            print(f"{size:>8,} {slow:>12.2f} s {fast:>10.2f} s {slow / fast:>6.1f}x", flush=True)
        finally:
            optuna.delete_study(study_name=name, storage=storage)


if __name__ == "__main__":
    from _results import record

    record(main)
