"""The Optuna peer of `benchmarks/load.py`: one process of `study.optimize` on a shared study.

    LOAD_TRIAL_S=10 LOAD_LOG=times.jsonl LOAD_GATE=dir \
        python benchmarks/_load_peer.py STORAGE_URL STUDY N_TRIALS MLFLOW_URI SEED

What a user builds with Optuna alone to spread a sweep over N processes: each runs
`study.optimize(objective)` on the same PostgreSQL study (RDBStorage with heartbeats, as
this tool's workers use), `MaxTrialsCallback` for the budget and optuna-integration's
`MLflowCallback` for tracking (one run per trial with its parameters and final value,
nested under nothing: that callback's whole record). The objective is the same synthetic
trainer as the tool's load worker: it sleeps LOAD_TRIAL_S seconds over the same epochs and
reports each epoch's value (`trial.report`, as a user would for pruning). The search space
is the quick sweep's `adam` study (TPE, the same start-up trials). Each trial's ask and run
times go to LOAD_LOG, as the tool's workers write them.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

EPOCHS = 3  # the load sweep's trainer.epochs
STEPS_PER_EPOCH = 20


def main() -> None:
    import optuna
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState
    from optuna_integration.mlflow import MLflowCallback

    url, name, n_trials, uri, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    length = float(os.environ["LOAD_TRIAL_S"])
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=5, grace_period=20)
    study = optuna.load_study(study_name=name, storage=storage,
                              sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=2))
    tracking = MLflowCallback(tracking_uri=uri, metric_name="val/acc", create_experiment=True)
    last_end = [0.0]

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
        trial.suggest_float("one_minus_beta1", 0.01, 0.5, log=True)
        trial.suggest_float("one_minus_beta2", 1e-4, 0.1, log=True)
        trial.suggest_float("eps", 1e-10, 1e-6, log=True)
        trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True)
        trial.suggest_categorical("batch_size", [64, 128, 256])
        trial.suggest_categorical("schedule", ["constant", "step", "cosine", "onecycle"])
        run = time.time()
        with open(os.environ["LOAD_LOG"], "a") as f:
            f.write(json.dumps({"pid": os.getpid(), "ask": last_end[0], "run": run}) + "\n")
        quality = max(0.1, 0.98 - 0.05 * math.log10(lr / 3e-3) ** 2)
        value = 0.0
        for epoch in range(1, EPOCHS + 1):
            for _ in range(STEPS_PER_EPOCH):
                time.sleep(length / EPOCHS / STEPS_PER_EPOCH)
            value = quality * (0.85 + 0.15 * epoch / EPOCHS)
            trial.report(value, epoch)
        return value

    def ended(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        last_end[0] = time.time()

    gate = os.environ.get("LOAD_GATE")
    if gate:
        (Path(gate) / str(os.getpid())).touch()
        while not (Path(gate) / "go").exists():
            time.sleep(0.05)
    last_end[0] = time.time()
    study.optimize(objective, callbacks=[
        MaxTrialsCallback(n_trials, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)),
        tracking, ended])


if __name__ == "__main__":
    main()
