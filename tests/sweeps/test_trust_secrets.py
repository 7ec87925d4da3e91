"""No secret at rest, none shown, nothing written before a login is known to work, and
names read from a storage held to the command line's rules.

The attacks: read the study storage (or the journal, as another user) for passwords; read
what `sweeps ui` prints and what `ps` shows of it; relaunch with a wrong MLflow password and
a larger budget; store a sweep named `../../x` and ask for its report.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import optuna
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sweeps.store import secrets
from sweeps.tracking.ui import ui_command

from ..servers import MlflowServer
from .conftest import SMALL, run_sweeps
from .test_scale_out import PG_URL, pg_sweep  # noqa: F401  (the fixture)

# printable ASCII as typed into a URL, "/", ":" and "@" included
_PASSWORD = st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="?#'\"<>&"),
                    min_size=4, max_size=24).filter(lambda p: not p.isdigit())


@given(user=st.sampled_from(["", "u", "admin", "svc.user"]), password=_PASSWORD,
       scheme=st.sampled_from(["postgresql", "postgresql+psycopg2", "http", "https", "mysql"]),
       query=st.sampled_from(["", "?sslmode=require", "?password={p}", "?sslmode=disable&password={p}",
                              "?token={p}&x=1"]))
def test_redaction_and_stripping_leave_no_password(user: str, password: str, scheme: str,
                                                   query: str) -> None:
    secret = "Zq" + password + "Zq"  # never a substring of the rest of the URL by chance
    url = f"{scheme}://{user}:{secret}@db.example:5432/sweeps{query.format(p=secret)}"
    shown, kept = secrets.redact(url), secrets.strip(url)
    assert secret not in shown and secret not in kept
    assert secret not in secrets.redact(f"storage.url={url} tracking.uri={url}")
    assert "db.example:5432/sweeps" in shown and "db.example:5432/sweeps" in kept
    assert ":***@" in shown
    if user and not scheme.startswith("http"):
        assert kept.startswith(f"{scheme}://{user}@")  # the role to log in as stays
    assert secrets.strip(kept) == kept and not secrets.has_secret(kept)


def test_a_stored_url_takes_its_password_from_this_machine_s_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    full = "postgresql://svc:pw/with/slashes@db:5432/sweeps"
    stored = secrets.strip(full)
    assert stored == "postgresql://svc@db:5432/sweeps"
    assert secrets.with_secret(stored) == stored  # nothing in the environment: as stored
    monkeypatch.setenv("SWEEPS_STORAGE", full)
    assert secrets.with_secret(stored) == full
    monkeypatch.setenv("SWEEPS_STORAGE", "postgresql://svc:pw@elsewhere:5432/sweeps")
    assert secrets.with_secret(stored) == stored  # another server's password is not given out


def test_the_ui_keeps_the_store_s_uri_out_of_its_command_line() -> None:
    uri = "postgresql+psycopg2://u:ui-s3cret@127.0.0.1/mlflow"
    cmd, env = ui_command(uri, "127.0.0.1", 5999)
    assert "ui-s3cret" not in " ".join(cmd)  # what every user of the machine sees in `ps`
    assert env["MLFLOW_BACKEND_STORE_URI"] == uri  # the process's own environment: 0400


def test_what_a_launch_writes_is_this_user_s_alone(workdir: Path) -> None:
    old = os.umask(0o022)  # a shell's usual umask: files would be 0644
    try:
        out = run_sweeps("launch", *SMALL, "sweep.optimizers=[sgd]", "sweep.n_trials=1",
                         "trainer.epochs=1", cwd=workdir)
    finally:
        os.umask(old)
    assert out.returncode == 0, out.stdout + out.stderr
    for name in ("sweeps.journal", "mlflow.db"):
        mode = stat.S_IMODE((workdir / name).stat().st_mode)
        assert mode & 0o077 == 0, (name, oct(mode))


def test_a_sweep_named_like_a_path_in_the_storage_is_no_sweep(workdir: Path) -> None:
    out = run_sweeps("launch", *SMALL, "sweep.optimizers=[sgd]", "sweep.n_trials=1",
                     "trainer.epochs=1", cwd=workdir)
    assert out.returncode == 0, out.stdout + out.stderr
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(workdir / "sweeps.journal")))
    for s in storage.get_all_studies():  # the attacker's rows
        storage.set_study_user_attr(s._study_id, "sweep", "../../../esc")
    for args in (["report"], ["report", "../../../esc"]):
        report = run_sweeps(*args, cwd=workdir)
        assert report.returncode == 2, report.stdout + report.stderr
    assert not (workdir / "reports").exists() and not (workdir.parent.parent / "esc").exists()


@pytest.mark.slow
@pytest.mark.postgres
def test_passwords_stay_out_of_the_storage_and_a_wrong_login_changes_nothing(
        tmp_path: Path, pg_sweep: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    secret_pg, secret_mlflow = "pg-s3cret/Xq7", "mlflow-s3cret-Zr9"
    pg_url = PG_URL.replace("postgres@", "postgres:pg-s3cret%2FXq7@")  # trust auth ignores it
    pg_query = f"{PG_URL}?password={secret_pg.replace('/', '%2F')}"
    server = MlflowServer(tmp_path / "mlflow", admin_password=secret_mlflow)
    (tmp_path / "mlflow").mkdir()
    server.start()
    try:
        uri = server.uri.replace("http://", f"http://admin:{secret_mlflow}@")
        args = [*SMALL, f"sweep.name={pg_sweep}", "storage=postgres", "tracking=server",
                "sweep.optimizers=[sgd]", "trainer.epochs=1", "sweep.workers=1"]
        first = run_sweeps("launch", *args, f"storage.url={pg_url}", f"tracking.uri={uri}",
                           "sweep.n_trials=1", cwd=tmp_path)
        assert first.returncode == 0, first.stdout + first.stderr
        from sweeps.store.urls import sqlalchemy_url

        stored = optuna.storages.RDBStorage(sqlalchemy_url(PG_URL))

        def record() -> str:
            return json.dumps([s.user_attrs for s in stored.get_all_studies()
                               if s.user_attrs.get("sweep") == pg_sweep], sort_keys=True, default=str)

        before = record()
        assert pg_sweep in before and "pg-s3cret" not in before and secret_mlflow not in before
        assert "%2FXq7" not in before

        # the same launch with a wrong MLflow password and a larger budget: refused first
        wrong = server.uri.replace("http://", "http://admin:wrong-password@")
        again = run_sweeps("launch", *args, f"storage.url='{pg_query}'", f"tracking.uri={wrong}",
                           "sweep.n_trials=3", cwd=tmp_path)
        assert again.returncode == 2, again.stdout + again.stderr
        assert "refused this login (401" in again.stderr and "wrong-password" not in again.stderr
        assert record() == before  # budget, tracking URI and overrides as they were

        # a worker of another machine: the storage password on its command line, MLflow's in
        # its environment; the sweep's record gives it neither
        ui = run_sweeps("ui", pg_sweep, "--storage", pg_url, cwd=tmp_path)
        assert ui.returncode == 0 and secret_mlflow not in ui.stdout + ui.stderr, ui.stdout
        worker = run_sweeps("worker", "--study", pg_sweep, "--storage", pg_url, cwd=tmp_path,
                            env={"MLFLOW_TRACKING_USERNAME": "admin",
                                 "MLFLOW_TRACKING_PASSWORD": secret_mlflow})
        assert worker.returncode == 0, worker.stdout + worker.stderr
        for out in (first, again, ui, worker):
            text = out.stdout + out.stderr
            assert "pg-s3cret" not in text and secret_mlflow not in text and "%2FXq7" not in text
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.postgres
def test_the_deployments_ordinary_users_run_a_sweep_and_can_do_no_more(
        tmp_path: Path, pg_sweep: str) -> None:  # noqa: F811
    """The roles docker-compose.yml and deploy/k8s make, made by their own scripts on the
    local PostgreSQL and an `mlflow server`: a sweep runs as them, and they can do no more."""
    import subprocess
    import sys

    import psycopg2

    from sweeps.tracking.accounts import ensure_user

    from ..servers import sweeps_database

    admin_pw, user_pw = "admin-s3cret-Qw8", "sweeps-s3cret-Er4"
    server = MlflowServer(tmp_path / "mlflow", admin_password=admin_pw)
    (tmp_path / "mlflow").mkdir()
    server.start()
    try:
        env = {"MLFLOW_TRACKING_URI": server.uri, "MLFLOW_ADMIN_PASSWORD": admin_pw,
               "MLFLOW_TRACKING_USERNAME": "sweeps", "MLFLOW_TRACKING_PASSWORD": user_pw}
        for expected in ("created", "password set"):  # the compose / k8s job, run twice
            made = subprocess.run([sys.executable, "-m", "sweeps.tracking.accounts"], text=True,
                                  capture_output=True, env={**os.environ, **env}, timeout=120)
            assert made.returncode == 0 and expected in made.stdout, made.stdout + made.stderr
        with sweeps_database(PG_URL) as storage:
            role = storage.split("//", 1)[1].split(":", 1)[0]
            with psycopg2.connect(PG_URL) as conn, conn.cursor() as cur:
                cur.execute("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles "
                            "WHERE rolname = %s", (role,))
                assert cur.fetchone() == (False, False, False)
            run_env = {k: env[k] for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
            out = run_sweeps("launch", *SMALL, "sweep.optimizers=[sgd]", "sweep.n_trials=2",
                             "trainer.epochs=1", "storage=postgres", f"storage.url={storage}",
                             "tracking=server", f"tracking.uri={server.uri}", cwd=tmp_path,
                             env=run_env)
            assert out.returncode == 0, out.stdout + out.stderr
            assert "[2/2] complete 2" in out.stdout, out.stdout  # the last progress line
            # and no more: no database of its own making, no MLflow user, no admin
            conn = psycopg2.connect(storage.replace(":test-only", ""))
            conn.autocommit = True
            try:
                with conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute("CREATE DATABASE never_made")
            finally:
                conn.close()
            with pytest.raises(RuntimeError, match="could not make MLflow user"):
                ensure_user(server.uri, ("sweeps", user_pw), "intruder", "intruder-pw-123")
    finally:
        server.stop()
