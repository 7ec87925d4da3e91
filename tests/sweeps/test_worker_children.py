"""A local worker process (started by `spawn`) starts its own children, the DataLoader
workers, as `python -m trainer` does: forked where the platform forks, not spawned again
(each spawned one would import torch and the user's dataset module anew, seconds per loader
and trial)."""

from __future__ import annotations

import multiprocessing as mp
import os
import types
from typing import Any

import pytest
import torch


class StartMethodSeen(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Each item: the start method the process reading it was given."""

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> str:
        return str(mp.get_start_method(allow_none=True))


def _read_with_a_loader_worker() -> list[str]:
    loader = torch.utils.data.DataLoader(StartMethodSeen(), batch_size=2, num_workers=1)
    return [m for batch in loader for m in batch]


def _as_a_local_worker(out: Any, launch_pid: int) -> None:
    """What LocalWorkers starts, with the worker's loop replaced by one DataLoader read."""
    import sweeps.run.worker
    from sweeps.run import processes

    def run_worker(opts: Any, gate: Any) -> int:
        out.put(_read_with_a_loader_worker())
        return 0

    sweeps.run.worker.run_worker = run_worker  # type: ignore[assignment]
    processes._worker_main(types.SimpleNamespace(writer=None, overrides=None), None, launch_pid)


def _plain_spawned_child(out: Any) -> None:
    out.put(_read_with_a_loader_worker())


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="this platform cannot fork")
def test_a_local_workers_dataloader_workers_are_forked_as_under_python_m_trainer() -> None:
    ctx = mp.get_context("spawn")  # as LocalWorkers starts its workers
    out = ctx.Queue()
    worker = ctx.Process(target=_as_a_local_worker, args=(out, os.getpid()))
    worker.start()
    seen = out.get(timeout=120)
    worker.join(30)
    assert worker.exitcode == 0
    assert seen == [mp.get_all_start_methods()[0]] * 2 == ["fork"] * 2
    # without it, a child of `spawn` spawns its own: what the worker used to do
    plain = ctx.Process(target=_plain_spawned_child, args=(out,))
    plain.start()
    assert out.get(timeout=120) == ["spawn"] * 2
    plain.join(30)
