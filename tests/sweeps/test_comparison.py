"""The comparison on synthetic studies whose answer is known: ranking, paired verdicts,
statistical honesty without confirm runs, time to target, budget curves, the report files."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from sweeps.report import comparison, pairs
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


def test_without_confirm_runs_there_is_no_ranking_only_what_to_run(studies, monkeypatch) -> None:
    monkeypatch.setattr(comparison.boundary, "MIN_TRIALS", 3)  # adam's study has 3 trials
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
    assert sorted(adam.boundary) == [1]  # without --top: each optimizer's best trial only


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
    assert pairs["sgd"].sentence().startswith("adam vs sgd: sgd worse by 3.5 pp on test acc (95 % CI")
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
    assert pair.seeds == [1, 2] and pair.test.n == 2 and pair.seeds_run == [1, 2, 3]


def test_a_diverged_confirm_seed_is_counted_the_same_everywhere(studies) -> None:
    """Five seeds run, sgd's seed 3 diverged: every table, sentence and recommendation says
    K=4 for the pair, 4 of 5 for sgd, names the lost run and why, and asks for no seed
    that was already run."""
    confirm = _confirm({
        ("s.adam", 1): [(0.930, 0.925), (0.932, 0.928), (0.929, 0.926), (0.931, 0.924), (0.930, 0.927)],
        ("s.sgd", 0): [(0.90, 0.89), (0.905, 0.893), (0.899, 0.891), (0.902, 0.888), (0.901, 0.892)],
    })
    lost = next(t for t in confirm.trials if t.user_attrs["optimizer"] == "sgd" and t.user_attrs["seed"] == 3)
    rebuilt = optuna.create_study(study_name="s.confirm", direction="maximize")
    for t in confirm.trials:
        rebuilt.add_trial(t if t.number != lost.number else create_trial(
            state=TrialState.FAIL, user_attrs={**t.user_attrs, "state": "diverged",
                                               "failure_reason": "diverged: non-finite training "
                                                                 "loss (inf) at epoch 2"}))
    c = comparison.build(studies[::2] + studies[1:2], rebuilt)  # adam, rmsprop (no runs), sgd
    (pair,) = c.pairs
    assert len(pair.seeds) == 4 and len(pair.seeds_run) == 5
    sentence = pair.sentence()
    assert "at K=4" in sentence and "--seeds 5" not in sentence
    assert "1 of 5 seeds did not complete" in sentence and "`sweeps confirm --seeds 6`" in sentence
    verdict = report_tables.verdict(c)
    assert any(line == "sgd #0 used 4 of its 5 seeds; left out of every mean and test: seed 3: "
               "diverged: non-finite training loss (inf) at epoch 2." for line in verdict)
    assert verdict[-1].startswith("In short: adam ranks first on validation accuracy over 4-5 seeds")
    assert "K=5" not in " ".join(verdict)
    ranking = report_tables.ranking_table(c)
    assert [row[3] for row in ranking.rows] == ["5", "4 of 5"]
    assert ranking.rows[1][-3].endswith("(K=4)")
    confirmed = report_tables.confirmed_table(c)
    assert sorted(row[2] for row in confirmed.rows) == ["4 of 5", "5"]



def test_the_sign_convention_is_stated_once_in_the_report(studies, tmp_path: Path) -> None:
    confirm = _confirm({("s.adam", 1): [(0.93, 0.925), (0.932, 0.928), (0.929, 0.926)],
                        ("s.sgd", 0): [(0.90, 0.89), (0.905, 0.893), (0.899, 0.891)]})
    _, (_, md) = write_report(studies[:2], confirm, tmp_path)
    text = md.read_text()
    assert text.count("Differences are written as how much worse than the best") == 1
    assert "test acc: worse than best by [95 % CI]" in text and "sgd worse by 3.5 pp on test acc" in text


def test_differences_read_the_same_way_for_an_accuracy_and_a_loss(studies) -> None:
    """sgd is worse than adam on both: a positive worse-by, and the words "worse by", on the
    accuracy and on the loss alike (the loss once showed a negative difference)."""
    confirm = _confirm({
        ("s.adam", 1): [(0.930, 0.925), (0.932, 0.928), (0.929, 0.926), (0.931, 0.924), (0.930, 0.927)],
        ("s.sgd", 0): [(0.90, 0.89), (0.905, 0.893), (0.899, 0.891), (0.902, 0.888), (0.901, 0.892)],
    })
    acc = comparison.build(studies[:2], confirm)
    (pair,) = acc.pairs
    assert pair.test.mean_diff > 0 and pair.behind and "sgd worse by 3.5 pp" in pair.sentence()
    assert "3.5 pp [" in report_tables.ranking_table(acc).rows[1][-3]
    assert "positive is worse (a lower accuracy)" in report_tables.sign_convention(acc)
    # the loss side: test_a_regression_sweep_with_confirm_runs_ranks_pairs_and_reaches_the_lowest_losses


def test_edges_are_checked_only_in_studies_with_enough_trials(studies) -> None:
    """Three trials of adam with the best lr at the top of its range: too few to say that the
    range was too narrow, so no warning, and the report says which studies were not checked."""
    assert comparison.boundary.MIN_TRIALS > 3
    c = comparison.build(studies, None)
    assert all(hits == [] for r in c.rows for hits in r.boundary.values())
    assert c.unchecked == {"s.adam": 3, "s.sgd": 2, "s.rmsprop": 2}
    (line,) = report_tables.boundary_lines(c)
    assert line.startswith(f"Not checked in studies with fewer than {comparison.boundary.MIN_TRIALS} "
                           "completed trials") and "s.adam (3)" in line
    # enough trials: the same best trial warns
    adam = studies[0]
    for v in (0.5, 0.6, 0.55, 0.52, 0.58):
        adam.add_trial(create_trial(value=v, params={"lr": 1e-3},
                                    distributions={"lr": FloatDistribution(1e-4, 1e-1, log=True)},
                                    user_attrs=_run_attrs(v, v - 0.01)))
    c = comparison.build(studies, None)
    assert "s.adam" not in c.unchecked
    row = next(r for r in c.rows if r.optimizer == "adam")
    assert [(h.dim, h.edge) for h in row.boundary[1]] == [("lr", "high")]


def test_report_files_say_what_the_data_supports(studies, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(comparison.boundary, "MIN_TRIALS", 3)  # adam's study has 3 trials
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


# --- the parts of the comparison one at a time, against values written out here ---------

from sweeps.report.stats import PairedComparison, SeedSummary  # noqa: E402
from trainer.tasks import CLASSIFICATION, REGRESSION  # noqa: E402


def _frozen(final: dict | None = None, curves: dict | None = None, state: TrialState = TrialState.COMPLETE,
            value: float = 0.5, **attrs: object):
    return create_trial(state=state, value=value if state == TrialState.COMPLETE else None,
                        user_attrs={"final": final or {}, "curves": curves or {}, **attrs})


def test_a_summary_reads_mean_spread_and_interval() -> None:
    assert comparison.fmt_summary(None) == "-"
    assert comparison.fmt_summary(SeedSummary(1, 0.5, math.nan, math.nan, math.nan)) == "0.5000 (1 seed)"
    s = SeedSummary(2, 0.91234, 0.01, 0.89, 0.93)
    assert comparison.fmt_summary(s) == "0.9123 ± 0.0100 [0.8900, 0.9300]"
    assert comparison.fmt_summary(s, ci=False) == "0.9123 ± 0.0100"
    assert comparison.fmt_summary(s, digits=2) == "0.91 ± 0.01 [0.89, 0.93]"
    one = SeedSummary(1, 0.5, math.nan, math.nan, math.nan)
    assert comparison.fmt_summary(one, digits=1) == "0.5 (1 seed)"


def test_a_difference_is_written_in_points_for_accuracy_and_units_for_a_loss() -> None:
    acc, loss = pairs._diff_fmt(CLASSIFICATION), pairs._diff_fmt(REGRESSION)
    assert (acc(0.0351), acc(-0.02), acc(0.0)) == ("3.5 pp", "-2.0 pp", "0.0 pp")
    assert (loss(0.012345), loss(-2.5)) == ("0.01235", "-2.5")
    assert pairs.worse_or_better(0.0351, acc) == "worse by 3.5 pp"
    assert pairs.worse_or_better(-0.5, loss) == "better by 0.5"
    assert pairs.worse_or_better(0.0, loss) == "equal"


def test_final_values_are_read_only_when_finite() -> None:
    t = _frozen({"a": 0.0, "b": math.nan, "c": math.inf, "d": 2})
    assert comparison._final(t, "a") == 0.0 and comparison._final(t, "d") == 2.0
    assert [comparison._final(t, k) for k in ("b", "c", "missing")] == [None, None, None]
    assert comparison._final(create_trial(value=1.0), "a") is None  # no "final" at all


@pytest.mark.parametrize(("epoch", "expected"), [(1.0, 0.1), (2.0, 0.2), (3.0, None), (0.0, None),
                                                  (4.0, None), (None, None)])
def test_the_value_at_the_best_epoch_is_the_curve_at_that_epoch(epoch, expected) -> None:
    final = {} if epoch is None else {"best/epoch": epoch}
    t = _frozen(final, {"gap/acc": [0.1, 0.2, None]})
    assert comparison._at_best_epoch(t, "gap/acc") == expected
    assert comparison._at_best_epoch(_frozen({"best/epoch": 1.0}), "gap/acc") is None  # no curve


def test_adam_share_is_the_part_of_the_run_before_the_switch() -> None:
    def share(optimizer: str, config_name: str, epochs: int, switch: float | None):
        final = {} if switch is None else {"switch/epoch": switch}
        return comparison.adam_share(_frozen(final, optimizer=optimizer, epochs=epochs,
                                             config={"optimizer": {"name": config_name}}))

    assert share("adam_to_sgd", "adam_to_sgd", 4, 1.0) == 0.25
    assert share("", "adam_to_sgd", 4, 3.0) == 0.75  # named only in the config
    assert share("adam_to_sgd", "", 8, 2.0) == 0.25  # named only in the attrs
    assert share("adam_to_sgd", "adam_to_sgd", 4, None) == 1.0  # never switched
    assert share("adam_to_sgd", "adam_to_sgd", 4, 6.0) == 1.0  # past the end: capped
    assert share("adam_to_sgd", "adam_to_sgd", 0, 1.0) is None  # no epochs recorded
    assert share("adam", "adam", 4, 1.0) is None
    assert comparison.adam_share(_frozen({}, optimizer="adam", epochs=4, config={})) is None
    assert comparison.adam_share(_frozen({}, optimizer="adam", epochs=4)) is None


def _confirm_run(seed: int, val: float, test: float, *, val_loss: float, test_loss: float,
                 gap: float, gap_loss: float, state: TrialState = TrialState.COMPLETE,
                 switch: float | None = None):
    final = {"best/val_acc": val, "test/acc": test, "test/loss": test_loss, "best/val_loss": val_loss,
             "best/epoch": 1.0, **({"switch/epoch": switch, "switch/step": 10 * switch} if switch else {})}
    return _frozen(final, {"val/loss": [val_loss], "gap/acc": [gap], "gap/loss": [gap_loss]}, state=state,
                   value=val, seed=seed, optimizer="adam_to_sgd", epochs=2)


def test_a_confirmed_config_cuts_each_interval_to_what_its_quantity_can_take() -> None:
    runs = [_confirm_run(3, 0.999, 0.998, val_loss=0.001, test_loss=0.002, gap=0.99, gap_loss=-0.5,
                         switch=1.0),
            _confirm_run(1, 0.95, 0.90, val_loss=0.08, test_loss=0.09, gap=0.5, gap_loss=0.5),
            _confirm_run(2, 0.995, 0.99, val_loss=0.002, test_loss=0.004, gap=0.98, gap_loss=0.0, switch=1.0),
            _confirm_run(4, 0.5, 0.5, val_loss=1.0, test_loss=1.0, gap=0.0, gap_loss=0.0,
                         state=TrialState.FAIL)]
    c = comparison._confirmed("adam_to_sgd", "s.adam_to_sgd", runs[0], runs)
    raw = comparison.stats.summarize
    assert c.seeds == [1, 2, 3, 4] and sorted(c.by_seed) == [1, 2, 3, 4] and c.diverged == 1
    assert c.val_acc.n == 3 and c.val_acc.ci_high == 1.0 and c.test_acc.ci_high == 1.0
    assert c.val_acc.ci_low == raw([0.999, 0.95, 0.995]).ci_low  # not cut below
    assert c.val_loss.ci_low == 0.0 and c.test_loss.ci_low == 0.0  # a built-in loss is positive
    assert c.test_loss.ci_high == raw([0.002, 0.09, 0.004]).ci_high
    assert c.gap_acc.ci_high == 1.0 and c.gap_acc.ci_low == raw([0.99, 0.5, 0.98]).ci_low
    assert c.gap_loss == raw([-0.5, 0.5, 0.0])  # a gap of losses can take any sign
    assert c.val is c.val_acc and c.test is c.test_acc
    assert c.switched == 2 and c.adam_share.mean == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert (c.adam_share.ci_low, c.adam_share.ci_high) == (0.0, 1.0)  # a share lies in [0, 1]
    assert (c.optimizer, c.study, c.trial) == ("adam_to_sgd", "s.adam_to_sgd", runs[0])
    behind = [_confirm_run(s, 0.9, 0.9, val_loss=0.1, test_loss=0.1, gap=g, gap_loss=0.0)
              for s, g in ((1, -0.99), (2, -0.5), (3, -0.98))]
    cut = comparison._confirmed("adam", "s.adam", behind[0], behind).gap_acc
    assert cut.ci_low == -1.0 and cut.ci_high == raw([-0.99, -0.5, -0.98]).ci_high
    # a user's loss may be negative: a regression sweep leaves its interval uncut
    r = comparison._confirmed("adam_to_sgd", "s", runs[0], runs, REGRESSION)
    assert r.val == raw([0.001, 0.08, 0.002]) and r.test == raw([0.002, 0.09, 0.004])
    assert r.val_loss == raw([0.001, 0.08, 0.002]) and r.val_loss.ci_low < 0
    plain = [_frozen({"best/val_acc": 0.9}, value=0.9, seed=1, optimizer="adam", epochs=2)]
    assert comparison._confirmed("adam", "s.adam", plain[0], plain).adam_share is None


def test_reach_is_the_first_epoch_at_the_target_and_the_seconds_until_then() -> None:
    runs = [_frozen(curves={"val/acc": [0.5, None, 0.8, 0.9, 0.95],
                            "time/epoch_s": [1.0, 2.0, None, 4.0, 8.0]}),
            _frozen(curves={"val/acc": [0.1, 0.2], "time/epoch_s": [1.0, 1.0]}),
            _frozen(curves={"val/acc": [0.9], "time/epoch_s": []})]
    r = comparison.reach(runs, 0.8)
    assert (r.reached, r.of) == (2, 3)
    assert r.epochs == comparison.stats.summarize([3.0, 1.0])
    assert r.seconds == comparison.stats.summarize([3.0, 0.0])
    r = comparison.reach(runs[:1], 0.9)  # at, not only above: epoch 4, after 1 + 2 + 0 + 4 s
    assert (r.epochs.mean, r.seconds.mean) == (4.0, 7.0)
    loss = [_frozen(curves={"val/loss": [0.9, 0.5, 0.4], "time/epoch_s": [1.0, 1.0, 1.0]})]
    r = comparison.reach(loss, 0.5, REGRESSION)
    assert (r.reached, r.epochs.mean, r.seconds.mean) == (1, 2.0, 2.0)
    assert comparison.reach(loss, 0.3, REGRESSION).reached == 0


def test_split_sizes_come_from_a_finished_trial_else_from_the_dataset() -> None:
    def study(trials, dataset) -> optuna.Study:
        s = optuna.create_study()
        s.set_user_attr("base_config", {"dataset": dataset})
        for t in trials:
            s.add_trial(t)
        return s

    failed = _frozen({"data/val_size": 7, "data/test_size": 8}, state=TrialState.FAIL)
    done = _frozen({"data/val_size": 500, "data/test_size": 700})
    assert comparison._split_sizes([study([failed, done], {})]) == (500, 700)
    assert comparison._split_sizes([study([], {}), study([_frozen({"data/val_size": 50})], {})]) == (50, None)
    bundled = {"name": "mnist_5k", "val_size": 1000, "test_size": 900}
    assert comparison._split_sizes([study([failed], bundled)]) == (1000, 900)
    for name in ("mnist", "fashion_mnist", "cifar10"):
        assert comparison._split_sizes([study([], {"name": name, "val_size": 5000})]) == (5000, 10000)
    assert comparison._split_sizes([study([], {"name": "user", "val_size": 10})]) == (10, None)


def test_the_default_target_is_99_percent_of_the_best_or_the_lowest_loss_over_099() -> None:
    values = {"a": [0.5, 0.8], "b": [0.7]}
    assert comparison._default_target([], values, CLASSIFICATION) == pytest.approx(0.99 * 0.8)
    assert comparison._default_target([], values, REGRESSION) == pytest.approx(0.5 / 0.99)
    assert comparison._default_target([], {}, CLASSIFICATION) is None


def test_a_trial_is_found_by_its_number_only_where_it_is() -> None:
    study = optuna.create_study()
    for v in (0.1, 0.2):
        study.add_trial(create_trial(value=v))
    trials = study.get_trials()
    found = {"s": (study, trials)}
    assert comparison._trial(found, "s", 1) == (study, trials[1])
    assert comparison._trial(found, "s", 0) == (study, trials[0])
    assert [comparison._trial(found, *k) for k in (("s", 2), ("s", -1), ("other", 0))] == [None] * 3
    assert comparison._trial({"s": (study, trials[1:])}, "s", 0) is None  # numbers that do not match


def test_a_loss_budget_curve_is_the_expected_minimum() -> None:
    losses = [0.5, 0.6, 0.3]
    curve = comparison._budget_curve(losses, REGRESSION)
    mirrored = comparison.budget.budget_curve([-v for v in losses])
    assert [(p.n, p.expected, p.std) for p in curve] == [(p.n, -p.expected, p.std) for p in mirrored]
    assert comparison._budget_curve(losses, CLASSIFICATION) == comparison.budget.budget_curve(losses)


def test_the_sweep_name_is_the_recorded_one_else_the_study_name() -> None:
    s = optuna.create_study(study_name="mine.adam")
    assert comparison._sweep_name([s]) == "mine.adam"
    s.set_user_attr("sweep", "mine")
    assert comparison._sweep_name([s]) == "mine"


def _pair(n: int, diff: float, low: float, high: float, p: float, adjusted: float | None = None,
          task=CLASSIFICATION, split: str = "test", k: int | None = None,
          run: int | None = None) -> comparison.Pair:
    c = PairedComparison(n, diff, low, high, p)
    k = k if k is not None else n
    return comparison.Pair("sgd", "adam", list(range(k)), c, c, p if adjusted is None else adjusted,
                           task, split, list(range(run if run is not None else k)))


def test_each_pair_sentence_reads_exactly() -> None:
    assert _pair(0, math.nan, math.nan, math.nan, math.nan, k=3).sentence() == \
        "adam vs sgd: no shared seed with a finite test acc"
    assert _pair(1, 0.02, 0.02, 0.02, math.nan).sentence() == \
        "adam vs sgd: sgd worse by 2.0 pp on test acc on every seed (K=1): no spread to test"
    assert _pair(3, 0.0, 0.0, 0.0, math.nan).sentence() == \
        "adam vs sgd: test acc identical on every seed (K=3): no spread to test"
    assert _pair(3, -0.01, -0.01, -0.01, math.nan).sentence() == \
        "adam vs sgd: sgd better by 1.0 pp on test acc on every seed (K=3): no spread to test"
    assert _pair(5, 0.035, 0.03, 0.04, 0.001, 0.002).sentence() == (
        "adam vs sgd: sgd worse by 3.5 pp on test acc (95 % CI of worse-by 3.0 pp…4.0 pp), "
        "significant at K=5 (0.05, Holm-corrected) (paired t-test p = 0.001, Holm-adjusted 0.002)")
    assert _pair(4, 0.01, -0.01, 0.03, 0.3, 0.6).sentence() == (
        "adam vs sgd: sgd worse by 1.0 pp on test acc (95 % CI of worse-by -1.0 pp…3.0 pp), not "
        "significant at K=4 (paired t-test p = 0.3, Holm-adjusted 0.6; with 4 seeds the bootstrap "
        "interval is coarse: `sweeps confirm --seeds 5` adds seeds)")
    # a loss: worse is higher, written the same way
    assert _pair(5, 0.25, 0.1, 0.5, 0.04, task=REGRESSION, split="val").sentence() == (
        "adam vs sgd: sgd worse by 0.25 on val loss (95 % CI of worse-by 0.1…0.5), significant at "
        "K=5 (0.05, Holm-corrected) (paired t-test p = 0.04, Holm-adjusted 0.04)")


def test_the_coarse_caveat_never_asks_for_seeds_already_run() -> None:
    """Five seeds run, one diverged: K=4, and the command asks for a sixth, not for five."""
    text = _pair(4, 0.01, -0.01, 0.03, 0.3, 0.6, run=5).sentence()
    assert "not significant at K=4" in text
    assert "1 of 5 seeds did not complete; with 4 seeds the bootstrap interval is coarse: " \
        "`sweeps confirm --seeds 6` adds seeds" in text
    assert "--seeds 5" not in text
    assert "`sweeps confirm --seeds 7`" in _pair(3, 0.01, -0.01, 0.03, 0.3, 0.6, run=5).sentence()


@pytest.mark.parametrize(("low", "high", "adjusted", "significant"), [
    (0.01, 0.02, 0.01, True), (-0.02, -0.01, 0.01, True),  # the interval on either side of 0
    (-0.01, 0.02, 0.01, False), (0.0, 0.02, 0.01, False), (-0.02, 0.0, 0.01, False),  # it holds 0
    (0.01, 0.02, 0.05, False), (0.01, 0.02, 0.0499, True), (0.01, 0.02, math.nan, False),
])
def test_a_difference_is_significant_only_where_both_tests_say_so(low, high, adjusted, significant) -> None:
    assert _pair(5, 0.015, low, high, 0.001, adjusted).significant is significant


def test_behind_means_a_lower_accuracy_or_a_higher_loss() -> None:
    assert _pair(5, 0.01, 0, 0, 0.5).behind and not _pair(5, 0.0, 0, 0, 0.5).behind
    assert not _pair(5, -0.01, 0, 0, 0.5).behind
    # a pair holds how much worse the other is, whatever the metric: positive is behind
    assert _pair(5, 0.01, 0, 0, 0.5, task=REGRESSION).behind
    assert not _pair(5, 0.0, 0, 0, 0.5, task=REGRESSION).behind
    assert not _pair(5, -0.01, 0, 0, 0.5, task=REGRESSION).behind


def _config(mean: float | None) -> comparison.ConfirmedConfig:
    val = None if mean is None else SeedSummary(2, mean, 0.1, mean - 0.1, mean + 0.1)
    t = create_trial(value=0.0)
    return comparison.ConfirmedConfig("a", "s", t, [], [], val, None, None, None, None, None, 0, val=val)


def test_the_representative_is_the_best_confirmed_mean() -> None:
    row = comparison.OptimizerRow("a", [], {}, None, None, [_config(0.8), _config(None), _config(0.9),
                                                             _config(0.7)], {})
    assert row.representative.val.mean == 0.9
    row.task = REGRESSION
    assert row.representative.val.mean == 0.7
    assert comparison.OptimizerRow("a", [], {}, None, None, [_config(None)], {}).representative is None


def test_the_validation_standard_error_and_who_is_within_it() -> None:
    def row(opt: str, value: float | None) -> comparison.OptimizerRow:
        best = None if value is None else create_trial(value=value)
        return comparison.OptimizerRow(opt, [], {}, best, None, [], {})

    rows = [row("b", 0.89), row("c", 0.88), row("a", 0.90), row("d", None)]
    c = comparison.Comparison("s", 400, None, rows, [], [], [], None, {})
    se = math.sqrt(0.9 * 0.1 / 400)  # 0.015
    assert c.se(0.9) == pytest.approx(se)
    # b: 0.01 behind, c: 0.02 (over one SE); best first
    assert c.indistinguishable_from_search_best() == ["a", "b"]
    rows[2] = row("z", 0.90)
    assert c.indistinguishable_from_search_best() == ["z", "b"]  # best first, not by name
    assert [c.se(None), comparison.Comparison("s", None, None, rows, [], [], [], None, {}).se(0.9),
            comparison.Comparison("s", 0, None, rows, [], [], [], None, {}).se(0.9)] == [
        pytest.approx(math.nan, nan_ok=True)] * 3
    reg = comparison.Comparison("s", 400, None, rows, [], [], [], None, {}, task=REGRESSION)
    assert math.isnan(reg.se(0.9)) and reg.indistinguishable_from_search_best() == []
    one = comparison.Comparison("s", 400, None, rows[:1], [], [], [], None, {})
    assert one.indistinguishable_from_search_best() == []
    edge = comparison.Comparison("s", 4, None, [row("a", 0.5), row("b", 0.25)], [], [], [], None, {})
    assert edge.se(0.5) == 0.25  # sqrt(0.5 * 0.5 / 4), exactly
    assert edge.indistinguishable_from_search_best() == ["a"]  # exactly one SE behind: told apart


def test_params_are_written_short() -> None:
    assert comparison.params_text({"lr": 0.00123456, "momentum": 0.9, "nesterov": True, "layers": 3}) \
        == "lr=0.001235, momentum=0.9, nesterov=True, layers=3"
    assert comparison.params_text({}) == ""


def test_build_counts_each_state_ranks_and_keeps_the_given_target() -> None:
    """A joint study (the optimizer is a parameter): trials counted per optimizer and state, a
    trial that failed before choosing one left out, confirmed configs best first."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="j.joint", direction="maximize")
    choice = {"type": "categorical", "choices": ["adam", "sgd", "rmsprop"]}
    for attr, value in {"sweep": "j", "base_config": BASE, "objective": "best", "fixed_edges": {},
                        "search_space": {**SPACE, "optimizer": choice}}.items():
        study.set_user_attr(attr, value)
    dist = {"lr": FloatDistribution(1e-4, 1e-1, log=True)}

    def add(value: float | None, optimizer: str | None, kind: TrialState = TrialState.COMPLETE, **extra):
        attrs = {**(_run_attrs(value, value - 0.01, optimizer=optimizer) if value else {}), **extra}
        if optimizer:
            attrs["optimizer"] = optimizer
        study.add_trial(create_trial(state=kind, value=value if kind == TrialState.COMPLETE else None,
                                     params={"lr": 1e-3}, distributions=dist, user_attrs=attrs))

    add(0.90, "adam"), add(0.95, "adam"), add(0.80, "sgd"), add(None, None, TrialState.FAIL)
    add(0.95, "adam")  # as good as trial 1: the earlier one stays the best
    add(None, "sgd", TrialState.PRUNED), add(None, "sgd", TrialState.FAIL, state="diverged")
    add(None, "adam", TrialState.FAIL), add(0.85, "sgd"), add(None, "sgd", TrialState.WAITING)
    confirm = _confirm({("j.joint", 99): [(0.5, 0.5)] * 3,  # a trial that is not there: left out
                        ("j.joint", 0): [(0.90, 0.89)] * 3, ("j.joint", 1): [(0.94, 0.93)] * 3,
                        ("j.joint", 2): [(0.80, 0.79), (0.81, 0.80), (0.82, 0.80)]})
    c = comparison.build([study], confirm, top=2, target=0.805)
    rows = {r.optimizer: r for r in c.rows}
    assert [r.optimizer for r in c.rows] == ["adam", "sgd", "rmsprop"] and rows["adam"].studies == ["j.joint"]
    assert rows["rmsprop"].search_best is None and rows["rmsprop"].reach is None  # no trial: nothing to reach
    assert rows["adam"].counts == {"complete": 3, "pruned": 0, "failed": 1, "diverged": 0, "running": 0}
    assert rows["sgd"].counts == {"complete": 2, "pruned": 1, "failed": 0, "diverged": 1, "running": 0,
                                  "waiting": 1}
    assert rows["adam"].search_best.number == 1 and rows["sgd"].search_best.number == 8
    assert [cfg.trial.number for cfg in rows["adam"].configs] == [1, 0]  # best search value first
    assert [(cfg.optimizer, cfg.study) for cfg in rows["sgd"].configs] == [("sgd", "j.joint")]
    assert sorted(rows["adam"].boundary) == [0, 1, 4] and sorted(rows["sgd"].boundary) == [2, 8]
    assert [r.optimizer for r in c.ranking] == ["adam", "sgd"] and c.seeds == [1, 2, 3]
    assert c.target == 0.805 and c.target_given and c.sweep == "j"
    # 0.805: the seed at 0.80 never gets there; the others at their last epoch
    assert (rows["sgd"].reach.reached, rows["sgd"].reach.of, rows["sgd"].reach.epochs.mean) == (2, 3, 3.0)
    assert (c.n_val, c.n_test) == (1000, 1000)
    (pair,) = c.pairs
    assert (pair.optimizer, pair.best, pair.split) == ("sgd", "adam", "test")
    assert pair.test.mean_diff == pytest.approx(0.93 - (0.79 + 0.80 + 0.80) / 3)
    assert pair.val.mean_diff == pytest.approx(0.94 - 0.81)
    default = comparison.build([study], confirm)
    assert not default.target_given and default.target == pytest.approx(0.99 * 0.94)
    search_only = comparison.build([study], None)
    assert search_only.target == pytest.approx(0.99 * 0.95)
    assert search_only.budget["sgd"] == comparison.budget.budget_curve([0.80, 0.85])
    assert search_only.budget["adam"] == comparison.budget.budget_curve([0.90, 0.95, 0.95])
    assert search_only.rows[0].reach.of == 1  # the search best alone, without confirm runs
    assert search_only.rows[2].reach is None


