"""Secrets in URLs: shown hidden, kept nowhere.

A storage or tracking URL may carry a password, in its userinfo (``user:pw@host``, also with
an empty user or a ``/`` in the password) or in its query (``?password=...``). Two forms:

- `redact`: for anything shown (messages, banners, MLflow params and tags): the secret
  replaced by ``***``, so the reader sees there was one;
- `strip`: for anything kept (the study's record, Slurm's submission files): the secret
  removed. A process that needs it gets it where the user put it for that machine: the
  command line, ``$SWEEPS_STORAGE``/``$MLFLOW_TRACKING_URI`` (`with_secret`), PostgreSQL's
  ``~/.pgpass``/``$PGPASSFILE``/``$PGPASSWORD``, or MLflow's ``$MLFLOW_TRACKING_USERNAME``
  and ``$MLFLOW_TRACKING_PASSWORD``.

Both act on every URL inside a text (an override ``storage.url=postgresql://...``, a whole
command line) and leave the rest as it was.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence

_URL = re.compile(r"[A-Za-z][\w+.-]*://[^\s'\"<>]*")
SECRET_PARAMS = frozenset({"password", "passwd", "pwd", "sslpassword", "token", "access_token",
                           "secret", "api_key", "apikey"})
HIDDEN = "***"


def _parts(url: str) -> tuple[str, str | None, str, str]:
    """(scheme://, userinfo or None, host and path, ?query or "")."""
    scheme, _, body = url.partition("://")
    head, q, query = body.partition("?")
    at = head.rfind("@")
    userinfo: str | None = head[:at] if at >= 0 else None
    rest = head[at + 1:] if at >= 0 else head
    if userinfo is not None and "/" in userinfo and ":" not in userinfo:
        userinfo, rest = None, head  # an "@" in the path, not a user
    return scheme + "://", userinfo, rest, q + query


def _query(query: str, secret: Callable[[str, str], str | None]) -> str:
    if not query:
        return ""
    kept = []
    for pair in query[1:].split("&"):
        key, eq, value = pair.partition("=")
        if key.lower() in SECRET_PARAMS and eq:
            new = secret(key, value)
            if new is not None:
                kept.append(f"{key}={new}")
        else:
            kept.append(pair)
    return "?" + "&".join(kept) if kept else ""


def _redact_one(url: str) -> str:
    scheme, userinfo, rest, query = _parts(url)
    if userinfo is not None and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":" + HIDDEN
    who = "" if userinfo is None else userinfo + "@"
    return scheme + who + rest + _query(query, lambda k, v: HIDDEN)


def _strip_one(url: str) -> str:
    scheme, userinfo, rest, query = _parts(url)
    if userinfo is not None and (":" in userinfo or scheme.lower().startswith("http")):
        user = userinfo.split(":", 1)[0]
        # a database keeps its user (the role to log in as); a web server's user is
        # MLflow's $MLFLOW_TRACKING_USERNAME, given with its password
        userinfo = user if user and not scheme.lower().startswith("http") else None
    who = "" if userinfo is None else userinfo + "@"
    return scheme + who + rest + _query(query, lambda k, v: None)


def redact(text: str) -> str:
    """Every URL in `text` with its secrets shown as ``***``."""
    return _URL.sub(lambda m: _redact_one(m.group(0)), text)


def strip(text: str) -> str:
    """Every URL in `text` without its secrets (what may be written down)."""
    return _URL.sub(lambda m: _strip_one(m.group(0)), text)


def strip_all(texts: Sequence[str]) -> list[str]:
    return [strip(t) for t in texts]


def has_secret(text: str) -> bool:
    return strip(text) != text


def with_secret(url: str, env: Sequence[str] = ("SWEEPS_STORAGE", "MLFLOW_TRACKING_URI")) -> str:
    """`url` (a stored one, without its secret) with the secret this machine's environment
    gives for the same place: the value of `env` whose stripped form is `url`'s."""
    if has_secret(url):
        return url
    for name in env:
        value = os.environ.get(name, "")
        if value and strip(value) == strip(url):
            return value
    return url
