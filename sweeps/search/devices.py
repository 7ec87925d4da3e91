"""Local workers per GPU (`sweep.workers_per_device`): how many, and which GPU each uses.

Several small trials share one GPU as separate worker processes, each pinned to its
device by ``CUDA_VISIBLE_DEVICES`` (set in the worker before CUDA is first used), so the
sweep layer runs them exactly as any other workers. See docs/explanation/design.md
("Several small trials on one GPU").
"""

from __future__ import annotations

import os


def visible_gpus() -> list[str]:
    """The CUDA devices this process may use (``CUDA_VISIBLE_DEVICES`` if set), without
    initialising CUDA in it."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and not d.strip().startswith("-")]
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return []
    return [str(i) for i in range(torch.cuda.device_count())]


def local_workers(per_device: int | None, workers: int, gpus: list[str]) -> int:
    """`per_device` workers per GPU (per machine without one); else `sweep.workers`."""
    if per_device is None:
        return workers
    return per_device * max(1, len(gpus))


def assignment(per_device: int | None, workers: int, gpus: list[str]) -> tuple[str | None, ...]:
    """The GPU of each local worker in turn (None: not pinned)."""
    if per_device is None or not gpus:
        return (None,) * workers
    return tuple(gpus[i // per_device] for i in range(workers))


def pin(device: str | None) -> None:
    """In a new worker process, before CUDA is used: see only `device` (as ``cuda:0``)."""
    if device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = device
