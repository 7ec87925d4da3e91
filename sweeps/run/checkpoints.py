"""Where sweep trials keep their outputs and per-epoch checkpoints, and when they go.

A trial writes into ``CHECKPOINT_DIR/SWEEP/STUDY/trial_N`` (``history.json`` and
``checkpoints/last.pt``, saved at the end of an epoch once ``sweep.checkpoint_every_s``
have passed since the trial started or since the last one), N being the number of the first trial
of its retry chain: a retry of a trial whose worker died finds the checkpoint there and
resumes from its last epoch, on any worker that can reach the directory (local disk by
default, a shared volume in compose). Checkpoints of finished trials are deleted unless
``sweep.keep_checkpoints`` (``history.json`` stays).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

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


def why_none(lost: Any, out_dir: str | Path, every_s: float) -> str:
    """Why a retry finds no checkpoint of its lost attempt, from what that attempt recorded:
    it died before its first checkpoint was due (the cadence: at the end of an epoch once
    `every_s` have passed since the start or the last one), its checkpoints were written on a
    machine that does not share this folder, or the file is gone."""
    import socket

    if lost is None:
        return f"the lost attempt is not in the study; no {Path(out_dir) / LAST}"
    epochs = len(lost.intermediate_values or {})
    ran = (lost.datetime_complete - lost.datetime_start).total_seconds() \
        if lost.datetime_start and lost.datetime_complete else None
    host = str(lost.user_attrs.get("worker", "")).rsplit(":", 1)[0]
    took = f"{epochs} epoch(s)" + (f" in {ran:.0f} s" if ran is not None else "")
    if epochs == 0 or (ran is not None and ran < every_s):
        return (f"the lost attempt ran {took}, before its first checkpoint was due "
                f"(sweep.checkpoint_every_s={every_s:g}: at the end of an epoch once that long "
                "has passed; 0 checkpoints every epoch)")
    if host and host != socket.gethostname():
        return (f"the lost attempt ran {took} on {host}, whose {out_dir} this machine does not "
                "see: put sweep.checkpoint_dir on a folder every worker shares")
    return (f"the lost attempt ran {took} here, but {Path(out_dir) / LAST} is gone (deleted, "
            "or sweep.checkpoint_dir changed)")
