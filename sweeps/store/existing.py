"""Whether a storage already holds Optuna's data, found out without writing to it.

Opening an Optuna storage creates what is missing: a database gets Optuna's tables, a
journal path gets a file. The commands that only read a sweep (`status`, `best`,
`report`, `paths`, `ui`) must not leave that behind in a database or file that holds no
sweep (a mistyped `--storage`), so they ask here first.
"""

from __future__ import annotations

import json

from sweeps.store.urls import connect_args, is_database, journal_path, reading_url, redact
from trainer.api import UserError

TABLE = "studies"  # the table every Optuna schema has
HEAD = 64 * 1024  # enough of a journal's first line to tell a log entry


def check(url: str) -> None:
    """One line (exit 2) unless `url` holds an Optuna storage; reads only."""
    if is_database(url):
        _check_database(url)
    else:
        _check_journal(url)


def _check_database(url: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(reading_url(url), connect_args=connect_args(url))
    try:
        tables = sqlalchemy.inspect(engine).get_table_names()
    except Exception as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"storage.url={redact(url)}: cannot connect ({reason})") from None
    finally:
        engine.dispose()
    if TABLE not in tables:
        raise UserError(f"no sweeps yet in {redact(url)} (it has no Optuna tables; nothing was "
                        "written to it); start one with `sweeps launch`")


def _check_journal(url: str) -> None:
    path = journal_path(url)
    if not path.is_file():
        raise UserError(f"no sweeps yet in {url}; start one with `sweeps launch`")
    with open(path, "rb") as f:
        head = f.read(HEAD)
    if not head:
        return  # an empty journal: no sweep in it, as Optuna reads it
    first = head.split(b"\n", 1)[0]
    try:
        entry = json.loads(first)
    except ValueError:
        entry = None
    if not isinstance(entry, dict) or "op_code" not in entry:
        raise UserError(f"storage.url={url}: {path} is not an Optuna journal (its first line is "
                        "not a log entry); nothing was written to it")


def torn(url: str) -> bool:
    """A journal whose last line lacks its newline (a crash mid-write)."""
    from sweeps.store.journal import torn_tail

    return torn_tail(journal_path(url))
