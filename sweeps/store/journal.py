"""The embedded journal file: opened with a lock beside it, a torn last line healed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna

from sweeps.store import collector
from sweeps.store.urls import journal_path
from trainer.api import UserError


def open_journal(url: str, heal: bool = True) -> optuna.storages.JournalStorage:
    """`heal=False`: read as it is (a torn last line is skipped by Optuna's reader)."""
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = journal_path(url)
    private_file(path)
    lock = JournalFileOpenLock(str(path))
    if heal:
        heal_torn_tail(path, lock)
    backend = JournalFileBackend(str(path), lock_obj=lock)
    try:
        with collector.paused():  # the replay of every trial in the file
            return optuna.storages.JournalStorage(backend)
    except ValueError as err:  # json.JSONDecodeError: a line that is not a log entry
        raise UserError(corrupt_journal_message(url, path)) from err


def private_file(path: Path) -> None:
    """A new journal is this user's alone (0600, whatever the umask): it holds the sweep's
    configs and results, and nobody else may write the rows a worker acts on."""
    import contextlib
    import os

    if path.exists() or not path.parent.is_dir():
        return
    with contextlib.suppress(OSError):  # made meanwhile by another process, or not ours to make
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def heal_torn_tail(path: Path, lock: Any) -> None:
    """A crash in the middle of a journal write leaves a last line without its newline.
    Optuna skips it when reading, but its next write would be appended to that same line,
    corrupting the file for good: so, under the journal's own lock (no write is in flight
    then), set the torn tail aside into ``NAME.torn`` and cut it off."""
    import logging

    from optuna.storages.journal._file import get_lock_file

    if not torn_tail(path):
        return
    with get_lock_file(lock):
        data = path.read_bytes()
        if data.endswith(b"\n"):
            return
        keep = data.rfind(b"\n") + 1
        with open(path.with_name(path.name + ".torn"), "ab") as torn:
            torn.write(data[keep:] + b"\n")
        with open(path, "r+b") as f:
            f.truncate(keep)
    logging.getLogger("sweeps").warning(
        "%s ended with a partial entry (a crash mid-write); set aside in %s.torn", path, path.name)


def torn_tail(path: Path) -> bool:
    """Whether the file's last line lacks its newline (a crash mid-write); False for an
    empty or missing file."""
    try:
        with open(path, "rb") as f:
            f.seek(-1, 2)
            return f.read(1) != b"\n"
    except OSError:  # missing, or empty (a seek before the start)
        return False


def corrupt_journal_message(url: str, path: Path) -> str:
    """Where the journal breaks. (An incomplete *last* line, from a crash mid-write, is not an
    error: Optuna skips it on reading, and the next write starts a fresh line.)"""
    import json

    lines = path.read_bytes().split(b"\n")
    for number, line in enumerate(lines, 1):
        if not line.strip() or number == len(lines):
            continue
        try:
            json.loads(line)
        except ValueError:
            return (f"storage.url={url}: {path} is corrupt at line {number} of {len(lines) - 1} "
                    "(not an Optuna log entry; the lines before it are intact): restore the file from a "
                    "backup, or remove that line (keep a copy; later entries may refer to it)")
    return f"storage.url={url}: {path} cannot be read as an Optuna journal"
