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


def friedman_two(n: int = 600, noise: float = 0.5, test_fraction: float = 0.2, seed: int = 0) -> dict:
    """Two targets from the same 10 features (columns of y: the model's two outputs).

    The first is scikit-learn's Friedman #1 function; the second another smooth function of
    features 2-4. Each column is scaled with train's statistics, so 1.0 is "predicts the
    mean" on both and the loss (mean squared error over every value) weighs them alike."""
    from sklearn.datasets import make_friedman1

    x, first = make_friedman1(n_samples=n, n_features=10, noise=noise, random_state=seed)
    rng = np.random.default_rng(seed)
    second = 10 * x[:, 3] + 5 * x[:, 4] - 20 * (x[:, 2] - 0.5) ** 2 + noise * rng.normal(size=n)
    y = np.stack([first, second], axis=1)
    order = rng.permutation(n)
    n_test = int(n * test_fraction)
    test, train = order[:n_test], order[n_test:]
    y = ((y - y[train].mean(axis=0)) / y[train].std(axis=0)).astype(np.float32)
    x = x.astype(np.float32)
    return {"train": (x[train], y[train]), "test": (x[test], y[test])}
