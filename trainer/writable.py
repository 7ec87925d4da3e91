"""Whether this process can write into a directory: tried for real, never guessed.

Permission bits say little to root, on read-only mounts or on network filesystems, so a
temporary file is made and removed; directories made for the test are removed again.
Shared by the trainer (its output dir) and the sweep layer (checkpoint and report dirs).
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from trainer.errors import UserError


def check_writable(path: str | Path, key: str) -> Path:
    """The directory, made absolute; one line naming `key` if this process cannot write there."""
    target = Path(path).expanduser().resolve()
    missing: list[Path] = []
    existing = target
    while not existing.exists() and existing.parent != existing:
        missing.append(existing)
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{key}={path}: {existing} is a file, not a directory")
    created: list[Path] = []
    try:
        for folder in reversed(missing):
            folder.mkdir()
            created.append(folder)
        with tempfile.NamedTemporaryFile(dir=target, prefix=".sweeps-write-test-"):
            pass
    except OSError as err:
        raise UserError(f"{key}={path}: not writable ({err.strerror or err})") from err
    finally:
        for folder in reversed(created):
            with contextlib.suppress(OSError):
                folder.rmdir()
    return target
