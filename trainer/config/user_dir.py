"""The user's config dir: their `model/`, `dataset/`, `sweep/`, `search/` files beside ours.

Given as `--config-dir DIR` (or `$SWEEPS_CONFIG_DIR`) on a command line, or `config_dir=`
in Python; from there it is passed as an argument: to every composition, into the sweep's
record (where its workers read it) and to the processes a launch starts. The directory goes
into Hydra's config search path just before the bundled tree, so a user file with a bundled
name wins (`shadowed` lists them for the launch to say so). Hydra's own `--config-dir`
puts it after the bundled tree; a Hydra search-path plugin, registered here, puts it first
for every entry point alike.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from trainer.errors import UserError

ENV = "SWEEPS_CONFIG_DIR"
PROVIDER = "sweeps-config-dir"


def resolve(path: str | os.PathLike[str] | None) -> Path | None:
    """`path` made absolute (a sweep records it for its workers), or None; one line when it
    is not a directory."""
    if path is None or str(path).strip() == "":
        return None
    resolved = Path(path).expanduser().resolve()
    if not resolved.is_dir():
        raise UserError(f"--config-dir {path}: no such directory")
    return resolved


def from_env() -> Path | None:
    """`$SWEEPS_CONFIG_DIR`: read by the command lines only (`sweeps`, `python -m trainer`),
    which pass the directory on from there."""
    return resolve(os.environ.get(ENV))


def shadowed(bundled: str | os.PathLike[str], user: Path | None) -> list[str]:
    """The user's config files that replace a bundled one of the same group and name."""
    if user is None:
        return []
    root = Path(bundled)
    return sorted(str(f.relative_to(user)) for f in user.rglob("*.yaml")
                  if (root / f.relative_to(user)).is_file())


_searched: Path | None = None  # the user's dir of the composition under way (`searching`)
_registered = False


@contextlib.contextmanager
def searching(user: Path | None) -> Iterator[None]:
    """Hydra compositions inside the block look in `user` first. Hydra builds its search
    path plugins itself, with no arguments, so the plugin reads the directory from here,
    set for the length of one composition only."""
    global _searched
    register()
    before, _searched = _searched, user
    try:
        yield
    finally:
        _searched = before


def register() -> None:
    """Add the search-path plugin to Hydra (once per process)."""
    global _registered
    if _registered:
        return
    from hydra.core.config_search_path import ConfigSearchPath, SearchPathQuery
    from hydra.core.plugins import Plugins
    from hydra.plugins.search_path_plugin import SearchPathPlugin

    class UserConfigDir(SearchPathPlugin):
        """The user's config dir before the bundled tree (Hydra's provider "main")."""

        def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
            if _searched is not None:
                search_path.prepend(PROVIDER, f"file://{_searched}",
                                    anchor=SearchPathQuery(provider="main"))

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
