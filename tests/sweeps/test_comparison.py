"""The comparison on synthetic studies whose answer is known: ranking, paired verdicts,
statistical honesty without confirm runs, time to target, budget curves, the report files."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from sweeps.report import comparison
from sweeps.report import tables as report_tables
from sweeps.report.document import write_report

SEEDS = [1, 2, 3, 4, 5]
BASE = {"dataset": {"name": "mnist_5k", "val_size": 1000, "test_size": 1000, "split_seed": 1234},
        "model": {"name": "mlp"}, "trainer": {"epochs": 3, "seed": 0},
        "optimizer": {"name": "adam"}, "schedule": {"name": "constant"}}
SPACE = {"lr": {"type": "float", "key": "optimizer.lr", "low": 1e-4, "high": 1e-1, "log": True}}


def _run_attrs(val: float, test: float, epochs: int = 3, optimizer: str = "adam") -> dict:
    curve = [val - 0.05, val - 0.02, val][:epochs]
    return {"final": {"best/val_acc": val, "best/epoch": float(epochs), "test/acc": test,
                      "test/loss": 1 - test},
            "curves": {"val/acc": curve, "val/loss": [1 - v for v in curve],
                       "gap/acc": [0.01] * epochs, "gap/loss": [0.02] * epochs,
                       "time/epoch_s": [0.5] * epochs, "train/loss": [0.5] * epochs,
                       "train/acc": [v + 0.01 for v in curve], "lr": [1e-3] * epochs},
            "epochs": epochs, "optimizer": optimizer,
            "config": {**BASE, "optimizer": {"name": optimizer}}}


def _search(name: str, optimizer: str, values: list[float], lrs: list[float]) -> optuna.Study:
    study = optuna.create_study(study_name=f"s.{optimizer}", direction="maximize")
    for attr, value in {"sweep": "s", "optimizer": optimizer, "base_config": BASE,
                        "search_space": SPACE, "objective": "best",
                        "fixed_edges": {"lr": [False, False]}}.items():
        study.set_user_attr(attr, value)
    for v, lr in zip(values, lrs, strict=True):
        study.add_trial(create_trial(value=v, params={"lr": lr},
                                     distributions={"lr": FloatDistribution(1e-4, 1e-1, log=True)},
                                     user_attrs={**_run_attrs(v, v - 0.01, optimizer=optimizer),
                                                 "mlflow_run_id": f"run-{optimizer}"}))
    return study


def _confirm(runs: dict[tuple[str, int], list[tuple[float, float]]]) -> optuna.Study:
    study = optuna.create_study(study_name="s.confirm", direction="maximize")
    for (source, number), values in runs.items():
        opt = source.split(".")[1]
        for seed, (val, test) in zip(SEEDS, values, strict=False):
            study.add_trial(create_trial(value=val, user_attrs={
                **_run_attrs(val, test, optimizer=opt), "kind": "confirm", "source_study": source,
                "source_trial": number, "optimizer": opt, "seed": seed,
                "source_run_id": f"run-{opt}"}))
    return study


@pytest.fixture
def studies() -> list[optuna.Study]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return [_search("s", "adam", [0.90, 0.93, 0.85], [1e-3, 0.095, 1e-2]),  # best lr at the high edge
            _search("s", "sgd", [0.923, 0.80], [1e-2, 3e-3]),
            _search("s", "rmsprop", [0.925, 0.88], [2e-3, 1e-3])]


def test_without_confirm_runs_there_is_no_ranking_only_what_to_run(studies) -> None:
    c = comparison.build(studies, None)
    assert not c.confirmed and c.ranking == [] and c.pairs == []
    verdict = " ".join(report_tables.verdict(c))
    assert "No confirm runs yet" in verdict and "sweeps confirm s" in verdict
    # search values 0.93 / 0.925 / 0.923 all lie within one SE (0.0081) of the top: say so
    assert c.indistinguishable_from_search_best() == ["adam", "rmsprop", "sgd"]
    assert c.se(0.93) == pytest.approx(math.sqrt(0.93 * 0.07 / 1000))
    # the boundary warning of adam's best trial (lr 0.095 of [1e-4, 0.1], log scale)
    adam = next(r for r in c.rows if r.optimizer == "adam")
    assert [(h.dim, h.edge) for h in adam.boundary[1]] == [("lr", "high")]


def test_confirm_runs_rank_and_pair_over_shared_seeds(studies) -> None:
    # adam clearly best on every seed; rmsprop a hair behind (noise); sgd far behind
    confirm = _confirm({
        ("s.adam", 1): [(0.930, 0.925), (0.932, 0.928), (0.929, 0.926), (0.931, 0.924), (0.930, 0.927)],
        ("s.rmsprop", 0): [(0.929, 0.926), (0.933, 0.925), (0.928, 0.927), (0.930, 0.926),
                           (0.931, 0.926)],
        ("s.sgd", 0): [(0.90, 0.89), (0.905, 0.893), (0.899, 0.891), (0.902, 0.888), (0.901, 0.892)],
    })
    c = comparison.build(studies, confirm)
    assert [r.optimizer for r in c.ranking] == ["adam", "rmsprop", "sgd"]
    assert c.seeds == SEEDS
    pairs = {p.optimizer: p for p in c.pairs}
    assert not pairs["rmsprop"].significant and "not significant at K=5" in pairs["rmsprop"].sentence()
    assert pairs["sgd"].significant and "significant at K=5 (0.05, Holm" in pairs["sgd"].sentence()
    assert pairs["sgd"].test.mean_diff == pytest.approx(0.9260 - 0.8908)
    assert pairs["sgd"].sentence().startswith("adam vs sgd: test acc difference +3.5 pp (95 % CI")
    assert "coarse" not in pairs["sgd"].sentence()  # K=5: no caveat
    assert report_tables.verdict(c)[-1] == (
        "In short: adam ranks first on validation accuracy over 5 seeds; rmsprop cannot be told "
        "apart from it on test accuracy at K=5; sgd is significantly behind it on test accuracy.")
    rep = c.ranking[0].representative
    assert rep is not None and rep.val_acc.n == 5 and rep.test_acc.mean == pytest.approx(0.926)
    assert rep.gap_acc.mean == pytest.approx(0.01)  # at the best-validation epoch
    # time to target: 99 % of adam's mean val acc (0.9304); adam reaches it at epoch 3 (1.5 s)
    assert c.target == pytest.approx(0.99 * 0.9304)
    reach = c.ranking[0].reach
    assert reach is not None and reach.reached == 5 and reach.epochs.mean == 3.0
    assert reach.seconds.mean == pytest.approx(1.5)
    # tuning budget from the completed search trials, one curve per optimizer
    assert c.budget["adam"][0].expected == pytest.approx((0.90 + 0.93 + 0.85) / 3)
    assert c.budget["adam"][-1].expected < 0.93  # the best of 3 draws is not always the max


def test_a_diverged_seed_drops_out_of_the_pairing(studies) -> None:
    confirm = _confirm({("s.adam", 1): [(0.93, 0.92)] * 3, ("s.sgd", 0): [(0.90, 0.89)] * 3})
    diverged = confirm.trials[-1]  # sgd seed 3
    confirm2 = optuna.create_study(direction="maximize")
    for t in confirm.trials:
        if t.number == diverged.number:
            confirm2.add_trial(create_trial(state=TrialState.FAIL, user_attrs={
                **t.user_attrs, "state": "diverged"}))
        else:
            confirm2.add_trial(t)
    c = comparison.build(studies, confirm2)
    sgd = next(r for r in c.rows if r.optimizer == "sgd").representative
    assert sgd is not None and sgd.diverged == 1 and sgd.val_acc.n == 2
    (pair,) = c.pairs
    assert pair.seeds == [1, 2] and pair.test.n == 2


def test_report_files_say_what_the_data_supports(studies, tmp_path: Path) -> None:
    _, (html, md) = write_report(studies, None, tmp_path)
    text = md.read_text()
    assert "No confirm runs yet" in text and "### Ranking" not in text
    assert "split SE" in text and "not a ranking" in text
    assert "lr = 0.095 is within 5% of the high edge" in text
    assert "Tuning budget" in text
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "Plotly.newPlot" in page
    assert "<script src" not in page  # self-contained: plotly.js is inline
    for title in ("optimization history", "parameter importances", "parallel coordinates", "slice"):
        assert f"s.adam: {title}" in page


def test_few_seeds_get_a_caveat_beside_the_verdict(studies) -> None:
    confirm = _confirm({("s.adam", 1): [(0.930, 0.925), (0.932, 0.928)],
                        ("s.sgd", 0): [(0.90, 0.89), (0.905, 0.90)]})
    pair = next(p for p in comparison.build(studies, confirm).pairs if p.optimizer == "sgd")
    assert "not significant at K=2" in pair.sentence()
    assert "with 2 seeds the bootstrap interval is coarse" in pair.sentence()


def test_a_regression_sweep_ranks_and_confirms_the_lowest_losses() -> None:
    """Minimised studies: the best search trial, the trials `confirm` takes, the ranking and
    the budget curve are the lowest values, and nothing speaks of accuracy."""
    from sweeps.search.confirm_jobs import top_trials

    def study(optimizer: str, losses: list[float]) -> optuna.Study:
        s = optuna.create_study(study_name=f"r.{optimizer}", direction="minimize")
        for attr, value in {"sweep": "r", "optimizer": optimizer, "base_config": BASE, "task": "regression",
                            "search_space": SPACE, "objective": "best",
                            "fixed_edges": {"lr": [False, False]}}.items():
            s.set_user_attr(attr, value)
        for v in losses:
            s.add_trial(create_trial(value=v, params={"lr": 0.01},
                                     distributions={"lr": FloatDistribution(1e-4, 1e-1, log=True)},
                                     user_attrs={"final": {"best/val_loss": v, "best/epoch": 1.0,
                                                           "test/loss": v + 0.01},
                                                 "curves": {"val/loss": [v]}, "epochs": 1,
                                                 "optimizer": optimizer, "config": BASE}))
        return s

    studies = [study("sgd", [0.9, 0.4, 0.7]), study("adam", [0.5, 0.6, 0.3])]
    top = top_trials(studies, 2)
    assert [t.number for _, t in top["sgd"]] == [1, 2] and [t.number for _, t in top["adam"]] == [2, 0]
    c = comparison.build(studies, None)
    assert not c.task.maximize
    assert {r.optimizer: r.search_best.number for r in c.rows} == {"sgd": 1, "adam": 2}
    assert c.budget["adam"][0].expected == pytest.approx((0.5 + 0.6 + 0.3) / 3)
    assert c.budget["adam"][-1].expected < c.budget["adam"][0].expected  # more trials: a lower best
    assert c.indistinguishable_from_search_best() == [] and math.isnan(c.se(0.3))
    text = report_tables.search_table(c).markdown()
    assert "best val loss" in text and "acc" not in text and "split SE" not in text
