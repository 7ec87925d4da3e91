"""`sweep.workers_per_device`: K workers per visible GPU, each pinned to its own."""

from __future__ import annotations

import os

import pytest

from sweeps.search import devices
from sweeps.search.load import load_sweep
from trainer.errors import UserError


def test_k_workers_per_gpu_pinned_in_turn_and_threads_split(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    spec = load_sweep(["sweep=quick", "sweep.workers_per_device=2", "sweep.workers=7"])
    assert spec.workers == 4 and spec.worker_devices == ("3", "3", "5", "5")
    assert spec.threads_per_worker == max(1, (os.cpu_count() or 1) // 4)


def test_without_a_gpu_k_workers_share_the_cpu_unpinned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    spec = load_sweep(["sweep=quick", "sweep.workers_per_device=2"])
    assert spec.workers == 2 and spec.worker_devices == (None, None)
    plain = load_sweep(["sweep=quick", "sweep.workers=3"])  # unset: sweep.workers as before
    assert plain.workers == 3 and plain.worker_devices == (None, None, None)


def test_a_bad_value_names_the_key() -> None:
    with pytest.raises(UserError, match=r"sweep\.workers_per_device"):
        load_sweep(["sweep=quick", "sweep.workers_per_device=0"])


def test_a_worker_process_sees_only_its_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    devices.pin("2")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "2" and devices.visible_gpus() == ["2"]
    devices.pin(None)  # not pinned: left alone
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "2"
