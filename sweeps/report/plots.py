"""The report's figures (plotly), and Optuna's own per-study plots.

Learning curves and gaps of each optimizer's configuration are drawn as the mean over
its confirm runs with a ±1 std band; without confirm runs, the single search trial's
curve, dashed and labelled "1 seed". Optuna's optimization history, parameter
importances, parallel coordinates and slice plots come from `optuna.visualization`,
not redrawn here.
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial, TrialState
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from sweeps.report import comparison as cmp
from sweeps.report.forking import parallel_map
from sweeps.search import confirm_jobs
from sweeps.store.quiet import quietly

log = logging.getLogger("sweeps")
COLORS = qualitative.Plotly + qualitative.D3


def _color(i: int, alpha: float = 1.0) -> str:
    hex_color = COLORS[i % len(COLORS)].lstrip("#")
    r, g, b = (int(hex_color[k:k + 2], 16) for k in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _runs(row: cmp.OptimizerRow) -> tuple[list[FrozenTrial], bool]:
    """The runs drawn for an optimizer: its confirm runs, else its best search trial."""
    rep = row.representative
    if rep is not None:
        return [r for r in rep.runs if r.state == TrialState.COMPLETE], True
    return ([row.search_best] if row.search_best is not None else []), False


def _stack(runs: Sequence[FrozenTrial], key: str) -> np.ndarray:
    curves = [[math.nan if v is None else v for v in (r.user_attrs.get("curves") or {}).get(key) or []]
              for r in runs]
    width = max((len(c) for c in curves), default=0)
    return np.array([c + [math.nan] * (width - len(c)) for c in curves], dtype=float)


def _band(fig: go.Figure, x: list[int], data: np.ndarray, name: str, i: int, row: int, col: int,
          confirmed: bool, legend: bool) -> None:
    if data.size == 0:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        mean = np.nanmean(data, axis=0)
        std = np.nanstd(data, axis=0, ddof=1) if data.shape[0] > 1 else np.zeros_like(mean)
    label = name if confirmed else f"{name} (1 seed)"
    if confirmed and data.shape[0] > 1:
        fig.add_trace(go.Scatter(x=x + x[::-1], y=list(mean + std) + list((mean - std)[::-1]),
                                 fill="toself", fillcolor=_color(i, 0.18), line={"width": 0}, mode="lines",
                                 hoverinfo="skip", showlegend=False, legendgroup=name),
                      row=row, col=col)
    fig.add_trace(go.Scatter(x=x, y=mean, mode="lines+markers", name=label, legendgroup=name,
                             showlegend=legend,
                             line={"color": _color(i), "dash": "solid" if confirmed else "dash"}),
                  row=row, col=col)


def curves_figure(c: cmp.Comparison) -> go.Figure:
    """Train/val loss (log scale) and accuracy per epoch, mean ± std over seeds, overlaid
    (a regression sweep: the losses only)."""
    panels: tuple[tuple[str, int, int], ...] = (("train/loss", 1, 1), ("val/loss", 1, 2))
    if c.task.has_accuracy:
        panels += (("train/acc", 2, 1), ("val/acc", 2, 2))
    rows = 2 if c.task.has_accuracy else 1
    fig = make_subplots(rows=rows, cols=2, subplot_titles=[p[0] for p in panels],
                        horizontal_spacing=0.08, vertical_spacing=0.12)
    for i, row in enumerate(c.rows):
        runs, confirmed = _runs(row)
        for j, (key, r, col) in enumerate(panels):
            data = _stack(runs, key)
            _band(fig, list(range(1, data.shape[1] + 1)) if data.size else [], data, row.optimizer,
                  i, r, col, confirmed, legend=j == 0)
    fig.update_yaxes(type="log", row=1)
    fig.update_xaxes(title_text="epoch", row=rows)
    fig.update_layout(height=360 * rows, title="Learning curves of each optimizer's configuration "
                                        "(mean ± std over confirm seeds)")
    return fig


def gap_figure(c: cmp.Comparison) -> go.Figure:
    keys = ("gap/acc", "gap/loss") if c.task.has_accuracy else ("gap/loss",)
    titles = {"gap/acc": "gap/acc = train acc - val acc", "gap/loss": "gap/loss = val loss - train loss"}
    fig = make_subplots(rows=1, cols=len(keys), subplot_titles=[titles[k] for k in keys])
    for i, row in enumerate(c.rows):
        runs, confirmed = _runs(row)
        for j, key in enumerate(keys):
            data = _stack(runs, key)
            _band(fig, list(range(1, data.shape[1] + 1)) if data.size else [], data, row.optimizer,
                  i, 1, j + 1, confirmed, legend=j == 0)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(height=420, title="Generalization gap per epoch")
    return fig


def lr_figure(c: cmp.Comparison) -> go.Figure:
    """The learning rate each logged step applied, with Adam->SGD's switch marked."""
    fig = go.Figure()
    for i, row in enumerate(c.rows):
        runs, confirmed = _runs(row)
        if not runs:
            continue
        run = runs[0]
        lrs = run.user_attrs.get("step_lrs") or {}
        steps, values = lrs.get("step") or [], lrs.get("lr") or []
        seed = run.user_attrs.get("seed")
        label = f"{row.optimizer}" + (f" (seed {seed})" if confirmed and seed is not None else "")
        fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", name=label,
                                 line={"color": _color(i)}))
        switch = (run.user_attrs.get("final") or {}).get("switch/step")
        if switch is not None and steps:
            k = int(np.searchsorted(np.asarray(steps), switch))
            y = values[min(k, len(values) - 1)]
            fig.add_trace(go.Scatter(x=[switch], y=[y], mode="markers+text", text=["switch"],
                                     textposition="top center", name=f"{row.optimizer} switch",
                                     marker={"symbol": "star", "size": 14, "color": _color(i)}))
    fig.update_yaxes(type="log", title_text="learning rate applied")
    fig.update_xaxes(title_text="optimizer step")
    fig.update_layout(height=420, title="Learning rate applied per step (Adam->SGD: the SGD rate "
                                        "after the switch, which is marked)")
    return fig


