"""The types hold: mypy over every module of sweeps/ and trainer/ ([tool.mypy] in
pyproject.toml), and the public API (`import sweeps`) in strict mode. The cache lives in the
user's cache folder, so only the first run on a machine checks everything from scratch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sweeps" / "mypy"


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("mypy", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.fail("mypy is not installed (in the dev extra)")
    return subprocess.run([exe, "--cache-dir", str(CACHE), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_sweeps_and_trainer_type_check() -> None:
    result = _mypy()
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_public_api_type_checks_strictly() -> None:
    result = _mypy("--strict", "--follow-imports=silent", "sweeps/__init__.py", "sweeps/api")
    assert result.returncode == 0, result.stdout + result.stderr
