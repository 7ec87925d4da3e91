"""`sweeps confirm` with 2 workers vs the same re-runs with `python -m trainer`, one after another.

A small CNN sweep is launched first (not timed); then, in one run of this script:

* `sweeps confirm --seeds K --workers 2` (one torch thread per worker), wall time of the
  whole command, start-up, tracking and storage writes included;
* the same re-runs (same configs, same seeds) as `python -m trainer OVERRIDES` processes one
  after another, each with the trainer's default threads (all cores): what a user would
  otherwise type, with the overrides `sweeps best` prints;

and prints the ratio (target >= 1.7x on 2 cores for CNN-sized runs). Then it times
`sweeps report` on the same sweep.

    python benchmarks/confirm_speed.py [--seeds 3] [--epochs 2] [--model cnn]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import launch

from sweeps.search import confirm_jobs
from sweeps.store.storages import open_storage
from trainer.config.compose import overrides_for


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}


def _timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--model", default="cnn")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cwd = Path(tmp)
        launch(cwd, "sweep.optimizers=[sgd,adam]", "sweep.n_trials=4", f"trainer.epochs={args.epochs}",
               "sweep.pruner.name=none", f"model={args.model}",
               *([] if args.model == "mlp" else ["~model.width"]))
        parallel = _timed([sys.executable, "-m", "sweeps", "confirm", "quick", "--seeds",
                           str(args.seeds), "--workers", "2"], cwd)
        confirm = confirm_jobs.load(open_storage(str(cwd / "sweeps.journal")), "quick")
        assert confirm is not None
        configs = [t.user_attrs["config"] for t in confirm.get_trials(deepcopy=False)
                   if t.state.name == "COMPLETE"]
        sequential = 0.0
        for i, cfg in enumerate(configs):
            overrides = [o for o in overrides_for(cfg) if not o.startswith("trainer.threads=")]
            sequential += _timed([sys.executable, "-m", "trainer", *overrides,
                                  f"trainer.output_dir={cwd / 'seq' / str(i)}"], cwd)
        report = _timed([sys.executable, "-m", "sweeps", "report", "quick"], cwd)
    n = len(configs)
    print(f"{os.cpu_count()} cores, {n} confirm re-runs ({args.model}, {args.epochs} epochs, "
          f"{args.seeds} seeds x 2 optimizers)")
    print(f"{'how':<40} {'wall s':>7}")
    print(f"{'python -m trainer, one after another':<40} {sequential:>7.1f}")
    print(f"{'sweeps confirm --workers 2':<40} {parallel:>7.1f}")
    print(f"speed-up of sweeps confirm: {sequential / parallel:.2f}x (target >= 1.7x)")
    print(f"sweeps report on this sweep: {report:.1f} s")


if __name__ == "__main__":
    from _results import record

    record(main)
