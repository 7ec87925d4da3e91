"""Commands on the MLflow side of a sweep: `sync` (write what MLflow is missing) and `ui`."""

from __future__ import annotations

from typing import Annotated

import typer

from sweeps.cli.app import (
    Args,
    StorageOpt,
    TrackingOpt,
    app,
    console,
    guard,
    open_sweep,
    studies_of,
    sweep_target,
)
from trainer.api import UserError


@app.command()
def sync(args: Args = None, storage: StorageOpt = None, tracking_uri: TrackingOpt = None) -> None:
    """Write into MLflow what it is missing (runs never created, epochs never sent) from the
    Optuna record, after a tracking outage longer than tracking.patience_s."""
    from sweeps.search.studies import latest_attrs
    from sweeps.store import urls
    from sweeps.tracking import clients
    from sweeps.tracking.runs import close_orphan_parents
    from sweeps.tracking.sync import sync as run_sync

    def body() -> int:
        sweep = open_sweep(args, storage, tracking_uri, recorded_uri=True)
        name, studies = sweep.name, sweep.studies()
        latest = latest_attrs(studies)
        uri = clients.resolve_uri(sweep.tracking_uri or latest.get("tracking_uri"))
        clients.check_reachable(uri)
        for run_id in close_orphan_parents(uri, name):
            console.print(f"closed MLflow run {run_id}: its launch ended without closing it "
                          "(killed)", highlight=False)
        confirm = sweep.confirm_study()
        r = run_sync(studies, confirm, uri, name)
        console.print(f"synced sweep {name} to {urls.redact(uri)}: {r.created} run(s) created, "
                      f"{r.completed} completed, {r.intact} already complete"
                      + (f", {r.skipped} failed before training (nothing to write)" if r.skipped else ""),
                      highlight=False)
        return 0

    guard(body)


@app.command()
def ui(
    args: Args = None,
    host: Annotated[str, typer.Option(envvar="SWEEPS_UI_HOST", help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="SWEEPS_UI_PORT")] = 5000,
    storage: StorageOpt = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Start the MLflow UI on the sweep's tracking store and print its URL."""
    from sweeps.store import secrets
    from sweeps.tracking import clients
    from sweeps.tracking.ui import check_address, serve, ui_command

    def body() -> int:
        check_address(host, port)
        t = sweep_target(args, storage, tracking_uri)
        uri = t.tracking_uri
        sweep = None
        if t.name is not None or storage is not None:  # asked for: it must be there
            sweep, studies = studies_of(t)
            uri = uri or studies[0].user_attrs.get("tracking_uri")
        elif uri is None:  # the default storage's only sweep, if there is one
            try:
                sweep, studies = studies_of(t)
                uri = studies[0].user_attrs.get("tracking_uri")
            except UserError:
                pass
        uri = clients.resolve_uri(uri)
        clients.check_reachable(uri, login=False)  # a server's UI asks for the login itself
        if uri.startswith(("http://", "https://")):
            shown = secrets.strip(clients.ui_url(uri, uri, sweep))  # the browser asks for the login
            console.print(f"the tracking store is an MLflow server: open {shown}",
                          highlight=False, soft_wrap=True)
            return 0
        cmd, env = ui_command(uri, host, port)
        url = clients.ui_url(f"http://{host}:{port}", uri, sweep)
        if host not in ("127.0.0.1", "localhost", "::1"):
            console.print(f"[yellow]warning:[/] --host {host}: the MLflow UI has no login; anyone "
                          f"who reaches port {port} of this machine reads and changes every run "
                          "of this store", highlight=False, soft_wrap=True)
        console.print(f"MLflow UI for {secrets.redact(uri)} at [bold]{url}[/] (Ctrl-C to stop)",
                      highlight=False, soft_wrap=True)
        return serve(cmd, env)

    guard(body)
