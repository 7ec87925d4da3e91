"""Which `_target_`s a worker may call: no code runs because a row of the storage says so.

A worker rebuilds a sweep from what its storage holds (the launch's overrides, a trial's
config). Anyone who can write that storage could otherwise name any importable callable,
and the worker would import and call it. So a worker, and `sweeps reproduce`, call only:

- the bundled targets: `trainer.models.*`, `trainer.datasets.*`, `torch.nn.*` (losses);
- the packages of the `_target_`s in this machine's own config dir (the one given to this
  process, or a recorded one this user owns and nobody else may write);
- the packages this process was told to allow: `--allow-target PKG`, `$SWEEPS_ALLOWED_TARGETS`
  (comma-separated), a launch's own command line for the workers it starts.

Every `_target_` of a config, and every choice of a search dimension that sets one, is
checked before anything imports it; one that is not allowed is one line naming the key, the
package and how to allow it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.api import UserError

BUNDLED = ("trainer.models.", "trainer.datasets.", "torch.nn.")
ENV = "SWEEPS_ALLOWED_TARGETS"
TARGET = "_target_"
_YAML_TARGET = re.compile(r"""^\s*_target_\s*:\s*["']?([\w.]+)""", re.MULTILINE)
_PACKAGE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


@dataclass(frozen=True)
class AllowedTargets:
    """The bundled targets plus `packages` (top-level packages or dotted prefixes)."""

    packages: frozenset[str] = frozenset()

    def allows(self, path: object) -> bool:
        if not isinstance(path, str) or not _PACKAGE.match(path):
            return False
        if path.startswith(BUNDLED):
            return True
        return any(path == p or path.startswith(p + ".") for p in self.packages)

    def check(self, cfg: Mapping[str, Any], where: str = "") -> None:
        """One line (UserError) for the first `_target_` of `cfg` that is not allowed."""
        for key, path in targets_in(cfg, where):
            if not self.allows(path):
                shown = path if isinstance(path, str) else repr(path)
                package = shown.split(".")[0]
                raise UserError(
                    f"{key}={shown}: not a target this machine allows ({self.describe()}); "
                    f"if you trust it, allow it here with --allow-target {package} or "
                    f"{ENV}={package}")

    def describe(self) -> str:
        mine = ", ".join(sorted(self.packages))
        return "trainer.models, trainer.datasets, torch.nn" + (f", {mine}" if mine else "")

    def with_packages(self, more: Iterable[str]) -> AllowedTargets:
        return AllowedTargets(self.packages | {p for p in more if p})


def targets_in(cfg: Any, where: str = "") -> Iterator[tuple[str, Any]]:
    """Every `(key, value)` that names a callable: `_target_` keys at any depth, and the
    choices of a search dimension whose key sets a `_target_`."""
    if isinstance(cfg, Mapping):
        dim_key = cfg.get("key")
        if isinstance(dim_key, str) and dim_key.split(".")[-1] == TARGET:
            for choice in cfg.get("choices") or []:
                yield f"{where}choices", choice
        for k, v in cfg.items():
            if k == TARGET:
                yield f"{where}{k}", v
            else:
                yield from targets_in(v, f"{where}{k}.")
    elif isinstance(cfg, list | tuple):
        for i, v in enumerate(cfg):
            yield from targets_in(v, f"{where}{i}.")


def package_of(path: str) -> str:
    return path.split(".")[0]


def in_overrides(overrides: Sequence[str]) -> set[str]:
    """The packages of the `_target_`s a command line sets (`model._target_=pkg.Net`, or in a
    `{_target_: pkg.Loss}` value): the person who typed them allows them."""
    found = set()
    for o in overrides:
        key, _, value = o.partition("=")
        if key.lstrip("+~").endswith(TARGET) and value:
            found.add(package_of(value.strip().strip("'\"")))
        found |= {package_of(m) for m in re.findall(r"_target_\s*:\s*['\"]?([\w.]+)", value)}
    return {p for p in found if p}


def in_config_dir(path: str | os.PathLike[str] | None) -> set[str]:
    """The packages of the `_target_`s written in a config dir's YAML files."""
    if path is None:
        return set()
    found: set[str] = set()
    for f in Path(path).rglob("*.yaml"):
        try:
            text = f.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        found |= {package_of(m) for m in _YAML_TARGET.findall(text)}
    return found


def owned_privately(path: str | os.PathLike[str]) -> bool:
    """This user's directory, which no one else may write (a recorded config dir counts as
    this machine's own only then)."""
    try:
        st = Path(path).stat()
    except OSError:
        return False
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def from_env() -> set[str]:
    return {p.strip() for p in os.environ.get(ENV, "").split(",") if p.strip()}


def for_this_machine(config_dir: str | None = None, given: Iterable[str] = (),
                     recorded: str | None = None) -> AllowedTargets:
    """What this process may call: the bundled targets, its own config dir's packages, those
    it was told (`given`, the environment), and a recorded config dir's where this user owns
    it and nobody else may write it."""
    packages = in_config_dir(config_dir) | from_env() | set(given)
    if recorded and recorded != config_dir and owned_privately(recorded):
        packages |= in_config_dir(recorded)
    return AllowedTargets(frozenset(packages))
