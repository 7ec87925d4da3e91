"""Where sweep trials keep their outputs and per-epoch checkpoints, and when they go.

A trial writes into ``CHECKPOINT_DIR/SWEEP/STUDY/trial_N`` (``history.json`` and
``checkpoints/last.pt``, saved after every epoch), N being the number of the first trial
of its retry chain: a retry of a trial whose worker died finds the checkpoint there and
resumes from its last epoch, on any worker that can reach the directory (local disk by
default, a shared volume in compose). Checkpoints of finished trials are deleted unless
``sweep.keep_checkpoints`` (``history.json`` stays).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

from trainer.errors import UserError

LAST = Path("checkpoints") / "last.pt"


def resolve(path: str | Path) -> Path:
    """Absolute, so that workers started elsewhere (another directory) find the same place."""
    return Path(path).expanduser().resolve()


def check_writable(path: str | Path, key: str = "sweep.checkpoint_dir") -> Path:
    """The directory, made absolute; a one-line error if this process cannot write there.

    Tried for real (a temporary file), since permission bits say little to root or on
    read-only mounts; directories made for the test are removed again.
    """
    target = resolve(path)
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


def trial_dir(root: str | Path, sweep: str, study: str, number: int) -> Path:
    return Path(root) / sweep / study / f"trial_{number}"


def last_checkpoint(out_dir: str | Path) -> Path | None:
    path = Path(out_dir) / LAST
    return path if path.is_file() else None


def discard(out_dir: str | Path) -> None:
    """Delete a finished trial's checkpoints (its history.json stays)."""
    shutil.rmtree(Path(out_dir) / LAST.parent, ignore_errors=True)
