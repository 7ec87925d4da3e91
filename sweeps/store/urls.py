"""Storage URLs: journal file or database, reachability, passwords kept out of messages.

``storage.url`` (or $SWEEPS_STORAGE) is either a path to a journal file (``sweeps.journal``,
``journal:///abs/path``) or an SQLAlchemy URL (``postgresql://user@host/db``). Reachability
is checked before anything is written; passwords never appear in messages, params or tags.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from trainer.api import UserError

_DB_URL = re.compile(r"^[a-z][a-z0-9+]*://", re.IGNORECASE)


def redact(url: str) -> str:
    """Hide the secrets of a URL, or of every URL in a text (``postgresql://u:***@host/db``,
    ``?password=***``): `sweeps.store.secrets`."""
    from sweeps.store.secrets import redact as hidden

    return hidden(url)


def is_database(url: str) -> bool:
    return bool(_DB_URL.match(url)) and not url.startswith("journal:")


def is_server_database(url: str) -> bool:
    """A database behind a server (PostgreSQL, MySQL): its connections are the server's to
    count. SQLite is a file."""
    return is_database(url) and not url.startswith("sqlite")


def journal_path(url: str) -> Path:
    path = url[len("journal://"):] if url.startswith("journal://") else url
    path = path[len("journal:"):] if path.startswith("journal:") else path
    return Path(path).expanduser().resolve()


def sqlalchemy_url(url: str) -> str:
    """Plain ``postgresql://`` URLs go through psycopg2 (SQLAlchemy 2.1 would pick psycopg 3)."""
    return re.sub(r"^postgres(ql)?://", "postgresql+psycopg2://", url)


def reading_url(url: str) -> str:
    """`sqlalchemy_url`, read-only for SQLite: a check that only reads must not change the
    file (closing SQLite's last read-write connection folds its write-ahead log in)."""
    full = sqlalchemy_url(url)
    if full.startswith("sqlite:///") and ":memory:" not in full:
        path = Path(full[len("sqlite:///"):]).expanduser().resolve()
        return f"sqlite:///file:{path}?mode=ro&uri=true"
    return full


def check_port(url: str, key: str) -> None:
    """One line naming `key` where a URL's port is not a port (urllib says `Port out of
    range` from deep inside a client, as an unexpected error)."""
    if "://" not in url:
        return
    import urllib.parse

    try:
        urllib.parse.urlsplit(url).port  # noqa: B018  # reading it checks it
    except ValueError as err:
        raise UserError(f"{key}={redact(url)}: the port must be a number from 1 to 65535 "
                        f"({err})") from None


def check_reachable(url: str) -> None:
    """Raise UserError (one line) unless the storage can be opened; writes nothing."""
    if is_database(url):
        check_database(url, "storage.url")
        return
    path = journal_path(url)
    if not path.parent.is_dir():
        raise UserError(f"storage.url={url}: directory {path.parent} does not exist")
    if path.exists() and not path.is_file():
        raise UserError(f"storage.url={url}: {path} is not a file")
    from trainer.api import check_writable

    try:  # the journal's lock files are written beside it, even by a read
        check_writable(path.parent, "dir")
    except UserError as err:
        raise UserError(f"storage.url={url}: directory {path.parent} "
                        f"{str(err).split(': ', 1)[-1]} (the journal and its locks are written "
                        "there)") from None


def check_database(url: str, key: str) -> None:
    """One line naming `key` unless the database answers; writes nothing."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(reading_url(url), connect_args=connect_args(url))
        with engine.connect():
            pass
        engine.dispose()
    except Exception as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{key}={redact(url)}: cannot connect ({reason})") from None


def connect_args(url: str) -> dict[str, Any]:
    # application_name names this process's connections in pg_stat_activity (host:pid), so
    # an operator (or a test) can tell workers apart and terminate exactly one's connections
    return {"connect_timeout": 5, "application_name": application_name()} \
        if url.startswith("postgresql") else {}


def application_name() -> str:
    import os
    import socket

    return f"sweeps {socket.gethostname()}:{os.getpid()}"[:63]


def exists(url: str) -> bool:
    """Whether the storage already holds data (a journal file that is there, or any DB)."""
    return is_database(url) or journal_path(url).exists()


def libpq_url(url: str) -> str:
    """SQLAlchemy's ``postgresql+psycopg2://`` -> libpq's ``postgresql://``."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)
