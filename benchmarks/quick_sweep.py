"""The getting-started walk-through as a new user runs it, timed: `sweeps launch sweep=quick`,
`sweeps confirm`, `sweeps report` in a new directory.

Besides its timing table (benchmarks/results/quick_sweep.md) it keeps what the commands
printed, which the docs show as the example output: the launch's closing table
(`quick_sweep/launch.txt`) and the report's summary (`quick_sweep/summary.md`; its verdict
and ranking alone in `quick_sweep/verdict.md`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import RESULTS


def run(cwd: Path, *args: str) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI", "SWEEPS_CONFIG_DIR")}
    env["COLUMNS"] = "120"
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sweeps", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"sweeps {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return time.perf_counter() - start, proc.stdout


def closing_table(out: str) -> str:
    """The launch's last screen: from the best-trial table's title to the end."""
    lines = out.rstrip().splitlines()
    start = max(i for i, line in enumerate(lines) if "best search trial per optimizer" in line)
    return "\n".join(lines[start:]) + "\n"


def verdict(summary: str) -> str:
    """The summary's verdict and ranking, its headings as bold lines (for a page's body)."""
    part = summary[summary.index("## Verdict"):summary.index("### Confirmed configurations")]
    lines = [f"**{line.lstrip('#').strip()}**" if line.startswith("#") else line
             for line in part.rstrip().splitlines()]
    out: list[str] = []
    for line in lines:  # Markdown needs a blank line before a list or a table
        if line.startswith(("- ", "|")) and out and out[-1] and not out[-1].startswith(("- ", "|")):
            out.append("")
        out.append(line)
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        launch_s, launch_out = run(cwd, "launch", "sweep=quick")
        confirm_s, _ = run(cwd, "confirm")
        report_s, _ = run(cwd, "report")
        summary = (cwd / "reports" / "quick" / "summary.md").read_text()
    out = RESULTS / "quick_sweep"
    out.mkdir(parents=True, exist_ok=True)
    (out / "launch.txt").write_text(closing_table(launch_out))
    (out / "summary.md").write_text(summary)
    (out / "verdict.md").write_text(verdict(summary))
    print(f"{os.cpu_count()} cores; the quick sweep as the getting-started page runs it")
    print(f"{'command':<28} {'wall s':>7}")
    for name, seconds in (("sweeps launch sweep=quick", launch_s), ("sweeps confirm", confirm_s),
                          ("sweeps report", report_s)):
        print(f"{name:<28} {seconds:>7.1f}")


if __name__ == "__main__":
    from _results import record

    record(main)
