"""A small regressor: one output per target column (num_outputs, from the data)."""

import math

from torch import nn


class Regressor(nn.Module):
    def __init__(self, in_shape: tuple[int, ...], num_outputs: int, hidden: int = 32) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(in_shape), hidden), nn.Tanh(),
                                 nn.Linear(hidden, num_outputs))

    def forward(self, x):
        return self.net(x)
