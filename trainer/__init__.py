"""One training run of the optimizer comparison, configured by Hydra (conf/).

`fit(cfg, callbacks)` trains and returns a `FitResult`; callbacks observe the
run and may stop it. This package imports neither Optuna nor MLflow.

The names below are loaded on first use (PEP 562), so that importing a light module
such as `trainer.errors` (the sweep CLI's read-only commands do) does not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainer.callbacks import Callback, RunInfo
    from trainer.errors import ConfigError, UserError
    from trainer.loop import fit
    from trainer.result import FitResult
    from trainer.validation import load_config

_EXPORTS = {"Callback": "trainer.callbacks", "RunInfo": "trainer.callbacks",
            "load_config": "trainer.validation", "ConfigError": "trainer.errors",
            "UserError": "trainer.errors", "FitResult": "trainer.result", "fit": "trainer.loop"}

__all__ = ["Callback", "ConfigError", "FitResult", "RunInfo", "UserError", "fit", "load_config"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'trainer' has no attribute {name!r}")
