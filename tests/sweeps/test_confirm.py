"""`sweeps confirm` and what it feeds: seed re-runs queued in the sweep's confirm study,
run by workers, tracked in MLflow, reused on a second call; `best` and `report` on them."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState
from typer.testing import CliRunner

from sweeps.cli import app
from sweeps.run.worker import Worker
from sweeps.search import confirm_jobs
from sweeps.store.storages import open_storage

from .conftest import SMALL
from .helpers import journal_trials, mlflow_runs


def _search(cli: CliRunner, workdir: Path, *overrides: str) -> None:
    result = cli.invoke(app, ["launch", *SMALL, "sweep.workers=0", "sweep.pruner.name=none",
                              *overrides])
    assert result.exit_code == 0, result.output
    Worker.connect(str(workdir / "sweeps.journal"), "quick", quiet=True, kinds=("search",)).run()


def _confirm_trials(workdir: Path) -> list:
    study = confirm_jobs.load(open_storage(str(workdir / "sweeps.journal")), "quick")
    return [] if study is None else study.get_trials(deepcopy=False)


def test_confirm_queues_runs_reuses_them_and_report_ranks(workdir: Path, cli: CliRunner) -> None:
    _search(cli, workdir)
    journal = workdir / "sweeps.journal"
    queued = cli.invoke(app, ["confirm", "--seeds", "2", "--workers", "0"])
    assert queued.exit_code == 0, queued.output
    assert "4 runs, 0 done before, 0 already queued, 4 queued now" in queued.output
    assert "sweeps worker --study quick" in queued.output
    assert [t.state for t in _confirm_trials(workdir)] == [TrialState.WAITING] * 4

    # a remote-style worker (both kinds, the default) takes the queued confirm runs
    assert Worker.connect(str(journal), "quick", quiet=True).run() == 4
    runs = _confirm_trials(workdir)
    assert all(t.state == TrialState.COMPLETE for t in runs)
    search = {(s, t.number): t for s, ts in journal_trials(journal).items() for t in ts}
    for t in runs:
        source = search[(t.user_attrs["source_study"], t.user_attrs["source_trial"])]
        assert source.state == TrialState.COMPLETE
        assert t.user_attrs["config"]["trainer"]["seed"] == t.user_attrs["seed"]
        assert t.user_attrs["config"]["optimizer"] == source.user_attrs["config"]["optimizer"]
    # the same seeds (1, 2: never the search's seed 0) for every optimizer
    assert {(t.user_attrs["optimizer"], t.user_attrs["seed"]) for t in runs} == {
        (o, s) for o in ("sgd", "adam_to_sgd") for s in (1, 2)}

    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    confirm_runs = [r for r in mlflow_runs(uri) if r.data.tags.get("sweeps.kind") == "confirm"]
    assert len(confirm_runs) == 4
    client = MlflowClient(uri)
    trial_run_ids = {t.user_attrs["mlflow_run_id"] for t in search.values()}
    for r in confirm_runs:
        tags = r.data.tags
        assert tags["sweeps.confirms"] in trial_run_ids
        name = f"{tags['sweeps.optimizer']} #{tags['sweeps.trial']} seed {tags['sweeps.seed']}"
        assert r.info.run_name == name
        assert tags["mlflow.parentRunId"] and r.info.status == "FINISHED"
        assert len(client.get_metric_history(r.info.run_id, "val/acc")) == 2  # one point per epoch
    trial_runs = [r for r in mlflow_runs(uri) if r.data.tags.get("sweeps.kind") == "trial"]
    assert {r.info.run_name for r in trial_runs} == {
        f"{t.user_attrs['optimizer']} #{t.number}" for t in search.values()}

    # a second call reuses everything; a larger K only queues the missing seed
    before = hashlib.sha256(journal.read_bytes()).hexdigest()
    again = cli.invoke(app, ["confirm", "--seeds", "2", "--workers", "0"])
    assert again.exit_code == 0 and "4 done before, 0 already queued, 0 queued now" in again.output
    assert hashlib.sha256(journal.read_bytes()).hexdigest() == before
    more = cli.invoke(app, ["confirm", "--seeds", "3", "--workers", "0"])
    assert "6 runs, 4 done before, 0 already queued, 2 queued now" in more.output
    assert Worker.connect(str(journal), "quick", quiet=True, kinds=("confirm",)).run() == 2
    assert {t.user_attrs["seed"] for t in _confirm_trials(workdir)} == {1, 2, 3}

    best = cli.invoke(app, ["best"])
    assert best.exit_code == 0, best.output
    assert "split SE" in best.output and "confirmed val/acc" in best.output

    report = cli.invoke(app, ["report"])
    assert report.exit_code == 0, report.output
    md = (workdir / "reports/quick/summary.md").read_text()
    assert "### Ranking" in md and "K=3" in md and "vs" in md
    assert "(95 % CI" in md and "significant at K=3" in md
    parent = next(r for r in mlflow_runs(uri) if r.data.tags.get("sweeps.kind") == "launch")
    logged = [a.path for a in client.list_artifacts(parent.info.run_id, "report")]
    assert sorted(logged) == ["report/report.html", "report/summary.md"]

    # the read-only commands start fast: they never import torch
    probe = ("import sys\nfrom typer.testing import CliRunner\nfrom sweeps.cli import app\n"
             "for cmd in (['status'], ['best'], ['report', '--out', 'probe']):\n"
             "    r = CliRunner().invoke(app, cmd)\n    assert r.exit_code == 0, r.output\n"
             "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], cwd=workdir, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def test_search_trials_at_a_range_edge_are_tagged(workdir: Path, cli: CliRunner) -> None:
    # a grid of 2 points per range samples only the range's ends: every completed trial sits
    # at an edge of lr (a movable edge), so its run carries sweeps.boundary
    _search(cli, workdir, "sweep.optimizers=[sgd]", "sweep.n_trials=2", "sweep.sampler.name=grid",
            "sweep.sampler.grid_points=2", "search.common.schedule.choices=[constant]",
            "search.common.batch_size.choices=[256]")
    runs = [r for r in mlflow_runs(f"sqlite:///{workdir / 'mlflow.db'}")
            if r.data.tags.get("sweeps.state") == "complete"]
    assert runs and all("lr:" in r.data.tags.get("sweeps.boundary", "") for r in runs)
    # the tag says where the trial lies; a warning waits for a study with enough trials to say
    # that the range was too narrow (2 here)
    out = cli.invoke(app, ["best"]).output
    assert "within 5% of the" not in out and "boundary" in out


@pytest.mark.parametrize(("args", "expected"), [
    (["confirm", "--seeds", "1"], "--seeds 1: must be in [2, 1000]"),
    (["confirm", "--top", "0"], "--top 0: must be in [1, 100]"),
    (["confirm", "--workers", "-1"], "--workers -1: must be in [0, 512]"),
    (["confirm"], "has no completed trial to confirm yet"),
    (["report", "nosuch"], "no sweep 'nosuch'"),
    (["report", "--target", "1.5"], "--target 1.5: must be a validation accuracy"),
])
def test_bad_confirm_and_report_input_writes_nothing(workdir: Path, cli: CliRunner, args: list[str],
                                                     expected: str) -> None:
    setup = cli.invoke(app, ["launch", *SMALL, "sweep.workers=0"])  # a sweep without trials
    assert setup.exit_code == 0, setup.output
    journal = workdir / "sweeps.journal"
    before = hashlib.sha256(journal.read_bytes()).hexdigest()
    runs = len(mlflow_runs(f"sqlite:///{workdir / 'mlflow.db'}"))
    result = cli.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.output
    assert hashlib.sha256(journal.read_bytes()).hexdigest() == before
    assert len(mlflow_runs(f"sqlite:///{workdir / 'mlflow.db'}")) == runs
    assert not (workdir / "reports").exists()
