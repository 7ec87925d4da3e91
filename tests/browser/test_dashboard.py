"""The dashboard in a real browser: a small finished sweep (trials and confirm runs) in a
real `mlflow server`, opened in headless Chromium; then the HTML report.

Screenshots are saved under the test's tmp dir, and into $SWEEPS_SCREENSHOTS when set:
`make screenshots` makes the images of the README and the docs (docs/assets/screenshots/).
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sweeps.cli import app
from sweeps.run.worker import Worker

from ..sweeps.conftest import SMALL

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]
ML = "workflowType=machine_learning"  # MLflow 3's UI opens the GenAI view without it


def _chromium() -> str:
    exe = os.environ.get("SWEEPS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        reason = "headless Chromium not found (Debian: apt-get install -y chromium)"
        if os.environ.get("SWEEPS_REQUIRE_BROWSER"):  # CI sets this: never skip there
            pytest.fail(reason)
        pytest.skip(reason)
    return exe


@pytest.fixture
def browser() -> Iterator[Any]:
    exe = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _api(uri: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{uri}/api/2.0/mlflow/{path}", data=data,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _shot(page: Any, name: str, tmp_path: Path, full_page: bool = False) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    target = os.environ.get("SWEEPS_SCREENSHOTS")
    if target:  # a relative path is relative to the checkout: the test runs in tmp_path
        folder = Path(target) if os.path.isabs(target) else ROOT / target
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / path.name)


def _open(page: Any, url: str) -> None:
    """Navigate; within the single-page app only the hash changes, which never "loads": the
    callers wait for the content they need instead."""
    page.goto(url, wait_until="commit")


def _close_assistant(page: Any) -> None:
    """MLflow 3 opens its chat assistant beside the runs; close it so screenshots show the runs."""
    close = page.locator("button[data-component-id='mlflow.assistant.chat_panel.close']")
    try:
        close.first.wait_for(timeout=10_000)
        close.first.click()
    except Exception:  # a later MLflow without the panel: nothing to close
        pass


def _run_names(page: Any) -> list[str]:
    cells = page.locator("[role=gridcell][col-id='attributes.`Run Name`']").all_inner_texts()
    return [c.split("\n")[-1] for c in cells]


def _wait_names(page: Any, done: Any, timeout: float = 90.0) -> list[str]:
    """Poll the runs table until `done(names)` (the table loads and filters asynchronously)."""
    import time

    end = time.time() + timeout
    while True:
        names = _run_names(page)
        if done(names) or time.time() > end:
            return names
        page.wait_for_timeout(300)


def _expand_parent(page: Any) -> None:
    """Show the child runs under the launch's parent run (collapsed on first visit)."""
    if len(_wait_names(page, lambda n: len(n) > 0)) <= 1:
        page.locator("button[data-component-id*='runnamecellrenderer']").first.click()


