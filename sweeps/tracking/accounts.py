"""The MLflow user a deployment's launch and workers log in as: not the server's admin.

`python -m sweeps.tracking.accounts` (run once at start by docker-compose.yml's and
deploy/k8s's `mlflow-user` job) makes the user, or sets its password where it exists,
logging in as the admin. Its settings come from the environment, where the deployment's
secrets put them:

- ``MLFLOW_TRACKING_URI``: the server;
- ``MLFLOW_ADMIN_USERNAME`` (default ``admin``) and ``MLFLOW_ADMIN_PASSWORD``;
- ``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD``: the user to make.

The user is an ordinary one: it creates the sweep's experiment (and so may write its runs),
and with the server's ``default_permission = READ`` it reads the others' but changes none,
manages no user and cannot make itself admin.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.error
import urllib.request

from sweeps.store.secrets import strip


def _call(base: str, path: str, body: dict[str, str], admin: tuple[str, str],
          method: str = "POST") -> int:
    token = base64.b64encode(f"{admin[0]}:{admin[1]}".encode()).decode()
    request = urllib.request.Request(base.rstrip("/") + path, data=json.dumps(body).encode(),
                                     method=method, headers={"Authorization": f"Basic {token}",
                                                             "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def ensure_user(base: str, admin: tuple[str, str], user: str, password: str) -> str:
    """Make `user` with `password` on the MLflow server at `base` (or set its password);
    returns what was done. Raises RuntimeError with one line otherwise."""
    if user == admin[0]:
        raise RuntimeError(f"{user!r} is the server's admin: give the workers a user of their own")
    code = _call(base, "/api/2.0/mlflow/users/create", {"username": user, "password": password}, admin)
    if code == 200:
        return "created"
    code = _call(base, "/api/2.0/mlflow/users/update-password",
                 {"username": user, "password": password}, admin, method="PATCH")
    if code == 200:
        return "password set"
    raise RuntimeError(f"{strip(base)}: could not make MLflow user {user!r} (HTTP {code}; is the "
                       "admin password right, and the server started with --app-name basic-auth?)")


def main() -> int:
    env = os.environ
    missing = [k for k in ("MLFLOW_TRACKING_URI", "MLFLOW_ADMIN_PASSWORD", "MLFLOW_TRACKING_USERNAME",
                           "MLFLOW_TRACKING_PASSWORD") if not env.get(k)]
    if missing:
        print(f"error: set {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        done = ensure_user(strip(env["MLFLOW_TRACKING_URI"]),
                           (env.get("MLFLOW_ADMIN_USERNAME", "admin"), env["MLFLOW_ADMIN_PASSWORD"]),
                           env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"])
    except RuntimeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"MLflow user {env['MLFLOW_TRACKING_USERNAME']!r}: {done}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
