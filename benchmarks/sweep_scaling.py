"""Trials per hour with `sweep.workers=2` vs `1` (one thread each), same study budget.

Throughput is measured from the trials themselves (first trial start to last trial
end, from the Optuna storage), so process start-up is not counted; the two settings
run alternately, `--repeats` times each, in one run of this script.

    python benchmarks/sweep_scaling.py [--n-trials 12] [--epochs 2] [--repeats 2] [--model cnn]
                                       [--writers auto,process,thread]

The default trial is the LeNet-style CNN on mnist_5k (a few seconds per trial with one
thread): with the quick sweep's 0.3-second MLP trials, the fixed per-trial cost of the
storage and tracking writes (serialised by their file locks) is what gets measured.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from _common import launch, trials


def throughput(cwd: Path) -> float:
    ts = [t for t in trials(cwd) if t.datetime_complete is not None]
    start = min(t.datetime_start for t in ts)  # type: ignore[type-var]
    end = max(t.datetime_complete for t in ts)  # type: ignore[type-var]
    return len(ts) / (end - start).total_seconds() * 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--writers", default="auto",
                        help="tracking.writer settings to compare, comma-separated: auto,process,thread")
    args = parser.parse_args()
    writers = args.writers.split(",")
    common = ["sweep.optimizers=[sgd,adam]", f"sweep.n_trials={args.n_trials}",
              f"trainer.epochs={args.epochs}", "sweep.pruner.name=none", "sweep.threads_per_worker=1",
              "sweep.sampler.name=random", f"model={args.model}",
              *([] if args.model == "mlp" else ["~model.width"])]
    results: dict[tuple[str, int], list[float]] = {(w, n): [] for w in writers for n in (1, 2)}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for writer in writers:
                for workers in (1, 2):
                    cwd = Path(tmp) / f"{writer}_w{workers}_{r}"
                    launch(cwd, *common, f"sweep.workers={workers}", f"sweep.seed={r}",
                           f"tracking.writer={writer}")
                    results[writer, workers].append(throughput(cwd))
    print(f"{os.cpu_count()} cores, {args.n_trials} {args.model} trials of {args.epochs} epochs per setting, "
          f"median of {args.repeats}")
    print(f"{'MLflow writer':<14} {'workers':>7}  {'trials/hour':>11}")
    for writer in writers:
        one = statistics.median(results[writer, 1])
        two = statistics.median(results[writer, 2])
        print(f"{writer:<14} {1:>7}  {one:>11.0f}")
        print(f"{writer:<14} {2:>7}  {two:>11.0f}")
        print(f"{writer:<14} speed-up with 2 workers: {two / one:.2f}x (target >= 1.8x)")

if __name__ == "__main__":
    from _results import record

    record(main)
