"""The report's upload helper, and the forked plot pools it must not make unsafe."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sweeps.report.forking import can_fork
from sweeps.tracking.report_upload import ReportUploader


@pytest.fixture
def alone(monkeypatch: pytest.MonkeyPatch) -> int:
    """This process's threads as `sweeps report` has them (a pytest-xdist worker has its own
    IO thread beside the test's): the count the test starts from."""
    ambient = threading.active_count()
    monkeypatch.setattr(threading, "active_count", lambda: 1 + len(
        [t for t in threading.enumerate() if t.name.startswith("sweeps") or t.name == "other"]))
    return ambient


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    from mlflow import MlflowClient

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    c = MlflowClient(uri)
    exp = c.create_experiment("s", artifact_location=str(tmp_path / "artifacts"))
    return uri, c.create_run(exp).info.run_id


def test_the_uploader_logs_the_files_and_leaves_the_report_one_thread(
        tmp_path: Path, run: tuple[str, str], alone: int) -> None:
    from mlflow import MlflowClient

    uri, run_id = run
    files = [tmp_path / "report.html", tmp_path / "summary.md"]
    for f in files:
        f.write_text(f.name)
    uploader = ReportUploader(uri)
    try:
        assert uploader._proc is not None and uploader._proc.is_alive()
        assert len(threading.enumerate()) == alone  # no thread of its own: the plot pools may fork
        assert can_fork(2)
        assert uploader.upload(run_id, files) is None
        failed = uploader.upload("0" * 32, files)  # a run that does not exist
        assert failed and "\n" not in failed
    finally:
        uploader.close()
    assert not uploader._proc.is_alive()
    logged = {a.path for a in MlflowClient(uri).list_artifacts(run_id, "report")}
    assert logged == {"report/report.html", "report/summary.md"}


def test_closing_an_unused_uploader_stops_its_helper(run: tuple[str, str]) -> None:
    uploader = ReportUploader(run[0])
    uploader.close()
    assert uploader._proc.exitcode is not None
