"""Every shell block the docs mark `<!-- runnable: WHERE -->` runs as written, in order, as a
reader would type it: WHERE is `quick` (a new, empty directory: the quick sweep) or the path
of an example (a copy of that folder). Each command must exit 0; then a few checks of what
the reader was told they would get."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
MARK = re.compile(r"<!-- runnable: (\S+) -->\n```bash\n(.*?)```", re.S)


def runnable_blocks() -> dict[tuple[str, str], list[str]]:
    """(page, where) -> the commands of its marked blocks, in page order."""
    found: dict[tuple[str, str], list[str]] = {}
    for page in sorted(DOCS.rglob("*.md")):
        for where, block in MARK.findall(page.read_text()):
            commands = [line.split("  #")[0].strip() for line in block.splitlines()]
            found.setdefault((str(page.relative_to(DOCS)), where), []).extend(c for c in commands if c)
    return found


BLOCKS = runnable_blocks()


def test_the_marked_blocks_are_found() -> None:
    """The getting-started walk-through and the own-model tutorial are marked (a marker that
    stops matching would make the test below run nothing)."""
    assert ("getting-started.md", "quick") in BLOCKS
    assert ("tutorials/own-model.md", "examples/tabular") in BLOCKS
    for (_page, where), commands in BLOCKS.items():
        assert where == "quick" or (ROOT / where).is_dir(), where
        assert all(c.startswith(("sweeps ", "python -m trainer")) for c in commands), commands


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI", "SWEEPS_CONFIG_DIR")}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.mark.slow
@pytest.mark.parametrize(("page", "where"), sorted(BLOCKS), ids=lambda v: str(v))
def test_a_pages_runnable_blocks_run_as_written(page: str, where: str, tmp_path: Path) -> None:
    cwd = tmp_path / "work"
    if where == "quick":
        cwd.mkdir()
    else:
        shutil.copytree(ROOT / where, cwd, ignore=shutil.ignore_patterns("__pycache__", "digit_pngs"))
    outputs = {}
    for command in BLOCKS[(page, where)]:
        proc = _run(command, cwd)
        assert proc.returncode == 0, (f"{page}: `{command}` exited {proc.returncode}\n"
                                      f"{proc.stdout}\n{proc.stderr}")
        outputs[command] = proc.stdout
    if where == "quick":
        _check_quick(cwd, outputs)
    elif where == "examples/tabular":
        _check_tabular(cwd, outputs, tmp_path)


def _check_quick(cwd: Path, outputs: dict[str, str]) -> None:
    """What getting-started.md says the reader gets."""
    assert "one seed each: not a ranking" in outputs["sweeps launch sweep=quick"]
    summary = (cwd / "reports" / "quick" / "summary.md").read_text()
    assert "K=5" in summary and "In short" in summary
    assert (cwd / "reports" / "quick" / "report.html").is_file()
    assert "reproduced: identical" in outputs["sweeps reproduce --trial best"]
    assert list((cwd / "reports" / "paths").glob("*.png"))


def _check_tabular(cwd: Path, outputs: dict[str, str], tmp_path: Path) -> None:
    """What the own-model tutorial says: a confirmed ranking of the user's MLP on their data,
    and a `python -m trainer` line that runs the same config without the sweep layer."""
    summary = (cwd / "reports" / "tabular" / "summary.md").read_text()
    assert "breast_cancer (classification)" in summary and "Model: tabular_mlp" in summary
    assert "test acc" in summary and "K=5" in summary
    reproduce = outputs["sweeps reproduce tabular --trial best"]
    assert "reproduced: identical" in reproduce
    line = next(ln.strip() for ln in reproduce.splitlines() if ln.strip().startswith("python -m trainer"))
    assert f"--config-dir {cwd / 'conf'}" in line
    run = _run(f"{line} trainer.epochs=1 hydra.run.dir={tmp_path / 'run'}", cwd)
    assert run.returncode == 0 and "model tabular_mlp" in run.stdout + run.stderr, run.stderr
