"""A user's own model and data through the sweep layer: bad input fails before anything is
written, a user file with a bundled name wins and the launch says so, a remote worker that
cannot import the user's package says so before it claims a trial."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweeps.cli import app

from .conftest import run_sweeps
from .helpers import journal_trials
from .test_scale_out import PG_URL, pg_sweep  # noqa: F401  (the fixture)

PROJECT = Path(__file__).parents[1] / "fixtures" / "user_project"


@pytest.fixture
def project(workdir: Path) -> Path:
    """The user's folder: their package and config dir; the tests run from it."""
    shutil.copy(PROJECT / "userpkg.py", workdir / "userpkg.py")
    shutil.copytree(PROJECT / "conf", workdir / "conf")
    return workdir


def _nothing_written(where: Path) -> None:
    assert not (where / "sweeps.journal").exists() and not (where / "mlflow.db").exists()
    assert not (where / "outputs").exists() and not (where / "mlruns").exists()


@pytest.mark.parametrize(("overrides", "expected"), [
    (["model._target_=nopkg.nets.Net"], "model._target_='nopkg.nets.Net': cannot import module 'nopkg'"),
    (["model._target_=userpkg.Missing"], "module 'userpkg' has no attribute 'Missing'"),
    (["model._target_=userpkg.NOT_CALLABLE"], "is a int, not a callable"),
    (["+model.widht=3"], "model.widht=3: not a parameter of userpkg.Net; it takes: hidden"),
    (["model._target_=userpkg.not_a_module"], "returned a str; expected a torch.nn.Module"),
    (["model._target_=userpkg.WrongWidth"], "returns outputs of shape (4, 4) for a batch of 4; "
                                            "classification needs class logits of shape (4, 3)"),
    (["model._target_=userpkg.BadShape"], "forward on a batch of shape (4, 6)"),
    (["dataset._target_=userpkg.returns_list"], "returned a list of 4"),
    (["dataset._target_=userpkg.nan_inputs"], "its 'train' inputs hold NaN or infinite values"),
    (["dataset._target_=userpkg.real_targets"], "a real-valued target needs task: regression"),
    (["dataset._target_=userpkg.labels_too_big", "dataset.num_outputs=3"],
     "dataset.num_outputs=3: labels must lie in [0, 3); the data has labels from 2 to 4"),
    (["+dataset.bogus=1"], "dataset.bogus=1: not a parameter of userpkg.blobs"),
    (["dataset.task=ranking"], "dataset.task='ranking': must be one of classification, regression"),
    (["dataset.val_size=300"], "dataset.val_size=300: must leave at least one of the 300"),
    (["dataset._target_=userpkg.string_labels"],
     "the 'train' labels are strings (e.g. 'owl'); classification needs integer labels 0..C-1"),
    (["dataset._target_=userpkg.string_label_dataset"],
     "the 'train' labels are strings (e.g. 'owl'); classification needs integer labels 0..C-1"),
])
def test_bad_user_model_or_data_fails_in_one_line_and_writes_nothing(
        project: Path, cli: CliRunner, overrides: list[str], expected: str) -> None:
    result = cli.invoke(app, ["--config-dir", "conf", "launch", "sweep=user", *overrides])
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert expected in lines[0], result.output
    _nothing_written(project)


def test_a_user_models_keys_are_searchable(project: Path) -> None:
    from sweeps.search.load import load_sweep
    from trainer.errors import ConfigError

    conf = project / "conf"
    dim = "+search.common.hidden={type:int,low:8,high:32,key:model.hidden}"
    spec = load_sweep(["sweep=user", dim], conf)
    assert "hidden" in {d.name for d in spec.studies[0].space.dims}
    with pytest.raises(ConfigError, match="not a setting of model user_net; allowed: hidden"):
        load_sweep(["sweep=user", "+search.common.w={type:int,low:8,high:32,key:model.width}"], conf)


def test_an_unknown_config_dir_is_one_line(project: Path) -> None:
    out = run_sweeps("launch", "--config-dir", "no/such/dir", "sweep=user", cwd=project)
    assert out.returncode == 2 and out.stderr.strip() == "error: --config-dir no/such/dir: no such directory"
    _nothing_written(project)


