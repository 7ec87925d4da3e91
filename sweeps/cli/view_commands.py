"""Commands that read a sweep and print or draw it: `status`, `best`, `report`, `paths`.

They never write to the Optuna storage; `report` logs its files to the sweep's MLflow
parent run, as a mirror of what it wrote to disk.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from sweeps.cli.app import (
    Args,
    StorageOpt,
    TrackingOpt,
    app,
    console,
    guard,
    open_sweep,
)
from trainer.api import UserError, check_writable


@app.command()
def status(args: Args = None, storage: StorageOpt = None) -> None:
    """Trials by state and the best value per optimizer."""
    from sweeps.report import failures, summary

    def body() -> int:
        from sweeps.run import fail_fast, slurm_jobs

        sweep = open_sweep(args, storage, None, uses_tracking=False)
        name, studies = sweep.name, sweep.studies()
        console.print(summary.status_table(studies, f"sweep {name}"))
        failed = failures.causes_table(studies)
        if failed is not None:
            console.print(failed)
        halt = fail_fast.halted(studies)
        if halt is not None:
            console.print(f"[red]stopped[/]: the last {halt.get('count')} trials failed with "
                          f"{escape(str(halt.get('signature')))}; fix it and launch again",
                          highlight=False, soft_wrap=True)
        confirm = sweep.confirm_study()
        console.print(summary.confirm_line(confirm, name), highlight=False)
        for array in slurm_jobs.sweep_arrays(studies):  # launcher=slurm: each launch's array
            console.print(slurm_jobs.describe(slurm_jobs.task_states(str(array["job_id"])), array),
                          highlight=False, soft_wrap=True)
        return 0

    guard(body)


@app.command()
def best(args: Args = None, storage: StorageOpt = None) -> None:
    """The best trial (overall and per optimizer), how sure that is, and how to reproduce it."""
    from sweeps.report import comparison, summary
    from sweeps.search import studies as study_mod

    def body() -> int:
        from sweeps.store.trial_reads import BEST_VIEW, defer_reads

        sweep = open_sweep(args, storage, None, uses_tracking=False)
        name, studies = sweep.name, sweep.studies()
        defer_reads(studies, BEST_VIEW)  # on a database: what it shows read for those trials only
        overall = summary.overall_best(studies)
        if overall is None:
            raise UserError(f"sweep {name!r} has no completed trial yet")
        confirm = sweep.confirm_study()
        comp = comparison.build(studies, confirm)
        console.print(summary.best_table(comp))
        for line in summary.best_notes(comp):
            console.print(line, highlight=False, soft_wrap=True)
        study, trial = overall
        final = trial.user_attrs.get("final", {})
        opt = trial.user_attrs.get("optimizer")
        ref = f"{opt}:{trial.number}" if len(studies) > 1 else str(trial.number)
        task = comp.task
        se = f" ± {summary.fmt(comp.se(trial.value))} (split SE)" if task.has_accuracy else ""
        test = "no test split" if "test/loss" not in final else (
            f"test/acc {summary.fmt(final.get('test/acc'))}  test/loss {summary.fmt(final.get('test/loss'))}"
            if task.has_accuracy else f"test/loss {summary.fmt(final.get('test/loss'))}")
        console.print(f"\n[bold]best search trial:[/] {study.study_name} #{trial.number} ({opt})  "
                      f"{task.val_key} {summary.fmt(trial.value)}{se}  {test}", highlight=False)
        for k, v in trial.params.items():
            console.print(f"  {k} = {v}", highlight=False)
        console.print(f"  MLflow run: {study_mod.run_id(study, trial) or '-'}", highlight=False)
        console.print("reproduce it:", highlight=False)
        console.print(f"  sweeps reproduce {name} --trial {ref}", highlight=False, soft_wrap=True)
        cfg = trial.user_attrs.get("config")
        if cfg:
            from trainer.api import overrides_for

            where = study_mod.config_dir_for(studies, sweep.config_dir)
            console.print(f"  {summary.trainer_command(overrides_for(cfg, config_dir=where), where)}",
                          highlight=False, soft_wrap=True)
        return 0

    guard(body)


@app.command()
def report(
    args: Args = None,
    storage: StorageOpt = None,
    tracking_uri: TrackingOpt = None,
    out: Annotated[str | None, typer.Option(help="directory (default reports/NAME)")] = None,
    target: Annotated[float | None, typer.Option(
        help="validation accuracy for 'time to reach' (default: 99 % of the best seen)")] = None,
    top: Annotated[int | None, typer.Option(
        help="trials per optimizer checked for boundary warnings (default 1)")] = None,
) -> None:
    """The comparison: ranking with confidence intervals and paired tests, curves, budget
    curves, boundary warnings (report.html + summary.md, also logged to MLflow)."""
    from sweeps.api import reporting

    def body() -> int:
        reporting.check_report_input(out, target, top)
        sweep = open_sweep(args, storage, tracking_uri, recorded_uri=True)
        result = sweep.report(out, target=target, top=top, absolute=False)
        for f in (result.html, result.summary):
            console.print(f"wrote {f}", highlight=False)
        console.print(result.summary.read_text(), highlight=False, markup=False, soft_wrap=True)
        if result.mlflow_run_id is not None:
            console.print(f"logged to MLflow run {result.mlflow_run_id} (artifacts: report/)",
                          highlight=False)
        elif result.mlflow_error is not None:  # the files are written; tracking only mirrors them
            console.print(f"[yellow]note:[/] could not log the report to MLflow ({result.mlflow_error})")
        return 0

    guard(body)


@app.command()
def paths(
    args: Annotated[list[str] | None, typer.Argument(
        help="[NAME]: take each optimizer's hyperparameters (but the learning rate) from that "
             "sweep's best trial")] = None,
    optimizers: Annotated[str | None, typer.Option(
        help="comma-separated optimizers (default: all eight, or the sweep's)")] = None,
    functions: Annotated[str, typer.Option(help="comma-separated test functions")] =
        "rosenbrock,beale,saddle",
    lr: Annotated[list[str] | None, typer.Option(
        "--lr", help="OPTIMIZER=RATE (repeatable); default: best of a log grid per function")] = None,
    steps: Annotated[int, typer.Option(help="optimizer steps per path")] = 300,
    out: Annotated[str | None, typer.Option(
        help="directory (default reports/NAME/paths, or reports/paths)")] = None,
    storage: StorageOpt = None,
) -> None:
    """Draw each optimizer's path on Rosenbrock, Beale and a saddle over their contours."""
    from sweeps.report import paths as paths_mod

    def body() -> int:
        fn_names = paths_mod.function_names(functions)
        if not 1 <= steps <= paths_mod.MAX_STEPS:
            raise UserError(f"--steps {steps}: must be in [1, {paths_mod.MAX_STEPS:,}] (each path "
                            "is kept in memory and drawn)")
        if out is not None:
            check_writable(out, "--out")
        chosen = [o.strip() for o in optimizers.split(",")] if optimizers else None
        if any("=" not in a for a in args or []):
            from sweeps.report import summary

            sweep = open_sweep(args, storage, None, uses_tracking=False)
            name, studies = sweep.name, sweep.studies()
            sections = paths_mod.sweep_sections(name, summary.best_per_optimizer(studies),
                                                chosen or summary.sweep_optimizers(studies))
            out_dir = out or os.path.join("reports", name, "paths")
        else:
            sections = paths_mod.default_sections(chosen)
            out_dir = out or os.path.join("reports", "paths")
        rates = paths_mod.parse_lrs(lr or [], list(sections))
        results = paths_mod.draw_all(fn_names, sections, rates, steps, Path(out_dir))
        for written, _ in results.values():
            console.print(f"wrote {written}", highlight=False)
        console.print(paths_mod.results_table(results, steps))
        return 0

    guard(body)
