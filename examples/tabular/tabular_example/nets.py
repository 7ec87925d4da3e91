"""The model: any torch.nn.Module; the trainer passes in_shape and num_outputs."""

import math

from torch import nn


class MLP(nn.Module):
    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, hidden: int = 64,
                 depth: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(in_shape)
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        layers.append(nn.Linear(width, num_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
