"""A new ``mlflow.db`` made from an empty, already-migrated one instead of by migrating.

MLflow creates a SQLite store by running every schema migration it has: ~2.3 s of Python
for each new launch directory, on the way to the first trial. The first store a machine
makes is also kept, emptied of its one row (MLflow's "Default" experiment, whose artifact
path names the directory it was made in), in the cache dir under the MLflow version; a
new store is a copy of it. MLflow opening the copy finds every table at the current
revision, so it migrates nothing and creates the Default experiment for the directory it
is in, as for a store it had made itself. Off with ``SWEEPS_STORE_TEMPLATE=0``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
from pathlib import Path

log = logging.getLogger("sweeps")


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` tracking URI (None for any other store)."""
    if not uri.startswith("sqlite:///"):
        return None
    rest = uri[len("sqlite:///"):].split("?", 1)[0]
    return Path(rest) if rest and rest != ":memory:" else None


def _template() -> Path | None:
    """The empty migrated store of this MLflow version, made now if there is none yet."""
    from importlib.metadata import version

    from trainer.api import cache_dir

    path = cache_dir() / "mlflow" / f"empty-{version('mlflow-skinny')}.db"
    if path.is_file():
        return path
    try:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.unlink(missing_ok=True)
        store = SqlAlchemyStore(f"sqlite:///{tmp}", str(path.parent / "unused"))
        store.engine.dispose()
        with contextlib.closing(sqlite3.connect(tmp)) as db, db:
            db.execute("DELETE FROM experiments")  # MLflow makes its Default one per directory
        os.replace(tmp, path)
        return path
    except Exception as err:  # a read-only home: MLflow migrates a new store itself
        log.debug("no MLflow store template: %s", err)
        return None


def create_from_template(uri: str) -> bool:
    """Make the new SQLite store of `uri` from the template; False where the store exists
    already, is no SQLite file, or the template cannot be had (MLflow then makes it)."""
    target = sqlite_path(uri)
    if target is None or target.exists() or os.environ.get("SWEEPS_STORE_TEMPLATE") == "0":
        return False
    template = _template()
    if template is None or not target.parent.is_dir():
        return False
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        shutil.copyfile(template, tmp)
        os.chmod(tmp, 0o600)  # it will hold the sweep's runs: this user's alone
        os.link(tmp, target)  # never over a store another process made meanwhile
        return True
    except OSError:
        return False
    finally:
        tmp.unlink(missing_ok=True)
