"""The API's errors: one hierarchy, the messages the CLI prints as its one line.

`UserError` (bad input: the CLI exits 2) and its `ConfigError` come from the trainer, so a
notebook catches the same class whichever layer found the mistake; `SweepFailed` is what the
CLI reports with exit 1: a command that ran and did not succeed.
"""

from __future__ import annotations

from trainer.api import ConfigError, UserError

__all__ = ["ConfigError", "SweepFailed", "UserError"]


class SweepFailed(UserError):
    """A launch or confirm that ran and did not succeed: workers lost past
    `sweep.max_worker_restarts`, a stop on `sweep.fail_fast`, no completed trial."""

    exit_code = 1  # the command's: 1, or 130/143 for a launch stopped by Ctrl-C or SIGTERM
    shown = False  # its lines were shown on the caller's console already
