"""What other packages may use of the trainer: the one place `sweeps` imports it from.

An import-linter contract (pyproject.toml) holds `sweeps` to this module: everything else in
`trainer/` is internal and may be renamed or moved. The names load on first use (PEP 562),
so that importing this module costs nothing and a read-only command that only composes
configs never imports torch.

- run: `fit`, `FitResult`, `Callback`, `RunInfo`, `resolve_device`, `make_splits`,
  `build_optimizer`, `check_config` (one batch through a model);
- configs: `compose`, `to_container`, `validate`, `check_packaging`, `overrides_for`,
  `override_value`, `flatten`, `conf_dir`, `group_options`, `upgrade` (configs of earlier
  releases), `cache_dir`, `config_dir` (the user's config dir, a module), `GROUPS`;
- key tables (validation and the docs' reference): `Param`, `check_section`, `count`,
  `flag`, `one_of`, `Registry`, `OPTIMIZERS`, `SCHEDULES`, `list_optimizers`,
  `validate_optimizer`, `model_params`, `TRAINER_PARAMS`, `DATASET_PARAMS`, `RESERVED`,
  `with_defaults`;
- tasks: `Task`, `TASKS`, `CLASSIFICATION`, `task_of`;
- errors and process helpers: `UserError`, `ConfigError`, `check_writable`, `writable` (a
  module), `importable_from_cwd`, `skip_exit_gc`, `lazy_module`, `main_not_rerun`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainer import config_dir as config_dir
    from trainer import writable as writable
    from trainer.callbacks import Callback as Callback
    from trainer.callbacks import RunInfo as RunInfo
    from trainer.compose import GROUPS as GROUPS
    from trainer.compose import compose as compose
    from trainer.compose import conf_dir as conf_dir
    from trainer.compose import flatten as flatten
    from trainer.compose import group_options as group_options
    from trainer.compose import override_value as override_value
    from trainer.compose import overrides_for as overrides_for
    from trainer.compose_cache import cache_dir as cache_dir
    from trainer.config import TRAINER_PARAMS as TRAINER_PARAMS
    from trainer.config import check_packaging as check_packaging
    from trainer.config import to_container as to_container
    from trainer.config import validate as validate
    from trainer.data import make_splits as make_splits
    from trainer.dataset_keys import DATASET_PARAMS as DATASET_PARAMS
    from trainer.dataset_keys import RESERVED as RESERVED
    from trainer.dataset_keys import with_defaults as with_defaults
    from trainer.errors import ConfigError as ConfigError
    from trainer.errors import UserError as UserError
    from trainer.legacy import upgrade as upgrade
    from trainer.loop import fit as fit
    from trainer.loop import resolve_device as resolve_device
    from trainer.models import model_params as model_params
    from trainer.optim import list_optimizers as list_optimizers
    from trainer.optim.factory import OPTIMIZERS as OPTIMIZERS
    from trainer.optim.factory import build_optimizer as build_optimizer
    from trainer.optim.factory import validate_optimizer as validate_optimizer
    from trainer.preflight import check_config as check_config
    from trainer.registry import Registry as Registry
    from trainer.result import FitResult as FitResult
    from trainer.schedules import SCHEDULES as SCHEDULES
    from trainer.spec import Param as Param
    from trainer.spec import check_section as check_section
    from trainer.spec import count as count
    from trainer.spec import flag as flag
    from trainer.spec import one_of as one_of
    from trainer.startup import lazy_module as lazy_module
    from trainer.startup import main_not_rerun as main_not_rerun
    from trainer.startup import skip_exit_gc as skip_exit_gc
    from trainer.targets import importable_from_cwd as importable_from_cwd
    from trainer.tasks import CLASSIFICATION as CLASSIFICATION
    from trainer.tasks import TASKS as TASKS
    from trainer.tasks import Task as Task
    from trainer.tasks import task_of as task_of
    from trainer.writable import check_writable as check_writable

_MODULES = ("config_dir", "writable")  # names that are modules of their own
# name -> the module that defines it
_WHERE = {
    "config_dir": "trainer.config_dir", "writable": "trainer.writable",
    "Callback": "trainer.callbacks", "RunInfo": "trainer.callbacks",
    **dict.fromkeys(("GROUPS", "compose", "conf_dir", "flatten", "group_options", "override_value",
                     "overrides_for"), "trainer.compose"),
    "cache_dir": "trainer.compose_cache",
    **dict.fromkeys(("TRAINER_PARAMS", "check_packaging", "to_container", "validate"), "trainer.config"),
    "make_splits": "trainer.data",
    **dict.fromkeys(("DATASET_PARAMS", "RESERVED", "with_defaults"), "trainer.dataset_keys"),
    "ConfigError": "trainer.errors", "UserError": "trainer.errors", "upgrade": "trainer.legacy",
    "fit": "trainer.loop", "resolve_device": "trainer.loop", "model_params": "trainer.models",
    "list_optimizers": "trainer.optim",
    **dict.fromkeys(("OPTIMIZERS", "build_optimizer", "validate_optimizer"), "trainer.optim.factory"),
    "check_config": "trainer.preflight", "Registry": "trainer.registry", "FitResult": "trainer.result",
    "SCHEDULES": "trainer.schedules",
    **dict.fromkeys(("Param", "check_section", "count", "flag", "one_of"), "trainer.spec"),
    **dict.fromkeys(("lazy_module", "main_not_rerun", "skip_exit_gc"), "trainer.startup"),
    "importable_from_cwd": "trainer.targets",
    **dict.fromkeys(("CLASSIFICATION", "TASKS", "Task", "task_of"), "trainer.tasks"),
    "check_writable": "trainer.writable",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'trainer.api' has no attribute {name!r}")
    loaded = importlib.import_module(module)
    return loaded if name in _MODULES else getattr(loaded, name)
