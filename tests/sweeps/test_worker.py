"""The worker loop in-process: pruning with curves kept, diverged trials, budgets."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from sweeps.cli import app
from sweeps.worker import Worker

from .conftest import SMALL
from .helpers import journal_trials, mlflow_runs


def _setup(cli: CliRunner, *overrides: str) -> None:
    result = cli.invoke(app, ["launch", *SMALL, "sweep.workers=0", *overrides])
    assert result.exit_code == 0, result.output


def test_median_pruning_stops_bad_trials_and_keeps_their_curves(workdir: Path, cli: CliRunner) -> None:
    # sgd only; learning rates from hopeless to good, so the median rule has work to do
    _setup(cli, "sweep.optimizers=[sgd]", "sweep.n_trials=6", "trainer.epochs=3",
           "sweep.sampler.name=random", "sweep.seed=3", "search.sgd.lr.low=1e-5",
           "search.sgd.lr.high=0.5", "sweep.pruner.n_startup_trials=1",
           "sweep.pruner.n_warmup_steps=0")
    ran = Worker(str(workdir / "sweeps.journal"), "quick", quiet=True).run()
    assert ran == 6
    trials = journal_trials(workdir / "sweeps.journal")["quick.sgd"]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert pruned and complete, [t.state for t in trials]
    runs = {r.info.run_id: r for r in mlflow_runs(f"sqlite:///{workdir / 'mlflow.db'}")}
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    for t in pruned:
        epochs = t.user_attrs["epochs"]
        assert epochs < 3 and t.user_attrs["pruned_reason"] == f"pruned at epoch {epochs}"
        run = runs[t.user_attrs["mlflow_run_id"]]
        assert run.data.tags["sweeps.state"] == "pruned"
        curve = client.get_metric_history(run.info.run_id, "val/acc")
        assert [m.step for m in curve] == list(range(1, epochs + 1))
        assert max(t.intermediate_values.values()) == pytest.approx(max(m.value for m in curve))
    for t in complete:
        assert t.value == pytest.approx(t.user_attrs["final"]["best/val_acc"])
        assert list(t.intermediate_values) == [1, 2, 3]


def test_diverging_trials_are_recorded_and_the_worker_continues(workdir: Path, cli: CliRunner) -> None:
    _setup(cli, "sweep.optimizers=[sgd]", "sweep.n_trials=3", "search.sgd.lr.low=1e4",
           "search.sgd.lr.high=1e6", "trainer.log_every=1")
    assert Worker(str(workdir / "sweeps.journal"), "quick", quiet=True).run() == 3
    trials = journal_trials(workdir / "sweeps.journal")["quick.sgd"]
    assert len(trials) == 3 and all(t.state == TrialState.FAIL for t in trials)
    assert all(t.user_attrs["state"] == "diverged" for t in trials)
    assert all("non-finite" in t.user_attrs["failure_reason"] for t in trials)
    runs = mlflow_runs(f"sqlite:///{workdir / 'mlflow.db'}")
    child = [r for r in runs if "sweeps.trial" in r.data.tags]
    assert len(child) == 3
    assert {r.data.tags["sweeps.state"] for r in child} == {"diverged"}
    assert {r.info.status for r in child} == {"FAILED"}
    status = CliRunner().invoke(app, ["status"])
    assert status.exit_code == 0 and "quick.sgd" in status.output


def test_objective_last_uses_the_last_epoch(workdir: Path, cli: CliRunner) -> None:
    _setup(cli, "sweep.optimizers=[adam]", "sweep.n_trials=1", "sweep.objective=last",
           "sweep.pruner.name=none")
    Worker(str(workdir / "sweeps.journal"), "quick", quiet=True).run()
    (t,) = journal_trials(workdir / "sweeps.journal")["quick.adam"]
    assert t.value == t.user_attrs["curves"]["val/acc"][-1]
    assert "test/acc" in t.user_attrs["final"]  # recorded, never the objective


def test_every_sampler_and_pruner_runs_trials(workdir: Path, cli: CliRunner) -> None:
    # one directory (one MLflow store) for all, a sweep each: setting up a store costs seconds
    cases = [(s, "none") for s in ("random", "grid", "cmaes", "gp", "qmc", "tpe")]
    cases += [("tpe", p) for p in ("hyperband", "successive_halving", "median")]
    for sampler, pruner in cases:
        name = f"s_{sampler}_{pruner}"
        _setup(cli, f"sweep.name={name}", "sweep.optimizers=[adam]", "sweep.n_trials=2",
               f"sweep.sampler.name={sampler}", "sweep.sampler.n_startup_trials=1",
               "sweep.sampler.grid_points=2", f"sweep.pruner.name={pruner}",
               "sweep.pruner.n_startup_trials=1")
        assert Worker(str(workdir / "sweeps.journal"), name, quiet=True).run() == 2
        trials = journal_trials(workdir / "sweeps.journal", name)[f"{name}.adam"]
        states = [t.state for t in trials]
        assert len(trials) == 2 and TrialState.FAIL not in states, [t.user_attrs for t in trials]
        if pruner == "none":
            assert states == [TrialState.COMPLETE] * 2


def test_joint_mode_samples_the_optimizer(workdir: Path, cli: CliRunner) -> None:
    _setup(cli, "sweep.mode=joint", "sweep.n_trials=3",
           "sweep.sampler.name=random", "sweep.pruner.name=none")
    assert Worker(str(workdir / "sweeps.journal"), "quick", quiet=True).run() == 3
    (trials,) = journal_trials(workdir / "sweeps.journal").values()
    assert {t.params["optimizer"] for t in trials} <= {"sgd", "adam_to_sgd"}
    for t in trials:
        assert t.user_attrs["config"]["optimizer"]["name"] == t.params["optimizer"]
        assert all(not k.startswith(("sgd.", "adam_to_sgd.")) or
                   k.startswith(t.params["optimizer"] + ".") for k in t.params)


def test_timeout_stops_workers_from_starting_trials(workdir: Path, cli: CliRunner) -> None:
    import time

    _setup(cli, "sweep.optimizers=[sgd]", "sweep.n_trials=50", "sweep.timeout=0.001")
    time.sleep(0.01)
    assert Worker(str(workdir / "sweeps.journal"), "quick", quiet=True).run() == 0
    assert journal_trials(workdir / "sweeps.journal")["quick.sgd"] == []
