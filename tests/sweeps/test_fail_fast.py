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
    assert record["error"].endswith(CRASH) and record["reason"] == CRASH
    assert record["optimizer"] == "sgd"
    assert record["command"] is None  # it failed before its trainer config was made


def test_the_record_gives_the_command_that_runs_the_trial_alone() -> None:
    from sweeps.report.summary import trainer_command
    from trainer.config.compose import overrides_for
    from trainer.validation import load_config, validate

    cfg = validate(load_config(["optimizer=sgd", "trainer.epochs=1"]))
    study = _study([_trial(i, TrialState.FAIL, **_failed(CRASH), config=cfg) for i in range(2)])
    record = fail_fast.check([study], 2)
    assert record is not None
    assert record["command"] == trainer_command(overrides_for(cfg))
    assert record["command"].startswith("python -m trainer ") and "optimizer=sgd" in record["command"]


def test_a_limit_of_one_stops_on_the_first_failure() -> None:
    one = _study([_trial(0, TrialState.COMPLETE, state="complete"),
                  _trial(1, TrialState.FAIL, **_failed(CRASH))])
    assert fail_fast.check([one], 1) is not None
    assert fail_fast.check([one], 2) is None


def test_trials_finishing_at_the_same_instant_are_ordered_by_number() -> None:
    """Two studies' trials can share a completion time; the streak still has an order."""
    sgd = optuna.create_study(study_name="quick.sgd", direction="maximize")
    adam = optuna.create_study(study_name="quick.adam", direction="maximize")
    same = T0 + datetime.timedelta(seconds=5)
    for study, ts, attrs in ((sgd, TrialState.FAIL, _failed(CRASH)), (adam, TrialState.FAIL, _failed(CRASH)),
                             (sgd, TrialState.FAIL, _failed(CRASH))):
        t = _trial(0, ts, **attrs)
        t.datetime_start, t.datetime_complete = T0, same
        study.add_trial(t)
    record = fail_fast.check([sgd, adam], 3)
    assert record is not None and (record["study"], record["trial"]) == ("quick.sgd", 1)


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
    # its own worker marked it: Ctrl-C, SIGTERM, a scheduler's requeue
    _trial(9, TrialState.FAIL, state="interrupted", failure_reason="interrupted (SIGTERM)"),
    _trial(9, TrialState.FAIL, state="failed", failure_reason="worker died (exit code -9)"),
    _trial(9, TrialState.FAIL, failure_reason="worker died (exit code -9)"),
    _trial(9, TrialState.FAIL),  # a missed heartbeat: Optuna fails it without a word
], ids=["interrupted", "interrupted-by-its-worker", "worker-died-recorded", "worker-died", "heartbeat"])
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
    record = {"signature": CRASH, "count": 3, "study": "quick.sgd", "trial": 2,
              "error": "Traceback (most recent call last):\n" + CRASH,
              "command": "python -m trainer optimizer=sgd"}
    assert fail_fast.describe(record, "quick") == [
        f"stopped: the last 3 trials failed with the same error (sweep.fail_fast=3): {CRASH}",
        "the full error of trial quick.sgd #2:",
        "  Traceback (most recent call last):",
        f"  {CRASH}",
        "run that trial alone: python -m trainer optimizer=sgd",
        "fix the cause and run the same launch again: the budget not used yet is still there "
        "(`sweeps status quick`); sweep.fail_fast=0 turns this off",
    ]
    # without a traceback, the reason; without a config, why there is no command
    lines = fail_fast.describe({**record, "error": None, "reason": "bad config: x", "command": None}, "q")
    assert lines[2] == "  bad config: x"
    assert lines[3] == "that trial failed before its trainer config was made (sampling or composing it)"
    bare = fail_fast.describe({**record, "error": None, "reason": None, "command": None}, "q")
    assert len(bare) == 4 and not bare[2].startswith("  ")  # nothing recorded: no error lines


def test_the_signature_is_the_type_and_the_first_line_cut_at_300() -> None:
    assert fail_fast.signature(ValueError(), {}) == "ValueError: "
    assert fail_fast.signature(ValueError("first\nsecond"), {}) == "ValueError: first"
    assert fail_fast.signature(ValueError("x" * 400), {}) == "ValueError: " + "x" * 300
    # a message that already names its type is not prefixed twice
    assert fail_fast.signature(RuntimeError("RuntimeError: boom"), {}) == "RuntimeError: boom"
    assert fail_fast.signature(RuntimeError("OSError: boom"), {}) == "RuntimeError: OSError: boom"
    # the longest of the trial's own strings is masked first (a folder inside another)
    own = {"/runs/quick": "<sweep dir>", "/runs/quick/quick.sgd/trial_4": "<trial dir>"}
    assert fail_fast.signature(OSError("/runs/quick/quick.sgd/trial_4/last.pt"), own) == \
        "OSError: <trial dir>/last.pt"
    assert fail_fast.signature(OSError("trial_12 and trial_3"), {}) == "OSError: trial_N and trial_N"


def test_the_full_error_is_the_whole_traceback_up_to_its_limit() -> None:
    import traceback

    def raised(message: str) -> RuntimeError:
        try:
            raise RuntimeError(message)
        except RuntimeError as e:
            return e

    short = raised("boom")
    assert fail_fast.error_text(short) == "".join(traceback.format_exception(short)).rstrip()
    full = "".join(traceback.format_exception(raised("y" * 10_000))).rstrip()
    long_text = fail_fast.error_text(raised("y" * 10_000))
    assert long_text == "...\n" + full[-fail_fast.ERROR_CHARS:]
    exact = raised("z")
    text = "".join(traceback.format_exception(exact)).rstrip()
    pad = fail_fast.ERROR_CHARS - len(text)
    at_limit = raised("z" * (1 + pad))  # a traceback exactly ERROR_CHARS long is kept whole
    assert len("".join(traceback.format_exception(at_limit)).rstrip()) == fail_fast.ERROR_CHARS
    assert not fail_fast.error_text(at_limit).startswith("...")


def test_a_failure_records_its_signature_and_its_full_error() -> None:
    try:
        raise ValueError("no file /runs/s/trial_7/x.pt in study s.adam")
    except ValueError as err:
        attrs = fail_fast.failure_attrs(err, {"/runs/s/trial_7": "<trial dir>", "s.adam": "<study>"})
    assert set(attrs) == {fail_fast.SIGNATURE, fail_fast.ERROR}
    assert attrs[fail_fast.SIGNATURE] == "ValueError: no file <trial dir>/x.pt in study <study>"
    assert attrs[fail_fast.ERROR].startswith("Traceback (most recent call last):")
    assert attrs[fail_fast.ERROR].endswith("ValueError: no file /runs/s/trial_7/x.pt in study s.adam")


def test_a_halt_is_read_from_the_attributes_given_else_from_the_studies() -> None:
    study = optuna.create_study()
    assert fail_fast.halted([study]) is None
    record = {"signature": "ValueError: x", "trials": [1, 2, 3]}
    assert fail_fast.halted([study], [{}, {fail_fast.HALT: record}]) == record  # read already
    assert fail_fast.halted([study], [{}]) is None
    fail_fast.halt([study], record)
    assert fail_fast.halted([study]) == record and fail_fast.halted([study], [{}]) is None
