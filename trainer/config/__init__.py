"""Configs without torch: Hydra composition, key tables, registries and `_target_`s.

Internal to the trainer (other packages use `trainer.api`). Nothing here imports torch,
numpy or torchvision, so that validating a sweep or answering `sweeps status` starts in a
fraction of a second; an import-linter contract (pyproject.toml) holds that.

- `compose`: Hydra composition of conf/ (and the user's config dir), errors as one line;
- `cache`: composed configs kept on disk, keyed by overrides and file times;
- `user_dir`: the user's `--config-dir`, put before the bundled tree;
- `spec`: `Param`, the key tables every section is checked against;
- `registry`: config name -> object, the unknown-name error listing the allowed ones;
- `targets`: `_target_` callables: import, signature check, call;
- `legacy`: configs of earlier releases upgraded to today's keys;
- `dataset_keys`: the trainer's own keys of a dataset section.
"""
