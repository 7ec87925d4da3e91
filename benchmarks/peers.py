"""The same sweep through this tool and the peers a user would pick instead, side by side.

One sweep definition, run by each tool in turn in one run of this script:

- the search space of the quick sweep's `adam` and `momentum` studies (its batch size held
  at 128: the one dimension that changes a trial's cost ten-fold, so that the peers' own
  TPE paths measure the tool, not the sampler), with TPE (2 random start-up trials, seed
  `--seed`), `--trials` trials split equally between the two optimizers, no pruning;
- the same trial function: this project's trainer `fit` on a config resolved from the
  sampled values (`sweeps.search.trial_configs`), on mnist_5k (the MLP of the quick sweep
  for 3 epochs; `--settings cnn`: the LeNet-style CNN for 2 epochs, longer trials);
- with 1 and 2 workers, torch threads split between them as `sweeps launch` splits them.

Tools:
1. `sweeps launch` on the embedded stores (Optuna journal, MLflow's `mlflow.db`);
2. `optuna.optimize` on a journal file with `optuna_integration.MLflowCallback` (one MLflow
   run per trial with its final value, which is what that callback records), as 1 or 2
   processes sharing the journal;
3. Ray Tune (`Tuner` with `OptunaSearch` and `MLflowLoggerCallback`, a local Ray, 1 or 2
   concurrent trials; every epoch is reported, so its runs have curves);
4. the bare trainer in a loop (1 or 2 processes), the floor.

Each tool runs as its own process from start to exit (start-up counted); with `--repeats`
the order rotates from round to round and the medians are printed. Printed: trials per
hour over the whole command and over the trials span (first trial's start to last trial's
end), the fixed cost per trial over the floor in each ((time - floor's time) x workers /
trials), what each recorded in MLflow (counted in its `mlflow.db`), and our ratio to each
peer.

    pip install -e '.[peers]'     # optuna-integration[mlflow] and ray[tune]; not in the default install
    python benchmarks/peers.py [--trials 48] [--settings mlp,cnn] [--workers 1,2] [--repeats 1]

A peer that is not installed is skipped with a line that says how to install it.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from _common import launch, trials

OPTIMIZERS = ("adam", "momentum")
SETTINGS = {
    "mlp": ["model=mlp", "model.width=128", "trainer.epochs=3"],
    "cnn": ["model=cnn", "~model.width", "trainer.epochs=2"],  # the quick sweep sets the MLP's width
}
TOOLS = ("sweeps", "optuna", "ray", "bare")
SPANS = "spans.log"  # each trial's start and end (epoch seconds), written by the trial function
LABELS = {"sweeps": "sweeps launch", "optuna": "optuna + MLflowCallback",
          "ray": "Ray Tune + MLflowLoggerCallback", "bare": "bare trainer loop (floor)"}
NEEDS = {"optuna": ("optuna_integration", "optuna-integration[mlflow]"), "ray": ("ray.tune", "ray[tune]")}


def sweep_overrides(setting: str, trials: int, seed: int) -> list[str]:
    """The one sweep definition every tool runs (as `sweeps launch` overrides)."""
    return ["sweep=quick", f"sweep.optimizers=[{','.join(OPTIMIZERS)}]", f"sweep.n_trials={trials}",
            "sweep.pruner.name=none", "sweep.sampler.name=tpe", "sweep.sampler.n_startup_trials=2",
            f"sweep.seed={seed}", "search.common.batch_size.choices=[128]", *SETTINGS[setting]]


def threads_for(workers: int) -> int:
    return max(1, (os.cpu_count() or 1) // workers)


# ------------------------------------------------------------------ the trial function
def _trial_function(overrides: list[str], threads: int, out: Path) -> Any:
    """`study -> (sample(trial) -> params, run(params, callbacks) -> val/acc)`, shared by all."""
    from sweeps.search.load import load_sweep
    from sweeps.search.trial_configs import TrialConfigs
    from trainer import fit

    spec = load_sweep(overrides)
    configs = TrialConfigs(spec)
    _warm_up(spec)

    def run(study: str, params: dict[str, Any], callbacks: list[Any], tag: str) -> float:
        start = time.time()
        st = spec.study(study)
        cfg = configs.resolve(st, [*st.base_overrides, *st.space.overrides_for(params, st.base),
                                   f"trainer.threads={threads}"])
        result = fit(cfg, callbacks, output_dir=out / tag)
        with open(out.parent / SPANS, "a") as f:  # one line per trial, from any process
            f.write(f"{start} {time.time()}\n")
        return float(result.final["best/val_acc"])

    def sample(study: str, trial: Any) -> dict[str, Any]:
        st = spec.study(study)
        params, _ = st.space.sample(trial, st.base, st.bases)
        return params

    return spec, sample, run


def _warm_up(spec: Any) -> None:
    """What a sweep worker does before its first trial (load the data, import what the
    first optimizer step imports), so that the trials span of every tool is its trials."""
    import importlib

    from trainer.data.prepare import make_splits
    from trainer.loop import resolve_device

    importlib.import_module("torch._dynamo")
    for st in spec.studies:
        make_splits(st.base["dataset"], resolve_device(st.base["trainer"]["device"]))


class DefineSpace:
    """Ray's OptunaSearch `space`: samples the study's dimensions on the trial it is given.
    A module-level class, since Ray pickles its searcher with plain pickle."""

    def __init__(self, overrides: list[str], study: str) -> None:
        self.overrides, self.study = overrides, study

    def __call__(self, trial: Any) -> None:
        from sweeps.search.load import load_sweep

        st = load_sweep(self.overrides).study(self.study) if not hasattr(self, "_st") else self._st
        self._st = st
        st.space.sample(trial, st.base, st.bases)

    def __getstate__(self) -> dict[str, Any]:
        return {"overrides": self.overrides, "study": self.study}


def _tpe(seed: int) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=2)


def run_optuna(overrides: list[str], workers: int, index: int, cwd: Path, seed: int) -> None:
    """One process of the optuna peer: its share of each study's trials."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage
    from optuna_integration.mlflow import MLflowCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec, sample, run = _trial_function(overrides, threads_for(workers), cwd / "out")
    storage = JournalStorage(JournalFileBackend(str(cwd / "optuna.journal")))
    callback = MLflowCallback(tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}", metric_name="val/acc")
    for st in spec.studies:
        study = optuna.create_study(study_name=st.name, storage=storage, direction="maximize",
                                    sampler=_tpe(seed + 1000 * index), load_if_exists=True)

        def objective(trial: optuna.Trial, name: str = st.name) -> float:
            return run(name, sample(name, trial), [], f"{name}_{trial.number}")

        study.optimize(objective, n_trials=st.budget // workers, callbacks=[callback])


def run_ray(overrides: list[str], workers: int, cwd: Path, seed: int) -> None:
    """The Ray Tune peer: one Tuner per study, `workers` trials at a time, curves reported."""
    import ray
    from ray import tune
    from ray.air.integrations.mlflow import MLflowLoggerCallback
    from ray.tune.search.optuna import OptunaSearch

    from trainer.callbacks import Callback

    spec, _, run = _trial_function(overrides, threads_for(workers), cwd / "out")

    class Report(Callback):
        def on_epoch_end(self, run_info: Any, epoch: int, metrics: Any) -> None:
            tune.report({k: float(v) for k, v in metrics.items()})

    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
    for st in spec.studies:
        def trainable(config: dict[str, Any], name: str = st.name) -> None:
            run(name, dict(config), [Report()], f"{name}_{time.time_ns()}")

        search = OptunaSearch(space=DefineSpace(overrides, st.name), metric="val/acc", mode="max",
                              sampler=_tpe(seed))
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=search, num_samples=st.budget,
                                        max_concurrent_trials=workers),
            run_config=tune.RunConfig(
                name=st.name, storage_path=str(cwd / "ray"), verbose=0,
                callbacks=[MLflowLoggerCallback(tracking_uri=f"sqlite:///{cwd / 'mlflow.db'}",
                                                experiment_name=st.name)]))
        tuner.fit()
    ray.shutdown()


