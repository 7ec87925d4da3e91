"""Optuna's `RDBStorage._get_trials` as plain rows: the same trials, several times faster.

Every read of a study's trials on a database (Optuna's cache, `study.get_trials`, `sweeps
status`, `best`, a report) goes through `_get_trials`, which loads each trial as SQLAlchemy
ORM objects (one per trial, parameter, value, attribute and curve point: some 300,000 at
10,000 trials) and then copies them into FrozenTrials. Here the same six queries (trials,
then each child table for those trials) return plain tuples, and each distinct
distribution is parsed once. The result is equal, trial for trial, to Optuna's own
(`tests/sweeps/test_trial_reads.py`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Container, Iterable, Sequence
from typing import Any

import optuna
from optuna import distributions
from optuna.trial import FrozenTrial, TrialState

from sweeps.store import collector


@collector.paused()
def read_trials(rdb: optuna.storages.RDBStorage, study_id: int, states: Container[TrialState] | None,
                included_trial_ids: set[int], trial_id_greater_than: int,
                deferred: frozenset[str] | AllBut = frozenset()) -> list[FrozenTrial]:
    """What `RDBStorage._get_trials` returns, with its arguments' meaning: the study's trials
    in `states` (all if None), and, where `trial_id_greater_than` > -1, only those above it
    or among `included_trial_ids` (which must not exceed it); in trial-id order.

    `deferred`: user attributes left out of this read, and with them every trial's curve
    (intermediate values), parameters and system attributes: each is read for its own trial
    where it is first used (`Deferred`). A view of a large sweep that shows a few trials'
    parameters, configs and curves reads only those. `AllBut(keys)`: every user attribute
    but `keys` left out."""
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from sqlalchemy import or_, select

    included = {i for i in included_trial_ids if i <= trial_id_greater_than}
    t = models.TrialModel
    chosen = select(t.trial_id).where(t.study_id == study_id)
    if states is not None:
        assert isinstance(states, Iterable)
        chosen = chosen.where(t.state.in_(list(states)))
    if included and trial_id_greater_than > -1:
        chosen = chosen.where(or_(t.trial_id.in_(included), t.trial_id > trial_id_greater_than))
    elif trial_id_greater_than > -1:
        chosen = chosen.where(t.trial_id > trial_id_greater_than)
    ids = chosen.scalar_subquery()

    with _create_scoped_session(rdb.scoped_session) as session:
        models.StudyModel.find_or_raise_by_id(study_id, session)  # a missing study: KeyError, as Optuna
        rows = session.execute(select(t.trial_id, t.number, t.state, t._datetime_start_utc,
                                      t._datetime_complete_utc).where(t.trial_id.in_(ids)).order_by(t.trial_id)).all()
        if not rows:
            return []
        p, v, u = models.TrialParamModel, models.TrialValueModel, models.TrialUserAttributeModel
        s, iv = models.TrialSystemAttributeModel, models.TrialIntermediateValueModel
        params = [] if deferred else session.execute(
            select(p.trial_id, p.param_name, p.param_value, p.distribution_json)
            .where(p.trial_id.in_(ids)).order_by(p.param_id)).all()
        values = session.execute(select(v.trial_id, v.objective, v.value, v.value_type)
                                 .where(v.trial_id.in_(ids))).all()
        chosen_users = select(u.trial_id, u.key, u.value_json).where(u.trial_id.in_(ids))
        if isinstance(deferred, AllBut):
            chosen_users = chosen_users.where(u.key.in_(sorted(deferred.kept)))
        elif deferred:
            chosen_users = chosen_users.where(u.key.notin_(sorted(deferred)))
        users = session.execute(chosen_users.order_by(u.trial_user_attribute_id)).all()
        systems = [] if deferred else session.execute(
            select(s.trial_id, s.key, s.value_json).where(s.trial_id.in_(ids))
            .order_by(s.trial_system_attribute_id)).all()
        curves = [] if deferred else session.execute(
            select(iv.trial_id, iv.step, iv.intermediate_value, iv.intermediate_value_type)
            .where(iv.trial_id.in_(ids)).order_by(iv.trial_intermediate_value_id)).all()
    trials = build(rows, params, values, users, systems, curves)
    return _deferring(rdb, trials, deferred) if deferred else trials


def _deferring(rdb: optuna.storages.RDBStorage, trials: list[FrozenTrial],
               deferred: frozenset[str] | AllBut) -> list[FrozenTrial]:
    """The trials with what their read left out made `Deferred`: read where first used."""
    for trial in trials:
        tid = trial._trial_id
        trial._user_attrs = Deferred(trial._user_attrs, deferred, _reader(rdb, tid, "user", deferred))
        trial.intermediate_values = Deferred({}, None, _reader(rdb, tid, "curve"))
        trial._params = Deferred({}, None, _reader(rdb, tid, "params"))
        trial._distributions = Deferred({}, None, _reader(rdb, tid, "distributions"))
        trial._system_attrs = Deferred({}, None, _reader(rdb, tid, "system"))
    return trials




class AllBut:
    """The user attributes a read leaves out: all but `kept` (those a view looks up on every
    trial, such as its optimizer), where a view of a large sweep shows a few trials only."""

    __slots__ = ("kept",)

    def __init__(self, kept: frozenset[str]) -> None:
        self.kept = kept

    def __contains__(self, key: object) -> bool:
        return key not in self.kept

    def __bool__(self) -> bool:
        return True


class Deferred(dict[Any, Any]):
    """A trial's user attributes without the `keys` left out of its read (None: a curve
    left out whole), which are read on their first use. A lookup of another key costs
    nothing; anything that needs every item (iteration, len, ==, a copy, a pickle) reads
    them first. Filled, it is the plain dict the whole read gives."""

    __slots__ = ("_keys", "_read")

    def __init__(self, found: dict[Any, Any], keys: frozenset[str] | AllBut | None, read: Any) -> None:
        super().__init__(found)
        self._keys, self._read = keys, read

    def _fill(self) -> None:
        if self._read is not None:
            read, self._read = self._read, None
            dict.update(self, read())

    def _needs(self, key: Any) -> None:
        if self._read is not None and (self._keys is None or key in self._keys):
            self._fill()

    def __getitem__(self, key: Any) -> Any:
        self._needs(key)
        return dict.__getitem__(self, key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._needs(key)
        return dict.get(self, key, default)

    def __contains__(self, key: object) -> bool:
        self._needs(key)
        return dict.__contains__(self, key)

    def __iter__(self) -> Any:
        self._fill()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._fill()
        return dict.__len__(self)

    def keys(self) -> Any:
        self._fill()
        return dict.keys(self)

    def values(self) -> Any:
        self._fill()
        return dict.values(self)

    def items(self) -> Any:
        self._fill()
        return dict.items(self)

    def copy(self) -> dict[Any, Any]:
        self._fill()
        return dict(dict.items(self))

    def __eq__(self, other: object) -> bool:
        self._fill()
        return dict(dict.items(self)) == other

    __hash__ = None

    def __repr__(self) -> str:
        self._fill()
        return dict.__repr__(self)

    def __reduce__(self) -> Any:
        return (dict, (self.copy(),))


def _reader(rdb: optuna.storages.RDBStorage, trial_id: int, what: str,
            keys: frozenset[str] | AllBut = frozenset()) -> Any:
    """What a `Deferred` reads when first used: one of the trial's parts (its left-out user
    `keys`, its curve, parameters, their distributions or its system attributes), in one
    query; a read-only view's, so a lost connection is its error, not retried."""
    def read() -> dict[Any, Any]:
        from optuna.storages._rdb import models
        from optuna.storages._rdb.storage import _create_scoped_session
        from sqlalchemy import select

        with _create_scoped_session(rdb.scoped_session) as session:
            if what == "curve":
                iv = models.TrialIntermediateValueModel
                to_value = iv.stored_repr_to_intermediate_value
                return {step: to_value(value, kind) for step, value, kind in session.execute(
                    select(iv.step, iv.intermediate_value, iv.intermediate_value_type)
                    .where(iv.trial_id == trial_id).order_by(iv.trial_intermediate_value_id))}
            if what in ("params", "distributions"):
                p = models.TrialParamModel
                out = {}
                for name, value, dist_json in session.execute(
                        select(p.param_name, p.param_value, p.distribution_json)
                        .where(p.trial_id == trial_id).order_by(p.param_id)):
                    dist = distributions.json_to_distribution(dist_json)
                    out[name] = dist.to_external_repr(value) if what == "params" else dist
                return out
            a = models.TrialUserAttributeModel if what == "user" else models.TrialSystemAttributeModel
            chosen = select(a.key, a.value_json).where(a.trial_id == trial_id)
            if what == "user":
                chosen = chosen.where(a.key.notin_(sorted(keys.kept)) if isinstance(keys, AllBut)
                                      else a.key.in_(sorted(keys)))
            order = a.trial_user_attribute_id if what == "user" else a.trial_system_attribute_id
            return {key: json.loads(value) for key, value in session.execute(chosen.order_by(order))}

    return read


