"""No code runs because data says so: a row written into the study storage, or a file planted
where a run looks for its checkpoint, is refused in one line, and its payload never runs.

Each test acts as an attacker with write access to the storage or the runs folder would: it
writes the row or plants the file, then runs the tool as its user would.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

from sweeps.cli import app
from sweeps.search.allowed_targets import AllowedTargets, for_this_machine, in_overrides, targets_in

from .conftest import SMALL

PAYLOAD = "{_target_: setuptools._distutils.spawn.spawn, cmd: [sh, -c, 'id > owned.txt']}"


def _env() -> dict[str, str]:
    unset = ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI", "SWEEPS_CONFIG_DIR", "SWEEPS_ALLOWED_TARGETS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def _sweeps(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sweeps", *args], cwd=cwd, env=_env(), text=True,
                          capture_output=True, timeout=300)


def _queued(workdir: Path, cli: CliRunner) -> list[optuna.Study]:
    """A sweep launched with no local workers: its trials wait for `sweeps worker`."""
    result = cli.invoke(app, ["launch", *SMALL, "sweep.optimizers=[sgd]", "sweep.n_trials=1",
                              "trainer.epochs=1", "sweep.workers=0"])
    assert result.exit_code == 0, result.output
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(workdir / "sweeps.journal")))
    return [optuna.load_study(study_name=s.study_name, storage=storage)
            for s in storage.get_all_studies()]


def test_a_target_written_into_the_stored_overrides_never_runs(workdir: Path, cli: CliRunner) -> None:
    for study in _queued(workdir, cli):  # the attacker's row
        study.set_user_attr("sweep_overrides",
                            [*study.user_attrs["sweep_overrides"], f"trainer.loss={PAYLOAD}"])
    worker = _sweeps(workdir, "worker", "--study", "quick")
    assert worker.returncode == 2, worker.stdout + worker.stderr
    line = worker.stderr.strip()
    assert line.startswith("error: trainer.loss._target_=setuptools._distutils.spawn.spawn: not a "
                           "target this machine allows") and "--allow-target setuptools" in line, line
    assert len(line.splitlines()) == 1
    assert not (workdir / "owned.txt").exists()


def test_a_target_in_a_stored_confirm_config_fails_that_run_only(workdir: Path, cli: CliRunner) -> None:
    studies = _queued(workdir, cli)
    assert _sweeps(workdir, "worker", "--study", "quick").returncode == 0  # the search ran
    queued = cli.invoke(app, ["confirm", "quick", "--seeds", "2", "--workers", "0"])
    assert queued.exit_code == 0, queued.output
    storage = studies[0]._storage
    confirm = next(s for s in storage.get_all_studies() if s.study_name.endswith(".confirm"))
    for t in storage.get_all_trials(confirm._study_id):
        cfg = dict(t.user_attrs["config"])
        cfg["model"] = {**cfg["model"], "_target_": "os.system", "command": "id > owned.txt"}
        storage.set_trial_user_attr(t._trial_id, "config", cfg)  # the attacker's rows
    worker = _sweeps(workdir, "worker", "--study", "quick.confirm")
    assert worker.returncode == 0, worker.stdout + worker.stderr
    assert worker.stdout.count("failed (bad config: model._target_=os.system: not a target this "
                               "machine allows") == 2, worker.stdout
    assert not (workdir / "owned.txt").exists()


def test_the_worker_s_own_config_dir_and_flags_decide_not_the_stored_copy(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    (conf / "model").mkdir(parents=True)
    (conf / "model" / "net.yaml").write_text("_target_: userpkg.nets.Net\nhidden: 8\n")
    mine = for_this_machine(str(conf), ["otherpkg"])
    assert mine.allows("userpkg.nets.Net") and mine.allows("otherpkg.X")
    assert mine.allows("trainer.models.mlp") and mine.allows("torch.nn.HuberLoss")
    for bad in ("os.system", "builtins.eval", "subprocess.run", "trainer.config.targets.build",
                "torch.load", "torch.hub.load", "userpkgx.Net", "", None, "userpkg..x", "a b"):
        assert not mine.allows(bad), bad
    # a recorded config dir that another user may write does not widen what is allowed
    shared = tmp_path / "shared"
    (shared / "model").mkdir(parents=True)
    (shared / "model" / "evil.yaml").write_text("_target_: evilpkg.Net\n")
    shared.chmod(0o777)
    assert not for_this_machine(None, [], recorded=str(shared)).allows("evilpkg.Net")
    shared.chmod(0o755)
    assert for_this_machine(None, [], recorded=str(shared)).allows("evilpkg.Net")  # this user's


def test_every_place_a_config_can_name_a_callable_is_checked() -> None:
    cfg = {"model": {"_target_": "trainer.models.mlp", "inner": [{"_target_": "os.system"}]},
           "search": {"common": {"net": {"type": "categorical", "key": "model._target_",
                                         "choices": ["trainer.models.mlp", "evil.Net"]}}}}
    found = dict(targets_in(cfg))
    assert found["model.inner.0._target_"] == "os.system"
    assert found["search.common.net.choices"] == "evil.Net"
    with pytest.raises(Exception, match=r"model.inner.0._target_=os.system: not a target"):
        AllowedTargets().check(cfg)
    assert in_overrides(["model._target_=mypkg.Net", f"trainer.loss={PAYLOAD}", "x=1"]) == \
        {"mypkg", "setuptools"}


class _Owned:
    """What an attacker pickles: unpickling it runs a shell command."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("id > owned.txt",))


