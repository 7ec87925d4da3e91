"""Whether this process can write into a directory: tried for real, never guessed.

Permission bits say little to root, on read-only mounts or on network filesystems, so a
temporary file is made and removed. Directories made for the test stay where it passes
(they are about to be used, and workers starting together test the same new folder: one
removing it would fail another's test) and are removed again where it fails.
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
            try:
                folder.mkdir()
                created.append(folder)
            except FileExistsError:  # another process (a worker starting beside) made it
                pass
        with tempfile.NamedTemporaryFile(dir=target, prefix=".sweeps-write-test-"):
            pass
    except OSError as err:
        for folder in reversed(created):  # refused: leave nothing behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise UserError(f"{key}={path}: not writable ({err.strerror or err})") from err
    return target