@pytest.mark.slow
def test_user_sweep_runs_shadowing_is_said_and_a_worker_without_the_package_stops_first(
        project: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    # the user's model/mlp.yaml replaces the bundled one, and the launch says so
    out = run_sweeps("launch", "--config-dir", "conf", "sweep=user", "model=mlp", cwd=project)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"note: model/mlp.yaml from the config dir {project / 'conf'} replaces the bundled" in out.stdout
    trials = journal_trials(project / "sweeps.journal", "user")
    assert sum(len(ts) for ts in trials.values()) == 2
    targets = {t.user_attrs["config"]["model"]["_target_"] for ts in trials.values() for t in ts}
    assert targets == {"userpkg.Net"}
    # the data has no test split: said so, never a NaN; the pairs are on the validation split
    assert "no test split" in out.stdout and "nan" not in out.stdout
    confirm = run_sweeps("confirm", "user", "--seeds", "2", cwd=project)
    assert confirm.returncode == 0 and "no test split" in confirm.stdout, confirm.stdout + confirm.stderr
    report = run_sweeps("report", "user", cwd=project)
    assert report.returncode == 0, report.stdout + report.stderr
    summary = (project / "reports" / "user" / "summary.md").read_text()
    assert "no test split" in summary and "comparisons are on the validation split" in summary
    assert "on val acc (95 % CI of worse-by" in summary and "nan" not in summary.lower()
    assert "test acc" not in summary.split("### Ranking")[1].split("###")[0]

    # a second sweep for a worker to join; then a worker on a "machine" without userpkg
    queued = run_sweeps("launch", "--config-dir", "conf", "sweep=user", "sweep.name=queued",
                        "sweep.workers=0", cwd=project)
    assert queued.returncode == 0, queued.stdout + queued.stderr
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    worker = run_sweeps("worker", "--study", "queued", "--storage", str(project / "sweeps.journal"),
                        cwd=elsewhere)
    assert worker.returncode == 2, worker.stdout + worker.stderr
    assert "_target_='userpkg.blobs': cannot import module 'userpkg'" in worker.stderr
    assert len(worker.stderr.strip().splitlines()) == 1, worker.stderr
    assert all(not ts for ts in journal_trials(project / "sweeps.journal", "queued").values()), \
        "the worker claimed a trial"
    # with the package importable (PYTHONPATH) the same worker runs the sweep
    joined = run_sweeps("worker", "--study", "queued", "--storage", str(project / "sweeps.journal"),
                        cwd=elsewhere, env={"PYTHONPATH": str(project)})
    assert joined.returncode == 0, joined.stdout + joined.stderr
    assert "ran 2 trial(s)" in joined.stdout


@pytest.mark.slow
@pytest.mark.postgres
def test_a_user_sweep_on_postgresql_with_a_remote_worker(project: Path, pg_sweep: str) -> None:  # noqa: F811
    """The scale-out storage: the launch queues nothing locally, a `sweeps worker` given the
    config dir by flag runs the trials, `best` prints the trainer line with the config dir."""
    pg = ["storage=postgres", f"storage.url={PG_URL}"]
    created = run_sweeps("launch", "--config-dir", "conf", "sweep=user", f"sweep.name={pg_sweep}",
                         "sweep.workers=0", *pg, cwd=project)
    assert created.returncode == 0, created.stdout + created.stderr
    worker = run_sweeps("worker", "--study", pg_sweep, "--config-dir", str(project / "conf"), *pg,
                        cwd=project, env={"SWEEPS_CONFIG_DIR": ""})
    assert worker.returncode == 0 and "ran 2 trial(s)" in worker.stdout, worker.stdout + worker.stderr
    best = run_sweeps("best", pg_sweep, "--storage", PG_URL, cwd=project)
    assert best.returncode == 0, best.stdout + best.stderr
    assert f"python -m trainer --config-dir {project / 'conf'} dataset=blobs model=user_net" in best.stdout


@pytest.mark.slow
def test_a_killed_worker_s_user_trial_is_retried_from_its_checkpoint(project: Path) -> None:
    """A retry of a user model's trial resolves the config from the recorded config dir and
    resumes from the checkpoint, as a bundled model's does."""
    import os
    import signal
    import subprocess
    import sys

    from optuna.trial import TrialState

    from .helpers import wait_for

    env = {k: v for k, v in os.environ.items()
           if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI", "SWEEPS_CONFIG_DIR")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweeps", "launch", "--config-dir", "conf", "sweep=user",
         "trainer.epochs=60", "sweep.pruner.name=none", "sweep.checkpoint_every_s=0",
         "sweep.threads_per_worker=1"],
        cwd=project, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True)
    journal = project / "sweeps.journal"

    def mid_trial() -> object:
        try:
            trials = [t for ts in journal_trials(journal, "user").values() for t in ts]
        except Exception:
            return None
        return next((t for t in trials if t.state == TrialState.RUNNING
                     and 2 <= len(t.intermediate_values) < 30), None)

    try:
        victim = wait_for(mid_trial, timeout=180, interval=0.1)
        os.kill(int(victim.user_attrs["worker"].rsplit(":", 1)[1]), signal.SIGKILL)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, out
    trials = [t for ts in journal_trials(journal, "user").values() for t in ts]
    retry = next(t for t in trials if victim.number in (t.user_attrs.get("retry_history") or [])
                 and t.user_attrs.get("optimizer") == victim.user_attrs["optimizer"])
    assert retry.state == TrialState.COMPLETE and retry.user_attrs["resumed_from_epoch"] >= 2
    assert retry.user_attrs["config"]["model"]["_target_"] == "userpkg.Net"
