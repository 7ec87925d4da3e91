"""A process keeps two connections to a database server, whatever it opened at once: 64
workers with SQLAlchemy's default of 5 each, beside the MLflow server's, ran PostgreSQL's
max_connections out."""

from __future__ import annotations

import threading
import time

import pytest

from sweeps.store import storages
from sweeps.store.storages import open_storage

from .test_trial_reads import PG_URL, postgres_storage

pytestmark = pytest.mark.postgres


def test_a_storage_keeps_two_connections_after_a_burst_of_four() -> None:
    postgres_storage()  # skipped where PostgreSQL is down (never in CI)
    storage = open_storage(PG_URL)
    rdb = getattr(storage, "_backend", storage)
    gate = threading.Barrier(4)

    def busy() -> None:
        with rdb.engine.connect() as conn:  # four at once, as a worker's threads at start-up
            gate.wait()
            conn.exec_driver_sql("SELECT pg_sleep(0.05)")

    threads = [threading.Thread(target=busy) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(0.05)
    assert rdb.engine.pool.checkedin() == storages.POOL_KEPT == 2  # the other two closed
