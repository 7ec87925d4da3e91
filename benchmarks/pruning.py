"""Pruners compared: epochs trained and best validation accuracy, over several sampler seeds.

Each pruner (none, median, successive halving, Hyperband) runs the same sweep: the quick
sweep's optimizers searched jointly (one study, so the pruner sees every trial) on
mnist_5k, `--n-trials` trials of `--epochs` epochs, for each sampler seed. Printed per
pruner: epochs trained (and the saving against no pruning), pruned trials, best val/acc,
and whether that best is within one standard error of the validation split of the best
without pruning, for every seed. The bundled sweeps' default pruner is chosen from it.

    python benchmarks/pruning.py [--n-trials 64] [--epochs 8] [--seeds 0 1 2] [--model mlp]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
from pathlib import Path

from _common import launch, trials
from optuna.trial import TrialState

PRUNERS = ("none", "median", "successive_halving", "hyperband")
SAVING_TARGET = 3.0


def summarize(cwd: Path) -> tuple[int, int, float]:
    ts = trials(cwd)
    epochs = sum(int(t.user_attrs.get("epochs", 0)) for t in ts)
    pruned = sum(t.state == TrialState.PRUNED for t in ts)
    best = max((t.value for t in ts if t.state == TrialState.COMPLETE and t.value is not None),
               default=float("nan"))
    return epochs, pruned, best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--model", default="mlp", help="mlp (the quick sweep's) or cnn")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--val-size", type=int, default=1000)
    args = parser.parse_args()
    results: dict[str, list[tuple[int, int, float]]] = {p: [] for p in PRUNERS}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for pruner in PRUNERS:
                cwd = Path(tmp) / f"{pruner}_{seed}"
                launch(cwd, "sweep.mode=joint", f"sweep.n_trials={args.n_trials}",
                       f"trainer.epochs={args.epochs}", f"sweep.seed={seed}",
                       f"sweep.pruner.name={pruner}", f"sweep.workers={args.workers}",
                       f"model={args.model}", f"dataset.val_size={args.val_size}",
                       *(["model.width=128"] if args.model == "mlp" else []))
                results[pruner].append(summarize(cwd))
                print(f"  seed {seed} {pruner:<19} epochs {results[pruner][-1][0]:>4}  "
                      f"best {results[pruner][-1][2]:.4f}", flush=True)
    none = results["none"]
    print(f"\n{args.n_trials} trials x {args.epochs} epochs, {args.model} on mnist_5k, joint search over "
          f"the quick sweep's optimizers, {args.workers} workers, sampler seeds {args.seeds}")
    print(f"{'pruner':<19} {'epochs (mean)':>13} {'saving':>7} {'pruned':>7} {'best val/acc':>13} "
          f"{'vs none':>8} {'within 1 SE':>11}")
    for pruner in PRUNERS:
        rows = results[pruner]
        epochs = statistics.mean(r[0] for r in rows)
        saving = statistics.mean(n[0] / r[0] for n, r in zip(none, rows, strict=True))
        best = statistics.mean(r[2] for r in rows)
        delta = statistics.mean(r[2] - n[2] for n, r in zip(none, rows, strict=True))
        # the standard error of a validation accuracy p measured on val_size digits
        within = sum(r[2] >= n[2] - math.sqrt(n[2] * (1 - n[2]) / args.val_size)
                     for n, r in zip(none, rows, strict=True))
        verdict = "" if pruner == "none" else (
            "  meets target" if saving >= SAVING_TARGET and within == len(rows) else "")
        print(f"{pruner:<19} {epochs:>13.0f} {saving:>6.1f}x {statistics.mean(r[1] for r in rows):>7.1f} "
              f"{best:>13.4f} {delta:>+8.4f} {within:>7}/{len(rows)}{verdict}")
    print(f"target: >= {SAVING_TARGET:.0f}x fewer epochs, best val/acc within 1 SE of no pruning "
          "for every seed")


if __name__ == "__main__":
    from _results import record

    record(main)