def test_a_planted_or_malformed_checkpoint_is_one_line_and_never_runs(tmp_path: Path) -> None:
    planted = tmp_path / "last.pt"
    planted.write_bytes(pickle.dumps({"format": 2, "config": _Owned()}))
    malformed = tmp_path / "malformed.pt"
    import torch

    torch.save({"format": 2, "epoch": 1}, malformed)
    for path in (planted, malformed):
        out = subprocess.run([sys.executable, "-m", "trainer", "trainer.epochs=1", "model.width=8",
                              "dataset.val_size=300", f"trainer.resume={path}",
                              f"trainer.output_dir={tmp_path / 'out'}"],
                             cwd=tmp_path, env=_env(), text=True, capture_output=True, timeout=300)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == 2 and len(lines) == 1, out.stderr
        assert lines[0].startswith(f"error: trainer.resume='{path}': not a")
    assert not (tmp_path / "owned.txt").exists()


def test_a_pickle_planted_in_a_cache_folder_others_may_write_is_never_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trainer.config import cache
    from trainer.config.compose import compose, conf_dir

    shared = tmp_path / "shared-cache"
    (shared / "compose").mkdir(parents=True)
    monkeypatch.setenv("SWEEPS_CACHE_DIR", str(shared))
    monkeypatch.chdir(tmp_path)
    planted = shared / "compose" / f"{cache.key('config', ['model=mlp'], conf_dir(), None)}.pkl"
    planted.write_bytes(pickle.dumps(_Owned()))
    (shared / "compose").chmod(0o777)  # a folder anyone may write: its pickles are not read
    assert compose(["model=mlp"]).model.name == "mlp"
    assert not (tmp_path / "owned.txt").exists()
    assert planted.read_bytes() == pickle.dumps(_Owned())  # and nothing of ours kept there


def test_summary_md_shows_html_as_text() -> None:
    from sweeps.report.document import no_tags

    assert no_tags("| <script>alert(1)</script> | p < 0.05 |") == \
        "| &lt;script>alert(1)&lt;/script> | p < 0.05 |"


def test_the_ui_on_another_address_than_loopback_says_it_has_no_login(workdir: Path) -> None:
    import signal
    import time

    from ..servers import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "sweeps", "ui", "--host", "0.0.0.0", "--port",
                             str(port), "--tracking-uri", f"sqlite:///{workdir / 'mlflow.db'}"],
                            cwd=workdir, env=_env(), text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any("MLflow UI for" in ln for ln in lines):
            line = proc.stdout.readline() if proc.stdout else ""
            if not line:
                break
            lines.append(line)
        text = "".join(lines)
        assert "warning: --host 0.0.0.0: the MLflow UI has no login" in text, text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
