"""A new mlflow.db made from the empty migrated template: what MLflow would have made."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sweeps.tracking import store_template


def _revision(db: Path) -> str:
    with sqlite3.connect(db) as con:
        return str(con.execute("SELECT version_num FROM alembic_version").fetchone()[0])


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SWEEPS_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_store_from_the_template_is_the_store_mlflow_makes(
        tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow import MlflowClient

    made, copied = tmp_path / "made", tmp_path / "copied"
    for d in (made, copied):
        d.mkdir()
    monkeypatch.chdir(made)
    monkeypatch.setenv("SWEEPS_STORE_TEMPLATE", "0")
    assert not store_template.create_from_template(f"sqlite:///{made / 'mlflow.db'}")
    MlflowClient(f"sqlite:///{made / 'mlflow.db'}").search_experiments()  # MLflow migrates
    monkeypatch.delenv("SWEEPS_STORE_TEMPLATE")
    monkeypatch.chdir(copied)
    uri = f"sqlite:///{copied / 'mlflow.db'}"
    assert store_template.create_from_template(uri)
    assert list((cache / "mlflow").glob("empty-*.db"))
    assert _revision(copied / "mlflow.db") == _revision(made / "mlflow.db")
    client = MlflowClient(uri)
    default = client.get_experiment("0")  # made by MLflow for this directory, not the template's
    assert default.name == "Default" and default.artifact_location == str(copied / "mlruns" / "0")
    exp = client.create_experiment("x")
    run = client.create_run(exp)
    client.log_metric(run.info.run_id, "loss", 0.5, step=1)
    assert client.get_metric_history(run.info.run_id, "loss")[0].value == 0.5


def test_an_existing_store_or_another_uri_is_left_alone(tmp_path: Path, cache: Path) -> None:
    existing = tmp_path / "mlflow.db"
    existing.write_bytes(b"somebody's store")
    assert not store_template.create_from_template(f"sqlite:///{existing}")
    assert existing.read_bytes() == b"somebody's store"
    assert not store_template.create_from_template("http://127.0.0.1:5000")
    assert not store_template.create_from_template(f"sqlite:///{tmp_path / 'no' / 'dir.db'}")
    assert not (tmp_path / "no").exists()
