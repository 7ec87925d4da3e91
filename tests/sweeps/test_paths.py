"""`sweeps paths`: the trainer's optimizers on 2-D test functions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sweeps.cli import app
from sweeps.report import paths


def _grad(fn: paths.TestFunction, x: float, y: float, h: float = 1e-6) -> np.ndarray:
    return np.array([(fn.f(x + h, y) - fn.f(x - h, y)) / (2 * h),
                     (fn.f(x, y + h) - fn.f(x, y - h)) / (2 * h)])


def test_sgd_path_is_plain_gradient_descent() -> None:
    fn = paths.FUNCTIONS["rosenbrock"]
    ((lr, pts, _),) = paths.run(fn, paths.optimizer_section("sgd"), [1e-3], 5)
    expected = [np.array(fn.start)]
    for _ in range(5):
        expected.append(expected[-1] - lr * _grad(fn, *expected[-1]))
    np.testing.assert_allclose(pts, np.array(expected), rtol=1e-6)


def test_every_rate_of_the_grid_runs_independently() -> None:
    """Rates run as parameter groups of one optimizer: each must equal a run on its own."""
    fn = paths.FUNCTIONS["beale"]
    section = paths.optimizer_section("adam_to_sgd")
    together = paths.run(fn, section, [1e-3, 0.1], 30)
    alone = paths.run(fn, section, [0.1], 30)
    np.testing.assert_array_equal(together[1][1], alone[0][1])


def test_best_of_grid_prefers_getting_there_fast() -> None:
    """A path at the minimum from its second point beats one that gets there at its last,
    and the grid's choice minimises the mean log gap computed here from the function."""
    fn = paths.FUNCTIONS["rosenbrock"]
    start, low = np.array([-1.5, 2.0]), np.array([1.0, 1.0])  # (1, 1): Rosenbrock's minimum
    early, late = np.array([start, low, low, low]), np.array([start, start, start, low])
    assert paths.score(fn, early) < paths.score(fn, late)
    best = paths.best_path(fn, "sgd", paths.optimizer_section("sgd"), 100)
    assert best.lr_source == "best of grid" and best.lr in paths.LR_GRID

    def mean_log_gap(pts: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            gap = fn.f(pts[:, 0], pts[:, 1]) - fn.f_min
        return float(np.mean(np.log10(np.maximum(gap, 0) + 1e-12))) if np.isfinite(gap).all() else np.inf

    gaps = {rate: mean_log_gap(pts) for rate, pts, _ in paths.run(fn, paths.optimizer_section("sgd"),
                                                                  paths.LR_GRID, 100)}
    assert best.lr == min(gaps, key=gaps.get)
    assert gaps[best.lr] < gaps[min(paths.LR_GRID)]  # the smallest rate is too slow


def test_cli_draws_one_figure_per_function(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["paths", "--optimizers", "sgd,adam_to_sgd", "--functions",
                                      "saddle,beale", "--steps", "40", "--lr", "sgd=0.05",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in ("saddle", "beale"):
        png = tmp_path / f"{name}.png"
        assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    assert "0.05 (given)" in result.output and "(best of grid)" in result.output


@pytest.mark.parametrize(("args", "expected"), [
    (["--functions", "himmelblau"], "--functions himmelblau: allowed: rosenbrock, beale, saddle"),
    (["--optimizers", "adagrad"], "'adagrad' is not one of"),
    (["--lr", "sgd=-1"], "--lr sgd=-1: must be OPTIMIZER=RATE"),
    (["--steps", "0"], "--steps 0: must be in [1, 100,000]"),
])
def test_cli_bad_input(tmp_path: Path, args: list[str], expected: str) -> None:
    result = CliRunner().invoke(app, ["paths", *args, "--out", str(tmp_path / "p")])
    assert result.exit_code == 2 and expected in result.output, result.output
    assert not (tmp_path / "p").exists()
