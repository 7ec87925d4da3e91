"""Stop a sweep whose trials keep failing the same way, instead of burning its budget.

A trial that raises records a *signature* with its failure: the exception's type and the
first line of its message, with what is the trial's own (its output folder, its study,
its number) masked, so that one cause gives one signature on every trial. When the last
`sweep.fail_fast` trials to finish in the sweep all failed with one signature, the worker
that sees it writes a *halt* into every study: every worker stops claiming, the launch
says why (with one trial's full error and the command that runs that trial alone) and
exits 1. Trials that ended otherwise (complete, pruned, diverged, or a failure of another
cause) break the streak; infrastructure failures (Ctrl-C, a dead worker, a lost
heartbeat: retried from their checkpoints) neither count nor break it. A relaunch clears
the halt, and the budget not yet used is still there.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from sweeps.search.budget import UNCOUNTED_REASONS

SIGNATURE = "failure_signature"  # trial attr: the cause, comparable between trials
ERROR = "failure_error"  # trial attr: the full error (traceback), for the halt's message
HALT = "halted"  # study attr: why the sweep stopped (None once a launch clears it)
ERROR_CHARS = 6000  # the end of a traceback kept with the trial


def signature(err: BaseException, own: Mapping[str, str]) -> str:
    """`Type: first line`, the trial's own strings (`own`: its folder, study) masked."""
    text = (str(err).strip().splitlines() or [""])[0][:300]
    for value, mask in sorted(own.items(), key=lambda kv: -len(kv[0])):
        if value:
            text = text.replace(value, mask)
    text = re.sub(r"trial_\d+", "trial_N", text)
    return f"{type(err).__name__}: {text}" if not text.startswith(type(err).__name__) else text


def failure_attrs(err: BaseException, own: Mapping[str, str]) -> dict[str, str]:
    """What a trial that raised records beside its reason: its signature and full error."""
    return {SIGNATURE: signature(err, own), ERROR: error_text(err)}


def error_text(err: BaseException) -> str:
    """The full error: the traceback of the exception being handled (its last lines)."""
    text = "".join(traceback.format_exception(err)).rstrip()
    return text if len(text) <= ERROR_CHARS else "...\n" + text[-ERROR_CHARS:]


def _streak_part(t: FrozenTrial) -> bool:
    """Whether a finished trial takes part in a streak: not an infrastructure failure."""
    if t.state != TrialState.FAIL:
        return True
    reason = str(t.user_attrs.get("failure_reason", ""))
    return "state" in t.user_attrs and not reason.startswith(UNCOUNTED_REASONS)


def check(studies: Sequence[optuna.Study], limit: int) -> dict[str, Any] | None:
    """The halt record, when the last `limit` trials to finish all failed with one signature."""
    if limit <= 0:
        return None
    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    finished = [(t.datetime_complete, t.number, study, t) for study in studies
                for t in study.get_trials(deepcopy=False, states=done)
                if t.datetime_complete is not None and _streak_part(t)]
    last = sorted(finished, key=lambda x: (x[0], x[1]))[-limit:]
    sigs = {t.user_attrs.get(SIGNATURE) if t.state == TrialState.FAIL else None for *_, t in last}
    if len(last) < limit or len(sigs) != 1 or None in sigs:
        return None
    _, _, study, trial = last[-1]
    return {"signature": sigs.pop(), "count": limit, "study": study.study_name,
            "trial": trial.number, "optimizer": trial.user_attrs.get("optimizer"),
            "reason": trial.user_attrs.get("failure_reason"),
            "error": trial.user_attrs.get(ERROR), "command": _command(trial, studies)}


def _command(trial: FrozenTrial, studies: Sequence[optuna.Study]) -> str | None:
    """`python -m trainer ...` for the trial's config, where it got as far as one."""
    cfg = trial.user_attrs.get("config")
    if not isinstance(cfg, dict):
        return None
    from sweeps.report.summary import trainer_command
    from sweeps.search.studies import config_dir_for
    from trainer.api import overrides_for

    where = config_dir_for(studies)
    return trainer_command(overrides_for(cfg, config_dir=where), where)


def halt(studies: Sequence[optuna.Study], record: Mapping[str, Any]) -> None:
    for study in studies:
        study.set_user_attr(HALT, dict(record))


def halted(studies: Sequence[optuna.Study],
           attrs: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any] | None:
    """The halt written by a worker of the current launch (None: the sweep may run)."""
    for a in attrs if attrs is not None else [s.user_attrs for s in studies]:
        if a.get(HALT):
            return dict(a[HALT])
    return None


def clear(studies: Sequence[optuna.Study]) -> dict[str, Any] | None:
    """A launch starts afresh: the last halt (returned) is lifted."""
    last = halted(studies)
    if last is not None:
        for study in studies:
            if study.user_attrs.get(HALT):
                study.set_user_attr(HALT, None)
    return last


def describe(record: Mapping[str, Any], sweep: str) -> list[str]:
    """What the launch and `sweeps worker` print: the reason once, one trial's full error,
    the command that runs it alone, and what to do."""
    ref = f"{record.get('study')} #{record.get('trial')}"
    lines = [f"stopped: the last {record.get('count')} trials failed with the same error "
             f"(sweep.fail_fast={record.get('count')}): {record.get('signature')}",
             f"the full error of trial {ref}:"]
    lines += ["  " + ln for ln in str(record.get("error") or record.get("reason") or "").splitlines()]
    command = record.get("command")
    lines.append(f"run that trial alone: {command}" if command else
                 "that trial failed before its trainer config was made (sampling or composing it)")
    lines.append(f"fix the cause and run the same launch again: the budget not used yet is "
                 f"still there (`sweeps status {sweep}`); sweep.fail_fast=0 turns this off")
    return lines
