"""benchmarks/load.py: its synthetic trainer reports what a real fit reports, its table, its
CPU bound and what it prints for a missed target (the benchmark itself, 8 to 64 workers,
runs in `make bench-load`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .benchmark_scripts import load


def test_the_synthetic_trainer_calls_the_callbacks_as_fit_does(tmp_path: Path,
                                                               monkeypatch: Any) -> None:
    worker = load("_load_worker.py", "load_worker")
    monkeypatch.setenv("LOAD_TRIAL_S", "0.03")
    monkeypatch.setenv("LOAD_LOG", str(tmp_path / "times.jsonl"))
    seen: dict[str, list[Any]] = {"epoch": [], "step": [], "end": []}

    class Recorder:
        def on_fit_start(self, run: Any) -> None: ...
        def on_epoch_start(self, run: Any, epoch: int) -> None: ...
        def on_step(self, run: Any, step: int, metrics: Any) -> None:
            seen["step"].append(dict(metrics))

        def on_epoch_end(self, run: Any, epoch: int, metrics: Any) -> None:
            seen["epoch"].append(dict(metrics))

        def on_fit_end(self, run: Any, result: Any) -> None:
            seen["end"].append(result)

    cfg = {"trainer": {"epochs": 3}, "optimizer": {"name": "adam", "lr": 3e-3}, "dataset": {}}
    result = worker.synthetic_fit(cfg, [Recorder()], tmp_path / "out")
    assert result.status == "completed" and len(result.history) == 3 == len(seen["epoch"])
    assert len(seen["step"]) == 3 * worker.STEPS_PER_EPOCH // worker.LOG_EVERY
    assert {"batch/loss", "batch/lr"} == set(seen["step"][0])
    assert {"val/acc", "val/loss", "train/acc", "train/loss", "lr"} <= set(seen["epoch"][0])
    assert seen["end"] == [result] and 0.9 < max(h["val/acc"] for h in result.history) <= 1.0
    assert (tmp_path / "times.jsonl").read_text().count("\n") == 1


def test_the_load_line_reports_share_budget_errors_and_running() -> None:
    bench = load("_load_report.py", "load_report")
    r = bench.Result(64, 10.0, "postgresql", 256, span_s=44.0, counted=256, ask_to_run=[0.1] * 99 + [2.0],
                     cpu={"postgresql": 0.1, "mlflow server": 0.2, "workers": 0.5})
    assert abs(r.ideal - 6.4) < 1e-9 and abs(r.rate - 256 / 44) < 1e-9
    text = bench.line(r)
    assert "6.40" in text and "91%" in text and "256/256" in text and " 0/0/0" in text
    assert bench.pct(sorted(r.ask_to_run), 0.99) == 2.0


def test_the_cpu_floor_is_the_least_cpu_a_trial_costs_over_the_cores(monkeypatch: Any) -> None:
    bench = load("_load_report.py", "load_report")
    monkeypatch.setattr(bench.os, "cpu_count", lambda: 2)
    small = bench.Result(8, 10.0, "postgresql", 32, counted=32, load_s=42.0,
                         cpu={"postgresql": 0.02, "mlflow server": 0.04, "workers": 0.05})
    large = bench.Result(64, 1.0, "postgresql", 256, counted=256, load_s=60.0,
                         cpu={"postgresql": 0.1, "mlflow server": 0.2, "workers": 0.6})
    assert abs(small.cpu_s_per_trial - 0.11 * 2 * 42 / 32) < 1e-9  # 0.29 CPU-s a trial
    lines = bench.cpu_bounds([small, large])
    assert "0.29 CPU-s a trial" in lines[0] and "at most 6.9 trials/s" in lines[0]
    assert "8 x 10 s: 0.29 CPU-s a trial (0.16 of them the servers'); the CPU bound is 100%" in lines[1]
    assert "64 x 1 s: 0.42 CPU-s" in lines[2] and "the CPU bound is 11% of this size's ideal" in lines[2]


def test_a_missed_target_prints_the_bounds_the_run_measured(monkeypatch: Any) -> None:
    report = load("_load_report.py", "load_report")
    monkeypatch.setattr(report.os, "cpu_count", lambda: 2)
    # 8 workers, 4 rounds of 1 s: 32 trials in 6.4 s (62 %); first trials ran 0.2 to 1.0 s
    # after the gate (mean 0.6 s); a trial to the next 1.25 s (250 ms fixed cost)
    r = report.Result(8, 1.0, "postgresql", 32, span_s=6.4, counted=32, load_s=6.4,
                      first_starts=[0.2, 0.4, 0.6, 0.6, 0.6, 0.6, 0.8, 1.0], cycles=[1.25] * 24,
                      cpu={"postgresql": 0.1, "mlflow server": 0.2, "workers": 0.3},
                      parts=[("claim: lock held", 5.0, 5.0, 1.0), ("claim: lock wait", 1.2, 1.0, 1.2)])
    alone = report.Result(1, 1.0, "postgresql", 8, counted=8, cycles=[1.07] * 7)
    assert abs(r.start_bound - 4 / 4.6) < 1e-9 and abs(r.steady_share - 1 / 1.25) < 1e-9
    lines = report.verdicts([r], alone)
    missed = [x for x in lines if x.startswith("target") and "MISSED" in x]
    assert [x.split(": ")[1] for x in missed] == [">= 85% of the ideal", "fixed cost <= 100 ms"]
    why = lines[next(i for i, x in enumerate(lines) if "steady state" in x):]
    assert lines[lines.index(why[0]) - 1].endswith("budget exact, 0 errors, 0 RUNNING: met")
    assert why[0].startswith("    steady state: 250 ms fixed cost a trial")
    assert "tends to 80% of the ideal" in why[0] and "0.60 s after the gate on average" in why[0]
    assert "(the last 1.00 s)" in why[0] and "caps this run at 87%" in why[0]
    assert "one worker alone pays 70 ms a trial" in why[1] and "the other 180 ms" in why[1]
    assert why[1].endswith("the 2 cores and the servers that 8 workers share; "
                           "the budget lock's wait is 1.2 ms of it")
    # 0.6 of 2 cores over 6.4 s for 32 trials: 0.24 CPU-s a trial; 8 a second need 96 %
    assert "at this size's 0.24 CPU-s a trial needs 96% of the 2 cores" in why[2]
    assert "they were 60% busy on average" in why[2]
    met = report.Result(8, 10.0, "postgresql", 32, span_s=42.0, counted=32, load_s=42.0,
                        first_starts=[0.1] * 8, cycles=[10.1] * 24,
                        cpu={"postgresql": 0.01, "mlflow server": 0.02, "workers": 0.03})
    assert not any("steady state" in x or "alone" in x for x in report.verdicts([met], alone))
