"""`sweeps ui`: the MLflow UI on a sweep's tracking store, started lean."""

from __future__ import annotations

import os
import shutil
import sys

from trainer.errors import UserError

UI_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # a variable the user set wins


def ui_command(uri: str, host: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The `mlflow ui` command line and environment for a local tracking store.

    One user's UI: one server process (MLflow's default is 4) and none of the background job
    processes MLflow starts for its GenAI features (7 more, ~1 GB): it starts in about half
    the time.
    """
    exe = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or shutil.which("mlflow")
    if exe is None:
        raise UserError("the mlflow command is not installed in this environment")
    cmd = [exe, "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port), "--workers", "1"]
    return cmd, {**UI_ENV, **os.environ}
