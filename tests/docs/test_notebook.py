"""The Python API as the notebook tutorial uses it (docs/tutorials/notebook.py, run whole in
a new directory), then the CLI on the very sweep it made: each verb says what its API call
returned, and bad input is the same one line in both."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "docs" / "tutorials" / "notebook.py"

# runs the notebook as `python notebook.py` would, then records what its objects hold
RUNNER = """
import json, runpy, sys
import sweeps
ns = runpy.run_path(sys.argv[1])
sweep, report, again = ns["sweep"], ns["report"], ns["again"]
status, best = sweep.status(), sweep.best()
errors = {}
for what, call in (("open", lambda: sweeps.open("nosuch")),
                   ("report", lambda: sweep.report(target=2.0)),
                   ("reproduce", lambda: sweep.reproduce("adam:99"))):
    try:
        call()
    except sweeps.UserError as err:
        errors[what] = str(err)
json.dump({"name": sweep.name, "trials": len(ns["trials"]),
           "states": ns["trials"]["state"].value_counts().to_dict(),
           "status": status.to_dict("records"), "best": best.to_dict("records"),
           "confirm_runs": len(ns["confirm_runs"]), "ranking": report.ranking["optimizer"].tolist(),
           "pairs": report.pairs["sentence"].tolist(), "verdict": report.verdict,
           "html": str(report.html), "identical": again.identical, "errors": errors},
          open("api.json", "w"), default=str)
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI", "SWEEPS_CONFIG_DIR")}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["MPLBACKEND"] = "Agg"
    return env


def _sweeps(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sweeps", *args], cwd=cwd, env=_env(), text=True,
                          capture_output=True, timeout=600)


@pytest.mark.slow
def test_the_notebook_runs_and_the_cli_agrees_with_the_api(tmp_path: Path) -> None:
    (tmp_path / "runner.py").write_text(RUNNER)
    run = subprocess.run([sys.executable, "runner.py", str(NOTEBOOK)], cwd=tmp_path, env=_env(),
                         text=True, capture_output=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout == "" or "report.html" in run.stdout  # the notebook prints only what it asks
    api = json.loads((tmp_path / "api.json").read_text())
    assert api["name"] == "quick" and api["trials"] == 8 and api["identical"] is True
    assert api["confirm_runs"] == 6 and sorted(api["ranking"]) == ["adam", "sgd"]
    assert Path(api["html"]).is_file()

    # `sweeps status`: the same counts per study as Sweep.status()
    status = _sweeps(tmp_path, "status", "quick")
    assert status.returncode == 0, status.stderr
    for row in api["status"]:
        line = next(ln for ln in status.stdout.splitlines() if row["study"] in ln)
        numbers = [int(n) for n in re.findall(r"(?<![\d.])\d+(?![\d.])", line.split(row["study"])[1])]
        assert numbers[:5] == [row[s] for s in ("complete", "pruned", "failed", "diverged", "running")]

    # `sweeps best`: the same best trial and value per optimizer as Sweep.best()
    best = _sweeps(tmp_path, "best", "quick")
    assert best.returncode == 0, best.stderr
    for row in api["best"]:
        line = next(ln for ln in best.stdout.splitlines() if re.search(rf"\b{row['optimizer']}\b", ln)
                    and f"#{row['trial']}" in ln)
        assert f"{row['val/acc']:.4f}" in line

    # `sweeps report`: the same verdict sentences as Report.pairs
    report = _sweeps(tmp_path, "report", "quick")
    assert report.returncode == 0, report.stderr
    for sentence in api["pairs"]:
        assert sentence in report.stdout

    # `sweeps confirm`: the same seed re-runs Sweep.confirm() made, each found done
    confirm = _sweeps(tmp_path, "confirm", "quick", "--seeds", "3")
    assert confirm.returncode == 0, confirm.stderr
    runs = api["confirm_runs"]
    assert f"{runs} runs, {runs} done before, 0 already queued, 0 queued now" in confirm.stdout

    # `sweeps reproduce`: the same verdict as Sweep.reproduce() (Reproduction.identical)
    again = _sweeps(tmp_path, "reproduce", "quick", "--trial", "best")
    assert again.returncode == 0 and "reproduced: identical within tolerance" in again.stdout, \
        again.stdout + again.stderr

    # `sweeps worker`: the budget is spent, as sweeps.work() finds it
    worker = _sweeps(tmp_path, "worker", "--study", "quick")
    assert worker.returncode == 0, worker.stderr
    assert "nothing left to run; this worker ran 0 trial(s)" in worker.stdout
    worked = subprocess.run([sys.executable, "-c", "import sweeps; print(sweeps.work('quick'))"],
                            cwd=tmp_path, env=_env(), text=True, capture_output=True, timeout=300)
    assert worked.returncode == 0 and worked.stdout.strip() == "0", worked.stderr

    # bad input: the CLI's one line is the API's exception message
    for args, what in ((["status", "nosuch"], "open"), (["report", "quick", "--target", "2.0"], "report"),
                       (["reproduce", "quick", "--trial", "adam:99"], "reproduce")):
        cli = _sweeps(tmp_path, *args)
        assert cli.returncode == 2
        assert cli.stderr.strip() == f"error: {api['errors'][what]}", (cli.stderr, api["errors"])
