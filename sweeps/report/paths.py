"""`sweeps paths`: optimizer trajectories on 2-D test functions, drawn over their contours.

The optimizers are the trainer's own (`torch.optim` classes and our AdamToSGD, built by
`trainer.optim.build_optimizer` from the same config sections a sweep uses), so a path
shows what the optimizer a sweep tunes does, in the spirit of vis.ensmallen.org. The
learning rate is problem-specific (a rate tuned for an MLP is meaningless on Beale's
function), so unless given it is the best of a log grid on each function ("best-found":
the lowest mean over the path of log10(f - f_min), i.e. there fast and staying there; a
final value alone ties whenever several rates reach the minimum); the other
hyperparameters are the optimizer's defaults, or those of a sweep's best trial. Every
grid rate runs at once, as parameter groups of one optimizer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainer.api import UserError

LR_GRID = tuple(10 ** (k / 2) for k in range(-8, 1))  # 1e-4, 3.2e-4, ..., 1: two per decade
STEPS = 300
MAX_STEPS = 100_000  # steps of one path: 8 optimizers x 3 functions of them are held and drawn


@dataclass(frozen=True)
class TestFunction:
    name: str
    formula: str
    f: Callable[[Any, Any], Any]  # works on torch tensors and NumPy arrays
    start: tuple[float, float]
    minima: tuple[tuple[float, float], ...]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    f_min: float = 0.0


FUNCTIONS: dict[str, TestFunction] = {f.name: f for f in (
    TestFunction("rosenbrock", "(1 - x)^2 + 100 (y - x^2)^2",
                 lambda x, y: (1 - x) ** 2 + 100 * (y - x**2) ** 2,
                 (-1.2, 1.0), ((1.0, 1.0),), (-2.0, 2.0), (-1.0, 3.0)),
    TestFunction("beale", "(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2",
                 lambda x, y: (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2
                 + (2.625 - x + x * y**3) ** 2,
                 (1.0, 1.5), ((3.0, 0.5),), (-4.5, 4.5), (-4.5, 4.5)),
    TestFunction("saddle", "x^2 - y^2 + y^4 / 4 (saddle at the origin, minima at (0, ±√2))",
                 lambda x, y: x**2 - y**2 + y**4 / 4,
                 (1.5, 1e-3), ((0.0, math.sqrt(2)), (0.0, -math.sqrt(2))), (-2.0, 2.0), (-2.5, 2.5),
                 f_min=-1.0),
)}


@dataclass
class Path2D:
    function: str
    optimizer: str
    lr: float
    lr_source: str  # given | best of grid
    points: np.ndarray  # (steps + 1, 2)
    final: float
    score: float = math.nan  # mean over the path of log10(f - f_min): lower is better

    @property
    def diverged(self) -> bool:
        return not math.isfinite(self.final)


def optimizer_section(name: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The optimizer's config section: its defaults (conf/optimizer), then `overrides`.

    The group files are plain YAML (no defaults list, no interpolation): read directly,
    not through a Hydra composition per optimizer.
    """
    from omegaconf import OmegaConf

    from trainer.api import conf_dir, validate_optimizer

    loaded = OmegaConf.to_container(OmegaConf.load(Path(conf_dir()) / "optimizer" / f"{name}.yaml"))
    section = {**loaded, **(overrides or {})}  # type: ignore[dict-item]
    validate_optimizer(section)
    return section


