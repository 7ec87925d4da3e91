"""scikit-learn's diabetes data: 442 patients, 10 features, a real-valued target."""

import numpy as np


def diabetes(test_fraction: float = 0.2, seed: int = 0) -> dict:
    """Targets scaled to zero mean and unit variance (with train's statistics), so that a
    loss near 1.0 is "predicts the mean" and the learning rates of the search make sense."""
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = int(len(x) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    mean, std = y[train].mean(), y[train].std()
    y = ((y - mean) / std).astype(np.float32)
    x = x.astype(np.float32)
    return {"train": (x[train], y[train]), "test": (x[test], y[test])}