def test_finished_sweep_in_the_mlflow_ui_and_the_html_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_server: str, browser: Any) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(var, raising=False)
    cli = CliRunner()
    launched = cli.invoke(app, ["launch", *SMALL, "trainer.epochs=3", "sweep.workers=0",
                                "sweep.pruner.name=none", "tracking=server",
                                f"tracking.uri={mlflow_server}"])
    assert launched.exit_code == 0, launched.output
    Worker.connect(str(tmp_path / "sweeps.journal"), "quick", quiet=True).run()
    assert cli.invoke(app, ["confirm", "--seeds", "2", "--workers", "0"]).exit_code == 0
    Worker.connect(str(tmp_path / "sweeps.journal"), "quick", quiet=True).run()
    assert cli.invoke(app, ["report"]).exit_code == 0

    exp = _api(mlflow_server, "experiments/get-by-name?experiment_name=quick")["experiment"]
    runs = _api(mlflow_server, "runs/search", {"experiment_ids": [exp["experiment_id"]],
                                               "max_results": 100})["runs"]
    tags = {r["info"]["run_name"]: {t["key"]: t["value"] for t in r["data"].get("tags", [])}
            for r in runs}
    children = {name for name, t in tags.items() if "mlflow.parentRunId" in t}
    assert len(children) == 8  # 4 trials + 2 optimizers x 2 seeds
    assert {t["sweeps.kind"] for n, t in tags.items() if n in children} == {"trial", "confirm"}

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.set_default_timeout(90_000)  # a loaded 2-core CI machine renders the app slowly
    base = f"{mlflow_server}/#/experiments/{exp['experiment_id']}"
    # the experiment page lists every child run by its readable name ...
    page.goto(f"{base}/runs?{ML}", wait_until="domcontentloaded", timeout=120_000)
    _close_assistant(page)
    _expand_parent(page)
    listed = _wait_names(page, lambda n: children <= set(n))
    assert children <= set(listed), listed
    _shot(page, "mlflow-runs", tmp_path)

    # a pruned trial's run is told from a completed one in the list: by its name and by its
    # status (KILLED, not the completed runs' green check); a run closed as pruned by the
    # sweep's own code
    from sweeps.tracking import runs as tracking_runs

    done = next(r for r in runs if tags[r["info"]["run_name"]].get("sweeps.kind") == "trial")
    pruned_id = tracking_runs.start_trial(mlflow_server, "quick", tags[done["info"]["run_name"]][
        "mlflow.parentRunId"], "quick.adam_to_sgd", 99, "adam_to_sgd", {"trainer": {"epochs": 3}}, {},
        "cpu")
    tracking_runs.end_trial(mlflow_server, pruned_id, "pruned", "pruned at epoch 1")
    got = _api(mlflow_server, f"runs/get?run_id={pruned_id}")["run"]
    assert got["info"]["status"] == "KILLED" and got["info"]["run_name"] == "adam_to_sgd #99 (pruned)"
    page.reload(wait_until="domcontentloaded")
    _expand_parent(page)
    _wait_names(page, lambda n: "adam_to_sgd #99 (pruned)" in n)
    icons = {}
    for row in page.locator("[role=row]").filter(has=page.locator("[col-id='attributes.`Run Name`']")).all():
        name = row.locator("[col-id='attributes.`Run Name`']").inner_text().split("\n")[-1]
        icons[name] = row.locator("[col-id='runDateAndNestInfo'] svg").first.inner_html()
    complete = {icons[n] for n in children if n in icons}
    assert len(complete) == 1 and icons["adam_to_sgd #99 (pruned)"] not in complete, icons
    _shot(page, "mlflow-runs-pruned", tmp_path)

    # ... and filters them by the optimizer tag
    flt = urllib.parse.quote("tags.`sweeps.optimizer` = 'sgd'")
    _open(page, f"{base}/runs?{ML}&searchFilter={flt}")
    expected = {n for n in children if n.startswith("sgd #")}
    _expand_parent(page)
    shown = _wait_names(page, lambda n: {x for x in n if not x.startswith("quick launch")} == expected)
    assert {x for x in shown if not x.startswith("quick launch")} == expected, shown

    # the compare view of the trials shows only what varies: the config they share is on the
    # launch's parent run, once
    trial_runs = [r for r in runs if tags[r["info"]["run_name"]].get("sweeps.kind") == "trial"]
    parent = next(r for r in runs if tags[r["info"]["run_name"]].get("sweeps.kind") == "launch")
    constant = {p["key"] for p in parent["data"]["params"]} - {"storage", "tracking_uri", "overrides",
                                                                "threads_per_worker", "studies"}
    varying = {p["key"] for r in trial_runs for p in r["data"]["params"]}
    assert "trainer.epochs" in constant and "hp.lr" in varying
    ids = urllib.parse.quote(json.dumps([r["info"]["run_id"] for r in trial_runs]))
    _open(page, f"{mlflow_server}/#/compare-runs?runs={ids}&experiments="
                f"{urllib.parse.quote(json.dumps([exp['experiment_id']]))}")
    page.get_by_text("Show diff only").first.wait_for()
    rows = page.locator("tr th[scope=row]")
    page.wait_for_function("document.querySelectorAll('tr th[scope=row]').length > 10")
    shown = {t.strip() for t in rows.all_inner_texts() if "." in t and "/" not in t
             and ":" not in t and not t.startswith(("sweeps.", "mlflow."))}  # less the tags
    assert shown == varying, (shown ^ varying)
    assert not shown & constant and len(constant) > 30, sorted(shown)  # once, not per trial
    _shot(page, "mlflow-compare", tmp_path, full_page=True)
    # its default axes: the sampled hyperparameters (hp.*) against the objective's curve
    chosen = page.locator("[class*='select-selection-item-content']")
    chosen.first.wait_for()
    axes = chosen.all_inner_texts()
    assert len(axes) == 4 and all(a.startswith("hp.") for a in axes[:3]) and axes[3] == "val/acc", axes

    # a run's page renders its val/acc chart (per epoch)
    best = next(n for n, t in tags.items() if t.get("sweeps.kind") == "confirm")
    run_id = next(r["info"]["run_id"] for r in runs if r["info"]["run_name"] == best)
    _open(page, f"{base}/runs/{run_id}?{ML}")
    page.get_by_text("Model metrics").first.click()
    _close_assistant(page)
    page.get_by_placeholder("Search metric charts").fill("val/acc")
    legend = page.get_by_text(f"{best} (val/acc)")
    card = page.locator("[data-testid='experiment-view-compare-runs-card']").filter(has=legend)
    card.locator("svg.main-svg").first.wait_for(timeout=30_000)  # the chart itself, drawn
    assert card.count() == 1 and "acc" in card.inner_text()
    _shot(page, "mlflow-val-acc", tmp_path)

    # the HTML report: verdict, ranking, and every figure drawn
    report = tmp_path / "reports/quick/report.html"
    page.goto(report.as_uri(), wait_until="load", timeout=120_000)
    page.get_by_role("heading", name="Verdict").wait_for()
    for heading in ("Ranking (confirm runs: mean ± std [95 % CI over seeds])",
                    "Tuning budget", "Boundary warnings"):
        assert page.get_by_role("heading", name=heading, exact=True).count() == 1, heading
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .main-svg').length > 0")
    drawn = page.locator(".js-plotly-plot").count()
    assert drawn == 5 + 4 * 2, drawn  # curves, gap, lr, trials, budget + 4 of Optuna's per study
    _shot(page, "report-top", tmp_path)
    page.get_by_role("heading", name="Learning curves and generalization gap").scroll_into_view_if_needed()
    _shot(page, "report-curves", tmp_path)
    page.get_by_role("heading", name="Tuning budget", exact=True).scroll_into_view_if_needed()
    _shot(page, "report-budget", tmp_path)
