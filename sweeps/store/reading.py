"""A sweep's database opened to be read: one connection and one query before the first read.

Opening Optuna's `RDBStorage` looks at every table to create the missing ones, writes a
version row and an alembic stamp where they are absent, and imports alembic to parse
Optuna's migration scripts for the schema check. Before that, a reading command (`status`,
`best`, `report`, `ui`, the Python API) checked the server answers and that the database
holds Optuna's tables, each on a connection of its own. Together that is about a fifth of
a second before the first read. Here one query on the storage's own (pooled) connection
reads the schema's alembic revision: where it is the one this Optuna writes, Optuna created
every table and checked its schema when it made the database, and the storage is opened
without looking again. Anything else (no answer, no such table, another revision, an
MLflow database, whose alembic revisions are not Optuna's) goes the full way, which says
what is wrong in one line.
"""

from __future__ import annotations

import functools
import re
import threading
from pathlib import Path
from typing import Any

import optuna

_PATCH = threading.Lock()  # Optuna's module global is replaced for the length of one opening


@functools.cache
def head_revision() -> str | None:
    """The alembic revision of the schema this Optuna writes: the one no other revision of
    its migration scripts names as its predecessor (read from the scripts' text, without
    alembic). None where the scripts are not found as expected."""
    from optuna.storages import _rdb

    found = re.compile(r'^(down_revision|revision) = (?:"([^"]+)"|None)$', re.M)
    revisions: set[str] = set()
    predecessors: set[str] = set()
    for script in (Path(_rdb.__file__).parent / "alembic" / "versions").glob("*.py"):
        for kind, name in found.findall(script.read_text(encoding="utf-8")):
            (revisions if kind == "revision" else predecessors).add(name)
    heads = revisions - predecessors
    return heads.pop() if len(heads) == 1 else None


def current_revision(engine: Any) -> str | None:
    """The database's alembic revision; None where it has none or does not answer."""
    import sqlalchemy

    try:
        with engine.connect() as connection:
            return str(connection.execute(sqlalchemy.text("SELECT version_num FROM alembic_version"))
                       .scalar_one())
    except Exception:
        return None


def open_checked(storage_class: type[optuna.storages.RDBStorage], url: str,
                 **kwargs: Any) -> optuna.storages.RDBStorage | None:
    """`storage_class(url, **kwargs)` opened without creating tables, stamping versions or
    importing alembic, where the database is at this Optuna's schema revision; else None
    (nothing is written either way)."""
    from optuna.storages._rdb import storage as rdb_module

    head = head_revision()
    if head is None:
        return None
    with _PATCH:
        real = rdb_module._VersionManager
        rdb_module._VersionManager = _Unchecked  # type: ignore[misc]
        try:
            storage = storage_class(url, skip_table_creation=True, skip_compatibility_check=True,
                                    **kwargs)
        finally:
            rdb_module._VersionManager = real  # type: ignore[misc]
    if current_revision(storage.engine) != head:
        storage.engine.dispose()
        return None
    return storage


class _Unchecked(optuna.storages._rdb.storage._VersionManager):
    """Optuna's version manager, less what its constructor does on opening (a version row and
    an alembic stamp written where absent): the revision was read and compared instead."""

    def __init__(self, url: str, engine: Any, scoped_session: Any) -> None:
        self.url, self.engine, self.scoped_session = url, engine, scoped_session
