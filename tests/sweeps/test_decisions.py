"""The decisions the slow end-to-end tests exercise, each checked fast against a table
written here: what a fit's result becomes, what counts toward the budget, what is retried,
and where a retry resumes from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from sweeps.run import outcome as outcome_mod
from sweeps.search.budget import counts_toward_budget, retryable
from trainer.errors import UserError
from trainer.result import FitResult

CONFIG = {"dataset": {"task": "classification"}, "trainer": {}}


def _result(status: str = "completed", accs: tuple[float, ...] = (0.5, 0.9, 0.7),
            best: float = 0.9) -> FitResult:
    history = [{"epoch": i + 1, "val/acc": a, "val/loss": 1 - a} for i, a in enumerate(accs)]
    return FitResult(status, None, history, [], {"best/val_acc": best}, "out", "cpu", 1.0,
                     config=CONFIG)


def test_the_objective_is_the_best_epoch_or_the_last_one() -> None:
    result = _result()  # best epoch 2 (0.9), last epoch 3 (0.7): they differ
    assert outcome_mod.objective_value(result, "best") == 0.9
    assert outcome_mod.objective_value(result, "last") == 0.7


class _Pruned:
    pruned_at = 2


class _NotPruned:
    pruned_at = None


@pytest.mark.parametrize(("result", "reporter", "state", "value"), [
    (_result(), None, "complete", 0.9),
    (_result("diverged"), None, "diverged", None),
    (_result("stopped"), _Pruned(), "pruned", None),
    (_result("stopped"), _NotPruned(), "complete", 0.9),  # stopped, not by the pruner
    (_result(accs=()), None, "failed", None),  # no epoch finished
    (_result(best=float("nan")), None, "diverged", None),  # a non-finite objective
    (_result(best=float("inf")), None, "diverged", None),
])
def test_what_a_fit_becomes(result: FitResult, reporter: Any, state: str, value: float | None) -> None:
    got = outcome_mod.outcome_of(result, reporter, "best")
    assert (got.state, got.value) == (state, value)


def _failed(**attrs: Any) -> optuna.trial.FrozenTrial:
    return create_trial(state=TrialState.FAIL, params={"lr": 0.1},
                        distributions={"lr": FloatDistribution(1e-3, 1.0)}, user_attrs=attrs)


def _finished(state: TrialState) -> optuna.trial.FrozenTrial:
    return create_trial(state=state, value=0.5 if state == TrialState.COMPLETE else None,
                        params={"lr": 0.1}, distributions={"lr": FloatDistribution(1e-3, 1.0)})


CFG = {"trainer": {}}
BUDGET_AND_RETRY = [  # (trial, counts toward the budget, retried)
    (_finished(TrialState.COMPLETE), True, False),
    (_finished(TrialState.PRUNED), True, False),
    (_failed(state="failed", failure_reason="RuntimeError: boom", config=CFG), True, False),
    (_failed(state="diverged", failure_reason="diverged: nan", config=CFG), True, False),
    (_failed(failure_reason="worker died (exit code -9)", config=CFG), False, True),
    (_failed(failure_reason="interrupted (SIGTERM)", config=CFG), False, True),
    (_failed(config=CFG), False, True),  # failed by Optuna for a missed heartbeat
    (_failed(state="complete", config=CFG), False, True),  # died between its record and the tell
    (_failed(failure_reason="worker died (exit code -9)"), False, False),  # before its config
    # a worker that marked its own trial interrupted: not the trial's fault
    (_failed(state="failed", failure_reason="interrupted (Ctrl-C)", config=CFG), False, True),
]


@pytest.mark.parametrize(("trial", "counts", "retried"), BUDGET_AND_RETRY,
                         ids=[str(i) for i in range(len(BUDGET_AND_RETRY))])
def test_what_counts_toward_the_budget_and_what_is_retried(trial, counts: bool, retried: bool) -> None:
    assert counts_toward_budget(trial) is counts
    assert retryable(trial) is retried


def test_a_running_trial_counts_and_is_not_retried() -> None:
    study = optuna.create_study()
    running = study.ask()
    frozen = study.get_trials()[running.number]
    assert counts_toward_budget(frozen) and not retryable(frozen)


class _Fits:
    """Stands in for `trainer.loop.fit`: records the resume path of each call."""

    def __init__(self, first_raises: Exception | None = None) -> None:
        self.resumes: list[str | None] = []
        self.first_raises = first_raises

    def __call__(self, cfg: dict, callbacks: list, output_dir: Path) -> str:
        self.resumes.append(cfg["trainer"]["resume"])
        if self.first_raises is not None and len(self.resumes) == 1:
            raise self.first_raises
        return "result"


class _Trial:
    def __init__(self, attrs: dict[str, Any]) -> None:
        self.user_attrs, self.number = attrs, 7

    def report(self, *_: Any) -> None:
        pass


def _runner() -> Any:
    from types import SimpleNamespace

    from sweeps.run.trial import TrialRunner

    runner = TrialRunner.__new__(TrialRunner)
    runner.s = SimpleNamespace(uri="sqlite:///unused.db", spec=SimpleNamespace(checkpoint_every_s=10.0))
    runner.checkpoint_mode = "last"
    return runner


@pytest.mark.parametrize(("retry", "checkpoint", "resumed"), [
    (True, True, "last"),  # a retry with its lost attempt's checkpoint resumes from it
    (True, False, None),  # a retry without one starts from scratch
    (False, True, None),  # a first attempt never resumes, whatever lies in its folder
    (False, False, None),
])
def test_where_a_trial_resumes_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, retry: bool,
                                    checkpoint: bool, resumed: str | None) -> None:
    from sweeps.run import checkpoints, trial

    fits = _Fits()
    monkeypatch.setattr(trial, "fit", fits)
    monkeypatch.setattr(trial, "TrialLogger", lambda *a, **k: None)
    if checkpoint:
        (tmp_path / checkpoints.LAST).parent.mkdir(parents=True)
        (tmp_path / checkpoints.LAST).write_bytes(b"ckpt")
    attrs = {"retry_of": 3} if retry else {}
    result, _ = _runner()._fit_resumable({"trainer": {}}, _Trial(attrs), None, None, tmp_path)
    assert result == "result"
    assert fits.resumes == [str(tmp_path / checkpoints.LAST) if resumed else None]


def test_a_checkpoint_that_cannot_be_resumed_is_retried_from_scratch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sweeps.run import checkpoints, trial

    fits = _Fits(first_raises=UserError("trainer.resume: the checkpoint was made with a different config"))
    monkeypatch.setattr(trial, "fit", fits)
    monkeypatch.setattr(trial, "TrialLogger", lambda *a, **k: None)
    (tmp_path / checkpoints.LAST).parent.mkdir(parents=True)
    (tmp_path / checkpoints.LAST).write_bytes(b"ckpt")
    _runner()._fit_resumable({"trainer": {}}, _Trial({"retry_of": 3}), None, None, tmp_path)
    assert fits.resumes == [str(tmp_path / checkpoints.LAST), None]
    # any other error of the first attempt is the trial's own: not hidden by a second one
    other = _Fits(first_raises=UserError("optimizer.lr=-1: must be > 0"))
    monkeypatch.setattr(trial, "fit", other)
    with pytest.raises(UserError, match=r"optimizer\.lr"):
        _runner()._fit_resumable({"trainer": {}}, _Trial({"retry_of": 3}), None, None, tmp_path)
    assert other.resumes == [str(tmp_path / checkpoints.LAST)]
