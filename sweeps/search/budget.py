"""A study's budget: which trials count toward ``n_trials``, and which lost ones to retry.

Finished and running trials count; trials failed by the infrastructure (Ctrl-C, a dead
worker, a lost heartbeat) do not, so a resumed sweep still gets its budget, and they are
the ones retried.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import optuna
from optuna.trial import FrozenTrial, TrialState

if TYPE_CHECKING:  # the read-only commands import this module: keep torch out of it
    pass


# failed from outside the trial: Ctrl-C or SIGTERM, a dead worker, a machine that refused a
# write (disk full, read-only, no permission: `sweeps.store.os_errors`)
UNCOUNTED_REASONS = ("interrupted", "worker died", "machine:")


OWN_FAILURES = ("failed", "diverged")  # a trial's own end: not retried, counts toward the budget


def counts_toward_budget(t: FrozenTrial) -> bool:
    """Finished or running trials use the budget; failures of the infrastructure do not.

    A trial our worker finished has a ``state`` attribute; one failed from outside (Ctrl-C,
    a dead local worker, a missing heartbeat on a database storage) does not, or says why.
    """
    if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
        return True
    if t.state == TrialState.FAIL:
        # its own worker failed it (an exception, divergence); a recorded "complete" or
        # "pruned" means the worker died between recording the result and telling Optuna
        reason = str(t.user_attrs.get("failure_reason", ""))
        return t.user_attrs.get("state") in OWN_FAILURES and not reason.startswith(UNCOUNTED_REASONS)
    return False


def retryable(t: FrozenTrial) -> bool:
    """Failed by the infrastructure (its worker died, was stopped, lost its heartbeat), after
    its parameters were sampled: worth running again with the same parameters and seed."""
    # not counted = failed from outside: Ctrl-C, a dead local worker (with a reason), or a
    # missing heartbeat (Optuna fails it without one)
    return (t.state == TrialState.FAIL and not counts_toward_budget(t)
            and isinstance(t.user_attrs.get("config"), dict))


def retry_candidate(study: optuna.Study, max_retries: int,
                    failed: Sequence[FrozenTrial] | None = None) -> FrozenTrial | None:
    """The oldest trial to retry: retryable, not retried yet, fewer than `max_retries` retries
    behind it. Callers hold the budget lock, so two workers never retry the same trial.
    `failed`: the study's failed trials, when the caller has just read them."""
    if failed is None:
        failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    failed = [t for t in failed if retryable(t)]
    if not failed:  # the common case: no retry_of to collect from every trial
        return None
    retried = {t.user_attrs.get("retry_of") for t in study.get_trials(deepcopy=False)}
    for t in failed:
        history = t.user_attrs.get("retry_history") or []
        if t.number not in retried and retryable(t) and len(history) < max_retries:
            return t
    return None


COUNTED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)  # always count


def used_and_failed(study: optuna.Study) -> tuple[int, list[FrozenTrial]]:
    """The budget used and the study's failed trials, reading only those: a count of the
    trials that always count, plus the failed ones that do (`counts_toward_budget`)."""
    return used_and_failed_all([study])[0]


def used_and_failed_all(studies: Sequence[optuna.Study]) -> list[tuple[int, list[FrozenTrial]]]:
    """`used_and_failed` of every study: on a database two queries for all of them (the
    counted trials, the failed ones), and the failed trials read only where there are some."""
    from sweeps.store import claim_queries, trial_counts

    used = claim_queries.counts(studies, COUNTED)
    n_failed = claim_queries.counts(studies, (TrialState.FAIL,))
    out = []
    for study, n, f in zip(studies, used, n_failed, strict=True):
        failed = trial_counts.in_states(study._storage, study._study_id, (TrialState.FAIL,)) if f else []
        out.append((n + sum(counts_toward_budget(t) for t in failed), failed))
    return out


def used_budget(study: optuna.Study, trials: Sequence[FrozenTrial] | None = None) -> int:
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    return sum(counts_toward_budget(t) for t in trials)


def finished(study: optuna.Study) -> int:
    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(t.state in done and counts_toward_budget(t) for t in study.get_trials(deepcopy=False))


def spent(studies: Sequence[optuna.Study]) -> bool:
    """Every study's budget is used and none of its trials still runs."""
    return all(used_budget(s) >= int(s.user_attrs.get("budget", 0))
               and not s.get_trials(deepcopy=False, states=(TrialState.RUNNING,)) for s in studies)
