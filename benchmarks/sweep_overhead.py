"""Per-trial fixed cost of the sweep on the embedded stores (journal file + MLflow's SQLite).

Blocks of `--trials` trials of one configuration run back to back through a sweep worker
(sampling, Optuna journal writes, the MLflow run with its curves, params, tags and
artifacts, checkpoints; every background MLflow write is waited for at the end of the
block), alternated with blocks of the same configuration through the bare trainer, in one
process. The fixed cost per trial is the difference of the two per-trial times.

    python benchmarks/sweep_overhead.py [--epochs 3] [--trials 10] [--repeats 3] [--model mlp]

The default is the quick sweep's own trial: its MLP (width 128) for 3 epochs on mnist_5k.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from _common import launch

from sweeps import tracking
from sweeps.worker import Worker
from trainer import fit

FIXED_TARGET_S, OVERHEAD_TARGET = 0.050, 0.05


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--trials", type=int, default=10, help="trials per block")
    parser.add_argument("--repeats", type=int, default=3, help="blocks of each kind")
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--model", default="mlp", help="mlp (the quick sweep's) or cnn")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        budget = (args.repeats + 1) * args.trials + 1
        launch(cwd, f"sweep.optimizers=[{args.optimizer}]", f"sweep.n_trials={budget}",
               f"trainer.epochs={args.epochs}", "sweep.pruner.name=none", "sweep.workers=0",
               "search.common.schedule.choices=[cosine]", "search.common.batch_size.choices=[128]",
               f"model={args.model}", *(["model.width=128"] if args.model == "mlp" else []))
        os.chdir(cwd)
        worker = Worker(str(cwd / "sweeps.journal"), "quick", quiet=True)
        (study,) = worker.studies
        worker.run_trial(*worker._next_trial())  # type: ignore[misc]
        first = study.get_trials(deepcopy=False)[-1]
        cfg, params = first.user_attrs["config"], first.params

        def sweep_block() -> float:
            start = time.perf_counter()
            for _ in range(args.trials):
                study.enqueue_trial(params)  # the same hyperparameters for every trial
                worker.run_trial(*worker._next_trial())  # type: ignore[misc]
            tracking.Background.drain()  # the MLflow writes are part of the cost
            return (time.perf_counter() - start) / args.trials

        def bare_block() -> float:
            start = time.perf_counter()
            for i in range(args.trials):
                fit(cfg, output_dir=cwd / f"bare{i}")
            return (time.perf_counter() - start) / args.trials

        sweep_block(), bare_block()  # warm-up, dropped
        swept, bare = [], []
        for _ in range(args.repeats):  # alternated, so drift hits both alike
            swept.append(sweep_block())
            bare.append(bare_block())
        s, b = statistics.median(swept), statistics.median(bare)
        print(f"{args.model} + {args.optimizer}, {args.epochs} epochs on mnist_5k: "
              f"{args.repeats} blocks of {args.trials} trials each way, per-trial medians")
        print(f"bare trainer            {b * 1000:7.1f} ms")
        print(f"through the sweep       {s * 1000:7.1f} ms")
        print(f"fixed cost per trial    {(s - b) * 1000:7.1f} ms   (target <= {FIXED_TARGET_S * 1000:.0f} ms)"
              f"  {'ok' if s - b <= FIXED_TARGET_S else 'MISSED'}")
        print(f"overhead                {s / b - 1:+7.1%}      (target <= {OVERHEAD_TARGET:.0%})"
              f"   {'ok' if s / b - 1 <= OVERHEAD_TARGET else 'MISSED'}")


if __name__ == "__main__":
    main()
