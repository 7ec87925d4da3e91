"""benchmarks/latency.py: the phases of a command from its trials' own times, and the table
with the floors and the issue's targets (the benchmark itself runs in `make bench`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import optuna

from .benchmark_scripts import load


def _module() -> Any:
    return load("latency.py", "latency_benchmark")


def _trial(start: float, end: float) -> optuna.trial.FrozenTrial:
    t = optuna.trial.create_trial(value=0.5)
    t.datetime_start = dt.datetime.fromtimestamp(start)
    t.datetime_complete = dt.datetime.fromtimestamp(end)
    return t


def test_a_command_splits_into_start_trials_and_exit_counting_only_its_own_trials() -> None:
    lat = _module()
    earlier = _trial(50.0, 51.0)  # a resumed sweep's trial from an earlier launch
    phases = lat._phases("resume", 100.0, 130.0, [earlier, _trial(106.0, 110.0), _trial(110.0, 129.5)],
                         since=100.0)
    assert phases == {"resume: start -> first trial": 6.0, "resume: trials span (2)": 23.5,
                      "resume: last trial -> exit": 0.5, "resume: whole command": 30.0}


def test_the_table_names_each_target_met_or_missed_and_the_gap_to_the_floor() -> None:
    lat = _module()
    rounds = [lat.Round({"floor: import torch, torch._dynamo": 5.0, "launch: start -> first trial": f,
                         "launch: last trial -> exit": e, "sweeps --help": 0.3})
              for f, e in ((6.0, 0.5), (7.0, 2.0), (5.5, 0.8))]
    text = lat.table(rounds, cold=False)
    lines = {ln.split("  ")[0]: ln for ln in text.splitlines()}
    assert "6.00" in lines["launch: start -> first trial"]
    assert lines["launch: start -> first trial"].endswith("<= 4  missed")
    assert lines["launch: last trial -> exit"].endswith("<= 1  met")  # median 0.8
    assert lines["sweeps --help"].endswith("<= 0.5  met")
    assert "over the floor (torch + torch._dynamo): +1.00 s (1.20x)" in text
    assert "caches warm" in text and "first run on a machine" in lat.table(rounds, cold=True)
