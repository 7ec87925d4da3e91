"""A retry that finds no checkpoint of its lost attempt says why, from what that attempt
recorded: it died before its first checkpoint was due, it ran on a machine that does not
share the folder, or the file is gone."""

from __future__ import annotations

import datetime
import socket
from pathlib import Path

import optuna
from optuna.trial import TrialState

from sweeps.run.checkpoints import why_none


def _lost(epochs: int, seconds: float, host: str) -> optuna.trial.FrozenTrial:
    start = datetime.datetime(2026, 12, 6, 12, 0, 0)
    return optuna.trial.FrozenTrial(
        number=3, state=TrialState.FAIL, value=None, values=None, datetime_start=start,
        datetime_complete=start + datetime.timedelta(seconds=seconds), params={},
        distributions={}, user_attrs={"worker": f"{host}:4242"}, system_attrs={},
        intermediate_values={e: 0.5 for e in range(1, epochs + 1)}, trial_id=3)


def test_younger_than_the_cadence(tmp_path: Path) -> None:
    why = why_none(_lost(50, 6.0, socket.gethostname()), tmp_path, 10.0)
    assert why.startswith("the lost attempt ran 50 epoch(s) in 6 s, before its first checkpoint "
                          "was due (sweep.checkpoint_every_s=10")
    assert "shared" not in why
    assert "before its first checkpoint" in why_none(_lost(0, 30.0, "elsewhere"), tmp_path, 10.0)


def test_another_machine_that_does_not_share_the_folder(tmp_path: Path) -> None:
    why = why_none(_lost(40, 120.0, "gpu-node-7"), tmp_path, 10.0)
    assert "on gpu-node-7" in why and "put sweep.checkpoint_dir on a folder every worker shares" in why


def test_the_file_is_gone_here(tmp_path: Path) -> None:
    why = why_none(_lost(40, 120.0, socket.gethostname()), tmp_path, 10.0)
    assert "ran 40 epoch(s) in 120 s here" in why and str(tmp_path / "checkpoints" / "last.pt") in why
    assert "shares" not in why
