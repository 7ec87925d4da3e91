"""What a sweep holds, as pandas DataFrames: one row per trial, per study, per optimizer.

Built from the Optuna studies (the source of truth), with the same reading of a trial's
state and values as the CLI's tables, so a notebook and `sweeps status` agree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sweeps.report import summary
from sweeps.search import studies as study_mod

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from sweeps.report.comparison import Comparison

TRIAL_COLUMNS = ["study", "optimizer", "trial", "state", "value", "epochs", "run_id", "started",
                 "finished"]


def _frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame(rows)
    return frame if rows else pd.DataFrame(columns=list(columns))


def trials(studies: Sequence[optuna.Study]) -> pd.DataFrame:
    """One row per trial: its study, optimizer, number, state (complete, pruned, failed,
    diverged, running), objective value, epochs trained, MLflow run id, times, then each
    sampled parameter (`params.NAME`) and each final metric (`test/acc`, `best/epoch`, ...)."""
    rows = []
    for study in studies:
        default = study.user_attrs.get("optimizer")
        for t in study.get_trials(deepcopy=False):
            row: dict[str, Any] = {
                "study": study.study_name, "optimizer": t.user_attrs.get("optimizer", default),
                "trial": t.number, "state": summary.trial_state(t), "value": t.value,
                "epochs": t.user_attrs.get("epochs", len(t.intermediate_values)),
                "run_id": study_mod.run_id(study, t), "started": t.datetime_start,
                "finished": t.datetime_complete}
            row.update({f"params.{k}": v for k, v in t.params.items()})
            row.update(dict(t.user_attrs.get("final") or {}))
            rows.append(row)
    return _frame(rows, TRIAL_COLUMNS)


def status(studies: Sequence[optuna.Study]) -> pd.DataFrame:
    """One row per study: trials by state, its budget, and its best value and trial."""
    rows = []
    for r in summary.study_rows(studies):
        rows.append({"study": r.study, "optimizer": r.optimizer, **r.counts, "budget": r.budget,
                     "best_value": None if r.best is None else r.best.value,
                     "best_trial": None if r.best is None else r.best.number})
    return _frame(rows, ["study", "optimizer", *summary.STATE_COLUMNS, "budget", "best_value",
                         "best_trial"])


def best(comp: Comparison) -> pd.DataFrame:
    """One row per optimizer: its best search trial (one seed: not a ranking), the split's
    standard error, its test metric and gap, boundary hits, and once confirm runs exist the
    confirmed mean and standard deviation over seeds."""
    task = comp.task
    rows = []
    for row in comp.rows:
        t = row.search_best
        if t is None:
            continue
        final = t.user_attrs.get("final", {})
        rep = row.representative
        rows.append({
            "optimizer": row.optimizer, "trial": t.number, task.val_key: t.value,
            "split_se": comp.se(t.value) if task.has_accuracy else math.nan,
            task.test_key: final.get(task.test_key),
            task.gap_key: (t.user_attrs.get("curves", {}).get(task.gap_key) or [None])[-1],
            "epochs": t.user_attrs.get("epochs"),
            "boundary": ",".join(f"{h.dim}:{h.edge}" for h in row.boundary.get(t.number, [])),
            "confirmed_mean": None if rep is None or rep.val is None else rep.val.mean,
            "confirmed_std": None if rep is None or rep.val is None else rep.val.std,
            "seeds": None if rep is None else len(rep.used)})
    frame = _frame(rows, ["optimizer", "trial", task.val_key])
    return frame.sort_values(task.val_key, ascending=not task.maximize, ignore_index=True) \
        if rows else frame


def confirm_runs(confirm: optuna.Study | None) -> pd.DataFrame:
    """One row per confirm run: the optimizer, the trial it re-runs, its seed, state and
    final metrics."""
    rows = []
    for t in [] if confirm is None else confirm.get_trials(deepcopy=False):
        if "source_study" not in t.user_attrs:
            continue
        rows.append({"optimizer": t.user_attrs.get("optimizer"),
                     "source_study": t.user_attrs["source_study"],
                     "source_trial": t.user_attrs.get("source_trial"), "seed": t.user_attrs.get("seed"),
                     "state": summary.trial_state(t), "value": t.value,
                     **dict(t.user_attrs.get("final") or {})})
    return _frame(rows, ["optimizer", "source_study", "source_trial", "seed", "state", "value"])


def ranking(comp: Comparison) -> pd.DataFrame:
    """The confirmed ranking: per optimizer, the seeds used and the mean, standard deviation
    and 95 % interval over seeds of the validation and test metrics."""
    rows = []
    for rank, row in enumerate(comp.ranking, start=1):
        rep = row.representative
        if rep is None:
            continue
        out: dict[str, Any] = {"rank": rank, "optimizer": row.optimizer, "trial": rep.trial.number,
                               "seeds": len(rep.used), "seeds_run": len(rep.seeds)}
        for name, s in (("val", rep.val), ("test", rep.test)):
            out.update({f"{name}_mean": None if s is None else s.mean,
                        f"{name}_std": None if s is None else s.std,
                        f"{name}_ci_low": None if s is None else s.ci_low,
                        f"{name}_ci_high": None if s is None else s.ci_high})
        rows.append(out)
    return _frame(rows, ["rank", "optimizer", "trial", "seeds"])


def pairs(comp: Comparison) -> pd.DataFrame:
    """Each optimizer against the best: how much worse on the test metric (positive: worse),
    its bootstrap 95 % interval, the paired t-test's p-value raw and Holm-adjusted, K, and
    whether the difference is significant (both tests agree); the sentence the report prints."""
    rows = [{"best": p.best, "optimizer": p.optimizer, "worse_by": p.test.mean_diff,
             "ci_low": p.test.ci_low, "ci_high": p.test.ci_high, "p_value": p.test.p_value,
             "p_holm": p.p_adjusted, "k": len(p.seeds), "significant": p.significant,
             "sentence": p.sentence()} for p in comp.pairs]
    return _frame(rows, ["best", "optimizer", "worse_by", "ci_low", "ci_high", "p_value", "p_holm",
                         "k", "significant", "sentence"])
