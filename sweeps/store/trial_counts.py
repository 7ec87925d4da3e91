"""How many trials a study holds in some states, without reading them.

A claim counts the budget under the sweep's lock. Reading the study's trials for it (as
Optuna's `get_n_trials` does) re-reads every running trial with all its attributes on a
database: 64 of them, each with its config, on every claim of a 64-worker sweep, all while
the other workers wait for the lock. On a database this is one COUNT query instead; on the
journal (in memory already) the same count from the replayed trials.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState


def _rdb(storage: Any) -> optuna.storages.RDBStorage | None:
    backend = getattr(storage, "_backend", storage)  # Optuna's cache wraps a study's RDBStorage
    return backend if isinstance(backend, optuna.storages.RDBStorage) else None


def count(storage: Any, study_id: int, states: Sequence[TrialState]) -> int:
    rdb = _rdb(storage)
    if rdb is None:
        return len(storage.get_all_trials(study_id, deepcopy=False, states=tuple(states)))
    import sqlalchemy
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    from sweeps.store import resilient

    def once() -> int:
        with _create_scoped_session(rdb.scoped_session) as session:
            return int(session.query(sqlalchemy.func.count(models.TrialModel.trial_id)).filter(
                models.TrialModel.study_id == study_id,
                models.TrialModel.state.in_(list(states))).scalar() or 0)

    return int(resilient.patiently("count trials", once, getattr(rdb, "patience_s", 0.0),
                                   on_retry=rdb.remove_session))


def in_states(storage: Any, study_id: int, states: Sequence[TrialState]) -> list[FrozenTrial]:
    """The trials in `states` only, read from the database itself (not through the cache,
    which would re-read every running trial first)."""
    source = _rdb(storage) or storage
    return list(source.get_all_trials(study_id, deepcopy=False, states=tuple(states)))