def run_bare(overrides: list[str], workers: int, index: int, cwd: Path, seed: int) -> None:
    """One process of the floor: its share of the trials, sampled at random, nothing recorded."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec, sample, run = _trial_function(overrides, threads_for(workers), cwd / "out")
    for st in spec.studies:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed + index))
        for _ in range(st.budget // workers):
            trial = study.ask()
            run(st.name, sample(st.name, trial), [], f"{st.name}_{trial.number}")


# ------------------------------------------------------------------ timing and counting
def _spawn(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}
    env["RAY_AUTH_MODE"] = env.get("RAY_AUTH_MODE", "disabled")
    return subprocess.Popen([sys.executable, __file__, *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def trials_span(tool: str, cwd: Path) -> float:
    """Seconds from the first trial's start to the last one's end (start-up left out)."""
    if tool == "sweeps":  # its trials, as Optuna recorded them (ask to tell: a little more)
        ts = [t for t in trials(cwd) if t.datetime_complete is not None]
        return (max(t.datetime_complete for t in ts)  # type: ignore[type-var]
                - min(t.datetime_start for t in ts)).total_seconds()  # type: ignore[type-var]
    spans = [tuple(map(float, line.split())) for line in (cwd / SPANS).read_text().splitlines()]
    return max(e for _, e in spans) - min(s for s, _ in spans)


def timed(tool: str, overrides: list[str], workers: int, cwd: Path, seed: int) -> tuple[float, float]:
    """Wall seconds of one tool's whole run, from process start to exit, and of its trials."""
    cwd.mkdir(parents=True, exist_ok=True)
    if tool == "sweeps":
        return launch(cwd, *overrides, f"sweep.workers={workers}"), trials_span(tool, cwd)
    start = time.perf_counter()
    per_process = tool in ("optuna", "bare")
    if tool == "optuna" and workers > 1:  # two processes creating one mlflow.db race on its
        _spawn("_init_mlflow", cwd=cwd).communicate()  # schema migration: create it first
    procs = [_spawn("_run", tool, json.dumps(overrides), str(workers), str(i), str(seed), cwd=cwd)
             for i in range(workers if per_process else 1)]
    outputs = [p.communicate()[0] for p in procs]
    if any(p.returncode for p in procs):
        raise SystemExit(f"{tool} failed in {cwd}:\n" + "\n".join(o[-3000:] for o in outputs))
    return time.perf_counter() - start, trials_span(tool, cwd)


