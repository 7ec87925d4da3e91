"""Errors a user can fix: each renders as one line, and the CLI exits non-zero on them."""

from __future__ import annotations

from typing import Any


class UserError(Exception):
    """An error caused by input; shown as one line, never as a traceback."""

    exit_code = 2


class ConfigError(UserError):
    """A config key holds a value that is not allowed.

    The message names the key, the value and what is allowed, e.g.
    ``optimizer.lr=-1.0: must be > 0``.
    """

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r}: {allowed}")


class DatasetUnavailableError(UserError):
    """A dataset is not on disk and could not be downloaded."""
