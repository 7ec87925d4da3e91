"""What a sweep searches, and the studies that hold it.

The sweep config and its validation (`load`, `validate`, `spec`: every error before
anything is written), search spaces (`space`) and a trial's resolved config
(`trial_configs`), the dimensions a user's own value pins (`pinned`), samplers and
pruners by name (`samplers`; TPE on a bounded history, `history`, reading its study
incrementally on a database, `trial_snapshot`), the sweep's Optuna studies
(`studies`) and their budget (`budget`), the confirm study's seed re-run jobs
(`confirm_jobs`), boundary warnings (`boundary`: computed from a search space, so they
live with it), local workers per GPU (`devices`), and where the workers run (`launcher`:
the `launcher` section, local or slurm), and which `_target_`s a worker may call
(`allowed_targets`: a stored config is data, not code).

May import `sweeps.store` and `trainer`; never `run`, `tracking`, `report` or `cli`.
"""
