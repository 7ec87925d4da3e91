"""Bad input to every verb, against a finished sweep: one line, exit 2, every store unchanged.

Also: the read-only verbs create nothing in a storage that holds no sweep, `python -m
trainer` checks the machine before Hydra makes its run folder, and a sweep whose trials
keep failing the same way stops, says why, exits 1, and completes after the fix.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sweeps.cli import app

from ..servers import require_postgres
from .conftest import SMALL, run_sweeps

FINISHED = [*SMALL, "sweep.n_trials=2"]


def _snapshot(root: Path) -> dict[str, str]:
    """Every file under the sweep's directory and its digest."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small finished sweep `quick` (embedded stores), made once for this module."""
    root = tmp_path_factory.mktemp("finished")
    done = run_sweeps("launch", *FINISHED, cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    (root / "a_file").write_text("not a directory\n")
    return root


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


BUSY = "<busy>"
BAD = [
    # launch: every override checked before a study, a run or a folder exists
    ("launch", ["sweep.name=" + "n" * 300], "sweep.name='nnnnnnnnnnnnnnnnnnnn...': must be at most 100"),
    ("launch", ["sweep.threads_per_worker=100000000000000000000"], "sweep.threads_per_worker="),
    ("launch", ["sweep.n_trials=1000000"], "sweep.n_trials=1000000: must be an integer in [1, 100000]"),
    ("launch", ["sweep.fail_fast=-1"], "sweep.fail_fast=-1: must be an integer in [0, 1000]"),
    ("launch", ["tracking.uri=foo://bar"], "tracking.uri=foo://bar: unknown scheme 'foo'"),
    ("launch", ["tracking.uri=sqlite:////proc/sweeps-test/mlflow.db"], "does not exist"),
    ("launch", ["tracking.uri=sqlite:////proc/mlflow.db"], "directory /proc not writable"),
    ("launch", ["sweep.checkpoint_dir=a_file"], "sweep.checkpoint_dir=a_file: "),
    ("launch", ["trainer.device=cuda:7"], "trainer.device='cuda:7': "),
    ("launch", ["nosuch=1"], "nosuch='1': unknown key; allowed keys of the config:"),
    ("launch", ["storage.url=a_file"], "not an Optuna journal"),
    ("launch", ["storage.url=/proc/x.journal"], "directory /proc not writable"),
    # worker
    ("worker", ["--study", "quick", "--index", "-5"], "--index -5: must be >= 0"),
    ("worker", ["--study", "quick", "--output-dir", "a_file"], "--output-dir=a_file: "),
    ("worker", ["--study", "nosuch"], "--study 'nosuch': no such sweep or study"),
    # the read-only verbs
    ("status", ["nosuch"], "no sweep 'nosuch' in sweeps.journal (sweeps there: quick)"),
    ("status", ["--storage", "a_file"], "is not an Optuna journal"),
    ("status", ["--storage", "nothing_here.journal"], "no sweeps yet in nothing_here.journal"),
    ("best", ["nosuch"], "no sweep 'nosuch'"),
    ("report", ["--out", "a_file"], "--out=a_file: "),
    ("report", ["--target", "2"], "--target 2.0: must be a validation accuracy in (0, 1]"),
    ("report", ["--top", "0"], "--top 0: must be >= 1"),
    ("paths", ["--steps", "1000000000000"], "--steps 1000000000000: must be in [1, 100,000]"),
    ("paths", ["--functions", "nosuch"], "--functions nosuch: allowed:"),
    ("paths", ["--out", "a_file"], "--out=a_file: "),
    ("paths", ["quick", "--optimizers", "foo"], "has no completed foo trial"),
    ("ui", ["--port", "99999"], "--port 99999: must be a TCP port in [1, 65535]"),
    ("ui", ["--port", BUSY], "in use"),
    ("ui", ["nosuch"], "no sweep 'nosuch'"),
    ("ui", ["--tracking-uri", "foo://bar"], "unknown scheme 'foo'"),
    # confirm: bounds, and a large request shown as a plan first
    ("confirm", ["--seeds", "five"], "Invalid value for '--seeds'"),
    ("confirm", ["--seeds", "1000000"], "--seeds 1000000: must be in [2, 1000]"),
    ("confirm", ["--seeds", "1"], "--seeds 1: must be in [2, 1000]"),
    ("confirm", ["--top", "0"], "--top 0: must be in [1, 100]"),
    ("confirm", ["--workers", "-1"], "--workers -1: must be in [0, 512]"),
    ("confirm", ["--seeds", "200", "--workers", "0"], "400 confirm runs to queue, ~"),
    ("confirm", ["nosuch"], "no sweep 'nosuch'"),
    # reproduce: checked before anything trains
    ("reproduce", ["--tolerance", "-1"], "--tolerance -1.0: must be a number >= 0"),
    ("reproduce", ["--tolerance", "nan"], "--tolerance nan: must be a number >= 0"),
    ("reproduce", ["--trial", "999"], "--trial '999': this sweep has one study per optimizer"),
    ("reproduce", ["--trial", "nosuch:1"], "--trial 'nosuch:1': no study 'nosuch'"),
    ("reproduce", ["--tracking-uri", "http://127.0.0.1:1"], "MLflow server not reachable"),
    # every override honoured or refused: the store and sweep named are the ones acted on
    ("status", ["quick", "sweep.name=other"], "the sweep is named twice: quick and sweep.name=other"),
    ("status", ["quick", "tracking.uri=http://127.0.0.1:1"], "`sweeps status` does not use it"),
    ("best", ["quick", "trainer.epochs=3"], "trainer.epochs=3: `sweeps best` does not use it"),
    ("report", ["quick", "sweep.n_trials=9"], "sweep.n_trials=9: `sweeps report` does not use it"),
    ("sync", ["quick", "tracking.uri=http://127.0.0.1:1"],
     "tracking.uri=http://127.0.0.1:1: MLflow server not reachable"),
    ("confirm", ["quick", "tracking.uri=http://127.0.0.1:1"], "MLflow server not reachable"),
    # a port that is not one, and counts past any sensible bound
    ("sync", ["--tracking-uri", "http://127.0.0.1:99999"], "the port must be a number from 1 to 65535"),
    ("ui", ["--tracking-uri", "http://127.0.0.1:99999"], "the port must be a number from 1 to 65535"),
    ("launch", ["tracking.uri=http://127.0.0.1:99999"], "the port must be a number from 1 to 65535"),
    ("launch", ["storage=postgres", "storage.url=postgresql://u@127.0.0.1:70000/x"],
     "storage.url=postgresql://u@127.0.0.1:70000/x: the port must be"),
    ("launch", ["trainer.epochs=1000000"], "trainer.epochs=1000000: must be an integer in [1, 100000]"),
    ("launch", ["trainer.seed=5000000000"], "trainer.seed=5000000000: must be an integer in [0, 4294967295]"),
    ("launch", ["model.width=3000000000"], "model.width=3000000000: must be an integer in [1, 2147483647]"),
    # sync
    ("sync", ["nosuch"], "no sweep 'nosuch'"),
    ("sync", ["--tracking-uri", "foo://bar"], "unknown scheme 'foo'"),
    # typos in options, and no such verb
    ("confirm", ["--nosuch"], "No such option: --nosuch"),
    ("nosuchverb", [], "No such command 'nosuchverb'"),
]


@pytest.mark.parametrize(("verb", "args", "expected"), BAD,
                         ids=[f"{v}-{'-'.join(a)[:40]}" for v, a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_changes_nothing(
        finished: Path, monkeypatch: pytest.MonkeyPatch, busy_port: int, verb: str,
        args: list[str], expected: str) -> None:
    for var in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(finished)
    before = _snapshot(finished)
    args = [str(busy_port) if a == BUSY else a for a in args]
    if verb == "launch":  # a new sweep beside the finished one: nothing of it may be written
        args = [*FINISHED, "sweep.name=other", *args]
    result = CliRunner().invoke(app, [verb, *args])
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert expected in lines[0], result.output
    assert "unexpected" not in lines[0] and "Traceback" not in result.output
    assert _snapshot(finished) == before  # the journal, mlflow.db, outputs: byte for byte


READ_ONLY = [["status"], ["best"], ["report"], ["paths", "quick"], ["ui"], ["confirm"],
             ["reproduce"], ["sync"]]


@pytest.mark.parametrize("verb", READ_ONLY, ids=[v[0] for v in READ_ONLY])
def test_a_file_that_is_not_a_journal_is_left_as_it_was(workdir: Path, verb: list[str]) -> None:
    mine = workdir / "notes.txt"
    mine.write_bytes(b"my notes, with no newline at the end")  # what a torn journal looks like
    result = CliRunner().invoke(app, [*verb, "--storage", str(mine)])
    assert result.exit_code == 2 and "is not an Optuna journal" in result.output, result.output
    assert mine.read_bytes() == b"my notes, with no newline at the end"
    assert sorted(p.name for p in workdir.iterdir()) == ["notes.txt"]  # no .torn, no lock


def test_reading_a_torn_journal_leaves_it_torn(finished: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only verb does not heal (write): the next launch or worker does, under the lock."""
    journal = tmp_path / "sweeps.journal"
    journal.write_bytes((finished / "sweeps.journal").read_bytes() + b'{"op_code": 6, "work')
    before = journal.read_bytes()
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["status", "quick"])
    assert result.exit_code == 0 and "quick.sgd" in result.output, result.output
    assert journal.read_bytes() == before and not (tmp_path / "sweeps.journal.torn").exists()


@pytest.fixture
def unrelated_database() -> Iterator[str]:
    """A PostgreSQL database of the test's own holding one table of somebody else's."""
    import psycopg2

    admin = require_postgres()
    name = f"unrelated_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    conn.cursor().execute(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + "/" + name
    with psycopg2.connect(url) as own:
        own.cursor().execute("CREATE TABLE mine (x int)")
    try:
        yield url
    finally:
        from sweeps.store import storages

        for key in [k for k in storages._OPEN if name in k[0]]:
            storages._OPEN.pop(key).engine.dispose()
        conn.cursor().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


@pytest.mark.postgres
def test_read_only_verbs_create_no_tables_in_a_database_without_sweeps(
        workdir: Path, unrelated_database: str) -> None:
    import sqlalchemy

    for verb in READ_ONLY:
        result = CliRunner().invoke(app, [*verb, "--storage", unrelated_database])
        assert result.exit_code == 2, (verb, result.output)
        assert "no sweeps yet in" in result.output and "no Optuna tables" in result.output, result.output
    engine = sqlalchemy.create_engine(unrelated_database.replace("postgresql://", "postgresql+psycopg2://"))
    try:
        assert sqlalchemy.inspect(engine).get_table_names() == ["mine"]
    finally:
        engine.dispose()


TRAINER_BAD = [
    (["trainer.device=cuda:7"], "trainer.device='cuda:7': "),
    (["trainer.resume=/no/such/last.pt"], "trainer.resume='/no/such/last.pt': no such file"),
    (["trainer.output_dir=/proc/sweeps-test"], "trainer.output_dir=/proc/sweeps-test: not writable"),
    (["dataset=mnist", "dataset.download=false"], "dataset 'mnist' is not in data root"),
    # a download that fails (no internet: here a proxy that refuses) leaves no empty data/
    (["dataset=cifar10", "dataset.download=true"], "dataset 'cifar10' is not in data root"),
    (["hydra.run.dir=/proc/sweeps-test"], "hydra.run.dir=/proc/sweeps-test: not writable"),
    (["trainer.epochs=1e23"], "trainer.epochs=1e+23: must be an integer in [1, 100000]"),
    (["trainer.epochs=200000"], "trainer.epochs=200000: must be an integer in [1, 100000]"),
]


def test_the_trainer_checks_this_machine_before_hydra_makes_its_run_folder(tmp_path: Path) -> None:
    for overrides, expected in TRAINER_BAD:
        proc = subprocess.run([sys.executable, "-m", "trainer", "trainer.epochs=1", *overrides],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "https_proxy": "http://127.0.0.1:9",
                                   "http_proxy": "http://127.0.0.1:9"})
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
        assert list(tmp_path.iterdir()) == []  # no outputs/DATE/TIME, no data/


BROKEN = '''
import numpy as np
from torch import nn


class Net(nn.Module):
    def __init__(self, in_shape, num_outputs, **kwargs):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(in_shape)), num_outputs))

    def forward(self, x):
        if self.training and BROKEN:  # the one-batch check runs in eval mode: it passes
            raise RuntimeError("kernel launch failed in layer 2")
        return self.net(x)


BROKEN = True
'''


@pytest.mark.slow
def test_a_systematic_error_stops_the_sweep_and_a_relaunch_after_the_fix_completes_it(
        tmp_path: Path) -> None:
    (tmp_path / "usernet.py").write_text(BROKEN)
    sweep = [*SMALL, "sweep.n_trials=8", "model._target_=usernet.Net"]
    # with fail_fast off, a sweep where nothing completed still exits 1, with no "next:"
    off = run_sweeps("launch", *sweep, "sweep.n_trials=2", "sweep.name=nothing",
                     "sweep.fail_fast=0", cwd=tmp_path)
    assert off.returncode == 1, off.stdout + off.stderr
    assert "no trial of sweep nothing completed" in off.stdout
    assert "next: sweeps confirm" not in off.stdout and "stopped:" not in off.stdout

    first = run_sweeps("launch", *sweep, cwd=tmp_path)
    out = first.stdout
    assert first.returncode == 1, out + first.stderr
    assert out.count("stopped: the last 3 trials failed with the same error (sweep.fail_fast=3): "
                     "RuntimeError: kernel launch failed in layer 2") == 1
    assert 'raise RuntimeError("kernel launch failed in layer 2")' in out  # the full error
    assert "run that trial alone: python -m trainer " in out and "model._target_=usernet.Net" in out
    assert "next: sweeps confirm" not in out
    assert "failed and diverged trials by reason" in out
    from .helpers import journal_trials

    trials = [t for ts in journal_trials(tmp_path / "sweeps.journal").values() for t in ts]
    assert len(trials) == 3 and all(t.state.name == "FAIL" for t in trials)  # one worker: 3, no more

    status = run_sweeps("status", "quick", cwd=tmp_path)
    assert "stopped" in status.stdout and "kernel launch failed" in status.stdout, status.stdout
    # a worker joining later calls the launch's own target only where its user allows it
    refused = run_sweeps("worker", "--study", "quick", cwd=tmp_path)
    assert refused.returncode == 2 and "--allow-target usernet" in refused.stderr, refused.stderr
    joined = run_sweeps("worker", "--study", "quick", "--allow-target", "usernet", cwd=tmp_path)
    assert joined.returncode == 1 and "stopped: the last 3 trials" in joined.stdout, joined.stdout
    assert "this worker ran 0 trial(s)" in joined.stdout

    (tmp_path / "usernet.py").write_text(BROKEN.replace("BROKEN = True", "BROKEN = False"))
    second = run_sweeps("launch", *sweep, cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "the last launch stopped on a repeated error" in second.stdout
    assert "next: sweeps confirm quick" in second.stdout
    trials = [t for ts in journal_trials(tmp_path / "sweeps.journal").values() for t in ts]
    states = sorted(t.state.name for t in trials)
    assert len(trials) == 8 and states.count("FAIL") == 3  # the budget: 3 failed, 5 now
