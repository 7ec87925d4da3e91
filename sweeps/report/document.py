"""`sweeps report`: the comparison as Markdown (summary.md) and one self-contained HTML file.

Both are read from the Optuna storage alone (search studies and the confirm study) and
say only what the data supports: the ranking and the paired tests come from confirm
runs; without them the report says what to run. The HTML file carries plotly.js inline
(no network needed to open it), the figures of `plots` and Optuna's own plots of
every study, and the optimizer-path figures of `sweeps paths` when they exist.
"""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import optuna

from sweeps.report import comparison as cmp
from sweeps.report import plots, tables

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1250px;
color:#222;padding:0 1em}
h1{font-size:1.6em} h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em} th,td{border:1px solid #ccc;padding:.25em .6em}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#555;font-size:.9em} .verdict li{margin:.3em 0} .warn{color:#a15c00}
details{margin:.6em 0} summary{cursor:pointer;font-weight:600} img{max-width:100%}
"""


@dataclass
class Report:
    comparison: cmp.Comparison
    markdown: str
    html: str


def build(studies: Sequence[optuna.Study], confirm: optuna.Study | None, out_dir: Path,
          *, target: float | None = None, top: int | None = None) -> Report:
    c = cmp.build(studies, confirm, target=target, top=top)
    attrs = studies[0].user_attrs
    parts = {
        "context": tables.context(c, attrs),
        "verdict": tables.verdict(c),
        "ranking": tables.ranking_table(c) if c.confirmed else None,
        "confirmed": tables.confirmed_table(c) if c.confirmed else None,
        "reach": tables.reach_table(c),
        "search": tables.search_table(c),
        "boundary": tables.boundary_lines(c),
        "budget": tables.budget_table(c),
        "params": tables.params_table(c),
    }
    return Report(c, _markdown(c, parts), _html(c, parts, studies, out_dir))


def _markdown(c: cmp.Comparison, parts: dict) -> str:
    lines = [f"# Sweep `{c.sweep}`: which optimizer trains this model best", ""]
    lines += parts["context"] + ["", "## Verdict", ""]
    lines += [f"- {s}" if i else s for i, s in enumerate(parts["verdict"])] + [""]
    for key in ("ranking", "confirmed", "reach", "search"):
        if parts[key] is not None:
            lines.append(parts[key].markdown())
    lines += ["## Boundary warnings", ""]
    lines += [f"- {b}" for b in parts["boundary"]] or ["None: no best value lies within 5 % of a "
                                                        "movable edge of its range."]
    lines += ["", parts["budget"].markdown(), parts["params"].markdown()]
    lines.append("Plots (curves with seed bands, gaps, learning rate per step, budget curves, "
                 "Optuna's per-study plots): report.html.")
    return "\n".join(lines) + "\n"


def _paths_images(out_dir: Path) -> list[str]:
    out = []
    for png in sorted((out_dir / "paths").glob("*.png")):
        data = base64.b64encode(png.read_bytes()).decode()
        out.append(f"<figure><img alt='{html.escape(png.stem)}' src='data:image/png;base64,{data}'>"
                   f"<figcaption>{html.escape(png.stem)}</figcaption></figure>")
    return out


def _html(c: cmp.Comparison, parts: dict, studies: Sequence[optuna.Study], out_dir: Path) -> str:
    from plotly.offline import get_plotlyjs

    body = [f"<h1>Sweep <code>{html.escape(c.sweep)}</code>: which optimizer trains this model "
            "best</h1>", *(f"<p class=note>{html.escape(x)}</p>" for x in parts["context"]),
            "<h2>Verdict</h2>", f"<p>{html.escape(parts['verdict'][0])}</p>"]
    if len(parts["verdict"]) > 1:
        body.append("<ul class=verdict>" + "".join(f"<li>{html.escape(s)}</li>"
                                                    for s in parts["verdict"][1:]) + "</ul>")
    for key in ("ranking", "confirmed", "reach"):
        if parts[key] is not None:
            body.append(parts[key].html())
    body += ["<h2>Learning curves and generalization gap</h2>", plots.fig_html(plots.curves_figure(c)),
             plots.fig_html(plots.gap_figure(c)), plots.fig_html(plots.lr_figure(c)),
             "<h2>Search</h2>", parts["search"].html(), "<h3>Boundary warnings</h3>"]
    body += [f"<p class=warn>{html.escape(b)}</p>" for b in parts["boundary"]] or [
        "<p class=note>None: no best value lies within 5 % of a movable edge of its range.</p>"]
    body += [plots.fig_html(plots.trials_figure(c, studies)),
             "<h2>Tuning budget</h2>", plots.fig_html(plots.budget_figure(c)), parts["budget"].html(),
             parts["params"].html(), "<h2>Optuna's plots, per study</h2>"]
    for study, section in zip(studies, plots.optuna_sections(studies), strict=True):
        body.append(f"<details><summary>{html.escape(study.study_name)}</summary>")
        body += [text if is_html else f"<p class=note>{html.escape(title)}: {html.escape(text)}</p>"
                 for title, text, is_html in section]
        body.append("</details>")
    images = _paths_images(out_dir)
    if images:
        body += ["<h2>Optimizer paths on 2-D test functions</h2>", *images]
    body.append(f"<p class=note>Generated {time.strftime('%Y-%m-%d %H:%M:%S')} by sweeps report.</p>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'>"
            f"<title>Sweep {html.escape(c.sweep)}</title><style>{STYLE}</style>"
            f"<script type='text/javascript'>{get_plotlyjs()}</script></head><body>"
            + "\n".join(body) + "</body></html>")


def write_report(studies: Sequence[optuna.Study], confirm: optuna.Study | None,
                 out_dir: str | Path, *, target: float | None = None,
                 top: int | None = None) -> tuple[Report, list[Path]]:
    """Write report.html and summary.md into `out_dir`; returns the report and the files."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = build(studies, confirm, out, target=target, top=top)
    html_path, md_path = out / "report.html", out / "summary.md"
    html_path.write_text(report.html)
    md_path.write_text(no_tags(report.markdown))
    return report, [html_path, md_path]


def no_tags(markdown: str) -> str:
    """Markdown without HTML: a `<` that would open a tag (in a name, a parameter, a user's
    error message) is written `&lt;`, so a viewer that renders HTML in Markdown (MLflow's,
    GitHub's) shows it as text instead of running it."""
    import re

    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", markdown)
