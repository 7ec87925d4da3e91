"""What the machine refuses, said in one line: disk full, a read-only file system, no
permission, no file descriptor left.

These are not a trial's failures: every trial would fail the same way, so the sweep stops
at once (exit 1) instead of burning its budget, and the line names the file and what to do.
What could not be written is recovered by the next launch once the cause is fixed: a torn
journal line is set aside, trials left running are failed and retried, launch runs left
open are closed.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator

_WHAT = {
    errno.ENOSPC: ("no space left on device", "free space there (or put the stores and "
                   "sweep.checkpoint_dir on another disk)"),
    errno.EDQUOT: ("disk quota exceeded", "free space or raise the quota"),
    errno.EROFS: ("read-only file system", "give a writable place for it"),
    errno.EACCES: ("permission denied", "give this user write access there, or another place"),
    errno.EPERM: ("operation not permitted", "give this user write access there, or another place"),
    errno.EMFILE: ("too many open files", "raise the limit (ulimit -n) or run fewer workers here"),
    errno.ENFILE: ("too many open files on this machine", "close other programs' files or run "
                   "fewer workers here"),
}
# the same causes as SQLite (MLflow's mlflow.db), torch.save and others word them
_WORDED = {"database or disk is full": errno.ENOSPC, "No space left on device": errno.ENOSPC,
           "Disk quota exceeded": errno.EDQUOT, "Read-only file system": errno.EROFS,
           "attempt to write a readonly database": errno.EROFS, "disk I/O error": errno.EIO,
           "file write failed": errno.EIO, "Too many open files": errno.EMFILE}
_WORDED_WHAT = {errno.EIO: ("a write failed (a full disk, or an I/O error)",
                            "check that there is space and that the disk works")}


MACHINE_EXIT = 3  # a worker's exit status after one: its launch stops the sweep


class MachineError(Exception):
    """A worker's systematic failure, already worded (`describe`): stop, do not retry."""


def _chain(err: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    stack: list[BaseException] = [err]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        stack += [x for x in (e.__cause__, e.__context__, getattr(e, "orig", None))
                  if isinstance(x, BaseException)]


def describe(err: BaseException, where: str | None = None) -> str | None:
    """One line for a systematic OS error anywhere in `err`'s chain (None: not one); `where`
    names the file when the error does not (a write to an open file has no name)."""
    for e in _chain(err):
        if isinstance(e, MachineError):
            return str(e)
        if isinstance(e, OSError) and e.errno in _WHAT:
            what, todo = _WHAT[e.errno]
            path = e.filename or where
            on = f" ({path})" if path else ""
            return f"{what}{on}: {todo}; then run the same command again (it resumes)"
        text = str(e)
        for marker, code in _WORDED.items():
            if marker in text:
                what, todo = _WHAT.get(code) or _WORDED_WHAT[code]
                on = f" ({where})" if where else ""
                return f"{what}{on}: {todo}; then run the same command again (it resumes)"
    return None