@dataclass
class Recorded:
    runs: int = 0
    params: float = 0.0  # per trial run
    points: float = 0.0  # metric rows per trial run
    curves: bool = False  # per-epoch val/acc points
    nested: bool = False  # trial runs under a parent run


def recorded(cwd: Path) -> Recorded:
    """What a tool wrote to its mlflow.db, counted in the database itself."""
    db = cwd / "mlflow.db"
    if not db.exists():
        return Recorded()
    con = sqlite3.connect(db)
    try:
        parents = {r for (r,) in con.execute(
            "SELECT value FROM tags WHERE key = 'mlflow.parentRunId'")}
        runs = [r for (r,) in con.execute("SELECT run_uuid FROM runs") if r not in parents]

        def per_run(sql: str) -> float:
            counts = dict(con.execute(sql).fetchall())
            return statistics.mean(counts.get(r, 0) for r in runs) if runs else 0.0

        val_points = per_run("SELECT run_uuid, count(*) FROM metrics WHERE key = 'val/acc' GROUP BY run_uuid")
        return Recorded(len(runs), per_run("SELECT run_uuid, count(*) FROM params GROUP BY run_uuid"),
                        per_run("SELECT run_uuid, count(*) FROM metrics GROUP BY run_uuid"),
                        val_points > 1, bool(parents))
    finally:
        con.close()


def available(tool: str) -> str | None:
    """None if the tool can run here, else the line that says why not."""
    if tool not in NEEDS:
        return None
    module, package = NEEDS[tool]
    try:
        __import__(module)
    except ImportError:
        return (f"{LABELS[tool]}: skipped, not installed "
                f"(pip install -e '.[peers]', or pip install '{package}')")
    return None


def versions() -> str:
    names = ("optimizer-sweeps", "optuna", "optuna-integration", "ray", "mlflow", "torch")
    found = []
    for n in names:
        try:
            found.append(f"{n} {metadata.version(n)}")
        except metadata.PackageNotFoundError:
            found.append(f"{n} -")
    return ", ".join(found)


CAPABILITIES = {  # built in, without code of the user's (as documented by each tool)
    "sweeps": ("median/ASHA/Hyperband, per epoch", "yes: from the last checkpoint"),
    "optuna": ("yes, if the objective reports", "no (a killed trial stays RUNNING)"),
    "ray": ("yes (schedulers)", "if the trainable checkpoints"),
    "bare": ("-", "-"),
}


