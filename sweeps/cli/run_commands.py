"""Commands that run jobs: `launch`, `worker`, `confirm`, `reproduce`.

Each parses its arguments, calls one function of `sweeps.run`, and prints what it returns.
"""

from __future__ import annotations

import math
from typing import Annotated

import typer

from sweeps.cli.app import (
    AllowOpt,
    Args,
    StorageOpt,
    TrackingOpt,
    app,
    config_dir_given,
    console,
    guard,
    open_sweep,
)
from trainer.api import UserError


@app.command(context_settings={"allow_extra_args": True})
def launch(
    args: Args = None,
    detach: Annotated[bool, typer.Option(
        "--detach", help="launcher=slurm: return once the array job is queued")] = False,
) -> None:
    """Validate, create or resume the sweep's studies, and run its workers to the budget:
    local processes, or a Slurm array job with launcher=slurm (`--config-dir DIR`: your
    model/, dataset/, sweep/ files join the bundled ones)."""
    from sweeps.api.launching import launch_words

    guard(lambda: launch_words(list(args or []), console, detach=detach, config_dir=config_dir_given()))


@app.command()
def worker(
    study: Annotated[str, typer.Option("--study", help="sweep name (all its studies) or one study")],
    args: Args = None,
    storage: StorageOpt = None,
    tracking_uri: TrackingOpt = None,
    output_dir: Annotated[str | None, typer.Option(
        help="where trial outputs and checkpoints go (default: the sweep's checkpoint_dir)")] = None,
    index: Annotated[int, typer.Option(help="worker index (varies sampler seeds)")] = 0,
    allow_target: AllowOpt = None,
) -> None:
    """Join an existing sweep (from another terminal or machine): run its queued confirm runs
    and its trials until the budget is reached."""
    from sweeps.api.working import work

    guard(lambda: work(study, list(args or []), storage=storage, tracking_uri=tracking_uri,
                       output_dir=output_dir, index=index, config_dir=config_dir_given(),
                       allowed_targets=allow_target or (), console=console) and 0)


@app.command()
def confirm(
    args: Args = None,
    seeds: Annotated[int, typer.Option("--seeds", help="seeds per configuration (K >= 2)")] = 5,
    top: Annotated[int, typer.Option("--top", help="configurations per optimizer (N >= 1)")] = 1,
    workers: Annotated[int | None, typer.Option(
        "--workers", help="local worker processes (default: the sweep's; 0: only queue)")] = None,
    storage: StorageOpt = None,
    tracking_uri: TrackingOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="queue a request of more than 100 new runs "
                                      "(without it, the plan is shown and nothing queued)")] = False,
    allow_target: AllowOpt = None,
) -> None:
    """Re-run each optimizer's top-N configurations with K new seeds (paired across optimizers)."""
    from sweeps.run.confirm import check_request

    def body() -> None:
        check_request(seeds, top, workers)
        sweep = open_sweep(args, storage, tracking_uri, recorded_uri=True, allowed_targets=allow_target)
        sweep.confirm(seeds, top, workers, yes=yes, console=console, queue_only=True)

    guard(body)


@app.command()
def reproduce(
    args: Args = None,
    trial: Annotated[str, typer.Option("--trial", help="best, N, or OPTIMIZER:N")] = "best",
    tolerance: Annotated[float | None, typer.Option(
        help="max |difference| allowed (default: 0 on CPU, 1e-3 on GPU)")] = None,
    storage: StorageOpt = None,
    tracking_uri: TrackingOpt = None,
    allow_target: AllowOpt = None,
) -> None:
    """Re-run a trial from its stored config and seed; compare with the original."""
    from sweeps.run.reproduce import Comparison, comparison_table

    def body() -> int:
        if tolerance is not None and not (math.isfinite(tolerance) and tolerance >= 0):
            raise UserError(f"--tolerance {tolerance}: must be a number >= 0 (the largest "
                            "|difference| of a metric taken as identical)")
        sweep = open_sweep(args, storage, tracking_uri, allowed_targets=allow_target)
        study, number = sweep.find(trial)  # a bad --trial: one line, nothing trained
        from sweeps.search.studies import latest_attrs
        from sweeps.tracking import clients

        # an unreachable server: one line now, before anything is said or trained
        clients.check_reachable(clients.resolve_uri(
            sweep.tracking_uri or latest_attrs(sweep.studies()).get("tracking_uri")))
        console.print(f"reproducing {sweep.name} trial {study} #{number} ...", highlight=False)
        result = sweep.reproduce(trial, tolerance)
        rows = [tuple(r) for r in result.comparison.itertuples(index=False)]
        console.print(comparison_table(Comparison(rows, result.tolerance)))
        console.print(f"new MLflow run {result.run_id}; outputs in {result.output_dir}", highlight=False)
        console.print(f"the same run without the sweep layer:\n  {result.trainer_command}",
                      highlight=False, soft_wrap=True)
        if result.identical:
            console.print("[green]reproduced: identical within tolerance[/]")
            return 0
        console.print("[red]NOT reproduced: metrics differ beyond the tolerance[/]")
        return 1

    guard(body)
