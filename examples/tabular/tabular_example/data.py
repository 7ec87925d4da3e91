"""The data: any callable returning {"train": (x, y), "val": ..., "test": ...} arrays."""

import numpy as np


def breast_cancer(test_fraction: float = 0.2, seed: int = 0) -> dict:
    """scikit-learn's breast cancer data (569 patients, 30 features, 2 classes), with a
    fixed test split; the trainer carves the validation split from train."""
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(len(x) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    x = x.astype(np.float32)
    return {"train": (x[train], y[train]), "test": (x[test], y[test])}
