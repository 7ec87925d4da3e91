"""`sweeps report` on a finished 160-trial sweep with its confirm runs (target: under 10 s).

Launches the quick sweep with a 160-trial budget (8 optimizers x 20 trials, 2 workers)
and `sweeps confirm` (5 seeds), then times `sweeps report` as a user runs it: the whole
command, start-up, Optuna's plots, the HTML file and the upload to the MLflow parent run.

    python benchmarks/report_speed.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import launch, trials


def _run(cwd: Path, *args: str) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sweeps", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"sweeps {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        launch(cwd, "sweep=quick", "sweep.n_trials=160", "sweep.workers=2")
        _run(cwd, "confirm", "quick", "--seeds", "5")
        n = len(trials(cwd))
        times = [_run(cwd, "report", "quick") for _ in range(args.repeats)]
    print(f"{os.cpu_count()} cores; quick sweep with {n} trials and 5 confirm seeds per optimizer")
    print(f"sweeps report: median {statistics.median(times):.1f} s over {len(times)} runs "
          f"({', '.join(f'{t:.1f}' for t in times)}) (target < 10 s)")


if __name__ == "__main__":
    from _results import record

    record(main)
