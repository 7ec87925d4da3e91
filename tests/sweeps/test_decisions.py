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


def test_a_running_trial_counts_and_a_waiting_one_does_not() -> None:
    study = optuna.create_study()
    running = study.ask()
    frozen = study.get_trials()[running.number]
    assert counts_toward_budget(frozen) and not retryable(frozen)
    study.enqueue_trial({"x": 1.0})  # queued (a retry about to be claimed): not used yet
    (waiting,) = study.get_trials(states=(TrialState.WAITING,))
    assert not counts_toward_budget(waiting) and not retryable(waiting)


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


def test_an_outcome_says_why() -> None:
    diverged = _result("diverged")
    diverged.stop_reason = "non-finite training loss (nan) at epoch 2"
    assert outcome_mod.outcome_of(diverged, None, "best").reason == \
        "diverged: non-finite training loss (nan) at epoch 2"
    pruned = _result("stopped")
    pruned.stop_reason = "pruned at epoch 2"
    assert outcome_mod.outcome_of(pruned, _Pruned(), "best").reason == "pruned at epoch 2"
    assert outcome_mod.outcome_of(_result(accs=()), None, "best").reason == "no epoch finished"
    assert outcome_mod.outcome_of(_result(), None, "last").value == 0.7  # the objective asked for
    assert outcome_mod.outcome_of(_result(), None, "best").reason is None


def test_what_a_trial_records_of_its_fit() -> None:
    result = _result(accs=(0.5, 0.75))
    result.history[1]["lr"] = float("nan")
    result.steps = [{"step": 1, "batch/lr": 0.1, "batch/loss": 2.0}, {"step": 2, "batch/loss": 1.9},
                    {"step": 3, "batch/lr": float("inf")}]
    result.final = {"best/val_acc": 0.75, "test/acc": float("nan")}
    attrs = outcome_mod.result_attrs(result)
    assert attrs == {
        "final": {"best/val_acc": 0.75, "test/acc": None},  # JSON: non-finite becomes null
        "curves": {"val/loss": [0.5, 0.25], "val/acc": [0.5, 0.75], "lr": [None, None]},
        "step_lrs": {"step": [1.0, 3.0], "lr": [0.1, None]},  # only the steps that logged a rate
        "epochs": 2, "device": "cpu", "duration_s": 1.0,
    }


class _Recorder:
    """A trial that records its reports and prunes when told to."""

    def __init__(self, prune_at: int | None = None) -> None:
        self.reports: list[tuple[float, int]] = []
        self.prune_at = prune_at

    def report(self, value: float, step: int) -> None:
        self.reports.append((value, step))

    def should_prune(self) -> bool:
        return self.prune_at is not None and self.reports[-1][1] >= self.prune_at


class _Run:
    def __init__(self, history: list[dict[str, float]]) -> None:
        self.cfg, self.history, self.stops = CONFIG, history, []

    def request_stop(self, why: str) -> None:
        self.stops.append(why)


def test_a_resumed_trial_reports_the_epochs_it_trained_before_and_the_pruner_stops_it() -> None:
    trial = _Recorder(prune_at=3)
    reporter = outcome_mod.OptunaReporter(trial)  # type: ignore[arg-type]
    run = _Run([{"epoch": 1, "val/acc": 0.4}, {"epoch": 2, "val/acc": float("nan")}])
    reporter.on_fit_start(run)  # type: ignore[arg-type]
    assert reporter.resumed_from == 2 and trial.reports == [(0.4, 1)]  # NaN is never reported
    reporter.on_epoch_end(run, 3, {"val/acc": float("nan")})  # type: ignore[arg-type]
    assert trial.reports == [(0.4, 1)] and run.stops == []
    reporter.on_epoch_end(run, 3, {"val/acc": 0.6})  # type: ignore[arg-type]
    assert trial.reports[-1] == (0.6, 3)
    assert reporter.pruned_at == 3 and run.stops == ["pruned at epoch 3"]


def test_a_studys_budget_used_finished_and_spent() -> None:
    """Every kind of trial of the table above in one study: what it has used, what has
    finished, and whether it is spent (also with a running trial, which uses budget but
    keeps the study going)."""
    from sweeps.search import budget

    study = optuna.create_study()
    for trial, _, _ in BUDGET_AND_RETRY:
        study.add_trial(trial)
    counted = sum(c for _, c, _ in BUDGET_AND_RETRY)  # 4: complete, pruned, failed, diverged
    used, failed = budget.used_and_failed(study)
    assert used == counted == budget.used_budget(study) == budget.finished(study)
    assert [t.number for t in failed] == [t.number for t in study.get_trials() if t.state == TrialState.FAIL]
    assert budget.used_budget(study, study.get_trials()[4:7]) == 0  # only the trials it is given
    study.set_user_attr("budget", counted)
    assert budget.spent([study])
    study.set_user_attr("budget", counted + 1)
    assert not budget.spent([study])
    study.ask()  # a running trial: counts, does not finish, and the study is not done
    assert budget.used_and_failed(study)[0] == budget.used_budget(study) == counted + 1
    assert budget.finished(study) == counted and not budget.spent([study])
    other = optuna.create_study()
    other.set_user_attr("budget", 0)
    assert budget.spent([other]) and not budget.spent([other, study])
    assert budget.spent([])
    assert budget.spent([optuna.create_study()])  # no budget recorded: nothing to spend


def test_a_reporter_whose_fit_never_started_has_resumed_and_pruned_nothing() -> None:
    """A fit that stops before its first epoch (or a reporter used without `on_fit_start`):
    nothing resumed, nothing pruned, so a stopped run is not taken for a pruned one, and an
    epoch is reported on the classification objective."""
    trial = _Recorder()
    reporter = outcome_mod.OptunaReporter(trial)  # type: ignore[arg-type]
    assert reporter.resumed_from == 0 and reporter.pruned_at is None
    assert outcome_mod.outcome_of(_result("stopped"), reporter, "best").state == "complete"
    reporter.on_epoch_end(_Run([]), 1, {"val/acc": 0.7, "val/loss": 0.2})  # type: ignore[arg-type]
    assert trial.reports == [(0.7, 1)]


def test_a_non_finite_objective_says_it_diverged() -> None:
    got = outcome_mod.outcome_of(_result(best=float("nan")), None, "best")
    assert (got.state, got.value) == ("diverged", None)
    assert got.reason == "diverged: non-finite validation accuracy"


@pytest.mark.parametrize(("heartbeat_s", "wait_s"), [(30, 2.0), (2, 2.0), (1, 1.0), (None, 1.0)])
def test_an_idle_worker_looks_again_within_seconds_not_a_heartbeat_later(heartbeat_s: int | None,
                                                                         wait_s: float) -> None:
    """Waiting for the others' last trials, a worker rechecks every 2 s at most: it leaves soon
    after the sweep's last trial ends (it used to sleep a whole 30 s heartbeat)."""
    from sweeps.run.worker import _recheck_s

    assert _recheck_s(heartbeat_s) == wait_s
