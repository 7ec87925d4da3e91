"""A Worker is built from the objects it works with: an in-memory Optuna storage, studies
made from a loaded sweep, its claims and its trial runner; nothing opened from a URL."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState

from sweeps.run.claims import Claims
from sweeps.run.trial import RunSettings, TrialRunner
from sweeps.run.worker import Worker
from sweeps.search import studies as study_mod
from sweeps.search.load import load_sweep

from .conftest import SMALL


def test_a_worker_runs_a_sweep_held_in_memory(workdir: Path) -> None:
    spec = load_sweep(["sweep=quick", *SMALL, "sweep.optimizers=[sgd]", "sweep.n_trials=2",
                       "trainer.epochs=1", "trainer.progress=false", "trainer.checkpoint=never"])
    storage = optuna.storages.InMemoryStorage()
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    study_mod.create_studies(storage, spec, uri, str(workdir / "checkpoints"))
    studies = study_mod.sweep_studies(storage, spec.name)
    locks = str(workdir / "locks.journal")  # the budget lock's file sits beside this path
    claims = Claims(storage, locks, spec.name, studies, ("search",), deadline=None,
                    max_retries=spec.max_retries)
    runner = TrialRunner(RunSettings(spec, spec.name, uri, workdir / "out", threads=1, quiet=True))
    worker = Worker(storage, spec, studies, claims, runner, sweep=spec.name, uri=uri, url=locks)

    assert worker.run() == 2
    study = optuna.load_study(study_name="quick.sgd", storage=storage)
    assert [t.state for t in study.get_trials()] == [TrialState.COMPLETE] * 2
    assert not (workdir / "locks.journal").exists()  # no journal: the trials live in memory
