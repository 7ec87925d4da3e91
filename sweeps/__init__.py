"""The sweep service: Optuna studies over per-optimizer search spaces, tracked in MLflow.

`sweeps.cli` is the command line (`sweeps launch | worker | status | best | reproduce |
report | ui`); the trainer it drives knows nothing of Optuna or MLflow.
"""

__all__: list[str] = []
