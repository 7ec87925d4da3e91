"""A sweep's database opened to be read (`sweeps.store.reading`): one query, nothing written,
alembic not imported; a database not at this Optuna's schema goes Optuna's full way."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from sweeps.store import reading, storages
from sweeps.store.resilient import ResilientRDBStorage


def _sweep_db(path: Path) -> str:
    url = f"sqlite:///{path}"
    study = optuna.create_study(study_name="s.adam", storage=url, direction="maximize")
    study.set_user_attr("sweep", "s")
    study.optimize(lambda t: t.suggest_float("lr", 1e-4, 1e-1, log=True), n_trials=3)
    return url


def _rows(path: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute(query))


def test_the_head_revision_read_from_the_scripts_is_alembics(tmp_path: Path) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'x.db'}")
    assert reading.head_revision() == storage._version_manager.get_head_version()


def test_a_sweep_database_opens_unchecked_and_reads_what_the_full_opening_reads(tmp_path: Path) -> None:
    path = tmp_path / "sweep.db"
    url = _sweep_db(path)
    before = _rows(path, "SELECT * FROM alembic_version") + _rows(path, "SELECT * FROM version_info")
    fast = reading.open_checked(ResilientRDBStorage, url)
    assert fast is not None and isinstance(fast._version_manager, reading._Unchecked)
    full = optuna.storages.RDBStorage(url)
    (study,) = fast.get_all_studies()
    assert fast.get_all_trials(study._study_id) == full.get_all_trials(study._study_id)
    assert _rows(path, "SELECT * FROM alembic_version") + _rows(path, "SELECT * FROM version_info") == before
    # Optuna's own class is back in place for every other opening
    assert optuna.storages._rdb.storage._VersionManager is not reading._Unchecked


def test_a_reading_command_imports_no_alembic(tmp_path: Path) -> None:
    url = _sweep_db(tmp_path / "sweep.db")
    code = ("import sys; from sweeps.search.studies import open_sweep; "
            f"name, studies = open_sweep({url!r}, None); studies[0].get_trials(); "
            "print(name, len(studies[0].trials), 'alembic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["s", "3", "False"], out.stderr


def test_a_database_at_another_schema_revision_is_opened_the_full_way(tmp_path: Path) -> None:
    """Optuna's own check then says what to do (upgrade the storage); nothing is changed."""
    path = tmp_path / "old.db"
    url = _sweep_db(path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'v3.0.0.d'")
    assert reading.open_checked(ResilientRDBStorage, url) is None
    with pytest.raises(RuntimeError, match="optuna storage upgrade"):
        storages.open_storage(url, create=False)
    assert _rows(path, "SELECT version_num FROM alembic_version") == [("v3.0.0.d",)]


def test_a_database_without_optunas_tables_is_not_opened_here(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE mine (x int)")
    assert reading.open_checked(ResilientRDBStorage, f"sqlite:///{path}") is None
    assert _rows(path, "SELECT name FROM sqlite_master") == [("mine",)]


def test_a_reading_command_leaves_an_sqlite_file_without_sweeps_byte_for_byte(tmp_path: Path) -> None:
    """`sweeps status --storage sqlite:///mlflow.db`: refused in one line, and the file's
    write-ahead log is not folded in (the close of a read-write connection would do that)."""
    db = tmp_path / "mlflow.db"
    make = ("import os, sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
            "c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0'); "
            "c.execute('CREATE TABLE alembic_version (version_num text)'); "
            "c.execute(\"INSERT INTO alembic_version VALUES ('0584bdc529eb')\"); c.commit(); "
            "os._exit(0)")  # MLflow's revision, not Optuna's; left with its log unfolded
    subprocess.run([sys.executable, "-c", make, str(db)], check=True)
    kept = ("mlflow.db", "mlflow.db-wal")  # (the -shm file is an index any reader updates)
    files = {name: (tmp_path / name).read_bytes() for name in kept}
    assert files["mlflow.db-wal"]
    out = subprocess.run([sys.executable, "-m", "sweeps", "status", "--storage", f"sqlite:///{db}"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2 and "no Optuna tables" in out.stdout + out.stderr, out.stdout + out.stderr
    assert {name: (tmp_path / name).read_bytes() for name in kept} == files