def table(setting: str, trials: int, walls: dict[tuple[str, int], list[tuple[float, float]]],
          seen: dict[tuple[str, int], Recorded], workers: list[int], tools: list[str]) -> list[str]:
    """One block per setting: a row per tool and worker count, then our ratio to each peer."""
    rounds = len(next(iter(walls.values())))
    lines = [f"\n{setting}: {trials} trials, {', '.join(SETTINGS[setting])}, batch 128, median of "
             f"{rounds} round(s)",
             f"{'':<34}{'':>8}{'--- whole command ---':>26}{'--- trials span ---':>26}",
             f"{'tool':<34}{'workers':>8}{'trials/h':>12}{'fixed ms':>14}{'trials/h':>12}{'fixed ms':>14}"
             f"{'runs':>6}{'params':>8}{'points':>8}{'curves':>8}{'nested':>8}"]

    def med(tool: str, w: int, i: int) -> float:
        return statistics.median(x[i] for x in walls[tool, w])

    for w in workers:
        for tool in tools:
            if (tool, w) not in walls:
                continue
            cells = []
            for i in (0, 1):
                fixed = "-"
                if tool != "bare" and ("bare", w) in walls:
                    fixed = f"{(med(tool, w, i) - med('bare', w, i)) * w / trials * 1000:.0f}"
                cells.append(f"{trials / med(tool, w, i) * 3600:>12.0f}{fixed:>14}")
            r = seen[tool, w]
            lines.append(f"{LABELS[tool]:<34}{w:>8}{''.join(cells)}{r.runs:>6}{r.params:>8.0f}"
                         f"{r.points:>8.0f}{'yes' if r.curves else 'no':>8}{'yes' if r.nested else 'no':>8}")
        for peer in ("optuna", "ray"):
            if ("sweeps", w) in walls and (peer, w) in walls:
                whole, span = (med(peer, w, i) / med("sweeps", w, i) for i in (0, 1))
                lines.append(f"  {w} worker(s): sweeps / {LABELS[peer]}, trials per hour: "
                             f"{whole:.2f}x whole command, {span:.2f}x trials span (target >= 1)")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=48, help="trials per tool and setting (even)")
    parser.add_argument("--settings", default="mlp,cnn")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    tools = []
    for tool in args.tools.split(","):
        why = available(tool)
        if why:
            print(why)
        else:
            tools.append(tool)
    print(f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, {sys.platform}; {versions()}")
    out: list[str] = []
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        for setting in args.settings.split(","):
            overrides = sweep_overrides(setting, args.trials, args.seed)
            walls: dict[tuple[str, int], list[tuple[float, float]]] = {}
            seen: dict[tuple[str, int], Recorded] = {}
            for r in range(args.repeats):
                for w in workers:
                    # the order rotates from round to round: this machine's speed drifts by
                    # tens of percent over minutes, and each tool takes its turn first
                    for tool in tools[r % len(tools):] + tools[:r % len(tools)]:
                        cwd = Path(tmp) / f"{setting}_{tool}_w{w}_{r}"
                        walls.setdefault((tool, w), []).append(timed(tool, overrides, w, cwd, args.seed))
                        seen[tool, w] = recorded(cwd)
                        wall, span = walls[tool, w][-1]
                        print(f"  {setting} {tool} x{w}: {wall:.1f} s, trials {span:.1f} s", flush=True)
            block = table(setting, args.trials, walls, seen, workers, tools)
            print("\n".join(block), flush=True)  # each setting's table as soon as it is measured
            out += block
    if len(out) > len(block):
        print("\n".join(out))
    print("\nfixed ms: per trial over the floor, (time - floor's time) x workers / trials; the whole "
          "command counts start-up and exit, the trials span runs from the first trial's start to "
          "the last one's end. runs, params, points: MLflow trial runs and per run its params and "
          "metric rows. curves: per-epoch val/acc in MLflow. nested: trial runs under a parent run.")
    print("built in, without user code: pruning / resuming a killed trial")
    for tool in tools:
        prune, resume = CAPABILITIES[tool]
        print(f"  {LABELS[tool]:<34} {prune:<36} {resume}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_init_mlflow":
        import mlflow

        mlflow.MlflowClient(f"sqlite:///{Path.cwd() / 'mlflow.db'}").search_experiments()
    elif len(sys.argv) > 1 and sys.argv[1] == "_run":
        _, _, tool, overrides, n, index, seed = sys.argv
        cwd, ov, w, i, s = Path.cwd(), json.loads(overrides), int(n), int(index), int(seed)
        if tool == "optuna":
            run_optuna(ov, w, i, cwd, s)
        elif tool == "ray":
            run_ray(ov, w, cwd, s)
        else:
            run_bare(ov, w, i, cwd, s)
    else:
        from _results import record

        record(main)