def budget_figure(c: cmp.Comparison) -> go.Figure:
    fig = go.Figure()
    for i, (opt, curve) in enumerate(c.budget.items()):
        x = [p.n for p in curve]
        mean = np.array([p.expected for p in curve])
        std = np.array([p.std for p in curve])
        fig.add_trace(go.Scatter(x=x + x[::-1], y=list(mean + std) + list((mean - std)[::-1]),
                                 fill="toself", fillcolor=_color(i, 0.15), line={"width": 0}, mode="lines",
                                 hoverinfo="skip", showlegend=False, legendgroup=opt))
        fig.add_trace(go.Scatter(x=x, y=mean, mode="lines+markers", name=opt, legendgroup=opt,
                                 line={"color": _color(i)}))
    fig.update_xaxes(title_text="trials (n)", type="log")
    metric = "accuracy" if c.task.has_accuracy else "loss"
    fig.update_yaxes(title_text=f"expected best val {c.task.metric}")
    fig.update_layout(height=460, title=f"Tuning budget: expected best validation {metric} after n "
                                        "trials (Dodge et al. 2019), ±1 std")
    return fig


def trials_figure(c: cmp.Comparison, studies: Sequence[optuna.Study]) -> go.Figure:
    """The objective of every finished search trial, per optimizer (x: pruned); one trace per
    optimizer and state, so that 10,000 trials draw as fast as 10."""
    fig = go.Figure()
    names = [r.optimizer for r in c.rows]
    best = max if c.task.maximize else min
    points: dict[tuple[str, bool], tuple[list[float], list[str]]] = {}
    for study in studies:
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            opt = confirm_jobs.optimizer_of(study, t)
            seen = [v for v in (t.user_attrs.get("curves") or {}).get(c.task.val_key) or [] if v is not None]
            value = t.value if t.value is not None else (best(seen) if seen else None)
            if value is None or opt not in names:
                continue
            ys, labels = points.setdefault((opt, t.state == TrialState.COMPLETE), ([], []))
            ys.append(value)
            labels.append(f"{opt} #{t.number}")
    for (opt, complete), (ys, labels) in points.items():
        fig.add_trace(go.Scatter(
            x=[opt] * len(ys), y=ys, mode="markers", showlegend=False, text=labels,
            hovertemplate="%{text}: %{y}<extra></extra>",
            marker={"color": _color(names.index(opt)), "size": 9,
                    "symbol": "circle" if complete else "x"}))
    fig.update_yaxes(title_text=f"val {c.task.metric} (best epoch)")
    fig.update_layout(height=420, title="Every finished search trial (x: pruned, its best epoch so far)")
    return fig


PLOT_TRIALS, PLOT_BEST = 1000, 100  # Optuna's plots of larger studies: a sample of this size


