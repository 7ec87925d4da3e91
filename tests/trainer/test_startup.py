"""What a process pays to start and exit: no torch where a config is only validated, the
composition cache, and the skipped final collection (docs/explanation/performance.md, "Start-up and exit")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trainer.config.compose import compose


def _python(code: str, cwd: Path) -> str:
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_validating_a_sweep_and_importing_the_launch_import_no_torch(tmp_path: Path) -> None:
    code = ("import sys\n"
            "from sweeps.search.load import load_sweep\n"
            "spec = load_sweep(['sweep=quick'])\n"
            "import sweeps.run.launch, sweeps.run.processes, sweeps.tracking.runs\n"
            "import trainer.validation, trainer.models, trainer.datasets, trainer.optim\n"
            "import trainer.optim.schedules, trainer.config.compose\n"
            "print(len(spec.studies), 'torch' in sys.modules)")
    assert _python(code, tmp_path) == "8 False"


def test_help_imports_neither_optuna_nor_torch(tmp_path: Path) -> None:
    code = ("import sys\n"
            "sys.argv = ['sweeps', '--help']\n"
            "from sweeps.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('optuna' in sys.modules, 'torch' in sys.modules, file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert "Usage" in out.stdout and out.stderr.strip().endswith("False False"), out.stderr


def test_the_registries_still_build_what_they_name() -> None:
    import torch

    from trainer.models import build_model
    from trainer.optim import AdamToSGD, build_optimizer
    from trainer.optim.schedules import Schedule

    model = build_model({"_target_": "trainer.models.resnet", "blocks": 1, "width": 4,
                         "init": "he_normal", "init_scale": 0.05}, (3, 8, 8), 10)
    assert model(torch.zeros(2, 3, 8, 8)).shape == (2, 10)
    opt = build_optimizer({"name": "adam_to_sgd", "lr": 1e-3, "betas": [0.9, 0.999], "eps": 1e-8,
                           "weight_decay": 0.0, "policy": "fixed", "switch_at": 0.5,
                           "switch_epoch": None, "switch_step": None, "sgd_lr": None,
                           "sgd_momentum": None, "sgd_dampening": None, "sgd_nesterov": False,
                           "swats_eps": 1e-9, "swats_tolerance": "relative"},
                          model.parameters(), steps_per_epoch=4, total_steps=8)
    assert isinstance(opt, AdamToSGD)
    sgd = build_optimizer({"name": "sgd", "lr": 0.1, "weight_decay": 0.0}, model.parameters(),
                          steps_per_epoch=4)
    assert type(sgd) is torch.optim.SGD
    Schedule(sgd, {"name": "step", "step_size": 1, "gamma": 0.5, "warmup_epochs": 0,
                   "warmup_start_factor": 0.1}, steps_per_epoch=4, epochs=2)


def test_a_composition_comes_back_from_the_cache_until_a_config_file_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWEEPS_CACHE_DIR", str(tmp_path / "cache"))
    user = tmp_path / "conf"
    (user / "model").mkdir(parents=True)
    (user / "model" / "tiny.yaml").write_text("_target_: trainer.models.mlp\ndepth: 1\nwidth: 7\n")
    first = compose(["model=tiny"], config_dir=user)
    entries = list((tmp_path / "cache" / "compose").glob("*.pkl"))
    assert first.model.width == 7 and len(entries) == 1
    assert compose(["model=tiny"], config_dir=user) == first  # read back, not composed again
    assert len(list((tmp_path / "cache" / "compose").glob("*.pkl"))) == 1
    (user / "model" / "tiny.yaml").write_text("_target_: trainer.models.mlp\ndepth: 1\nwidth: 9\n")
    assert compose(["model=tiny"], config_dir=user).model.width == 9  # a changed file: composed again
    monkeypatch.setenv("SWEEPS_STORAGE", "elsewhere.journal")  # read when the config is read
    assert compose([], "sweeps").storage.url == "elsewhere.journal"
    monkeypatch.setenv("SWEEPS_STORAGE", "other.journal")
    assert compose([], "sweeps").storage.url == "other.journal"


def test_the_cache_is_off_or_absent_without_a_difference(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("SWEEPS_CACHE_DIR", str(blocked))  # cannot be written: nothing cached
    assert compose(["optimizer=adam"]).optimizer.name == "adam"
    monkeypatch.setenv("SWEEPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SWEEPS_COMPOSE_CACHE", "0")
    assert compose(["optimizer=sgd"]).optimizer.name == "sgd"
    assert not (tmp_path / "cache").exists()


def test_a_bad_override_is_the_same_error_with_the_cache(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from trainer.errors import UserError

    monkeypatch.setenv("SWEEPS_CACHE_DIR", str(tmp_path / "cache"))
    for _ in range(2):  # an error is never cached: the second call says the same
        with pytest.raises(UserError, match="optimizer='nope': unknown option; allowed: adam"):
            compose(["optimizer=nope"])


def test_the_final_collection_is_skipped_but_atexit_handlers_still_run(tmp_path: Path) -> None:
    code = ("import atexit, gc\n"
            "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0, flush=True))\n"
            "from trainer.startup import skip_exit_gc\n"
            "skip_exit_gc(); skip_exit_gc()\n"
            "print('frozen', gc.get_freeze_count() > 0, flush=True)")
    assert _python(code, tmp_path).split("\n") == ["frozen False", "frozen True"]


@pytest.mark.parametrize(("given", "kept"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_openmp_threads_sleep_while_they_wait_unless_the_user_says_otherwise(
        monkeypatch: pytest.MonkeyPatch, given: str | None, kept: str) -> None:
    from trainer.startup import passive_openmp_waits

    if given is None:
        monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    else:
        monkeypatch.setenv("OMP_WAIT_POLICY", given)
    passive_openmp_waits()
    import os

    assert os.environ["OMP_WAIT_POLICY"] == kept


def test_the_entry_points_set_the_wait_policy_before_torch_loads(tmp_path: Path) -> None:
    """OpenMP reads OMP_WAIT_POLICY once, when torch loads it: `sweeps` and `python -m
    trainer` set it first thing (a launch's worker process: tests/sweeps/test_e2e.py)."""
    code = ("import os, sys\n"
            "os.environ.pop('OMP_WAIT_POLICY', None)\n"
            "import trainer.__main__ as m\n"
            "def stop(*args):\n"
            "    print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)\n"
            "    raise SystemExit(0)\n"
            "m._preflight = stop\n"
            "sys.argv = ['trainer', 'trainer.epochs=1']\n"
            "m.main()\n")
    assert _python(code, tmp_path) == "PASSIVE False"
    code = ("import os, sys\n"
            "os.environ.pop('OMP_WAIT_POLICY', None)\n"
            "sys.argv = ['sweeps', '--help']\n"
            "from sweeps.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(os.environ.get('OMP_WAIT_POLICY'), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.stderr.strip().endswith("PASSIVE"), out.stderr