def test_without_a_test_split_pairs_compare_validation_and_holm_adjusts_them() -> None:
    def run(seed: int, val: float, optimizer: str):
        return create_trial(value=val, user_attrs={
            "final": {"best/val_acc": val}, "curves": {}, "seed": seed, "optimizer": optimizer, "epochs": 1})

    def row(optimizer: str, vals: list[float]) -> comparison.OptimizerRow:
        runs = [run(s, v, optimizer) for s, v in zip(SEEDS, vals, strict=True)]
        cfg = comparison._confirmed(optimizer, f"s.{optimizer}", runs[0], runs)
        return comparison.OptimizerRow(optimizer, [], {}, None, None, [cfg], {})

    ranking = [row("adam", [0.95, 0.96, 0.97, 0.95, 0.96]), row("sgd", [0.90, 0.93, 0.91, 0.92, 0.90]),
               row("rmsprop", [0.95, 0.95, 0.96, 0.94, 0.96])]
    pairs = comparison._pairs(ranking)
    assert [(p.optimizer, p.split) for p in pairs] == [("sgd", "val"), ("rmsprop", "val")]
    assert pairs[0].test == pairs[0].val == comparison.stats.paired(
        [0.95, 0.96, 0.97, 0.95, 0.96], [0.90, 0.93, 0.91, 0.92, 0.90])
    assert [p.p_adjusted for p in pairs] == comparison.stats.holm([p.test.p_value for p in pairs])
    assert pairs[0].sentence().startswith("adam vs sgd: sgd worse by 4.6 pp on val acc")
    assert comparison._pairs(ranking[:1]) == []


