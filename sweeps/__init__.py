"""The sweep service: Optuna studies over per-optimizer search spaces, tracked in MLflow.

One package per job, in layers (each may import only those below it; checked by
import-linter, see pyproject.toml): `cli` (the `sweeps` command) > `run` (workers, trials,
launch, confirm, reproduce) > `report` | `tracking` (what a sweep found | its MLflow
mirror) > `search` (the sweep config, search spaces, studies, budget) > `store` (the
Optuna storage). The trainer it drives knows nothing of Optuna or MLflow.
"""

__all__: list[str] = []
