"""Checkpoints: model, optimizer, schedule, best weights, history and every RNG state.

Written atomically (temp file + rename) so an interrupted save never leaves a
corrupt checkpoint; `trainer.resume=PATH` restores all of it, which makes an
interrupted-then-resumed run end with the same metrics as an uninterrupted one.

A checkpoint holds tensors, numbers, strings, lists and dicts only, and is read with
`torch.load(weights_only=True)`: a file planted where a run looks for its checkpoint cannot
run code when it is read (a pickle can), it is only refused.
"""

from __future__ import annotations

import errno
import os
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer.errors import UserError

FORMAT_VERSION = 2  # 2: NumPy's RNG state as a tensor, readable with weights_only


def rng_state(data_gen: torch.Generator) -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": _numpy_state(),
        "torch": torch.get_rng_state(),
        "data": data_gen.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], data_gen: torch.Generator) -> None:
    random.setstate(state["python"])
    _set_numpy_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    data_gen.set_state(state["data"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _numpy_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def _set_numpy_state(state: dict[str, Any]) -> None:
    keys = state["keys"].numpy().astype(np.uint32)
    np.random.set_state((state["kind"], keys, state["pos"], state["has_gauss"], state["cached_gaussian"]))


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically (a temporary file, then a rename). A write the disk refuses is an
    `OSError` naming the file: torch's zip writer says only ``unexpected pos 64 vs 0``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    try:
        torch.save({"format": FORMAT_VERSION, **payload}, tmp)
    except RuntimeError as err:
        tmp.unlink(missing_ok=True)
        code = errno.ENOSPC if _full(path.parent) else errno.EIO
        raise OSError(code, f"{os.strerror(code)} ({err})", str(path)) from err
    os.replace(tmp, path)


def _full(folder: Path) -> bool:
    try:
        st = os.statvfs(folder)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 1 << 20  # under 1 MiB left: what a checkpoint needs


def load(path: str | Path) -> dict[str, Any]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"trainer.resume={str(path)!r}: no checkpoint file there")
    try:
        with warnings.catch_warnings():  # torch's note on a file's pickle protocol
            warnings.simplefilter("ignore")
            payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception:  # damaged, not a checkpoint, or a pickle with code in it
        raise UserError(f"trainer.resume={str(path)!r}: not a readable checkpoint of this trainer "
                        "(damaged, or it holds more than tensors, numbers and strings, which is "
                        "refused)") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION \
            or not payload.keys() >= REQUIRED \
            or not all(isinstance(payload[k], dict) for k in ("config", "rng", "best", "model")):
        raise UserError(f"trainer.resume={str(path)!r}: not a checkpoint of this trainer")
    return payload


REQUIRED = {"epoch", "global_step", "model", "optimizer", "schedule", "best", "history", "steps",
            "rng", "config"}
