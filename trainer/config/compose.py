"""Hydra composition of conf/, with Hydra's errors turned into one-line UserErrors.

Kept apart from `trainer.validation` (validation against the registries, which import
torch) so that callers that only need a composed config, such as the sweep CLI's
read-only commands, start in a fraction of a second.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from trainer.errors import ConfigError, UserError

GROUPS = ("dataset", "model", "optimizer", "schedule")

CONFIG_MODULE = "sweeps_conf"


def conf_dir() -> str:
    """Absolute path of the shipped conf/ tree (the `sweeps_conf` package)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec(CONFIG_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"the config package {CONFIG_MODULE!r} is not installed; run `pip install -e .`")
    return str(Path(next(iter(spec.submodule_search_locations))).resolve())


def compose(overrides: Sequence[str] = (), config_name: str = "config", *,
            config_dir: str | os.PathLike[str] | None = None, hints: bool = True) -> DictConfig:
    """Compose conf/ with Hydra overrides; Hydra errors become one-line UserErrors.

    `config_dir`: the user's config dir, searched before the bundled tree. `hints`: an
    unknown key's message lists the keys allowed there, which takes a second composition;
    that one runs with ``hints=False``, so the error path never recurses."""
    from trainer.config import user_dir
    from trainer.config.cache import cached

    user = user_dir.resolve(config_dir)

    def composed() -> DictConfig:
        from hydra import compose as hydra_compose
        from hydra import initialize_config_dir
        from hydra.core.global_hydra import GlobalHydra
        from hydra.errors import HydraException, MissingConfigException

        if GlobalHydra.instance().is_initialized():
            GlobalHydra.instance().clear()
        # A directory source parses ~2x faster than the pkg:// one; the package is a directory
        # both in a checkout (editable install) and in an installed wheel.
        with user_dir.searching(user), initialize_config_dir(config_dir=bundled, version_base=None):
            try:
                cfg = hydra_compose(config_name=config_name,
                                    overrides=trainer_keys_added(overrides),
                                    return_hydra_config=True)
            except MissingConfigException as err:
                raise _missing_option(err, overrides) from None
            except HydraException as err:
                raise _composition_error(err, overrides, config_name, user, hints) from None
        return with_group_names(cfg)

    bundled = conf_dir()
    return cached(config_name, list(overrides), bundled, None if user is None else str(user),
                  composed)


def trainer_keys_added(overrides: Sequence[str]) -> list[str]:
    """``dataset.num_outputs=3`` works on a dataset file that leaves the key out: the
    trainer's own dataset keys (`trainer.config.dataset_keys`) have defaults that validation fills
    in, so an override of one adds it where the file has none (Hydra's ``++``)."""
    from trainer.config.dataset_keys import DATASET_DEFAULTS

    out = []
    for o in overrides:
        key = o.split("=", 1)[0]
        parts = key.split(".")
        if "=" in o and parts[0] == "dataset" and len(parts) >= 2 and parts[1] in DATASET_DEFAULTS \
                and not key.startswith(("+", "~")):
            o = "++" + o
        out.append(o)
    return out


def with_group_names(cfg: DictConfig) -> DictConfig:
    """Each group section named by the option chosen (``model=my_net`` -> ``model.name:
    my_net``) where its file gives no `name`, and Hydra's own node removed: a user's
    config file need not repeat its file name, and a run's config says what it was."""
    from omegaconf import open_dict

    choices = OmegaConf.select(cfg, "hydra.runtime.choices") or {}
    with open_dict(cfg):
        for group in GROUPS:
            node = cfg.get(group)
            if isinstance(node, DictConfig) and node.get("name") is None and choices.get(group):
                node["name"] = str(choices[group])
        cfg.pop("hydra", None)
    return cfg


