"""A cache of Hydra compositions on disk, keyed by everything a composition depends on.

Composing is ~0.3 s of Python per call and a sweep makes one per optimizer (nine for the
quick sweep), in the launch and in every command that reads a sweep. The key holds the
config name, the overrides, both config dirs (bundled and the user's) with the path, size
and mtime of every file in them, and the Hydra and OmegaConf versions: a changed file is
a new key, never a stale config. Interpolations such as ``${oc.env:...}`` are kept
unresolved, so the environment is read when the config is, as without the cache. Only
successful compositions are kept (an error is composed again, and says the same). Off
with ``SWEEPS_COMPOSE_CACHE=0``; where the cache dir cannot be written, nothing is cached.
The entries are pickles: they are written 0600 in 0700 folders and read only where this
user owns the folders and the file and nobody else may write them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from omegaconf import DictConfig

CACHE_VERSION = 1
MAX_ENTRIES = 400  # past this many files the older half goes


def cache_dir() -> Path:
    """``$SWEEPS_CACHE_DIR``, else ``$XDG_CACHE_HOME/sweeps``, else ``~/.cache/sweeps``."""
    explicit = os.environ.get("SWEEPS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sweeps"


def enabled() -> bool:
    return os.environ.get("SWEEPS_COMPOSE_CACHE", "1") != "0"


def _stamp(root: str | None) -> list[tuple[str, int, int]]:
    if root is None:
        return []
    out = []
    for dirpath, dirnames, files in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".yaml", ".yml")):
                path = os.path.join(dirpath, name)
                with contextlib.suppress(OSError):
                    st = os.stat(path)
                    out.append((os.path.relpath(path, root), st.st_mtime_ns, st.st_size))
    return out


@functools.cache
def _versions() -> tuple[str, str]:
    from importlib.metadata import version

    return version("hydra-core"), version("omegaconf")


def key(config_name: str, overrides: Sequence[str], bundled: str, user: str | None) -> str:
    parts = [CACHE_VERSION, config_name, list(overrides), bundled, user, _stamp(bundled),
             _stamp(user), *_versions()]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:32]


def cached(config_name: str, overrides: Sequence[str], bundled: str, user: str | None,
           compose: Callable[[], DictConfig]) -> DictConfig:
    """`compose()`'s result, from the cache when the same composition was made before."""
    from omegaconf import DictConfig

    if not enabled():
        return compose()
    path = cache_dir() / "compose" / f"{key(config_name, overrides, bundled, user)}.pkl"
    with contextlib.suppress(Exception):  # missing, unreadable or from another version
        if _private(path.parent.parent) and _private(path.parent) and _private(path):
            cfg = pickle.loads(path.read_bytes())
            if isinstance(cfg, DictConfig):
                return cfg
    cfg = compose()
    with contextlib.suppress(OSError):
        for folder in (path.parent.parent, path.parent):
            folder.mkdir(mode=0o700, exist_ok=True)
        if not (_private(path.parent.parent) and _private(path.parent)):
            return cfg  # a folder others may write: nothing is kept there, nothing read
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pickle.dumps(cfg))
        os.replace(tmp, path)  # readers see the whole file or none
        _prune(path.parent)
    return cfg


def _private(path: Path) -> bool:
    """This user's, and nobody else may write it: a pickle is read only from there (reading
    one runs whatever its writer put in it)."""
    st = path.stat()
    return st.st_uid == os.geteuid() and not st.st_mode & 0o022


def _prune(folder: Path) -> None:
    entries = list(folder.glob("*.pkl"))
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda p: p.stat().st_mtime)
    for old in entries[: len(entries) // 2]:
        with contextlib.suppress(OSError):
            old.unlink()

