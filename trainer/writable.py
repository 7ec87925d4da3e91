"""Whether this process can write into a directory: tried for real, never guessed.

Permission bits say little to root, on read-only mounts or on network filesystems, so a
temporary file is made and removed. A folder that does not exist yet is not made: a
temporary folder of the check's own is, where its first missing part would go, and removed
again (workers starting together test the same new folder at once; none sees another's).
Shared by the trainer (its output dir) and the sweep layer (checkpoint and report dirs).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from trainer.errors import UserError


def check_writable(path: str | Path, key: str) -> Path:
    """The directory, made absolute; one line naming `key` if this process cannot write there."""
    target = Path(path).expanduser().resolve()
    existing = target
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{key}={path}: {existing} is a file, not a directory")
    try:
        if existing == target:
            with tempfile.NamedTemporaryFile(dir=target, prefix=".sweeps-write-test-"):
                pass
        else:  # a folder of this check's own where the missing ones would go: nothing shared
            probe = Path(tempfile.mkdtemp(dir=existing, prefix=".sweeps-write-test-"))
            try:
                with tempfile.NamedTemporaryFile(dir=probe):
                    pass
            finally:
                shutil.rmtree(probe, ignore_errors=True)
    except OSError as err:
        raise UserError(f"{key}={path}: not writable ({err.strerror or err})") from err
    return target
