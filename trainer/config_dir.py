"""The user's config dir: their `model/`, `dataset/`, `sweep/`, `search/` files beside ours.

Set by `sweeps launch --config-dir DIR`, `python -m trainer --config-dir DIR` or the
environment variable `SWEEPS_CONFIG_DIR` (which the former two set, so that the worker
processes a launch starts inherit it). The directory goes into Hydra's config search path
just before the bundled tree, so a user file with a bundled name wins (`shadowed` lists
them for the launch to say so). Hydra's own `--config-dir` puts it after the bundled tree;
a Hydra search-path plugin, registered here, puts it first for every entry point alike.
"""

from __future__ import annotations

import os
from pathlib import Path

from trainer.errors import UserError

ENV = "SWEEPS_CONFIG_DIR"
PROVIDER = "sweeps-config-dir"


def current() -> Path | None:
    """The config dir in use, or None."""
    value = os.environ.get(ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None  # recorded by a sweep: absolute


def use(path: str | os.PathLike[str] | None) -> Path | None:
    """Use `path` as the config dir from now on (in this process and those it starts)."""
    if path is None or str(path).strip() == "":
        return current()
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_dir():
        raise UserError(f"--config-dir {path}: no such directory")
    os.environ[ENV] = str(resolved)
    return resolved


def shadowed(bundled: str | os.PathLike[str]) -> list[str]:
    """The user's config files that replace a bundled one of the same group and name."""
    user = current()
    if user is None:
        return []
    root = Path(bundled)
    return sorted(str(f.relative_to(user)) for f in user.rglob("*.yaml")
                  if (root / f.relative_to(user)).is_file())


_registered = False


def register() -> None:
    """Add the search-path plugin to Hydra (once per process)."""
    global _registered
    if _registered:
        return
    from hydra.core.config_search_path import ConfigSearchPath, SearchPathQuery
    from hydra.core.plugins import Plugins
    from hydra.plugins.search_path_plugin import SearchPathPlugin

    class UserConfigDir(SearchPathPlugin):
        """`SWEEPS_CONFIG_DIR` before the bundled tree (Hydra's provider "main")."""

        def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
            user = current()
            if user is not None:
                search_path.prepend(PROVIDER, f"file://{user}", anchor=SearchPathQuery(provider="main"))

    Plugins.instance().register(UserConfigDir)
    _registered = True


def from_argv(argv: list[str]) -> str | None:
    """The value of Hydra's ``--config-dir DIR`` / ``--config-dir=DIR`` / ``-cd DIR``."""
    for i, arg in enumerate(argv):
        if arg in ("--config-dir", "-cd") and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--config-dir="):
            return arg.split("=", 1)[1]
    return None


def without_flag(argv: list[str]) -> list[str]:
    """`argv` without the config-dir flag and its value."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--config-dir", "-cd"):
            skip = True
        elif not arg.startswith("--config-dir="):
            out.append(arg)
    return out
