"""The types hold: one mypy run over every module of sweeps/ and trainer/ ([tool.mypy] in
pyproject.toml), with the public API (`import sweeps`: sweeps/__init__.py and sweeps/api/)
held to every flag of `mypy --strict` that mypy can set per module. The cache lives in the
user's cache folder, so only the first run on a machine checks everything from scratch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sweeps" / "mypy"
PUBLIC = {"sweeps", "sweeps.api", "sweeps.api.*"}


def _mypy(*args: str, cwd: Path = ROOT, cache: str = str(CACHE)) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("mypy", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.fail("mypy is not installed (in the dev extra)")
    return subprocess.run([exe, "--cache-dir", cache, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


def test_sweeps_and_trainer_type_check_and_the_public_api_strictly() -> None:
    result = _mypy()
    assert result.returncode == 0, result.stdout + result.stderr


def _strict_per_module_flags() -> dict[str, object]:
    """What `--strict` changes among the options mypy can set per module, as mypy itself
    computes it (a new strict flag in a later mypy shows up here)."""
    from mypy.main import process_options
    from mypy.options import PER_MODULE_OPTIONS

    _, strict = process_options(["--strict", "--config-file", "", "x.py"])
    _, plain = process_options(["--config-file", "", "x.py"])
    return {k: getattr(strict, k) for k in PER_MODULE_OPTIONS if getattr(strict, k) != getattr(plain, k)}


def test_the_public_api_gets_every_strict_flag() -> None:
    """The override that makes the run above strict on the public API sets every per-module
    flag of `--strict` (or the global section does), so it is `mypy --strict` there."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    overrides = [o for o in config.get("overrides", []) if set(o["module"]) >= PUBLIC]
    assert overrides, f"no [[tool.mypy.overrides]] for {sorted(PUBLIC)}"
    applied = {**config, **overrides[0]}
    wanted = _strict_per_module_flags()
    assert len(wanted) >= 10, wanted  # mypy's strict set, not an empty comparison
    missing = {k: v for k, v in wanted.items() if applied.get(k) != v}
    assert not missing, f"the public API's override lacks these --strict flags: {missing}"


def test_an_untyped_function_in_the_public_api_fails_the_check(tmp_path: Path) -> None:
    """The override is in force: the same config on a copy of the package layout rejects an
    untyped def in sweeps/api and accepts one elsewhere."""
    for pkg in ("sweeps", "sweeps/api", "sweeps/other"):
        (tmp_path / pkg).mkdir(parents=True)
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "sweeps/api/bad.py").write_text("def f(x):\n    return x\n")
    (tmp_path / "sweeps/other/fine.py").write_text("def f(x):\n    return x\n")
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    result = _mypy("--no-incremental", "-p", "sweeps", cwd=tmp_path, cache=os.devnull)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "sweeps/api/bad.py:1: error: Function is missing a type annotation" in result.stdout
    assert "fine.py" not in result.stdout
