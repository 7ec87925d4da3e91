"""The worker loop in-process: pruning with curves kept, diverged trials, budgets."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from sweeps.cli import app
from sweeps.run.worker import Worker

from .conftest import SMALL
from .helpers import journal_trials, mlflow_runs, wait_for


def _setup(cli: CliRunner, *overrides: str) -> None:
    result = cli.invoke(app, ["launch", *SMALL, "sweep.workers=0", *overrides])
    assert result.exit_code == 0, result.output


def test_median_pruning_stops_bad_trials_and_keeps_their_curves(workdir: Path, cli: CliRunner) -> None:
    # sgd only; learning rates from hopeless to good, so the median rule has work to do
    _setup(cli, "sweep.optimizers=[sgd]", "sweep.n_trials=6", "trainer.epochs=3",
           "sweep.sampler.name=random", "sweep.seed=3", "search.sgd.lr.low=1e-5",
           "search.sgd.lr.high=0.5", "sweep.pruner.n_startup_trials=1",
           "sweep.pruner.n_warmup_steps=0")
    ran = Worker.connect(str(workdir / "sweeps.journal"), "quick", quiet=True).run()
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
    assert Worker.connect(str(workdir / "sweeps.journal"), "quick", quiet=True).run() == 3
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


def test_objective_last_uses_the_last_epoch(workdir: Path, cli: CliRunner,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep's objective reaches the trial's outcome (which epoch `last` and `best` pick
    is `test_decisions.py::test_the_objective_is_the_best_epoch_or_the_last_one`, on a run
    whose best and last epochs differ)."""
    from sweeps.run import outcome

    asked: list[str] = []
    real = outcome.objective_value
    monkeypatch.setattr(outcome, "objective_value", lambda r, o: asked.append(o) or real(r, o))
    _setup(cli, "sweep.optimizers=[adam]", "sweep.n_trials=1", "sweep.objective=last",
           "sweep.pruner.name=none")
    Worker.connect(str(workdir / "sweeps.journal"), "quick", quiet=True).run()
    (t,) = journal_trials(workdir / "sweeps.journal")["quick.adam"]
    assert asked == ["last"]
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
        assert Worker.connect(str(workdir / "sweeps.journal"), name, quiet=True).run() == 2
        trials = journal_trials(workdir / "sweeps.journal", name)[f"{name}.adam"]
        states = [t.state for t in trials]
        assert len(trials) == 2 and TrialState.FAIL not in states, [t.user_attrs for t in trials]
        if pruner == "none":
            assert states == [TrialState.COMPLETE] * 2


def test_joint_mode_samples_the_optimizer(workdir: Path, cli: CliRunner) -> None:
    _setup(cli, "sweep.mode=joint", "sweep.n_trials=3",
           "sweep.sampler.name=random", "sweep.pruner.name=none")
    assert Worker.connect(str(workdir / "sweeps.journal"), "quick", quiet=True).run() == 3
    (trials,) = journal_trials(workdir / "sweeps.journal").values()
    assert {t.params["optimizer"] for t in trials} <= {"sgd", "adam_to_sgd"}
    for t in trials:
        assert t.user_attrs["config"]["optimizer"]["name"] == t.params["optimizer"]
        assert all(not k.startswith(("sgd.", "adam_to_sgd.")) or
                   k.startswith(t.params["optimizer"] + ".") for k in t.params)


def test_timeout_stops_workers_from_starting_trials(workdir: Path, cli: CliRunner) -> None:
    import time

    _setup(cli, "sweep.optimizers=[sgd]", "sweep.n_trials=50", "sweep.timeout=0.001")
    from sweeps.search.studies import sweep_studies
    from sweeps.store.storages import open_storage

    deadline = sweep_studies(open_storage(str(workdir / "sweeps.journal")), "quick")[0].user_attrs["deadline"]
    wait_for(lambda: time.time() > deadline, timeout=10, interval=0.01)  # the timeout has passed
    assert Worker.connect(str(workdir / "sweeps.journal"), "quick", quiet=True).run() == 0
    assert journal_trials(workdir / "sweeps.journal")["quick.sgd"] == []