def group_options(group: str, config_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """The options of a config group in the search path (bundled and the user's)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from trainer.config import user_dir

    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with user_dir.searching(user_dir.resolve(config_dir)), \
            initialize_config_dir(config_dir=conf_dir(), version_base=None):
        return sorted(GlobalHydra.instance().config_loader().get_group_options(group))


def _missing_option(err: Any, overrides: Sequence[str]) -> UserError:
    missing = str(getattr(err, "missing_cfg_file", "") or "")
    group, _, option = missing.rpartition("/")
    options = list(getattr(err, "options", None) or [])
    if group and options:
        return ConfigError(group, option, "unknown option; allowed: " + ", ".join(sorted(options)))
    return UserError(str(err).strip().splitlines()[0])


def _composition_error(err: Exception, overrides: Sequence[str], config_name: str,
                       user: Path | None, hints: bool = True) -> UserError:
    text = str(err).strip()
    packaged = _package_mistake(text)
    if packaged is not None:
        return packaged
    match = re.search(r"Could not (?:override|append to|delete from) '([^']+)'", text)
    if match:
        key = match.group(1)
        value = next((o.split("=", 1)[1] for o in overrides if o.lstrip("+~").startswith(key + "=")),
                     None)
        parent, _, _ = key.rpartition(".")
        allowed = _keys_of(parent, [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != key],
                           config_name, user) if hints else []
        hint = f"; allowed keys of {parent or 'the config'}: {', '.join(allowed)}" if allowed else ""
        return ConfigError(key, value, "unknown key" + hint)
    first = text.splitlines()[0] if text else type(err).__name__
    return UserError(f"bad override: {first}")


def _package_mistake(text: str) -> UserError | None:
    """A group file whose defaults override other groups (``override /dataset: x``) but that
    lacks ``# @package _global_``: Hydra puts its keys, and those overrides, under the group
    (``dataset@sweep.dataset``) and says only that it cannot override them."""
    match = re.search(r"In '([\w./-]+)/([\w.-]+)': Could not (?:override|append to|delete from) "
                      r"'(\w+)@\1\.\3'", text)
    if match is None:
        return None
    group, name = match.group(1), match.group(2)
    return UserError(f"{group}/{name}.yaml: its `override /{match.group(3)}` is read as "
                     f"`{group}.{match.group(3)}` because the file lacks a package line; a {group} file "
                     f"sets keys of the whole config: add `# @package _global_` as its first line")


def _keys_of(parent: str, overrides: Sequence[str], config_name: str,
             user: Path | None) -> list[str]:
    groups = [o for o in overrides if "=" in o and "." not in o.split("=", 1)[0]]
    try:
        cfg = compose(groups, config_name, config_dir=user, hints=False)
        node = OmegaConf.select(cfg, parent) if parent else cfg
        return sorted(str(k) for k in node) if isinstance(node, DictConfig) else []
    except UserError:
        return []


def to_container(cfg: DictConfig | Mapping[str, Any]) -> dict[str, Any]:
    """Resolved plain-dict copy of a trainer config (without Hydra's own node)."""
    if isinstance(cfg, DictConfig):
        try:
            data = OmegaConf.to_container(cfg, resolve=True)
        except Exception as err:  # an interpolation that cannot resolve
            raise UserError(f"config does not resolve: {str(err).splitlines()[0]}") from None
    else:
        data = dict(cfg)
    assert isinstance(data, dict)
    data.pop("hydra", None)
    return data  # type: ignore[return-value]


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def overrides_for(data: Mapping[str, Any], *, skip: Sequence[str] = ("trainer.output_dir",
                                                                      "trainer.resume"),
                  config_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """The `python -m trainer` overrides that turn the defaults into the config `data`.

    Group choices first, then every value that differs from that group option's default;
    `load_config(overrides_for(cfg))` gives back `cfg` (tested).
    """
    from trainer.config.dataset_keys import with_defaults
    from trainer.config.legacy import upgrade

    data = upgrade(data)
    # a section without a name is an object given in-process (sweeps.launch(model=Net)):
    # no option of the group makes it, so its keys replace the group's default one by one
    unnamed = [g for g in GROUPS if not data[g].get("name")]
    groups = [f"{g}={data[g]['name']}" for g in GROUPS if g not in unnamed]
    # filled in as validation fills them
    defaults = upgrade(to_container(compose(groups, config_dir=config_dir)))
    defaults["dataset"] = with_defaults(defaults["dataset"])
    defaults.update({g: {} for g in unnamed})
    out = [*groups, *(f"~{g}" for g in unnamed)]

    def walk(new: Any, old: Any, prefix: str) -> None:
        if isinstance(new, Mapping) and isinstance(old, Mapping):
            for key, value in new.items():
                if key == "name" and prefix.count(".") == 0 and prefix.rstrip(".") in GROUPS:
                    continue
                walk(value, old.get(key, _MISSING), f"{prefix}{key}.")
            return
        key = prefix.rstrip(".")
        if key in skip or new == old:
            return
        out.append(f"{'+' if old is _MISSING else ''}{key}={override_value(new)}")

    for section in ("trainer", *GROUPS):
        walk(data[section], defaults[section], f"{section}.")
    return out


_MISSING = object()


def override_value(value: Any) -> str:
    """A value written so that Hydra's override parser reads it back unchanged."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ",".join(override_value(v) for v in value) + "]"
    text = str(value)
    return text if re.fullmatch(r"[\w./:+-]+", text) else "'" + text.replace("'", "\\'") + "'"
