"""Chaos on the real scale-out topology, as processes on loopback: PostgreSQL, an `mlflow
server` with basic auth, a launch with its own local worker and two `sweeps worker`
processes. During a 40-trial sweep both remote workers are SIGKILLed mid-trial, the MLflow
server is killed and restarted 20 s later (training goes on meanwhile), and the PostgreSQL
connections of every worker are terminated once.
Afterwards the budget is complete, nothing is left RUNNING, the killed trials finished as
retries that resumed, and every completed trial's run has one val/acc point per epoch.

Every fault acts only on what the test started: its own worker PIDs, its own server's
process group, the connections named after its own worker's PID."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ..servers import MlflowServer
from .helpers import recovery_figures, wait_for
from .test_scale_out import PG_URL, pg_sweep  # noqa: F401  (the fixture)

EPOCHS, TRIALS = 3, 40
ADMIN_PASSWORD = "chaos-admin-password-1"


@pytest.mark.slow
@pytest.mark.postgres
def test_chaos_kills_outages_and_terminated_connections_lose_nothing(
        tmp_path: Path, pg_sweep: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    import psycopg2
    from mlflow import MlflowClient
    from optuna.trial import TrialState

    from sweeps.search.studies import run_id, sweep_studies
    from sweeps.store.storages import open_storage

    (tmp_path / "mlflow").mkdir()
    server = MlflowServer(tmp_path / "mlflow", admin_password=ADMIN_PASSWORD)
    server.start()
    env = {k: v for k, v in os.environ.items() if k not in ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")}
    env.update(MLFLOW_TRACKING_USERNAME="admin", MLFLOW_TRACKING_PASSWORD=ADMIN_PASSWORD)
    pg = ["storage=postgres", f"storage.url={PG_URL}", "storage.heartbeat_interval=1",
          "storage.grace_period=4"]
    sweep = [f"sweep.name={pg_sweep}", "sweep.optimizers=[sgd,adam]", f"sweep.n_trials={TRIALS}",
             # trials of about a second: one worker alone needs most of a minute for the whole
             # budget, so workers that start late on a loaded machine still find trials
             f"trainer.epochs={EPOCHS}", "model.width=256", "model.depth=2", "dataset.val_size=300",
             "search.common.batch_size.choices=[16]", "search.common.schedule.choices=[constant,cosine]",
             "search.sgd.lr.high=0.1", "search.adam.lr.high=0.003",  # no trial may diverge here
             "sweep.pruner.name=none", "sweep.threads_per_worker=1", "sweep.checkpoint_every_s=0",
             "tracking=server",
             f"tracking.uri={server.uri}", *pg]
    procs: list[subprocess.Popen[str]] = []
    try:
        # The sweep is created first without a local worker; then the launch resumes it with
        # its own worker, and the two remote workers start once the launch has opened its run,
        # i.e. while the launch's worker process starts: all three workers start at about the
        # same time, and the faults begin only once all three train. (Remotes first, on a
        # loaded CI machine they once took the whole budget while the launch was starting; the
        # launch's worker first, under load it once took the budget while the remotes started.)
        created = subprocess.run([sys.executable, "-m", "sweeps", "launch", *sweep, "sweep.workers=0"],
                                 cwd=tmp_path, env=env, text=True, capture_output=True, timeout=300)
        assert created.returncode == 0, created.stdout + created.stderr

        storage = open_storage(PG_URL)  # one pool for the whole test: polling must not leak connections

        def trials() -> list:
            try:
                return [t for s in sweep_studies(storage, pg_sweep) for t in s.get_trials(deepcopy=False)]
            except Exception:
                return []

        first_parent = sweep_studies(storage, pg_sweep)[0].user_attrs.get("parent_run_id")
        launch = subprocess.Popen([sys.executable, "-m", "sweeps", "launch", *sweep, "sweep.workers=1"],
                                  cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        procs.append(launch)

        def parent_opened() -> bool:  # the resuming launch's run, recorded in every study
            try:
                return all(s.user_attrs.get("parent_run_id") not in (None, first_parent)
                           for s in sweep_studies(storage, pg_sweep))
            except Exception:
                return False

        wait_for(parent_opened, timeout=180, interval=0.2)
        remote = [subprocess.Popen([sys.executable, "-m", "sweeps", "worker", "--study", pg_sweep, *pg],
                                   cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT) for _ in range(2)]
        procs += remote
        remote_tags = {f"{socket.gethostname()}:{w.pid}" for w in remote}

        def all_training() -> bool:
            """Both remote workers and the launch's own worker have a trial at once."""
            if launch.poll() is not None:
                tail = launch.communicate()[0][-3000:]
                raise AssertionError(f"the launch exited ({launch.returncode}):\n{tail}")
            now = trials()
            running = {t.user_attrs.get("worker") for t in now if t.state == TrialState.RUNNING} - {None}
            if sum(t.state == TrialState.COMPLETE for t in now) >= TRIALS:
                by_worker = Counter(t.user_attrs.get("worker") for t in now)
                raise AssertionError(f"the budget was spent before all three workers trained: "
                                     f"remotes {sorted(remote_tags)}, trials by worker {dict(by_worker)}")
            return running >= remote_tags and bool(running - remote_tags)

        wait_for(all_training, timeout=240, interval=0.2)

        def kill_mid_trial(candidates: list[subprocess.Popen[str]]) -> subprocess.Popen[str]:
            """SIGKILL whichever of `candidates` first has a trial that trained an epoch (which
            remote worker gets trials first is up to the scheduler); records that trial."""
            def mid_trial() -> Any:
                alive = {f"{socket.gethostname()}:{w.pid}": w for w in candidates if w.poll() is None}
                if not alive:  # say why rather than wait out the timeout
                    outs = "\n".join(w.communicate()[0][-1500:] for w in candidates)
                    raise AssertionError(f"the workers exited ({[w.returncode for w in candidates]}) "
                                         f"before one trained an epoch; {len(trials())} trials:\n{outs}")
                # mid-trial: epochs left to train, or (during the outage) done training but
                # still waiting for its MLflow run before it is told, for over a second; a
                # trial that just reported its last epoch may complete before the signal lands
                now = time.time()
                for t in trials():
                    if t.state != TrialState.RUNNING or t.user_attrs.get("worker") not in alive:
                        continue
                    done = len(t.intermediate_values)
                    if done == EPOCHS:
                        waiting.setdefault(t._trial_id, now)
                    if 1 <= done < EPOCHS or (done == EPOCHS and now - waiting[t._trial_id] > 1.0):
                        return t, alive[t.user_attrs["worker"]]
                return None

            waiting: dict[int, float] = {}  # trial id -> when first seen with every epoch reported

            victim, worker = wait_for(mid_trial, timeout=240, interval=0.1)
            worker.send_signal(signal.SIGKILL)
            worker.wait(30)
            killed.append((int(victim.number), str(victim.user_attrs["optimizer"])))
            return worker

        def epochs_done() -> int:
            return sum(len(t.intermediate_values) for t in trials())

        killed: list[tuple[int, str]] = []  # (trial number, optimizer)
        first = kill_mid_trial(remote)
        second = remote[1] if first is remote[0] else remote[0]
        server.stop(kill=True)  # the MLflow server goes away for 20 s
        outage, before = time.time(), epochs_done()
        ours = {f"sweeps {tag}" for tag in {t.user_attrs.get("worker") for t in trials()} | {
            f"{socket.gethostname()}:{second.pid}"} if tag}
        conn = psycopg2.connect(PG_URL)
        conn.autocommit = True
        with conn.cursor() as cur:  # once: every connection of this sweep's workers
            cur.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = ANY(%s)", (sorted(ours),))
            terminated = int(cur.fetchone()[0])
        conn.close()
        kill_mid_trial([second])  # the second kill, during the outage
        time.sleep(max(0.0, 20 - (time.time() - outage)))
        trained_in_outage = epochs_done() - before
        server.start()
        out = launch.communicate(timeout=600)[0]
        assert launch.returncode == 0, out
        assert trained_in_outage >= 1, out  # training went on while MLflow was away

        final = trials()
        by_key = {(t.user_attrs.get("optimizer"), t.number): t for t in final}
        states = [t.state for t in final]
        done, epochs, line = recovery_figures(final)
        print(f"\nchaos: {line} for a budget of {TRIALS} trials, {TRIALS * EPOCHS} epochs; "
              f"{states.count(TrialState.FAIL)} lost with their worker; {terminated} PostgreSQL "
              f"connection(s) terminated; {trained_in_outage} epochs trained during the MLflow outage; "
              f"median trial {statistics.median(t.duration.total_seconds() for t in done):.1f} s")
        failed = [(t.number, t.user_attrs.get("optimizer"), t.user_attrs.get("worker"),
                   t.user_attrs.get("failure_reason"), t.user_attrs.get("retry_of")) for t in final
                  if t.state == TrialState.FAIL]
        assert len(done) == TRIALS, (failed, killed, out[-3000:])  # the budget, complete
        assert TrialState.RUNNING not in states
        for number, optimizer in killed:
            lost = by_key[(optimizer, number)]
            assert lost.state == TrialState.FAIL
            retry = next(t for t in done if t.user_attrs.get("optimizer") == optimizer
                         and number in (t.user_attrs.get("retry_history") or []))
            assert retry.user_attrs.get("resumed_from_epoch", 0) >= 1
        assert epochs <= TRIALS * EPOCHS + 2
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
        client = MlflowClient(server.uri)
        exp = client.get_experiment_by_name(pg_sweep)
        runs = client.search_runs([exp.experiment_id], max_results=1000)
        running = [(r.info.run_name, r.data.tags.get("sweeps.worker"), r.data.tags.get("sweeps.state"))
                   for r in runs if r.info.status == "RUNNING"]
        assert not running, (running, out[-3000:])
        studies = sweep_studies(storage, pg_sweep)
        for study in studies:
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                run = run_id(study, t)  # a run created after its trial ended is on the study
                assert run, (study.study_name, t.number)
                steps = sorted(m.step for m in client.get_metric_history(run, "val/acc"))
                assert steps == list(range(1, EPOCHS + 1)), (t.number, steps)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        server.stop()