def plotted(trials: Sequence[FrozenTrial], direction: optuna.study.StudyDirection) -> list[FrozenTrial]:
    """The trials Optuna's plots draw: all of them up to PLOT_TRIALS; beyond, the PLOT_BEST
    best and the rest evenly spaced in trial order (the plots copy every trial several
    times: ~6 s per plot for 10,000 trials, and 10,000 lines are no longer readable)."""
    if len(trials) <= PLOT_TRIALS:
        return list(trials)
    scored = [t for t in trials if t.value is not None]
    maximize = direction == optuna.study.StudyDirection.MAXIMIZE
    scored.sort(key=lambda t: float(t.value or 0.0), reverse=maximize)
    keep = {t.number for t in scored[:PLOT_BEST]}
    rest = [t for t in trials if t.number not in keep]
    step = len(rest) / (PLOT_TRIALS - len(keep))
    keep |= {rest[int(i * step)].number for i in range(PLOT_TRIALS - len(keep))}
    return [t for t in trials if t.number in keep]


OPTUNA_PLOTS: dict[str, Callable[[optuna.Study], go.Figure]] = {
    "optimization history": optuna.visualization.plot_optimization_history,
    "parameter importances": optuna.visualization.plot_param_importances,
    "parallel coordinates": optuna.visualization.plot_parallel_coordinate,
    "slice": optuna.visualization.plot_slice,
}


@dataclass(frozen=True)
class StudyData:
    """What Optuna's plots read of a study (params, values, distributions), without the user
    attributes (configs, curves): the plots deep-copy every trial, several times over."""

    name: str
    directions: list[optuna.study.StudyDirection]
    metric_names: list[str] | None
    trials: list[FrozenTrial]

    finished: int = 0  # trials the study has finished; `trials` may be a sample of them

    @classmethod
    def of(cls, study: optuna.Study) -> StudyData:
        done = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
        return cls(study.study_name, list(study.directions), study.metric_names, [
            optuna.trial.create_trial(state=t.state, value=t.value, params=t.params,
                                      distributions=t.distributions)
            for t in plotted(done, study.direction)], len(done))

    @property
    def sampled(self) -> str:
        """How the plotted trials were chosen, where they are not all of them."""
        if len(self.trials) >= self.finished:
            return ""
        return (f" ({len(self.trials):,} of {self.finished:,} trials: the {PLOT_BEST} best, "
                "the others evenly spaced in trial order)")

    def study(self) -> optuna.Study:
        light = optuna.create_study(study_name=self.name, directions=self.directions)
        light.add_trials(self.trials)
        if self.metric_names:
            quietly(light.set_metric_names, self.metric_names)  # "experimental" since Optuna 3.2
        return light


def optuna_figures(study: optuna.Study | StudyData) -> list[tuple[str, go.Figure | str]]:
    """Optuna's own plots of one study; a plot Optuna cannot draw yet becomes its reason."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    data = study if isinstance(study, StudyData) else StudyData.of(study)
    light = data.study()
    complete = light.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    out: list[tuple[str, go.Figure | str]] = []
    for title, plot in OPTUNA_PLOTS.items():
        needed = 2 if title == "parameter importances" else 1
        if len(complete) < needed:
            out.append((title, f"needs at least {needed} completed trials; this study has "
                               f"{len(complete)}"))
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fig = plot(light)
            fig.update_layout(height=420, title=f"{light.study_name}: {title}{data.sampled}")
            out.append((title, fig))
        except Exception as err:  # a degenerate study (one param value, ...) must not stop the report
            log.info("optuna %s of %s: %s", title, light.study_name, err)
            out.append((title, f"Optuna cannot draw it for this study ({str(err).splitlines()[0]})"))
    return out


def _optuna_html(data: StudyData) -> list[tuple[str, str, bool]]:
    """(title, HTML or the reason there is none, is HTML) for each of Optuna's plots."""
    return [(title, fig, False) if isinstance(fig, str) else (title, fig_html(fig), True)
            for title, fig in optuna_figures(data)]


def optuna_sections(studies: Sequence[optuna.Study]) -> list[list[tuple[str, str, bool]]]:
    """Optuna's plots of every study, drawn in parallel processes where the OS can fork (the
    plots take most of a report's time: ~0.7 s per study)."""
    data = [StudyData.of(s) for s in studies]
    return parallel_map(_optuna_html, data, os.cpu_count() or 1)


def fig_html(fig: Any) -> str:
    return str(fig.to_html(full_html=False, include_plotlyjs=False, config={"displaylogo": False}))
