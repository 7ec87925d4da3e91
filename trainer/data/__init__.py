"""Data for one run: a dataset config's callable, its splits, and the two paths to the loop.

Internal to the trainer (other packages use `trainer.api`).

- `prepare`: calls the dataset's `_target_` once per process, splits and normalises;
- `splits`: fixed-seed held-out splits and the targets' form per task (in-memory path);
- `loader`: map-style datasets batched by `DataLoader`s (the per-sample path);
- `datasets`: the bundled datasets (MNIST, Fashion-MNIST, CIFAR-10, the offline 5k digits);
- `files`: writes image datasets in their published on-disk formats (tests, benchmarks).
"""
