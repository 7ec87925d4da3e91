"""A real `sweeps worker` whose trainer is synthetic: for `benchmarks/load.py`.

    LOAD_TRIAL_S=10 LOAD_LOG=times.jsonl python benchmarks/_load_worker.py worker --study ...

Everything the worker does around a trial is the real code: claiming under the budget
lock, heartbeats, sampling, attribute writes, the MLflow writer, retries, the tell. Only
the training is replaced: it sleeps for LOAD_TRIAL_S seconds, spread over the configured
epochs, and calls the callbacks as `trainer.loop.fit` does (`on_step` about 10 times an
epoch with `batch/loss` and `batch/lr`, `on_epoch_end` with every epoch metric), so the
writes to MLflow and Optuna are those of a real trial. No torch is imported: 64 of these
processes must fit in the memory of one machine. Each claim's ask and run times are
appended to LOAD_LOG (one JSON line per trial); with LOAD_PARTS, the time of each round
trip around the trials (`_load_parts`). With LOAD_GATE (a directory), a worker
touches a file there once started and waits for ``go`` before its first claim.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

STEPS_PER_EPOCH = 20
LOG_EVERY = 2  # batch/* points every 2 steps: 10 an epoch, as trainer.log_every=auto logs

_asked: list[float] = []


def _record(run_at: float) -> None:
    asked = _asked.pop() if _asked else run_at
    with open(os.environ["LOAD_LOG"], "a") as f:
        f.write(json.dumps({"pid": os.getpid(), "ask": asked, "run": run_at}) + "\n")


def synthetic_fit(cfg: Mapping[str, Any], callbacks: Sequence[Any] = (),
                  output_dir: str | Path | None = None) -> Any:
    """Sleep for the trial's length; report a plausible learning curve on the way."""
    from trainer.callbacks import CallbackList, RunInfo
    from trainer.result import FitResult
    from trainer.tasks import task_of

    _record(time.time())
    length = float(os.environ["LOAD_TRIAL_S"])
    epochs = int(cfg["trainer"]["epochs"])
    lr = float(cfg["optimizer"]["lr"])
    quality = max(0.1, 0.98 - 0.05 * math.log10(max(lr, 1e-12) / 3e-3) ** 2)
    out = Path(output_dir or "outputs/run")
    run = RunInfo(cfg, out, "cpu", None, None, STEPS_PER_EPOCH)  # type: ignore[arg-type]
    cbs = CallbackList(list(callbacks))
    cbs.on_fit_start(run)
    history: list[dict[str, float]] = []
    steps: list[dict[str, float]] = []
    rng = random.Random(hash(json.dumps(cfg.get("optimizer", {}), sort_keys=True, default=str)))
    started = time.perf_counter()
    status, reason = "completed", None
    for epoch in range(1, epochs + 1):
        run.epoch = epoch
        cbs.on_epoch_start(run, epoch)
        for s in range(STEPS_PER_EPOCH):
            run.global_step += 1
            time.sleep(length / epochs / STEPS_PER_EPOCH)
            if s % LOG_EVERY == 0:
                point = {"batch/loss": 2.3 * math.exp(-run.global_step / 40) + rng.uniform(0, .05),
                         "batch/lr": lr}
                steps.append({"step": run.global_step, "epoch": epoch, **point})
                cbs.on_step(run, run.global_step, point)
        va = quality * (0.85 + 0.15 * epoch / epochs)
        ta = min(1.0, va + 0.02)
        metrics = {"epoch": epoch, "train/loss": 1 - ta, "train/acc": ta, "val/loss": 1 - va,
                   "val/acc": va, "gap/acc": ta - va, "gap/loss": ta - va, "lr": lr,
                   "time/epoch_s": length / epochs, "time/samples_per_s": 1000.0}
        history.append(metrics)
        run.history = history
        cbs.on_epoch_end(run, epoch, metrics)
        if run.stop_requested:
            status, reason = "stopped", run.stop_reason
            break
    task = task_of(cfg)
    best = max(h["val/acc"] for h in history)
    final = {task.best_key: best, "best/epoch": float(len(history)),
             "data/train_size": 4000.0, "data/val_size": 1000.0}
    result = FitResult(status, reason, history, steps, final, str(out), "cpu",
                       time.perf_counter() - started, None, dict(cfg))
    if os.environ.get("LOAD_PARTS"):
        import _load_parts

        _load_parts.add("trial: training (sleeps, callbacks)", time.perf_counter() - started)
    cbs.on_fit_end(run, result)
    return result


def install() -> None:
    """Put the synthetic trainer where the worker looks for `trainer.loop`."""
    loop = types.ModuleType("trainer.loop")
    loop.fit = synthetic_fit  # type: ignore[attr-defined]
    loop.resolve_device = lambda device: "cpu"  # type: ignore[attr-defined]
    sys.modules["trainer.loop"] = loop

    from sweeps.run import claims, warmup

    warmup.warm = lambda spec: None  # no dataset to load, no torch._dynamo to import
    next_job = claims.Claims.next_job

    def timed(self: Any) -> Any:
        asked = time.time()
        job = next_job(self)
        if job is not None:
            _asked.append(asked)
        return job

    claims.Claims.next_job = timed  # type: ignore[method-assign]

    from sweeps.run.worker import Worker

    warm_up = Worker.warm_up

    def then_wait(self: Any, warmed: bool = False) -> None:
        """After the start-up, wait for the other workers (LOAD_GATE): a cluster that is up."""
        warm_up(self, warmed)
        gate = os.environ.get("LOAD_GATE")
        if gate:
            (Path(gate) / str(os.getpid())).touch()
            while not (Path(gate) / "go").exists():
                time.sleep(0.05)

    Worker.warm_up = then_wait  # type: ignore[method-assign]
    if os.environ.get("LOAD_PARTS"):  # each round trip timed (`_load_parts`)
        import _load_parts

        _load_parts.install()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    install()
    from sweeps.cli import main

    sys.argv = ["sweeps", *sys.argv[1:]]
    if os.environ.get("LOAD_PROFILE"):  # a cProfile of this worker, written at its exit
        import atexit
        import cProfile

        profile = cProfile.Profile()
        atexit.register(lambda: profile.dump_stats(f"{os.environ['LOAD_PROFILE']}.{os.getpid()}"))
        profile.enable()
    main()