def test_local_workers_start_claiming_together_once_all_are_warmed_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing as mp

    from sweeps.run import start_gate as gate_mod

    ctx = mp.get_context("spawn")
    gate = gate_mod.StartGate.create(ctx, 2, check_models=False)
    passed: list[float] = []

    def first() -> None:
        gate.wait_for_the_others()
        passed.append(time.monotonic())

    t = threading.Thread(target=first)
    t.start()
    wait_for(lambda: gate.ready.value == 1, timeout=10, interval=0.01)  # warmed up, and then:
    t.join(0.3)
    assert t.is_alive() and passed == []  # waiting for the second
    released = time.monotonic()
    gate.wait_for_the_others()  # the second arrives: both go
    t.join(10)
    assert len(passed) == 1 and passed[0] >= released
    monkeypatch.setattr(gate_mod, "START_GATE_S", 120.0)
    start = time.monotonic()
    gate.wait_for_the_others()  # a replacement worker: no wait for the gate
    assert time.monotonic() - start < 60
    monkeypatch.setattr(gate_mod, "START_GATE_S", 0.3)
    start = time.monotonic()
    gate_mod.StartGate.create(ctx, 3, check_models=False).wait_for_the_others()  # others died
    assert 0.3 <= time.monotonic() - start < 60  # waited out the gate, then went on


def test_a_launchs_workers_wait_at_the_gate_until_released_or_told_to_leave() -> None:
    import multiprocessing as mp

    from sweeps.run.start_gate import StartGate
    from trainer.errors import UserError

    ctx = mp.get_context("spawn")
    gate = StartGate.create(ctx, 1, check_models=True)
    answers: list[bool] = []
    t = threading.Thread(target=lambda: answers.append(gate.wait_for_go()))
    t.start()
    t.join(0.3)
    assert t.is_alive() and answers == []  # the studies do not exist yet: no claim
    gate.release()
    t.join(10)
    assert answers == [True]
    gate = StartGate.create(ctx, 1, check_models=True)
    gate.abort()
    assert gate.wait_for_go() is False  # the launch gave up: leave without a write
    # the first worker's check of the models reaches the launch, error and exit code included
    gate.report(None)
    assert gate.verdict(lambda: True) is True
    bad = UserError("model.width=0: must be >= 1")
    gate.report(bad)
    with pytest.raises(UserError, match=r"model\.width=0") as caught:
        gate.verdict(lambda: True)
    assert caught.value.exit_code == 2
    assert gate.verdict(lambda: False) is False  # the worker ended without a word


@pytest.mark.parametrize("mode", ["compare", "joint"])
def test_a_study_joins_its_sweep_only_once_its_record_is_complete(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """A worker that joins while the launch still writes the studies must never see a study
    of the sweep without the overrides it needs (it would train the default config)."""
    import optuna

    from sweeps.search import studies as study_mod
    from sweeps.search.load import load_sweep
    from sweeps.store.storages import open_storage

    storage = open_storage(str(tmp_path / "s.journal"))
    seen: list[list[str]] = []  # what sweep_studies returns after each attribute written
    original = optuna.Study.set_user_attr

    def spy(self: optuna.Study, key: str, value: object) -> None:
        original(self, key, value)
        for st in study_mod.sweep_studies(storage, "quick"):
            seen.append(sorted(st.user_attrs))
            assert "sweep_overrides" in st.user_attrs and "fixed_edges" in st.user_attrs
            assert st.metric_names is not None

    monkeypatch.setattr(optuna.Study, "set_user_attr", spy)
    study_mod.create_studies(storage, load_sweep([*SMALL, f"sweep.mode={mode}"]), "sqlite:///x.db")
    assert seen, "the sweep's studies never became visible"
    # joint mode: one study named like the sweep, which the by-name lookup must not return early
    expected = ["quick.sgd", "quick.adam_to_sgd"] if mode == "compare" else ["quick"]
    assert [s.study_name for s in study_mod.sweep_studies(storage, "quick")] == expected
    assert all(len(names) == len(seen[-1]) for names in seen)  # only ever the whole record
