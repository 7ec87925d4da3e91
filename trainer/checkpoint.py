"""Checkpoints: model, optimizer, schedule, best weights, history and every RNG state.

Written atomically (temp file + rename) so an interrupted save never leaves a
corrupt checkpoint; `trainer.resume=PATH` restores all of it, which makes an
interrupted-then-resumed run end with the same metrics as an uninterrupted one.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer.errors import UserError

FORMAT_VERSION = 1


def rng_state(data_gen: torch.Generator) -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "data": data_gen.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any], data_gen: torch.Generator) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    data_gen.set_state(state["data"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": FORMAT_VERSION, **payload}, tmp)
    os.replace(tmp, path)


def load(path: str | Path) -> dict[str, Any]:
    p = Path(path).expanduser()
    if not p.is_file():
        raise UserError(f"trainer.resume={str(path)!r}: no checkpoint file there")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as err:  # corrupt or not a checkpoint
        raise UserError(f"trainer.resume={str(path)!r}: not a readable checkpoint ({err})") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise UserError(f"trainer.resume={str(path)!r}: not a checkpoint of this trainer")
    return payload
