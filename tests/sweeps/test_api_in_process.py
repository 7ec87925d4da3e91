"""Trials in the calling process: a script (no `__main__` guard) defines its model, data and
loss at the top level and sweeps them with `sweeps.launch(..., model=, dataset=, loss=)`, as a
notebook would; confirm runs there too, and the best trial reproduces exactly. Worker
processes are refused such objects in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

SCRIPT = '''
import json

import numpy as np
import torch
from torch import nn

import sweeps


class Net(nn.Module):
    def __init__(self, in_shape, num_outputs, hidden=16):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(int(np.prod(in_shape)), hidden), nn.ReLU(),
                                  nn.Linear(hidden, num_outputs))

    def forward(self, x):
        return self.body(x)


def blobs(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = (rng.normal(size=(n, 5)) + y[:, None]).astype(np.float32)
    return {"train": (x[:300], y[:300]), "test": (x[300:], y[300:])}


class SmoothLoss(nn.Module):
    def forward(self, outputs, targets):
        return nn.functional.cross_entropy(outputs, targets, label_smoothing=0.05)


settings = {"sweep.name": "mine", "sweep.optimizers": ["sgd", "adam"], "sweep.n_trials": 4,
            "trainer.epochs": 2, "search.common.batch_size.choices": [32],
            "search.common.schedule.choices": ["constant"], "model.hidden": 8}
sweep = sweeps.launch("base", settings, model=Net, dataset=blobs, loss=SmoothLoss)
trials = sweep.trials()
confirm = sweep.confirm(seeds=2, workers=0)
again = sweep.reproduce("best")
errors = {}
try:
    sweeps.launch("base", {**settings, "sweep.name": "other"}, model=Net, dataset=blobs, workers=1)
except sweeps.UserError as err:
    errors["workers"] = str(err)
try:
    sweeps.launch("base", settings, model=lambda in_shape, num_outputs: Net(in_shape, num_outputs))
except sweeps.UserError as err:
    errors["lambda"] = str(err)
json.dump({"states": trials["state"].tolist(), "optimizers": sorted(set(trials["optimizer"])),
           "confirm": confirm["state"].tolist(), "identical": again.identical,
           "command": again.trainer_command, "errors": errors}, open("out.json", "w"))
'''


def test_a_scripts_own_objects_are_swept_in_its_process(tmp_path: Path) -> None:
    (tmp_path / "mine.py").write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items()
           if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI", "SWEEPS_CONFIG_DIR")}
    run = subprocess.run([sys.executable, "mine.py"], cwd=tmp_path, env=env, text=True,
                         capture_output=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["states"] == ["complete"] * 4 and out["optimizers"] == ["adam", "sgd"]
    assert out["confirm"] == ["complete"] * 4  # 2 optimizers x 2 seeds, run here
    assert out["identical"] is True
    assert "model=Net" in out["command"] or "__main__.Net" in out["command"]
    assert "worker processes cannot import" in out["errors"]["workers"]
    assert "define it at the top level" in out["errors"]["lambda"]
