"""A sweep whose trials keep failing the same way stops claiming: the decision, fast.

The end-to-end case (a launch that stops, says why, exits 1, and a relaunch after the fix
that completes the budget) is `test_bad_input.py::test_a_systematic_error_stops_the_sweep`.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from sweeps.run import fail_fast
from sweeps.run.claims import SEARCH, Claims
from sweeps.store.storages import open_storage

T0 = datetime.datetime(2026, 1, 1, 12, 0, 0)


def _trial(n: int, ts: TrialState, **attrs: Any) -> optuna.trial.FrozenTrial:
    """A finished trial (`_study` times it: the order of the list is the order it finished)."""
    return create_trial(
        state=ts, value=0.5 if ts == TrialState.COMPLETE else None,
        params={"lr": 0.1}, distributions={"lr": FloatDistribution(1e-3, 1.0)},
        user_attrs={"optimizer": "sgd", **attrs})


def _failed(signature: str, reason: str | None = None) -> dict[str, Any]:
    return {"state": "failed", "failure_reason": reason or signature,
            fail_fast.SIGNATURE: signature, fail_fast.ERROR: f"Traceback ...\n{signature}"}


def _study(trials: list[optuna.trial.FrozenTrial], name: str = "quick.sgd") -> optuna.Study:
    study = optuna.create_study(study_name=name, direction="maximize")
    for i, t in enumerate(trials):
        t.datetime_start = T0 + datetime.timedelta(seconds=2 * i)
        t.datetime_complete = T0 + datetime.timedelta(seconds=2 * i + 1)
        study.add_trial(t)
    return study


OOM = "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB"
CRASH = "RuntimeError: kernel launch failed"


def test_three_failures_of_one_cause_in_a_row_trip_it() -> None:
    study = _study([_trial(0, TrialState.COMPLETE)] + [_trial(i, TrialState.FAIL, **_failed(CRASH))
                                                       for i in range(1, 4)])
    record = fail_fast.check([study], 3)
    assert record is not None
    assert record["signature"] == CRASH and record["count"] == 3
    assert record["study"] == "quick.sgd" and record["trial"] == 3  # the last one to finish
    assert record["error"].endswith(CRASH)


def test_fewer_than_the_limit_or_the_limit_zero_do_not() -> None:
    two = _study([_trial(i, TrialState.FAIL, **_failed(CRASH)) for i in range(2)])
    assert fail_fast.check([two], 3) is None
    three = _study([_trial(i, TrialState.FAIL, **_failed(CRASH)) for i in range(3)], "quick.adam")
    assert fail_fast.check([three], 0) is None  # sweep.fail_fast=0: off
    assert fail_fast.check([three], 3) is not None


@pytest.mark.parametrize("between", [
    _trial(9, TrialState.FAIL, state="diverged", failure_reason="diverged: loss is nan"),
    _trial(9, TrialState.FAIL, **_failed(OOM)),  # another cause
    _trial(9, TrialState.COMPLETE, state="complete"),
    _trial(9, TrialState.PRUNED, state="pruned"),
    _trial(9, TrialState.FAIL, state="failed", failure_reason="no epoch finished"),  # no signature
], ids=["diverged", "an-oom", "complete", "pruned", "unsigned-failure"])
def test_a_trial_that_ended_otherwise_breaks_the_streak(between) -> None:
    trials = [_trial(0, TrialState.FAIL, **_failed(CRASH)), _trial(1, TrialState.FAIL, **_failed(CRASH)),
              between, _trial(3, TrialState.FAIL, **_failed(CRASH))]
    assert fail_fast.check([_study(trials)], 3) is None


@pytest.mark.parametrize("lost", [
    _trial(9, TrialState.FAIL, failure_reason="interrupted (Ctrl-C)"),
    _trial(9, TrialState.FAIL, failure_reason="worker died (exit code -9)"),
    _trial(9, TrialState.FAIL),  # a missed heartbeat: Optuna fails it without a word
], ids=["interrupted", "worker-died", "heartbeat"])
def test_infrastructure_failures_neither_count_nor_break_it(lost) -> None:
    trials = [_trial(0, TrialState.FAIL, **_failed(CRASH)), lost,
              _trial(2, TrialState.FAIL, **_failed(CRASH)), _trial(3, TrialState.FAIL, **_failed(CRASH))]
    assert fail_fast.check([_study(trials)], 3) is not None
    # and three of them alone are not a systematic error of the trials
    assert fail_fast.check([_study([lost, lost, lost], "quick.other")], 3) is None


def test_the_streak_runs_across_studies_in_the_order_trials_finished() -> None:
    sgd = _study([_trial(0, TrialState.FAIL, **_failed(CRASH)), _trial(1, TrialState.FAIL, **_failed(CRASH))])
    adam = optuna.create_study(study_name="quick.adam", direction="maximize")
    late = _trial(0, TrialState.FAIL, **_failed(CRASH))
    late.datetime_start, late.datetime_complete = T0 + datetime.timedelta(seconds=60), \
        T0 + datetime.timedelta(seconds=61)
    adam.add_trial(late)
    record = fail_fast.check([sgd, adam], 3)
    assert record is not None and record["study"] == "quick.adam"
    ok = _trial(0, TrialState.COMPLETE, state="complete")
    ok.datetime_start, ok.datetime_complete = T0 + datetime.timedelta(seconds=62), \
        T0 + datetime.timedelta(seconds=63)
    adam.add_trial(ok)  # the last one to finish completed
    assert fail_fast.check([sgd, adam], 3) is None


def test_the_signature_masks_what_is_the_trials_own(tmp_path: Path) -> None:
    def err(n: int) -> PermissionError:
        return PermissionError(13, "Permission denied", str(tmp_path / "quick" / f"quick.sgd{n}" /
                                                            f"trial_{n}" / "history.json"))

    sigs = {fail_fast.signature(err(n), {str(tmp_path / "quick" / f"quick.sgd{n}" / f"trial_{n}"):
                                         "<trial dir>", f"quick.sgd{n}": "<study>"}) for n in (3, 14)}
    assert sigs == {"PermissionError: [Errno 13] Permission denied: '<trial dir>/history.json'"}
    # different causes stay apart
    assert fail_fast.signature(ValueError("a"), {}) != fail_fast.signature(ValueError("b"), {})
    assert fail_fast.signature(ValueError("a"), {}) != fail_fast.signature(TypeError("a"), {})


def test_the_full_error_is_the_traceback_and_bounded() -> None:
    try:
        raise RuntimeError("x" * 10_000)
    except RuntimeError as e:
        text = fail_fast.error_text(e)
    assert "Traceback" in text or text.startswith("...")
    assert len(text) <= fail_fast.ERROR_CHARS + 4 and text.endswith("x" * 100)


def _claims(path: Path, n: int = 2) -> tuple[Claims, list[optuna.Study]]:
    storage = open_storage(str(path))
    studies = []
    for name in ("quick.sgd", "quick.adam"):
        s = optuna.create_study(storage=storage, study_name=name, direction="maximize")
        s.set_user_attr("sweep", "quick")
        s.set_user_attr("budget", n)
        studies.append(s)
    return Claims(storage, str(path), "quick", studies, (SEARCH,), deadline=None, max_retries=2), studies


def test_a_halted_sweep_claims_nothing_and_a_cleared_one_claims_again(tmp_path: Path) -> None:
    claims, studies = _claims(tmp_path / "sweeps.journal")
    record = {"signature": CRASH, "count": 3, "study": "quick.sgd", "trial": 2}
    fail_fast.halt(studies, record)
    assert claims.next_job() is None
    assert claims.halt == record
    assert all(not s.get_trials() for s in studies)  # not a row was made: the budget is intact
    assert fail_fast.clear(studies) == record  # a relaunch lifts it
    assert fail_fast.halted(studies) is None
    job = claims.next_job()
    assert job is not None and job[1].number == 0 and claims.halt is None


def test_describe_says_why_once_with_the_error_and_the_command() -> None:
    lines = fail_fast.describe({"signature": CRASH, "count": 3, "study": "quick.sgd", "trial": 2,
                                "error": "Traceback (most recent call last):\n" + CRASH,
                                "command": "python -m trainer optimizer=sgd"}, "quick")
    text = "\n".join(lines)
    assert lines[0].startswith("stopped: the last 3 trials failed with the same error")
    assert text.count(CRASH) == 2  # the reason once, and the last line of the traceback
    assert "run that trial alone: python -m trainer optimizer=sgd" in text
    assert "sweep.fail_fast=0" in text
