"""Config sections that name a callable by `_target_`, built with Hydra's `instantiate`.

A model, a dataset or a loss may be any importable callable. Everything that can go wrong
before it runs is checked here and comes back as one `ConfigError` line naming the key: a
module that does not import, a name that is not in it, a keyword the callable does not take,
a required argument the config does not give. Keys the trainer itself reads (`name`, a
dataset's `val_size`...) are not passed to the callable; values the trainer knows (a model's
`in_shape` and `num_outputs`) are passed where the signature accepts them.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Collection, Mapping
from typing import Any

from trainer.errors import ConfigError, UserError

TARGET = "_target_"


def importable_from_cwd() -> None:
    """Put the working directory on `sys.path`, as `python -m` does: a user's package in the
    folder a command runs from imports also through the `sweeps` console script."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)


def locate(key: str, path: Any) -> Callable[..., Any]:
    """The callable `path` names (``my_pkg.nets.Net``); one line naming the module otherwise."""
    if not isinstance(path, str) or not path or path.startswith(".") or path.endswith("."):
        raise ConfigError(key, path, "must be a dotted path to a callable, e.g. my_pkg.nets.Net")
    importable_from_cwd()
    parts = path.split(".")
    obj: Any = None
    for i in range(len(parts), 0, -1):  # the longest importable module prefix
        module = ".".join(parts[:i])
        try:
            obj = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name is not None and not module.startswith(err.name):
                raise ConfigError(key, path, f"importing module {module!r} failed: {err}") from None
            if i == 1:
                raise ConfigError(key, path, f"cannot import module {parts[0]!r} ({err}); make "
                                  "the package importable: run from the folder that holds it, "
                                  "`pip install -e` it or set PYTHONPATH") from None
            continue
        except Exception as err:  # the module itself raised while importing
            raise ConfigError(key, path, f"importing module {module!r} failed: "
                              f"{type(err).__name__}: {err}") from None
        for attr in parts[i:]:
            try:
                obj = getattr(obj, attr)
            except AttributeError:
                raise ConfigError(key, path, f"module {module!r} has no attribute {attr!r}") from None
        break
    if not callable(obj):
        raise ConfigError(key, path, f"is a {type(obj).__name__}, not a callable")
    return obj


def check_call(section: str, cfg: Mapping[str, Any], reserved: Collection[str] = (),
               offered: Collection[str] = ()) -> Callable[..., Any]:
    """Check that the callable `cfg[_target_]` accepts the config's keyword arguments (all
    keys but `reserved`) and gets every argument it requires (`offered` ones are supplied by
    the trainer); returns the callable."""
    fn = locate(f"{section}.{TARGET}", cfg.get(TARGET))
    kwargs = call_kwargs(cfg, reserved)
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without a signature: let the call decide
        return fn
    params = sig.parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    named = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    if not takes_any:
        for name in kwargs:
            if name not in named:
                raise ConfigError(f"{section}.{name}", _plain(kwargs[name]),
                                  f"not a parameter of {cfg[TARGET]}; it takes: "
                                  f"{', '.join(n for n in named if n not in offered) or 'none'}")
    for name, p in params.items():
        if p.default is p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) \
                and name not in kwargs and name not in offered:
            raise ConfigError(f"{section}.{name}", None,
                              f"required by {cfg[TARGET]} but missing from the config")
    return fn


def accepted(fn: Callable[..., Any], offered: Mapping[str, Any]) -> dict[str, Any]:
    """The `offered` values the callable's signature takes by name (all, with **kwargs)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return dict(offered)
    return {k: v for k, v in offered.items() if k in params
            and params[k].kind in (params[k].POSITIONAL_OR_KEYWORD, params[k].KEYWORD_ONLY)}


def call_kwargs(cfg: Mapping[str, Any], reserved: Collection[str] = ()) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if k != TARGET and k not in reserved}


def build(section: str, cfg: Mapping[str, Any], reserved: Collection[str] = (),
          offered: Mapping[str, Any] | None = None) -> Any:
    """Call the section's `_target_` with its keyword arguments through Hydra's `instantiate`
    (nested `_target_`s are built too), plus the `offered` values its signature takes."""
    from hydra.utils import instantiate

    fn = check_call(section, cfg, reserved, tuple(offered or ()))
    extra = accepted(fn, offered or {})
    node = {TARGET: cfg[TARGET], **call_kwargs(cfg, reserved)}
    try:
        return instantiate(node, _convert_="all", **extra)
    except Exception as err:
        cause = err.__cause__ or err
        if isinstance(cause, UserError):  # the callable's own one-line error
            raise cause from None
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        raise ConfigError(f"{section}.{TARGET}", cfg[TARGET],
                          f"raised {type(cause).__name__}: {first}"[:400]) from None


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, list | tuple) else value
