"""The bundled datasets by their `_target_` paths (``trainer.datasets.mnist``, ...).

Configs and stored sweeps name these paths, so they stay here; the code is in
`trainer.data.datasets`.
"""

from trainer.data.datasets import cifar10, fashion_mnist, mnist, mnist_5k

__all__ = ["cifar10", "fashion_mnist", "mnist", "mnist_5k"]
