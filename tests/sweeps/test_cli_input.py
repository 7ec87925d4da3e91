"""`sweeps launch` rejects bad input with one line and exit 2, writing nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweeps.cli import app

from .conftest import SMALL


def _written(workdir: Path) -> set[str]:
    return {p.name for p in workdir.iterdir()}


@pytest.mark.parametrize(("overrides", "expected"), [
    (["sweep.optimizers=[sgd,foo]"], "sweep.optimizers='foo': unknown optimizer"),
    (["search.common.schedule.choices=[cosine,warp]"], "unknown schedule"),
    (["sweep.sampler.name=bayes"], "sweep.sampler.name='bayes': unknown"),
    (["sweep.pruner.name=asha"], "sweep.pruner.name='asha': unknown"),
    (["search.adam.lr.low=0.5", "search.adam.lr.high=0.1"], "search.adam.lr.low=0.5: must be < high"),
    (["search.sgd.lr.low=0.0"], "must be > 0 for a log range"),
    (["search.common.batch_size.choices=[]"], "must be a non-empty list"),
    (["sweep.n_trials=0"], "sweep.n_trials=0: must be an integer in [1, 100000]"),
    (["sweep.workers=-2"], "sweep.workers=-2: must be an integer in [0, 512]"),
    (["optimizer=nope"], "optimizer='nope': unknown option"),
    (["storage.url=postgresql://nobody@127.0.0.1:1/none"], "cannot connect"),
    (["storage.url=/no/such/dir/sweeps.journal"], "does not exist"),
    (["tracking.uri=http://127.0.0.1:1"], "MLflow server not reachable"),
])
def test_bad_launch_input(workdir: Path, cli: CliRunner, overrides: list[str], expected: str) -> None:
    result = cli.invoke(app, ["launch", *overrides])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert expected in " ".join(lines), result.output
    assert "Traceback" not in result.output
    assert _written(workdir) == set()  # no journal, no mlflow.db, no outputs


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run_count(workdir: Path) -> int:
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    exp = client.get_experiment_by_name("quick")
    return len(client.search_runs([exp.experiment_id])) if exp else 0


@pytest.mark.parametrize(("change", "expected"), [
    (["search.adam_to_sgd.lr.high=0.05"], "different search space (lr.high: 0.1 there, 0.05 now)"),
    (["sweep.objective=last"], "objective 'best', not 'last'"),
    (["trainer.epochs=3"], "different fixed trainer config (trainer.epochs: 2 there, 3 now)"),
])
def test_existing_study_with_different_space_is_refused(workdir: Path, cli: CliRunner,
                                                        change: list[str], expected: str) -> None:
    setup = cli.invoke(app, ["launch", *SMALL, "sweep.workers=0"])
    assert setup.exit_code == 0, setup.output
    assert "sweeps worker --study quick" in setup.output
    journal = workdir / "sweeps.journal"
    before, runs = _digest(journal), _run_count(workdir)
    result = cli.invoke(app, ["launch", *SMALL, "sweep.workers=0", *change])
    assert result.exit_code == 2, result.output
    assert expected in result.output.replace("\n", " "), result.output
    assert _digest(journal) == before and _run_count(workdir) == runs


def test_status_and_best_without_a_sweep(workdir: Path, cli: CliRunner) -> None:
    for cmd in ("status", "best", "reproduce", "report"):
        result = cli.invoke(app, [cmd])
        assert result.exit_code == 2 and "no sweeps yet" in result.output, result.output
    assert not (workdir / "sweeps.journal").exists()


def test_existing_study_with_another_direction_is_refused(workdir: Path, cli: CliRunner) -> None:
    import optuna

    from sweeps.store.storages import open_storage

    journal = workdir / "sweeps.journal"
    optuna.create_study(storage=open_storage(str(journal)), study_name="quick.sgd",
                        direction="minimize")
    before = _digest(journal)
    result = cli.invoke(app, ["launch", *SMALL])
    assert result.exit_code == 2, result.output
    assert "study 'quick.sgd' exists with direction minimize" in result.output
    assert _digest(journal) == before and not (workdir / "mlflow.db").exists()


def test_params_and_tags_never_carry_passwords() -> None:
    from sweeps.tracking.runs import flat_params

    params = flat_params({"storage": "postgresql://sweeps:s3cret@db:5432/sweeps",
                          "nested": {"url": "http://u:pw@host/x"}})
    assert "s3cret" not in str(params) and "pw@" not in str(params)
    assert params["storage"] == "postgresql://sweeps:***@db:5432/sweeps"


def test_same_sweep_name_in_another_mode_is_refused(workdir: Path, cli: CliRunner) -> None:
    assert cli.invoke(app, ["launch", *SMALL, "sweep.workers=0"]).exit_code == 0
    result = cli.invoke(app, ["launch", *SMALL, "sweep.workers=0", "sweep.mode=joint"])
    assert result.exit_code == 2
    assert "sweep 'quick' exists in compare mode" in result.output.replace("\n", " ")


def test_a_later_launch_with_fewer_optimizers_only_runs_those(workdir: Path, cli: CliRunner) -> None:
    from sweeps.run.worker import Worker

    assert cli.invoke(app, ["launch", *SMALL, "sweep.workers=0"]).exit_code == 0
    fewer = [o for o in SMALL if not o.startswith("sweep.optimizers")] + ["sweep.optimizers=[sgd]",
                                                                            "sweep.n_trials=2"]
    assert cli.invoke(app, ["launch", *fewer, "sweep.workers=0"]).exit_code == 0
    worker = Worker.connect(str(workdir / "sweeps.journal"), "quick", quiet=True)
    assert [s.study_name for s in worker.studies] == ["quick.sgd"]


def _journal_with_a_study(path) -> None:
    import optuna

    from sweeps.store.storages import open_storage

    study = optuna.create_study(storage=open_storage(str(path)), study_name="quick.sgd")
    study.set_user_attr("sweep", "quick")
    study.set_user_attr("optimizer", "sgd")
    for _ in range(3):
        study.tell(study.ask(), 0.5)


def test_a_journal_torn_by_a_crash_mid_write_heals_and_stays_usable(workdir, cli) -> None:
    import optuna

    from sweeps.store.storages import open_storage

    journal = workdir / "sweeps.journal"
    _journal_with_a_study(journal)
    intact = journal.read_bytes()
    journal.write_bytes(intact + b'{"op_code":6,"worker_id":"x","trial_id":')  # the crash
    study = optuna.load_study(study_name="quick.sgd", storage=open_storage(str(journal)))
    study.tell(study.ask(), 0.7)  # the next write must start on a line of its own
    again = optuna.load_study(study_name="quick.sgd", storage=open_storage(str(journal)))
    assert [t.value for t in again.trials] == [0.5, 0.5, 0.5, 0.7]
    assert (workdir / "sweeps.journal.torn").read_bytes().startswith(b'{"op_code":6')


def test_a_journal_corrupt_in_the_middle_is_one_clear_line(workdir, cli) -> None:
    journal = workdir / "sweeps.journal"
    _journal_with_a_study(journal)
    lines = journal.read_bytes().split(b"\n")
    journal.write_bytes(b"\n".join([*lines[:3], b"{not json", *lines[3:]]))
    before = journal.read_bytes()
    result = cli.invoke(app, ["status", "quick"])
    assert result.exit_code == 2
    assert "is corrupt at line 4 of" in result.output and "Traceback" not in result.output
    assert journal.read_bytes() == before  # nothing written
