"""The report's files logged to the sweep's parent run, from a helper opened in advance."""

from __future__ import annotations

from pathlib import Path

from sweeps.tracking import clients


def log_report(uri: str, run_id: str, files: list[Path]) -> None:
    """Attach the report files to the sweep's parent run (artifact folder ``report/``)."""
    c = clients.client(uri)
    for f in files:
        c.log_artifact(run_id, str(f), "report")


def _open(uri: str) -> None:
    clients.client(uri).get_run  # noqa: B018  (import MLflow and open the store: ~2-4 s)


def _upload(uri: str, run_id: str, files: list[Path]) -> str | None:
    try:
        log_report(uri, run_id, files)
        return None
    except Exception as err:  # reported by the caller as one line
        return (str(err).strip().splitlines() or [type(err).__name__])[0]


class ReportUploader:
    """Logs report files to MLflow from a forked helper that opened the client in advance.

    Importing MLflow and opening its store takes seconds; `sweeps report` starts this helper
    first and builds the report meanwhile. Where the OS cannot fork, it logs in-process.
    """

    def __init__(self, uri: str) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        self.uri = uri
        self._pool: ProcessPoolExecutor | None = None
        if "fork" in mp.get_all_start_methods():
            self._pool = ProcessPoolExecutor(1, mp_context=mp.get_context("fork"))
            self._pool.submit(_open, uri)

    def upload(self, run_id: str, files: list[Path]) -> str | None:
        """Log the files; returns None, or why it failed (one line)."""
        if self._pool is None:
            return _upload(self.uri, run_id, files)
        return self._pool.submit(_upload, self.uri, run_id, files).result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
