"""A worker's view of its study for the sampler, read incrementally: what TPE reads, no more.

TPE reads its study's trials on every sample: finished ones for its model, running ones for
its constant liar (Optuna 5's default), all of them for the search space. Through Optuna's
cache that re-reads, on a database, every unfinished trial with all its attributes (config,
curves) on every sample: with 64 workers, 64 running trials for each trial any worker
starts. Here, once per sampled trial, one query reads the ids and states of the study's
trials; finished trials (which never change) are read once, whole; a running trial is read
with its parameters and system attributes only (what the sampler reads of it), and kept
once its parameters are written. The sampler sees the same trials, in the same order, with
the same values it reads, so it samples the same values as through Optuna's cache
(`tests/sweeps/test_trial_snapshot.py`).
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeps.store import claim_queries
from sweeps.store.trial_counts import _rdb


class TrialSnapshot:
    """Per study (by id): the trials kept (finished, or running with their parameters), and
    the snapshot of the trial last sampled for."""

    def __init__(self) -> None:
        self._kept: dict[int, dict[int, FrozenTrial]] = {}
        self._snapshot: dict[int, tuple[int, list[FrozenTrial]]] = {}

    def trials(self, study: optuna.Study, trial_number: int) -> list[FrozenTrial] | None:
        """Every trial of the study as the sampler reads it, in trial order, read once per
        `trial_number` (the trial being sampled); None off a database (the journal holds
        every trial in memory already: Optuna's own reads are cheap there)."""
        rdb = _rdb(study._storage)
        if rdb is None:
            return None
        sid = study._study_id
        cached = self._snapshot.get(sid)
        if cached is not None and cached[0] == trial_number:
            return cached[1]
        trials = self._read(rdb, sid)
        self._snapshot[sid] = (trial_number, trials)
        return trials

    def _read(self, rdb: optuna.storages.RDBStorage, study_id: int) -> list[FrozenTrial]:
        states = dict(claim_queries.trial_states(rdb, study_id))
        kept = {i: t for i, t in self._kept.get(study_id, {}).items() if states.get(i) == t.state}
        stale = [i for i, s in states.items() if i not in kept]
        whole = {i for i in stale if states[i].is_finished()}
        for t in claim_queries.whole_trials(rdb, sorted(whole)):
            if t.state.is_finished():
                kept[t._trial_id] = t
        light = [i for i in stale if i not in whole]
        fresh = {t._trial_id: t for t in claim_queries.light_trials(rdb, light)}
        ended = [i for i, t in fresh.items() if t.state.is_finished()]  # finished since the ids
        for t in claim_queries.whole_trials(rdb, ended):  # were read: its values, read whole
            fresh.pop(t._trial_id)
            if t.state.is_finished():
                kept[t._trial_id] = t
        for i, t in fresh.items():
            if t.state == TrialState.RUNNING and t.params:  # sampled: what it shows the sampler is set
                kept[i] = t
        self._kept[study_id] = kept
        found = {**fresh, **kept}
        return [found[i] for i in sorted(states) if i in found]
