"""What other packages may use of the trainer: the one place `sweeps` imports it from.

An import-linter contract (pyproject.toml) holds `sweeps` to this module: everything else in
`trainer/` is internal and may be renamed or moved. The names load on first use (PEP 562),
so that importing this module costs nothing and a read-only command that only composes
configs never imports torch.

- run: `fit`, `FitResult`, `Callback`, `RunInfo`, `resolve_device`, `make_splits`,
  `build_optimizer`, `check_config` (one batch through a model);
- configs: `compose`, `to_container`, `validate`, `check_packaging`, `overrides_for`,
  `override_value`, `flatten`, `conf_dir`, `group_options`, `upgrade` (configs of earlier
  releases), `cache_dir`, `user_dir` (the user's config dir, a module), `GROUPS`;
- key tables (validation and the docs' reference): `Param`, `check_section`, `count`,
  `flag`, `one_of`, `Registry`, `OPTIMIZERS`, `SCHEDULES`, `list_optimizers`,
  `validate_optimizer`, `model_params`, `TRAINER_PARAMS`, `DATASET_PARAMS`, `RESERVED`,
  `with_defaults`;
- tasks: `Task`, `TASKS`, `CLASSIFICATION`, `task_of`;
- errors and process helpers: `UserError`, `ConfigError`, `check_writable`, `writable` and
  `watchdog` (modules), `importable_from_cwd`, `skip_exit_gc`, `lazy_module`,
  `main_not_rerun`, `die_with_parent`, `passive_openmp_waits`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainer import watchdog as watchdog
    from trainer import writable as writable
    from trainer.callbacks import Callback as Callback
    from trainer.callbacks import RunInfo as RunInfo
    from trainer.config.cache import cache_dir as cache_dir
    from trainer.config.compose import GROUPS as GROUPS
    from trainer.config.compose import compose as compose
    from trainer.config.compose import conf_dir as conf_dir
    from trainer.config.compose import flatten as flatten
    from trainer.config.compose import group_options as group_options
    from trainer.config.compose import override_value as override_value
    from trainer.config.compose import overrides_for as overrides_for
    from trainer.config.dataset_keys import DATASET_PARAMS as DATASET_PARAMS
    from trainer.config.dataset_keys import RESERVED as RESERVED
    from trainer.config.dataset_keys import with_defaults as with_defaults
    from trainer.config.legacy import upgrade as upgrade
    from trainer.config.registry import Registry as Registry
    from trainer.config.spec import Param as Param
    from trainer.config.spec import check_section as check_section
    from trainer.config.spec import count as count
    from trainer.config.spec import flag as flag
    from trainer.config.spec import one_of as one_of
    from trainer.config.targets import importable_from_cwd as importable_from_cwd
    from trainer.data.prepare import make_splits as make_splits
    from trainer.errors import ConfigError as ConfigError
    from trainer.errors import UserError as UserError
    from trainer.loop import fit as fit
    from trainer.loop import resolve_device as resolve_device
    from trainer.models import model_params as model_params
    from trainer.optim import list_optimizers as list_optimizers
    from trainer.optim.factory import OPTIMIZERS as OPTIMIZERS
    from trainer.optim.factory import build_optimizer as build_optimizer
    from trainer.optim.factory import validate_optimizer as validate_optimizer
    from trainer.optim.schedules import SCHEDULES as SCHEDULES
    from trainer.preflight import check_config as check_config
    from trainer.result import FitResult as FitResult
    from trainer.startup import die_with_parent as die_with_parent
    from trainer.startup import lazy_module as lazy_module
    from trainer.startup import main_not_rerun as main_not_rerun
    from trainer.startup import passive_openmp_waits as passive_openmp_waits
    from trainer.startup import platform_start_method as platform_start_method
    from trainer.startup import skip_exit_gc as skip_exit_gc
    from trainer.tasks import CLASSIFICATION as CLASSIFICATION
    from trainer.tasks import TASKS as TASKS
    from trainer.tasks import Task as Task
    from trainer.tasks import task_of as task_of
    from trainer.validation import TRAINER_PARAMS as TRAINER_PARAMS
    from trainer.validation import check_packaging as check_packaging
    from trainer.validation import to_container as to_container
    from trainer.validation import validate as validate
    from trainer.writable import check_writable as check_writable

_MODULES = ("user_dir", "writable", "watchdog")  # names that are modules of their own
# name -> the module that defines it
_WHERE = {
    "user_dir": "trainer.config.user_dir", "writable": "trainer.writable",
    "watchdog": "trainer.watchdog",
    "Callback": "trainer.callbacks", "RunInfo": "trainer.callbacks",
    **dict.fromkeys(("GROUPS", "compose", "conf_dir", "flatten", "group_options", "override_value",
                     "overrides_for"), "trainer.config.compose"),
    "cache_dir": "trainer.config.cache",
    **dict.fromkeys(("TRAINER_PARAMS", "check_packaging", "to_container", "validate"), "trainer.validation"),
    "make_splits": "trainer.data.prepare",
    **dict.fromkeys(("DATASET_PARAMS", "RESERVED", "with_defaults"), "trainer.config.dataset_keys"),
    "ConfigError": "trainer.errors", "UserError": "trainer.errors", "upgrade": "trainer.config.legacy",
    "fit": "trainer.loop", "resolve_device": "trainer.loop", "model_params": "trainer.models",
    "list_optimizers": "trainer.optim",
    **dict.fromkeys(("OPTIMIZERS", "build_optimizer", "validate_optimizer"), "trainer.optim.factory"),
    "check_config": "trainer.preflight", "Registry": "trainer.config.registry", "FitResult": "trainer.result",
    "SCHEDULES": "trainer.optim.schedules",
    **dict.fromkeys(("Param", "check_section", "count", "flag", "one_of"), "trainer.config.spec"),
    **dict.fromkeys(("lazy_module", "main_not_rerun", "skip_exit_gc", "die_with_parent",
                     "passive_openmp_waits", "platform_start_method"), "trainer.startup"),
    "importable_from_cwd": "trainer.config.targets",
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