def test_a_regression_sweep_with_confirm_runs_ranks_pairs_and_reaches_the_lowest_losses() -> None:
    """Minimised: the representative is the lowest mean loss, configs sort lowest first (a loss
    of 0 included), the pair compares test losses, the target is reached from above. The
    search trials do not record their optimizer (the study does), and the momentum study has
    no stored fixed edges: momentum = 1 is the optimizer's own limit, not a boundary hit."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    momentum = {"momentum": {"type": "float", "key": "optimizer.momentum", "low": 0.5, "high": 1.0}}

    def study(optimizer: str, losses: list[float], space: dict, params: list[dict]) -> optuna.Study:
        s = optuna.create_study(study_name=f"r.{optimizer}", direction="minimize")
        for attr, value in {"sweep": "r", "optimizer": optimizer, "task": "regression", "objective": "best",
                            "base_config": {**BASE, "optimizer": {"name": optimizer}},
                            "search_space": space}.items():
            s.set_user_attr(attr, value)
        dists = {name: FloatDistribution(spec["low"], spec["high"], log=spec.get("log", False))
                 for name, spec in space.items()}
        for v, p in zip(losses, params, strict=True):
            s.add_trial(create_trial(value=v, params=p, distributions=dists, user_attrs={
                "final": {"best/val_loss": v, "best/epoch": 1.0, "test/loss": v + 0.01},
                "curves": {"val/loss": [v]}, "epochs": 1, "config": BASE}))
        return s

    studies = [study("sgd", [0.0, 0.4, 0.3], SPACE, [{"lr": 0.01}] * 3),
               study("momentum", [0.6, 0.5], momentum, [{"momentum": 1.0}] * 2)]
    confirm = optuna.create_study(study_name="r.confirm", direction="minimize")
    for (source, number), vals in {("r.sgd", 0): [0.10, 0.12, 0.11], ("r.sgd", 2): [0.20, 0.21, 0.22],
                                   ("r.momentum", 0): [0.50, 0.52, 0.51]}.items():
        for seed, v in zip(SEEDS, vals, strict=False):
            confirm.add_trial(create_trial(value=v, user_attrs={
                "final": {"best/val_loss": v, "best/epoch": 1.0, "test/loss": v + 0.01},
                "curves": {"val/loss": [v], "time/epoch_s": [2.0]}, "epochs": 1, "kind": "confirm",
                "source_study": source, "source_trial": number, "seed": seed, "config": BASE,
                "optimizer": source.split(".")[1]}))
    c = comparison.build(studies, confirm, top=1)
    sgd, mom = c.rows
    assert [cfg.trial.number for cfg in sgd.configs] == [0, 2]  # lowest search loss first
    assert sgd.representative.trial.number == 0 and sgd.representative.val.mean == pytest.approx(0.11)
    assert [r.optimizer for r in c.ranking] == ["sgd", "momentum"]
    assert (sgd.configs[0].optimizer, sgd.configs[0].study) == ("sgd", "r.sgd")
    (pair,) = c.pairs
    assert pair.split == "test" and pair.behind
    assert pair.test.mean_diff == pytest.approx(0.52 - 0.12)  # momentum's test loss is higher: worse
    assert "momentum worse by 0.4 on test loss" in pair.sentence()
    assert "positive is worse (a higher loss)" in report_tables.sign_convention(c)
    ranking_text = report_tables.ranking_table(c).markdown()
    assert "test loss: worse than best by [95 % CI]" in ranking_text and "| +0.4 [" in ranking_text
    assert c.target == pytest.approx(0.11 / 0.99)
    assert (sgd.reach.reached, sgd.reach.of, sgd.reach.seconds.mean) == (2, 3, 2.0)  # 0.10 and 0.11
    assert mom.boundary == {1: [], 0: []}  # the top trial, and the confirmed one beside it
