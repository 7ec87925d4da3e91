"""Where sweep trials keep their outputs and per-epoch checkpoints, and when they go.

A trial writes into ``CHECKPOINT_DIR/SWEEP/STUDY/trial_N`` (``history.json`` and
``checkpoints/last.pt``, saved after every epoch), N being the number of the first trial
of its retry chain: a retry of a trial whose worker died finds the checkpoint there and
resumes from its last epoch, on any worker that can reach the directory (local disk by
default, a shared volume in compose). Checkpoints of finished trials are deleted unless
``sweep.keep_checkpoints`` (``history.json`` stays).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from trainer.api import writable

LAST = Path("checkpoints") / "last.pt"


def resolve(path: str | Path) -> Path:
    """Absolute, so that workers started elsewhere (another directory) find the same place."""
    return Path(path).expanduser().resolve()


def check_writable(path: str | Path, key: str = "sweep.checkpoint_dir") -> Path:
    """The directory, made absolute; a one-line error if this process cannot write there
    (tried for real: `trainer.writable`)."""
    return writable.check_writable(path, key)


def trial_dir(root: str | Path, sweep: str, study: str, number: int) -> Path:
    return Path(root) / sweep / study / f"trial_{number}"


def last_checkpoint(out_dir: str | Path) -> Path | None:
    path = Path(out_dir) / LAST
    return path if path.is_file() else None


def discard(out_dir: str | Path) -> None:
    """Delete a finished trial's checkpoints (its history.json stays)."""
    shutil.rmtree(Path(out_dir) / LAST.parent, ignore_errors=True)