def run(fn: TestFunction, section: Mapping[str, Any], lrs: Sequence[float],
        steps: int) -> list[tuple[float, np.ndarray, float]]:
    """Optimize `fn` from its start once per learning rate; (lr, points, final value) each."""
    import torch

    from trainer.api import build_optimizer

    points = [torch.tensor(fn.start, dtype=torch.float64, requires_grad=True) for _ in lrs]
    groups = [{"params": [p], "lr": float(lr)} for p, lr in zip(points, lrs, strict=True)]
    opt = build_optimizer(section, groups, steps_per_epoch=steps, total_steps=steps)
    trace = np.empty((steps + 1, len(lrs), 2))
    trace[0] = [fn.start] * len(lrs)
    for k in range(1, steps + 1):
        opt.zero_grad(set_to_none=True)
        xy = torch.stack(points)  # one graph for every rate: the points do not interact
        fn.f(xy[:, 0], xy[:, 1]).sum().backward()
        opt.step()
        with torch.no_grad():
            for p in points:  # keep a diverging rate from poisoning the others with inf/NaN
                if not torch.isfinite(p).all():
                    p.fill_(math.nan)
        trace[k] = [p.detach().numpy() for p in points]
    with np.errstate(all="ignore"):  # a diverging rate overflows: its value is inf, not a warning
        values = fn.f(trace[..., 0], trace[..., 1])  # (steps + 1, rates)
    return [(float(lr), trace[:, i], float(values[-1, i])) for i, lr in enumerate(lrs)]


def score(fn: TestFunction, points: np.ndarray) -> float:
    """Mean over the path of log10(f - f_min): rewards getting close fast and staying there."""
    with np.errstate(all="ignore"):
        gap = fn.f(points[:, 0], points[:, 1]) - fn.f_min
    if not np.isfinite(gap).all():
        return math.inf
    return float(np.mean(np.log10(np.maximum(gap, 0.0) + 1e-12)))


def best_path(fn: TestFunction, optimizer: str, section: Mapping[str, Any], steps: int,
              lr: float | None = None) -> Path2D:
    """The path at the given learning rate, or at the grid rate with the best score."""
    if lr is not None:
        ((rate, pts, final),) = run(fn, section, [lr], steps)
        return Path2D(fn.name, optimizer, rate, "given", pts, final, score(fn, pts))
    runs = [(rate, pts, final, score(fn, pts)) for rate, pts, final in run(fn, section, LR_GRID, steps)]
    rate, pts, final, best = min(runs, key=lambda r: r[3])
    return Path2D(fn.name, optimizer, rate, "best of grid", pts, final, best)


def draw(fn: TestFunction, paths: Sequence[Path2D], out: Path, steps: int) -> Path:
    """Contours (log-spaced levels) with every optimizer's path; written as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = np.linspace(*fn.xlim, 400)
    ys = np.linspace(*fn.ylim, 400)
    gx, gy = np.meshgrid(xs, ys)
    z = fn.f(gx, gy)
    shifted = z - z.min() + 1e-3
    fig, ax = plt.subplots(figsize=(9, 7.5), dpi=110)
    levels = np.logspace(np.log10(shifted.min()), np.log10(shifted.max()), 30)
    ax.contour(gx, gy, shifted, levels=levels, cmap="Greys", linewidths=0.6, norm="log")
    cmap = plt.get_cmap("tab10")
    for i, p in enumerate(paths):
        pts = p.points[np.isfinite(p.points).all(axis=1)]
        end = "diverged" if p.diverged else f"f={p.final:.2g}"
        ax.plot(pts[:, 0], pts[:, 1], "-", color=cmap(i % 10), lw=1.6, alpha=0.9,
                label=f"{p.optimizer} (lr {p.lr:.2g}, {p.lr_source}): {end}")
        ax.plot(pts[-1, 0], pts[-1, 1], "o", color=cmap(i % 10), ms=5)
    ax.plot(*fn.start, "k^", ms=9, label="start")
    for m in fn.minima:
        ax.plot(*m, "k*", ms=14)
    ax.set_xlim(*fn.xlim)
    ax.set_ylim(*fn.ylim)
    ax.set_title(f"{fn.name}: {fn.formula}; {steps} steps (* = minimum)", fontsize=10)
    ax.legend(fontsize=7.5, loc="lower left", framealpha=0.85)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{fn.name}.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def parse_lrs(items: Sequence[str], optimizers: Sequence[str]) -> dict[str, float]:
    """``--lr adam=0.05`` (repeatable) -> {"adam": 0.05}; one clear line on bad input."""

    out: dict[str, float] = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            rate = float(value)
        except ValueError:
            rate = math.nan
        if not sep or name not in optimizers or not (math.isfinite(rate) and rate > 0):
            raise UserError(f"--lr {item}: must be OPTIMIZER=RATE with a rate > 0 and one of "
                            f"{', '.join(optimizers)}")
        out[name] = rate
    return out


def _one(function: str, optimizer: str, section: Mapping[str, Any], lr: float | None,
         steps: int) -> Path2D:
    """One optimizer's path on one function (by name: the functions are lambdas)."""
    import torch

    torch.set_num_threads(1)  # tiny tensors: threads only add overhead
    return best_path(FUNCTIONS[function], optimizer, section, steps, lr)


