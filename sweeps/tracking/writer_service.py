"""A launch's MLflow writer for its own workers: the launch sends their MLflow writes.

A launch imports MLflow and opens the tracking store anyway, for its parent run. Its local
workers send their writes to it over a Unix socket instead of each starting a writer
process of its own, which would import MLflow and open the store again (~3 s of CPU per
worker, and its memory). The writes still run outside the worker's process, so they never
compete with its training loop for the GIL; each worker's writes run in the order it sent
them, on a thread of the launch that serves only that worker.

The socket lives in a private folder (mode 0700) and every connection proves that it knows
the launch's random key (multiprocessing's challenge), so no other process can send writes.
A worker that loses the launch (the launch died) has its later writes made by a thread of
its own (`writer.Background`), as when its writer process dies.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

from sweeps.tracking import outage

log = logging.getLogger("sweeps")


@dataclass(frozen=True)
class WriterAddress:
    """Where a launch's workers send their writes: passed to each worker process at its start
    (`flag`, a shared byte, can only travel that way)."""

    path: str
    authkey: bytes
    flag: Any  # the launch's outage flag: 1 while its writes wait for an unreachable server


class WriterService:
    """The launch's side: accepts its workers' connections and runs what each sends."""

    def __init__(self, ctx: Any) -> None:
        self._folder = tempfile.mkdtemp(prefix="sweeps-writer-")  # 0700: this user's alone
        flag = ctx.Value("b", 0, lock=False)
        self.address = WriterAddress(os.path.join(self._folder, "writes"), os.urandom(32), flag)
        self._listener = Listener(self.address.path, "AF_UNIX", authkey=self.address.authkey)
        self.served: dict[int, int] = {}  # worker PID -> writes run for it (tests, stats)
        self._closing = False
        self._conns: list[Connection] = []
        self._threads = [threading.Thread(target=self._accept, name="sweeps-writer-accept",
                                          daemon=True)]
        outage.share(flag)  # the outages this process sees reach its workers
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._closing:
            try:
                conn = self._listener.accept()
            except Exception as err:  # a peer without the key: refused, the others go on
                if self._closing or (isinstance(err, OSError) and not isinstance(err, ConnectionError)):
                    return  # closed, or out of descriptors: later workers start their own writer
                log.debug("writer connection refused: %s", err)
                continue
            if self._closing:
                conn.close()
                return
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), name="sweeps-writer",
                                      daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: Connection) -> None:
        """One worker's writes, one at a time in the order sent, until it disconnects."""
        with conn:
            try:
                pid = int(conn.recv())
                while True:
                    call_id, fn, args, kwargs = conn.recv()
                    try:
                        reply: tuple[Any, ...] = (call_id, True, fn(*args, **kwargs))
                    except Exception as err:
                        reply = (call_id, False, err)
                    self.served[pid] = self.served.get(pid, 0) + 1
                    try:
                        conn.send(reply)
                    except (OSError, EOFError):
                        raise
                    except Exception:  # a result or an error that does not pickle
                        conn.send((call_id, False, RuntimeError(str(reply[2]))))
            except (EOFError, OSError):  # the worker is done, or gone
                return

    def close(self, timeout_s: float = 5.0) -> None:
        """No more connections (the workers have ended), no thread left behind, the socket's
        folder removed. Closing a socket does not wake a thread blocked on it, so the
        accepting thread is woken by a connection of our own and each worker's thread by
        shutting its socket down; a write still running gets `timeout_s` to end. (A thread
        left waiting would keep the report's figure pools from forking.)"""
        self._closing = True
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as wake:
            wake.settimeout(timeout_s)
            wake.connect(self.address.path)
        for conn in self._conns:
            with contextlib.suppress(OSError, ValueError), \
                    socket.fromfd(conn.fileno(), socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(timeout_s)
        with contextlib.suppress(OSError):
            self._listener.close()
        shutil.rmtree(self._folder, ignore_errors=True)


class LaunchWriter:
    """The worker's side: an executor whose `submit` sends the call to the launch. Like the
    writer process's executor, it raises RuntimeError once the launch is gone, and the
    writes then waiting fail with that error."""

    def __init__(self, address: WriterAddress) -> None:
        self._conn = Client(address.path, "AF_UNIX", authkey=address.authkey)
        self._conn.send(os.getpid())
        self._send_lock = threading.Lock()
        self._ids = itertools.count()
        self._pending: dict[int, Future[Any]] = {}
        self._broken: str | None = None
        outage.share(address.flag)  # the launch's outages, as this worker's own
        threading.Thread(target=self._read, name="sweeps-writer-replies", daemon=True).start()

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._send_lock:
            if self._broken:
                raise RuntimeError(self._broken)
            call_id = next(self._ids)
            self._pending[call_id] = future
            try:
                self._conn.send((call_id, fn, args, kwargs))
            except (OSError, EOFError) as err:
                self._pending.pop(call_id, None)
                self._lost(f"the launch's MLflow writer is gone ({err})")
                raise RuntimeError(self._broken) from None
            except Exception:  # a call that does not pickle: nothing was sent
                self._pending.pop(call_id, None)
                raise
        return future

    def _read(self) -> None:
        while True:
            try:
                call_id, ok, value = self._conn.recv()
            except (EOFError, OSError) as err:
                self._lost(f"the launch's MLflow writer is gone ({err or 'closed'})")
                return
            future = self._pending.pop(call_id, None)
            if future is not None:
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def _lost(self, why: str) -> None:
        self._broken = self._broken or why
        for call_id in list(self._pending):
            future = self._pending.pop(call_id, None)
            if future is not None and not future.done():
                future.set_exception(RuntimeError(self._broken))

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Disconnect (`Background.close_process` has waited for every write first)."""
        with self._send_lock:
            self._broken = self._broken or "closed"
            with contextlib.suppress(OSError):
                self._conn.close()
