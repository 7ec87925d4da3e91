"""Tracking + storage overhead: one trial through the sweep (Optuna ask/tell, journal
storage, MLflow child run with per-epoch curves, artifacts) vs the same resolved config
through the bare trainer, alternated `--repeats` times in one process.

    python benchmarks/sweep_overhead.py [--epochs 5] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from _common import launch

from sweeps.worker import Worker
from trainer import fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--model", default="cnn", help="cnn (default) or mlp (the quick sweep's)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        launch(cwd, f"sweep.optimizers=[{args.optimizer}]", f"sweep.n_trials={args.repeats + 1}",
               f"trainer.epochs={args.epochs}", "sweep.pruner.name=none", "sweep.workers=0",
               "search.common.schedule.choices=[cosine]", "search.common.batch_size.choices=[128]",
               f"model={args.model}", *([] if args.model == "mlp" else ["~model.width"]))
        os.chdir(cwd)
        worker = Worker(str(cwd / "sweeps.journal"), "quick", quiet=True)
        (study,) = worker.studies
        params = None
        swept, bare = [], []
        for r in range(args.repeats + 1):  # the first pair warms caches up and is dropped
            if params is not None:
                study.enqueue_trial(params)  # same hyperparameters for every trial
            nxt = worker._next_trial()
            assert nxt is not None
            start = time.perf_counter()
            worker.run_trial(*nxt)
            t_sweep = time.perf_counter() - start
            frozen = study.get_trials(deepcopy=False)[-1]
            params = params or frozen.params
            start = time.perf_counter()
            fit(frozen.user_attrs["config"], output_dir=cwd / f"bare{r}")
            t_bare = time.perf_counter() - start
            if r:
                swept.append(t_sweep)
                bare.append(t_bare)
        s, b = statistics.median(swept), statistics.median(bare)
        print(f"{args.model} + {args.optimizer}, {args.epochs} epochs on mnist_5k, "
              f"median of {args.repeats}")
        print(f"bare trainer   {b:7.3f} s")
        print(f"through sweep  {s:7.3f} s")
        print(f"overhead       {s / b - 1:+7.1%}  (target <= 5%); "
              f"fixed cost per trial {s - b:.3f} s")


if __name__ == "__main__":
    main()
