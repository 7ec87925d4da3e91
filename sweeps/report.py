"""`sweeps report`: an HTML report (plotly) and a Markdown summary of a sweep.

Per optimizer: the objective of every finished trial, and the learning curves and
generalization gap of its best trial, read from the Optuna storage alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import optuna
from optuna.trial import TrialState

from sweeps import summary


def _markdown(studies: Sequence[optuna.Study], sweep: str) -> str:
    lines = [f"# Sweep `{sweep}`", "", "| study | optimizer | complete | pruned | failed | diverged "
             "| best val/acc | trial |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in summary.study_rows(studies):
        best = summary.fmt(r.best.value if r.best else None)
        lines.append(f"| {r.study} | {r.optimizer} | {r.counts['complete']} | {r.counts['pruned']} "
                     f"| {r.counts['failed']} | {r.counts['diverged']} | {best} "
                     f"| {'-' if r.best is None else '#' + str(r.best.number)} |")
    lines += ["", "## Best trial per optimizer", "",
              "| optimizer | val/acc | test/acc | final gap/acc | params |", "|---|---:|---:|---:|---|"]
    for opt, (_, t) in sorted(summary.best_per_optimizer(studies).items(),
                              key=lambda kv: -(kv[1][1].value or 0)):
        final = t.user_attrs.get("final", {})
        gap = (t.user_attrs.get("curves", {}).get("gap/acc") or [None])[-1]
        params = ", ".join(f"{k}={summary.fmt(v, 4) if isinstance(v, float) else v}"
                           for k, v in t.params.items())
        lines.append(f"| {opt} | {summary.fmt(t.value)} | {summary.fmt(final.get('test/acc'))} "
                     f"| {summary.fmt(gap)} | {params} |")
    return "\n".join(lines) + "\n"


def write_report(studies: Sequence[optuna.Study], sweep: str, out_dir: str | Path) -> list[Path]:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig = make_subplots(rows=2, cols=2, subplot_titles=(
        "objective (val/acc) of every finished trial", "best trial: val/acc per epoch",
        "best trial: train/loss per epoch", "best trial: generalization gap (train - val acc)"))
    for study in studies:
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)):
            curves = t.user_attrs.get("curves", {})
            value = t.value if t.value is not None else max(
                [v for v in curves.get("val/acc", []) if v is not None] or [float("nan")])
            fig.add_trace(go.Scatter(
                x=[str(t.user_attrs.get("optimizer", study.study_name))], y=[value], mode="markers",
                marker={"symbol": "circle" if t.state == TrialState.COMPLETE else "x"},
                name=f"{study.study_name} #{t.number}", showlegend=False), row=1, col=1)
    for opt, (_, t) in summary.best_per_optimizer(studies).items():
        curves = t.user_attrs.get("curves", {})
        epochs = list(range(1, len(curves.get("val/acc", [])) + 1))
        for key, (row, col) in (("val/acc", (1, 2)), ("train/loss", (2, 1)), ("gap/acc", (2, 2))):
            fig.add_trace(go.Scatter(x=epochs, y=curves.get(key, []), mode="lines+markers",
                                     name=opt, legendgroup=opt, showlegend=key == "val/acc"),
                          row=row, col=col)
    fig.update_layout(title=f"Sweep {sweep}", height=850)
    html = out / "report.html"
    fig.write_html(str(html), include_plotlyjs=True)
    md = out / "summary.md"
    md.write_text(_markdown(studies, sweep))
    return [html, md]
