"""One training run of the optimizer comparison, configured by Hydra (conf/).

`fit(cfg, callbacks)` trains and returns a `FitResult`; callbacks observe the
run and may stop it. This package imports neither Optuna nor MLflow.
"""

from trainer.callbacks import Callback, RunInfo
from trainer.config import load_config
from trainer.errors import ConfigError, UserError
from trainer.fit import FitResult, fit

__all__ = ["Callback", "ConfigError", "FitResult", "RunInfo", "UserError", "fit", "load_config"]
