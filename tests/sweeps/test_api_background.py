"""`sweeps.start`: a launch beside the caller. The sweep can be read while it runs, `wait()`
returns it, and bad input comes back as the command's one line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import sweeps

pytestmark = pytest.mark.slow

TINY = {"sweep.optimizers": ["adam"], "sweep.n_trials": 2, "trainer.epochs": 1,
        "sweep.threads_per_worker": 1}


def test_a_started_launch_is_watched_then_collected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI", "SWEEPS_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    run = sweeps.start("quick", TINY)
    assert isinstance(run, sweeps.Launch) and run.name == "quick"
    seen = None
    while run.running and seen is None:  # readable once the launch has made its studies
        try:
            seen = run.sweep().status()
        except sweeps.UserError:
            time.sleep(0.2)
    sweep = run.wait(timeout=300)
    assert not run.running and "best search trial" in run.output
    trials = sweep.trials()
    assert len(trials) == 2 and set(trials["state"]) == {"complete"}

    bad = sweeps.start("quick", {**TINY, "sweep.name": "other", "search.adam.lr.low": 0.5,
                                 "search.adam.lr.high": 0.1})
    with pytest.raises(sweeps.UserError, match=r"search.adam.lr.low=0.5: must be < high \(0.1\)"):
        bad.wait(timeout=120)
    assert not Path("sweeps.journal").read_text().count('"other')  # nothing written for it
