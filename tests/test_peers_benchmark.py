"""benchmarks/peers.py runs as documented: the table, our ratio to each peer, a missing peer
skipped with the line that says how to install it (peers are not in the default install)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .benchmark_scripts import load

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "peers.py"


def _module() -> Any:
    return load("peers.py", "peers_benchmark")


def test_a_missing_peer_is_a_line_that_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    peers = _module()
    monkeypatch.setitem(peers.NEEDS, "ray", ("no_such_module_for_the_test", "ray[tune]"))
    line = peers.available("ray")
    assert line == ("Ray Tune + MLflowLoggerCallback: skipped, not installed "
                    "(pip install -e '.[peers]', or pip install 'ray[tune]')")
    assert peers.available("sweeps") is None and peers.available("bare") is None


def test_one_sweep_definition_for_every_tool() -> None:
    from sweeps.search.load import load_sweep

    peers = _module()
    spec = load_sweep(peers.sweep_overrides("mlp", 48, 0))
    assert [st.optimizer for st in spec.studies] == ["adam", "momentum"]
    assert [st.budget for st in spec.studies] == [24, 24]
    assert spec.pruner["name"] == "none" and spec.sampler["name"] == "tpe"
    batch = next(d for st in spec.studies for d in st.space.dims if d.name == "batch_size")
    assert batch.choices == (128,)


@pytest.mark.slow
def test_the_benchmark_prints_the_table_with_our_ratio_to_each_installed_peer(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--trials", "4", "--settings", "mlp",
                           "--workers", "1", "--tools", "sweeps,optuna,bare"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    sweeps_row = next(ln for ln in out.splitlines() if ln.startswith("sweeps launch"))
    cells = sweeps_row.split()
    # workers, trials/h and fixed ms twice, runs 4, params, points, curves yes, nested yes
    assert cells[2] == "1" and cells[-5] == "4" and cells[-2:] == ["yes", "yes"], sweeps_row
    assert any(ln.startswith("bare trainer loop (floor)") for ln in out.splitlines())
    if importlib.util.find_spec("optuna_integration") is None:
        assert "optuna + MLflowCallback: skipped, not installed (pip install -e '.[peers]'" in out
    else:
        assert "1 worker(s): sweeps / optuna + MLflowCallback, trials per hour:" in out
        optuna_row = next(ln for ln in out.splitlines() if ln.startswith("optuna + MLflowCallback"))
        assert optuna_row.split()[-2:] == ["no", "no"]  # final values only, no parent run
