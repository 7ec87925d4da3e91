"""A trial's parameters and attributes written in one storage round trip.

Optuna writes each `suggest_*` and each `set_user_attr` on its own: on the journal file that
is one lock, one append and one fsync per value (about 1.4 ms each, some 20 per trial),
on PostgreSQL one transaction (and one commit flushed to disk) each. Inside
`batched(trial)` those writes are collected and sent together when the block ends: one
journal append of the same log lines Optuna would have written (any Optuna reads the file
as before), or, on a database, the same rows Optuna's own calls write, in one transaction
(retried whole on a lost connection). Reads during the block see the values at once
(Optuna's trial keeps its own copy). `tell_with_attrs`: a trial's result attributes and
its tell, on a database in one transaction.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Mapping
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, distribution_to_json


class _Buffer:
    """Stands in for the trial's (and its study's) storage: param, user- and system-attribute
    writes of the trial wait in a list, everything else goes straight to the real storage."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.writes: list[tuple[str, int, str, Any, BaseDistribution | None]] = []

    def set_trial_param(self, trial_id: int, name: str, value: float,
                        distribution: BaseDistribution) -> None:
        self.writes.append(("param", trial_id, name, value, distribution))

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self.writes.append(("user_attr", trial_id, key, value, None))

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        """TPE's relative parameters (what other workers' constant liar reads): with the rest."""
        self.writes.append(("system_attr", trial_id, key, value, None))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def write_all(storage: Any, writes: list[tuple[str, int, str, Any, BaseDistribution | None]]) -> None:
    """Send collected writes: one journal append, else the storage's own calls in order."""
    if not writes:
        return
    if isinstance(storage, optuna.storages.JournalStorage):
        _journal_append(storage, writes)
        return
    if isinstance(getattr(storage, "_backend", storage), optuna.storages.RDBStorage):
        _rdb_transaction(storage, writes)
        return
    one_by_one(storage, writes)


def one_by_one(storage: Any, writes: list[tuple[str, int, str, Any, BaseDistribution | None]]) -> None:
    """The writes through the storage's own calls, one call each, in order."""
    for kind, trial_id, key, value, distribution in writes:
        if kind == "param":
            storage.set_trial_param(trial_id, key, value, distribution)
        elif kind == "system_attr":
            storage.set_trial_system_attr(trial_id, key, value)
        else:
            storage.set_trial_user_attr(trial_id, key, value)


