"""A sweep journal written by an earlier release still opens, resumes and reproduces.

The fixture is the `sweeps.journal` of a real sweep run with release d22b61b (the last one
with the flat `sweeps/` layout), as tests/fixtures/journal_d22b61b/README.md says: two
optimizers, two search trials each, two confirm seeds per optimizer. Its studies still
point at the directory it was made in (/tmp/legacy), which no longer exists: the commands
must work from the journal alone, as they would for a user who copied it to a new machine.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

from sweeps.cli import app

from .conftest import run_sweeps
from .helpers import journal_trials

pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).parents[1] / "fixtures" / "journal_d22b61b" / "sweeps.journal"
# the overrides the fixture's sweep was launched with (README.md beside it)
LAUNCHED = ["sweep.optimizers=[sgd,adam]", "sweep.n_trials=4", "trainer.epochs=2", "model.width=16",
            "dataset.val_size=300", "search.common.batch_size.choices=[256,512]",
            "search.common.schedule.choices=[constant,cosine]", "sweep.workers=1",
            "sweep.threads_per_worker=1"]


def test_a_journal_of_the_earlier_release_opens_resumes_and_reproduces(workdir: Path,
                                                                     cli: CliRunner) -> None:
    shutil.copy(FIXTURE, workdir / "sweeps.journal")
    before = journal_trials(workdir / "sweeps.journal")
    assert {name: len(ts) for name, ts in before.items()} == {"quick.sgd": 2, "quick.adam": 2}

    status = cli.invoke(app, ["status"])
    assert status.exit_code == 0, status.output
    assert "quick.sgd" in status.output and "quick.adam" in status.output
    assert "0.6900" in status.output and "0.7867" in status.output  # the best values recorded
    assert "confirm runs: 4 complete" in status.output

    best = cli.invoke(app, ["best"])
    assert best.exit_code == 0, best.output
    assert "sweeps reproduce quick --trial" in best.output and "python -m trainer" in best.output

    # bit-exact reproduction on one machine is test_e2e's; a journal recorded earlier may come
    # from another CPU, whose kernels can differ in the last bits
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    rep = run_sweeps("reproduce", "--trial", "best", "--tolerance", "1e-4", "--tracking-uri", uri,
                     cwd=workdir)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert "reproduced: identical" in rep.stdout

    report = cli.invoke(app, ["report", "--tracking-uri", uri])
    assert report.exit_code == 0, report.output
    summary = (workdir / "reports" / "quick" / "summary.md").read_text()
    assert "adam" in summary and "sgd" in summary and "K=2" in summary

    # resumed: the same sweep with a larger budget runs only the new trials
    launch = run_sweeps("launch", *[o for o in LAUNCHED if "n_trials" not in o], "sweep.n_trials=6",
                        cwd=workdir)
    assert launch.returncode == 0, launch.stdout + launch.stderr
    after = journal_trials(workdir / "sweeps.journal")
    assert {name: len(ts) for name, ts in after.items()} == {"quick.sgd": 3, "quick.adam": 3}
    for name, trials in before.items():
        for old, new in zip(trials, after[name][:2], strict=True):
            assert (new.number, new.params, new.value) == (old.number, old.params, old.value)
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for ts in after.values() for t in ts)


def test_the_python_api_opens_the_journal_of_the_earlier_release(tmp_path: Path) -> None:
    """`sweeps.open` on the earlier release's journal: the same trials, values and confirm
    runs the CLI shows above, as tables; reading writes nothing."""
    import hashlib

    import sweeps

    journal = tmp_path / "sweeps.journal"
    shutil.copy(FIXTURE, journal)
    digest = hashlib.sha256(journal.read_bytes()).hexdigest()
    sweep = sweeps.open(storage=str(journal))
    assert sweep.name == "quick"
    trials = sweep.trials()
    assert sorted(trials["study"].unique()) == ["quick.adam", "quick.sgd"] and len(trials) == 4
    assert set(trials["state"]) == {"complete"}
    status = sweep.status().set_index("study")
    assert round(status.loc["quick.sgd", "best_value"], 4) == 0.69
    assert round(status.loc["quick.adam", "best_value"], 4) == 0.7867
    best = sweep.best()
    assert best.iloc[0]["optimizer"] == "adam" and best["seeds"].tolist() == [2, 2]
    assert len(sweep.confirm_runs()) == 4
    with pytest.raises(sweeps.UserError, match="no sweep 'nosuch'"):
        sweeps.open("nosuch", storage=str(journal))
    assert hashlib.sha256(journal.read_bytes()).hexdigest() == digest
