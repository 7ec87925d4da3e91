"""A trial's parameters and attributes written in one storage round trip.

Optuna writes each `suggest_*` and each `set_user_attr` on its own: on the journal file that
is one lock, one append and one fsync per value (about 1.4 ms each, some 20 per trial),
on PostgreSQL one transaction (and one commit flushed to disk) each. Inside
`batched(trial)` those writes are collected and sent together when the block ends: one
journal append of the same log lines Optuna would have written (any Optuna reads the file
as before), or, on a database, the same rows Optuna's own calls write, in one transaction
(retried whole on a lost connection). Reads during the block see the values at once
(Optuna's trial keeps its own copy).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, distribution_to_json


class _Buffer:
    """Stands in for the trial's storage: param and user-attribute writes wait in a list,
    everything else goes straight to the real storage."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.writes: list[tuple[str, int, str, Any, BaseDistribution | None]] = []

    def set_trial_param(self, trial_id: int, name: str, value: float,
                        distribution: BaseDistribution) -> None:
        self.writes.append(("param", trial_id, name, value, distribution))

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self.writes.append(("user_attr", trial_id, key, value, None))

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
    for kind, trial_id, key, value, distribution in writes:
        if kind == "param":
            storage.set_trial_param(trial_id, key, value, distribution)
        else:
            storage.set_trial_user_attr(trial_id, key, value)


def _rdb_transaction(storage: Any, writes: list[tuple[str, int, str, Any, BaseDistribution | None]]) -> None:
    """The writes in one transaction, through the helpers Optuna's own calls use (the same
    checks: the trial still running, a parameter's distribution compatible with the study's).
    `storage`: the RDBStorage, or Optuna's cache around it (whose distributions it updates)."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    from sweeps.store import resilient

    rdb = getattr(storage, "_backend", storage)
    cache = storage if rdb is not storage else None

    def previous(trial_id: int, name: str) -> BaseDistribution | None:
        if cache is None or trial_id not in cache._trial_id_to_study_id_and_number:
            return None
        study_id, _ = cache._trial_id_to_study_id_and_number[trial_id]
        return cache._studies[study_id].param_distribution.get(name)

    def once() -> None:
        with _create_scoped_session(rdb.scoped_session, True) as session:
            for kind, trial_id, key, value, distribution in writes:
                if kind == "param":
                    rdb._set_trial_param_without_commit(session, trial_id, key, value, distribution,
                                                        previous(trial_id, key))
                else:
                    rdb._set_trial_attr_without_commit(session, models.TrialUserAttributeModel,
                                                       trial_id, key, value)

    resilient.patiently("write trial", once, getattr(rdb, "patience_s", 0.0),
                        on_retry=rdb.remove_session)
    if cache is not None:
        for kind, trial_id, key, _, distribution in writes:
            if kind == "param" and previous(trial_id, key) is None:
                study_id, _ = cache._trial_id_to_study_id_and_number[trial_id]
                cache._studies[study_id].param_distribution[key] = distribution


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
    """Collect the trial's param and user-attribute writes; send them when the block ends
    (also when it raises: what was set before the error is recorded, as without batching)."""
    real = trial.storage
    buffer = _Buffer(real)
    trial.storage = buffer  # type: ignore[assignment]
    try:
        yield
    finally:
        trial.storage = real
        write_all(real, buffer.writes)


def set_user_attrs(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """Several user attributes in one write."""
    with batched(trial):
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
