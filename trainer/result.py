"""`FitResult`: what one training run returns, in a module of its own.

Callbacks and the sweep layer read it without importing the training loop (and torch);
`trainer.loop` builds it. Kept apart so that `trainer.callbacks` and `trainer.loop` do not
import each other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FitResult:
    """Everything a comparison of optimizers needs from one run."""

    status: str  # completed | stopped | diverged | interrupted
    stop_reason: str | None
    history: list[dict[str, float]]
    steps: list[dict[str, float]]
    final: dict[str, float]
    output_dir: str
    device: str
    duration_s: float
    switch: list[dict[str, Any]] | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
