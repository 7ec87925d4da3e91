"""Each benchmark's latest result, as a file the docs' performance page includes.

`record(main)` runs a benchmark's `main()` while its output still goes to the terminal, then
writes `benchmarks/results/NAME.md`: the command, the machine, the date, the commit (with
`+ local changes` when the tree differs from it) and the output as printed. NAME is the
script's name plus its arguments, so `sweep_overhead.py --threads 1` keeps a file of its own.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# tests point this elsewhere, so that a benchmark they run leaves the shipped files alone
RESULTS = Path(os.environ.get("SWEEPS_BENCH_RESULTS") or ROOT / "benchmarks" / "results")


class _Tee(io.TextIOBase):
    def __init__(self, *streams: io.TextIOBase) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
            stream.flush()
        return len(text)


def result_name(argv: list[str]) -> str:
    """`sweep_overhead.py --threads 1` -> `sweep_overhead--threads-1`."""
    stem = Path(argv[0]).stem
    args = re.sub(r"[^A-Za-z0-9.,=_-]+", "-", "-".join(argv[1:])).strip("-")
    return f"{stem}--{args}" if args else stem


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> str:
    """Cores, CPU model, GPU and the library versions the figures depend on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    parts = [f"{os.cpu_count()} cores ({cpu})", f"Python {platform.python_version()}"]
    try:
        import torch

        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
        parts += [f"torch {torch.__version__}", gpu]
    except ImportError:
        pass
    return ", ".join(parts)


def header(argv: list[str]) -> str:
    commit = _git("rev-parse", "--short", "HEAD") or "unknown"
    if _git("status", "--porcelain", "--untracked-files=no"):
        commit += " + local changes"
    command = "python " + " ".join(["benchmarks/" + Path(argv[0]).name, *argv[1:]])
    return (f"- command: `{command}`\n- machine: {machine()}\n"
            f"- date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}\n"
            f"- commit: {commit}\n")


def record(main: Callable[[], None], argv: list[str] | None = None) -> None:
    """Run `main`, printing as usual, then write its result file (not when it fails)."""
    argv = list(sys.argv if argv is None else argv)
    captured = io.StringIO()
    with redirect_stdout(_Tee(sys.stdout, captured)):  # type: ignore[type-var]
        main()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{result_name(argv)}.md"
    path.write_text(header(argv) + "\n```\n" + captured.getvalue().rstrip() + "\n```\n")
    print(f"result written to {path}")