# What a view of a whole sweep leaves for later: a trial's config, curves and learning
# rates are most of its size, and `status`, `best` show them for a few trials only.
HEAVY = frozenset({"config", "curves", "step_lrs", "overrides"})
# What `sweeps best` looks up on every search trial: its optimizer (a joint sweep's trial
# has its own) and whether a failed one diverged; the rest only for the trials it shows.
BEST_VIEW = AllBut(frozenset({"optimizer", "state"}))


def defer_reads(studies: Sequence[optuna.Study], keys: frozenset[str] | AllBut = HEAVY) -> None:
    """From now on, these studies' trials are read from their database without `keys` and
    their curves, each read where first used (`Deferred`). Nothing changes on the journal."""
    for study in studies:
        backend = getattr(study._storage, "_backend", study._storage)
        if hasattr(backend, "deferred"):
            backend.deferred[study._study_id] = keys


def _local(utc: dt.datetime | None) -> dt.datetime | None:
    """A stored (naive UTC) time as Optuna's model gives it: naive local time."""
    return None if utc is None else utc.replace(tzinfo=dt.UTC).astimezone().replace(tzinfo=None)


def build(rows: Sequence[Any], params: Sequence[Any], values: Sequence[Any], users: Sequence[Any],
           systems: Sequence[Any], curves: Sequence[Any]) -> list[FrozenTrial]:
    from optuna.storages._rdb import models

    parsed: dict[str, distributions.BaseDistribution] = {}
    ps: dict[int, dict[str, Any]] = {}
    ds: dict[int, dict[str, distributions.BaseDistribution]] = {}
    for trial_id, name, value, dist_json in params:
        dist = parsed.get(dist_json)
        if dist is None:
            dist = parsed[dist_json] = distributions.json_to_distribution(dist_json)
        ps.setdefault(trial_id, {})[name] = dist.to_external_repr(value)
        ds.setdefault(trial_id, {})[name] = dist
    vs: dict[int, dict[int, float]] = {}
    for trial_id, objective, value, kind in values:
        vs.setdefault(trial_id, {})[objective] = models.TrialValueModel.stored_repr_to_value(value, kind)
    us: dict[int, dict[str, Any]] = {}
    for trial_id, key, value_json in users:
        us.setdefault(trial_id, {})[key] = json.loads(value_json)
    ss: dict[int, dict[str, Any]] = {}
    for trial_id, key, value_json in systems:
        ss.setdefault(trial_id, {})[key] = json.loads(value_json)
    cs: dict[int, dict[int, float]] = {}
    to_value = models.TrialIntermediateValueModel.stored_repr_to_intermediate_value
    for trial_id, step, value, kind in curves:
        cs.setdefault(trial_id, {})[step] = to_value(value, kind)
    out = []
    for trial_id, number, state, start, complete in rows:
        by_objective = vs.get(trial_id)
        out.append(FrozenTrial(
            number=number, state=state, value=None,
            values=[by_objective.get(i, 0) for i in range(len(by_objective))] if by_objective else None,
            datetime_start=_local(start), datetime_complete=_local(complete), params=ps.get(trial_id, {}),
            distributions=ds.get(trial_id, {}), user_attrs=us.get(trial_id, {}),
            system_attrs=ss.get(trial_id, {}), intermediate_values=cs.get(trial_id, {}),
            trial_id=trial_id))
    return out
