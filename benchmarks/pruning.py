"""The quick sweep with `median` pruning vs `none`: same sampler seed and budget.

Prints, side by side, the total epochs trained and the best validation accuracy
(overall and per optimizer) of each.

    python benchmarks/pruning.py [--n-trials 24]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _common import launch, trials
from optuna.trial import TrialState


def summarize(cwd: Path) -> tuple[int, int, float, dict[str, float]]:
    ts = trials(cwd)
    epochs = sum(int(t.user_attrs.get("epochs", 0)) for t in ts)
    pruned = sum(t.state == TrialState.PRUNED for t in ts)
    best: dict[str, float] = {}
    for t in ts:
        if t.state == TrialState.COMPLETE and t.value is not None:
            opt = t.user_attrs["optimizer"]
            best[opt] = max(best.get(opt, 0.0), t.value)
    return epochs, pruned, max(best.values(), default=float("nan")), best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-trials", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out: dict[str, tuple[float, tuple[int, int, float, dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pruner in ("median", "none"):
            cwd = Path(tmp) / pruner
            seconds = launch(cwd, f"sweep.n_trials={args.n_trials}", f"sweep.seed={args.seed}",
                             f"sweep.pruner.name={pruner}")
            out[pruner] = (seconds, summarize(cwd))
    (ms, (me, mp, mb, mper)), (ns, (ne, _, nb, nper)) = out["median"], out["none"]
    print(f"quick sweep, {args.n_trials} trials, sampler seed {args.seed}")
    print(f"{'':<22}{'median':>10}{'none':>10}")
    print(f"{'total epochs trained':<22}{me:>10}{ne:>10}   ({me / ne:.0%} of the epochs)")
    print(f"{'pruned trials':<22}{mp:>10}{0:>10}")
    print(f"{'best val/acc':<22}{mb:>10.4f}{nb:>10.4f}")
    print(f"{'launch wall time (s)':<22}{ms:>10.1f}{ns:>10.1f}")
    for opt in sorted(set(mper) | set(nper)):
        a, b = mper.get(opt, float("nan")), nper.get(opt, float("nan"))
        print(f"{'  best ' + opt:<22}{a:>10.4f}{b:>10.4f}")


if __name__ == "__main__":
    main()
