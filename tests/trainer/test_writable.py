"""`check_writable`: workers starting together test the same new output folder at once, and
every one of them passes; the check leaves nothing behind, passed or refused."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from trainer.errors import UserError
from trainer.writable import check_writable


def _check(path: str) -> str | None:
    try:
        check_writable(path, "--output-dir")
    except UserError as err:
        return str(err)
    return None


def test_workers_testing_the_same_new_folder_together_all_pass(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(8) as pool:
        for round_ in range(5):
            target = str(tmp_path / f"r{round_}" / "sweep" / "out")
            assert pool.map(_check, [target] * 16) == [None] * 16
            assert not (tmp_path / f"r{round_}").exists()  # nothing made, nothing left


def test_a_refused_folder_is_one_line_and_leaves_nothing() -> None:
    """/proc refuses new folders even to root."""
    said = _check("/proc/sweeps-test/a/b")
    assert said is not None and said.startswith("--output-dir=/proc/sweeps-test/a/b: not writable")
    assert not Path("/proc/sweeps-test").exists()