def _draw(function: str, found: list[Path2D], out: Path, steps: int) -> Path:
    return draw(FUNCTIONS[function], found, out, steps)


def draw_all(functions: Sequence[str], sections: Mapping[str, Mapping[str, Any]],
             lrs: Mapping[str, float], steps: int, out: Path) -> dict[str, tuple[Path, list[Path2D]]]:
    """Every optimizer's path on each function, and one figure per function; both spread over
    processes where the OS can fork (the paths are independent)."""
    import os

    from sweeps.report.forking import parallel_map, star

    jobs = [(f, opt, dict(section), lrs.get(opt), steps) for f in functions
            for opt, section in sections.items()]
    if not jobs:
        return {}
    _one(jobs[0][0], jobs[0][1], jobs[0][2], 1e-3, 1)  # torch.optim's lazy first-use setup (~2 s)
    workers = os.cpu_count() or 1
    found = parallel_map(star(_one), jobs, workers)
    by_fn = {f: [p for p in found if p.function == f] for f in functions}
    figures = parallel_map(star(_draw), [(f, by_fn[f], out, steps) for f in functions], workers)
    return {f: (fig, by_fn[f]) for f, fig in zip(functions, figures, strict=True)}


def function_names(text: str) -> list[str]:
    """``--functions rosenbrock,beale``: the test functions, each checked."""
    names = [f.strip() for f in text.split(",") if f.strip()]
    if not names or any(f not in FUNCTIONS for f in names):
        raise UserError(f"--functions {text}: allowed: {', '.join(FUNCTIONS)}")
    return names


def default_sections(chosen: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """Each optimizer's default config section (all eight unless `chosen`)."""
    from trainer.api import list_optimizers

    sections: dict[str, dict[str, Any]] = {}
    for opt in chosen or list_optimizers():
        if opt not in list_optimizers():
            raise UserError(f"--optimizers: {opt!r} is not one of {', '.join(list_optimizers())}")
        sections[opt] = optimizer_section(opt)
    return sections


def sweep_sections(name: str, best: Mapping[str, tuple[Any, Any]], optimizers: Sequence[str]
                   ) -> dict[str, dict[str, Any]]:
    """Each optimizer's config section from its best trial in sweep `name` (`best`:
    optimizer -> (study, trial), as `summary.best_per_optimizer` gives)."""
    sections: dict[str, dict[str, Any]] = {}
    for opt in optimizers:
        if opt not in best:
            raise UserError(f"--optimizers: sweep {name!r} has no completed {opt} trial")
        sections[opt] = dict(best[opt][1].user_attrs["config"]["optimizer"])
    return sections


def results_table(results: Mapping[str, tuple[Path, list[Path2D]]], steps: int) -> Any:
    """Where each path ended: its final value and its distance to the nearest minimum."""
    from rich.table import Table

    table = Table(title=f"optimizer paths, {steps} steps")
    for col in ("function", "optimizer", "lr", "final f", "distance to a minimum"):
        table.add_column(col, justify="left" if col in ("function", "optimizer") else "right")
    for fn_name, (_, found) in results.items():
        fn = FUNCTIONS[fn_name]
        for p in found:
            end = p.points[-1]
            dist = min(((end[0] - mx) ** 2 + (end[1] - my) ** 2) ** 0.5 for mx, my in fn.minima)
            table.add_row(fn_name, p.optimizer, f"{p.lr:.3g} ({p.lr_source})",
                          "diverged" if p.diverged else f"{p.final:.3g}",
                          "-" if p.diverged else f"{dist:.3g}")
    return table