def _rdb_transaction(storage: Any, writes: list[tuple[str, int, str, Any, BaseDistribution | None]]) -> None:
    """The writes in one transaction, a statement per table (`row_writes`), under the checks
    Optuna's own calls make (the trial still running, a parameter's distribution compatible
    with the study's). `storage`: the RDBStorage, or Optuna's cache around it (whose
    distributions it updates)."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    from sweeps.store import resilient, row_writes

    rdb = getattr(storage, "_backend", storage)
    cache = storage if rdb is not storage else None

    def previous(trial_id: int, name: str) -> BaseDistribution | None:
        if cache is None or trial_id not in cache._trial_id_to_study_id_and_number:
            return None
        study_id, _ = cache._trial_id_to_study_id_and_number[trial_id]
        return cache._studies[study_id].param_distribution.get(name)

    params = [(trial_id, key, value, dist) for kind, trial_id, key, value, dist in writes
              if kind == "param" and dist is not None]
    users = [(trial_id, key, value) for kind, trial_id, key, value, _ in writes if kind == "user_attr"]
    systems = [(trial_id, key, value) for kind, trial_id, key, value, _ in writes if kind == "system_attr"]
    if _one_statement(rdb, writes, params, previous):
        return

    def once() -> None:
        with _create_scoped_session(rdb.scoped_session, True) as session:
            trials = row_writes.running(rdb, session, [w[1] for w in writes])
            row_writes.insert_params(session, trials, params, previous)
            row_writes.upsert_attrs(rdb, session, models.TrialUserAttributeModel, users)
            row_writes.upsert_attrs(rdb, session, models.TrialSystemAttributeModel, systems)

    resilient.patiently("write trial", once, getattr(rdb, "patience_s", 0.0),
                        on_retry=rdb.remove_session)
    if cache is not None:
        for kind, trial_id, key, _, distribution in writes:
            if kind == "param" and previous(trial_id, key) is None:
                study_id, _ = cache._trial_id_to_study_id_and_number[trial_id]
                cache._studies[study_id].param_distribution[key] = distribution


def _one_statement(rdb: optuna.storages.RDBStorage,
                   writes: list[tuple[str, int, str, Any, BaseDistribution | None]],
                   params: list[tuple[int, str, Any, BaseDistribution]], previous: Any) -> bool:
    """On PostgreSQL, one trial's writes whose distributions the cache already knows (every
    trial after a worker's first): checked here, sent as one statement (`pg_calls.write_trial`).
    False where that does not apply (the caller's transaction then writes them)."""
    from optuna import distributions

    from sweeps.store import pg_calls

    if rdb.engine.dialect.name != "postgresql" or len({w[1] for w in writes}) != 1:
        return False
    trial_id = writes[0][1]
    for _, name, _, dist in params:
        before = previous(trial_id, name)
        if before is None:
            return False
        distributions.check_distribution_compatibility(before, dist)
    users: dict[str, Any] = {}
    systems: dict[str, Any] = {}
    for kind, _, key, value, _ in writes:  # a key set twice keeps its last value
        if kind == "user_attr":
            users[key] = value
        elif kind == "system_attr":
            systems[key] = value
    pg_calls.write_trial(rdb, trial_id, [(name, value, distributions.distribution_to_json(dist))
                                         for _, name, value, dist in params], users, systems)
    return True


def _journal_append(storage: optuna.storages.JournalStorage,
                    writes: list[tuple[str, int, str, Any, BaseDistribution | None]]) -> None:
    from optuna.storages.journal._storage import JournalOperation

    worker_id = storage._replay_result.worker_id
    logs: list[dict[str, Any]] = []
    for kind, trial_id, key, value, distribution in writes:
        if kind == "param":
            assert distribution is not None
            logs.append({"op_code": JournalOperation.SET_TRIAL_PARAM, "worker_id": worker_id,
                         "trial_id": trial_id, "param_name": key, "param_value_internal": value,
                         "distribution": distribution_to_json(distribution)})
        elif kind == "system_attr":
            logs.append({"op_code": JournalOperation.SET_TRIAL_SYSTEM_ATTR, "worker_id": worker_id,
                         "trial_id": trial_id, "system_attr": {key: value}})
        else:
            logs.append({"op_code": JournalOperation.SET_TRIAL_USER_ATTR, "worker_id": worker_id,
                         "trial_id": trial_id, "user_attr": {key: value}})
    with storage._thread_lock:
        storage._sync_with_backend()
        for trial_id in {w[1] for w in writes}:  # refuse as Optuna's own write would, unwritten
            trial = storage._replay_result._trials.get(trial_id)
            if trial is not None and trial.state.is_finished():
                raise optuna.exceptions.UpdateFinishedTrialError(
                    f"trial #{trial.number} has already finished and cannot be updated")
        storage._backend.append_logs(logs)
        _sync_past_refusals(storage)


def _sync_past_refusals(storage: optuna.storages.JournalStorage) -> None:
    """Read the journal to its end. Optuna's replay raises at the first of our own lines that
    it refuses (the trial finished meanwhile, from another process); with several of our
    lines in one append, read on past each such line, then raise the first refusal."""
    first: optuna.exceptions.UpdateFinishedTrialError | None = None
    while True:
        try:
            storage._sync_with_backend()
            break
        except optuna.exceptions.UpdateFinishedTrialError as err:
            first = first or err
    if first is not None:
        raise first


@contextlib.contextmanager
def batched(trial: optuna.Trial) -> Iterator[None]:
    """Collect the trial's param and attribute writes (TPE's relative parameters, which it
    writes through the study's storage, among them); send them when the block ends (also
    when it raises: what was set before the error is recorded, as without batching)."""
    real = trial.storage
    buffer = _Buffer(real)
    study = trial.study
    study_storage = study._storage
    trial.storage = buffer  # type: ignore[assignment]
    if study_storage is real:  # the sampler writes through the study's storage
        study._storage = buffer  # type: ignore[assignment]
    try:
        yield
    finally:
        trial.storage = real
        study._storage = study_storage
        write_all(real, buffer.writes)


def set_user_attrs(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """Several user attributes in one write."""
    with batched(trial):
        for key, value in attrs.items():
            trial.set_user_attr(key, value)


class _StateWithAttrs:
    """Stands in for a study's storage during its tell: the state change Optuna's tell makes
    carries the trial's result attributes, in one transaction; the rest goes to the storage.
    On PostgreSQL the tell reads the trial once (one statement) and writes it in one
    statement (`pg_calls.finish`); Optuna's read of it after the write is answered from
    what was written."""

    def __init__(self, real: Any, rdb: optuna.storages.RDBStorage, trial_id: int,
                 attrs: Mapping[str, Any]) -> None:
        self._real, self._rdb, self._trial_id, self._attrs = real, rdb, trial_id, dict(attrs)
        self._pg = rdb.engine.dialect.name == "postgresql"
        self._read: optuna.trial.FrozenTrial | None = None  # the trial as the tell found it
        self._told: optuna.trial.FrozenTrial | None = None  # and as it left it

    def get_trial(self, trial_id: int) -> optuna.trial.FrozenTrial:
        if trial_id != self._trial_id or not self._pg:
            return self._real.get_trial(trial_id)
        if self._told is not None:
            return copy.deepcopy(self._told)
        self._read = self._real.get_trial(trial_id)
        return copy.deepcopy(self._read)

    def set_trial_state_values(self, trial_id: int, state: optuna.trial.TrialState,
                               values: Any = None) -> bool:
        if trial_id != self._trial_id or not state.is_finished():
            return bool(self._real.set_trial_state_values(trial_id, state, values))
        if self._pg:
            from sweeps.store import pg_calls

            before = self._read or self._real.get_trial(trial_id)
            done = pg_calls.finish(self._rdb, trial_id, state, values, self._attrs)
            self._told = _told(before, state, values, self._attrs, done)
            return True
        import datetime

        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session

        from sweeps.store import resilient, row_writes

        rdb = self._rdb
        attrs = [(trial_id, key, value) for key, value in self._attrs.items()]

        def once() -> None:
            # what Optuna's own set_trial_state_values does, after the attributes
            with _create_scoped_session(rdb.scoped_session, True) as session:
                trial = row_writes.running(rdb, session, [trial_id], for_update=True)[trial_id]
                row_writes.upsert_attrs(rdb, session, models.TrialUserAttributeModel, attrs)
                for objective, v in enumerate(values or []):
                    rdb._set_trial_value_without_commit(session, trial, objective, v)
                trial.state = state
                trial.datetime_complete = datetime.datetime.now()

        resilient.patiently("tell", once, getattr(rdb, "patience_s", 0.0), on_retry=rdb.remove_session)
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _told(before: optuna.trial.FrozenTrial, state: optuna.trial.TrialState, values: Any,
          attrs: Mapping[str, Any], done: Any) -> optuna.trial.FrozenTrial:
    """The trial as `pg_calls.finish` left it (completed at `done`), from its row as read
    before the write."""
    told = copy.deepcopy(before)
    told.state = state
    told.values = None if values is None else [float(v) for v in values]
    told.datetime_complete = done
    told.user_attrs.update(attrs)
    return told


def tell_with_attrs(study: optuna.Study, trial: optuna.Trial, attrs: Mapping[str, Any],
                    value: float | None = None, state: optuna.trial.TrialState | None = None) -> None:
    """The trial's result attributes and its tell in one write: on a database one transaction
    (the attributes, then the state and value Optuna's tell sets); on the journal the
    attributes (one append), then the tell. Either way a worker killed in between leaves
    the result recorded with the trial still running: a retry takes it over."""
    rdb = getattr(study._storage, "_backend", study._storage)
    if not isinstance(rdb, optuna.storages.RDBStorage):
        set_user_attrs(trial, attrs)
        study.tell(trial, value, state=state)
        return
    real = study._storage
    study._storage = _StateWithAttrs(real, rdb, trial._trial_id, attrs)  # type: ignore[assignment]
    try:
        study.tell(trial, value, state=state)
    except ValueError:  # "Cannot tell a FAIL trial": finished by another process meanwhile
        if real.get_trial(trial._trial_id).state.is_finished():
            raise optuna.exceptions.UpdateFinishedTrialError(
                f"trial #{trial.number} has already finished and cannot be updated") from None
        raise
    finally:
        study._storage = real
    trial._cached_frozen_trial.user_attrs.update(attrs)  # as set_user_attr would
