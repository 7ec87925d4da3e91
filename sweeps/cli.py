"""The `sweeps` command line (typer + rich).

Every subcommand takes Hydra overrides as trailing arguments (``sweep=mnist``,
``storage=postgres``, ``sweep.n_trials=40``); a bare word is the sweep name. Bad input
exits with one line and status 2, never a traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from trainer.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Hyperparameter sweeps for deep-learning optimizers (Optuna + MLflow).")
# Piped or captured output is read by grep and scripts: tables get room, lines never break mid-sentence.
_PIPED = not sys.stdout.isatty()
console = Console(width=160 if _PIPED else None, soft_wrap=_PIPED)
err_console = Console(stderr=True, soft_wrap=not sys.stderr.isatty())

Args = Annotated[list[str] | None, typer.Argument(
    help="[NAME] and Hydra overrides, e.g. quick  or  sweep=mnist storage=postgres")]
StorageOpt = Annotated[str | None, typer.Option(
    "--storage", envvar="SWEEPS_STORAGE", help="journal file or database URL (default: storage.url)")]
TrackingOpt = Annotated[str | None, typer.Option(
    "--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI")]


def _guard(fn: Callable[[], int | None]) -> None:
    """Run a command body: UserError -> one line + exit 2; Ctrl-C -> exit 130; anything else
    (a bug, a store that fails mid-command) -> one line + exit 1, with the traceback only when
    SWEEPS_DEBUG=1 asks for it."""
    try:
        code = fn() or 0
    except UserError as err:
        err_console.print(f"[red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        raise typer.Exit(err.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None
    except Exception as err:
        if os.environ.get("SWEEPS_DEBUG") == "1":
            raise
        first = (str(err).strip().splitlines() or [""])[0]
        err_console.print(f"[red]error:[/] unexpected {type(err).__name__}: {escape(first)} "
                          "(run with SWEEPS_DEBUG=1 for the traceback)", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


@dataclass
class Target:
    name: str | None
    overrides: list[str]
    storage_url: str
    tracking_uri: str | None
    cfg: Any


def _target(args: Sequence[str] | None, storage: str | None, tracking_uri: str | None) -> Target:
    from trainer.compose import compose

    args = list(args or [])
    names = [a for a in args if "=" not in a]
    overrides = [a for a in args if "=" in a]
    if len(names) > 1:
        raise UserError(f"expected one sweep name, got {' '.join(names)}")
    cfg = compose(overrides, "sweeps")
    name = names[0] if names else None
    if name is None and any(o.split("=", 1)[0] in ("sweep", "sweep.name") for o in overrides):
        name = str(cfg.sweep.name)
    uri = tracking_uri if tracking_uri is not None else cfg.tracking.uri
    return Target(name, overrides, storage or str(cfg.storage.url), uri, cfg)


def _studies(t: Target) -> tuple[str, list[Any]]:
    from sweeps import storage as storage_mod
    from sweeps import study as study_mod

    storage_mod.check_reachable(t.storage_url)
    if not storage_mod.exists(t.storage_url):
        raise UserError(f"no sweeps yet in {storage_mod.redact(t.storage_url)}; "
                        "start one with `sweeps launch`")
    st = storage_mod.open_storage(t.storage_url)
    names = study_mod.sweep_names(st)
    name = t.name
    if name is None:
        if len(names) != 1:
            example = names[0] if names else "quick"
            raise UserError(f"which sweep? {storage_mod.redact(t.storage_url)} holds: "
                            f"{', '.join(names) or 'none'}; name one, e.g. `sweeps status {example}`")
        name = names[0]
    studies = study_mod.sweep_studies(st, name)
    if not studies:
        raise UserError(f"no sweep {name!r} in {storage_mod.redact(t.storage_url)} "
                        f"(sweeps there: {', '.join(names) or 'none'})")
    return name, studies


@app.command(context_settings={"allow_extra_args": True})
def launch(args: Args = None) -> None:
    """Validate, create or resume the sweep's studies, and run local workers to the budget."""
    from sweeps.launch import launch as run_launch

    _guard(lambda: run_launch(list(args or []), console))


@app.command()
def worker(
    study: Annotated[str, typer.Option("--study", help="sweep name (all its studies) or one study")],
    args: Args = None,
    storage: StorageOpt = None,
    tracking_uri: TrackingOpt = None,
    output_dir: Annotated[str | None, typer.Option(
        help="where trial outputs and checkpoints go (default: the sweep's checkpoint_dir)")] = None,
    index: Annotated[int, typer.Option(help="worker index (varies sampler seeds)")] = 0,
) -> None:
    """Join an existing sweep (from another terminal or machine): run its queued confirm runs
    and its trials until the budget is reached."""
    from sweeps import storage as storage_mod
    from sweeps import study as study_mod
    from sweeps.worker import Worker

    def body() -> int:
        t = _target(args, storage, tracking_uri)
        storage_mod.check_reachable(t.storage_url)
        if not storage_mod.exists(t.storage_url):
            raise UserError(f"--storage {storage_mod.redact(t.storage_url)}: no sweeps there yet")
        st = storage_mod.open_storage(t.storage_url)
        sweep_name = study
        only = None
        kinds: tuple[str, ...] = (study_mod.CONFIRM_KIND, study_mod.SEARCH_KIND)
        if study not in study_mod.sweep_names(st):
            summaries = {s.study_name: s for s in st.get_all_studies()}
            if study in summaries:
                sweep_name = summaries[study].user_attrs.get("sweep", study)
                if study_mod.is_search(summaries[study]):
                    only = study
                else:  # NAME.confirm: only the sweep's queued confirm runs
                    kinds = (study_mod.CONFIRM_KIND,)
        w = Worker(t.storage_url, sweep_name, only_study=only, index=index,
                   tracking_uri=tracking_uri, output_root=output_dir, quiet=False,
                   storage_cfg=dict(t.cfg.storage), kinds=kinds)
        what = "confirm runs" if kinds == (study_mod.CONFIRM_KIND,) else \
            f"{len(w.studies)} stud{'y' if len(w.studies) == 1 else 'ies'} and its confirm runs"
        console.print(f"worker {study_mod.worker_id()} joined sweep {w.sweep} ({what})")
        n = w.run()
        console.print(f"nothing left to run; this worker ran {n} trial(s) or confirm run(s)")
        return 0

    _guard(body)


@app.command()
def status(args: Args = None, storage: StorageOpt = None) -> None:
    """Trials by state and the best value per optimizer."""
    from sweeps import summary

    def body() -> int:
        from sweeps import confirm as confirm_mod
        from sweeps import storage as storage_mod

        t = _target(args, storage, None)
        name, studies = _studies(t)
        console.print(summary.status_table(studies, f"sweep {name}"))
        confirm = confirm_mod.load(storage_mod.open_storage(t.storage_url), name)
        console.print(summary.confirm_line(confirm, name), highlight=False)
        return 0

    _guard(body)


def trainer_command(overrides: Sequence[str]) -> str:
    import shlex

    return "python -m trainer " + " ".join(shlex.quote(o) for o in overrides)


@app.command()
def best(args: Args = None, storage: StorageOpt = None) -> None:
    """The best trial (overall and per optimizer), how sure that is, and how to reproduce it."""
    from sweeps import comparison, summary
    from sweeps import confirm as confirm_mod
    from sweeps import storage as storage_mod
    from sweeps import study as study_mod

    def body() -> int:
        t = _target(args, storage, None)
        name, studies = _studies(t)
        overall = summary.overall_best(studies)
        if overall is None:
            raise UserError(f"sweep {name!r} has no completed trial yet")
        confirm = confirm_mod.load(storage_mod.open_storage(t.storage_url), name)
        comp = comparison.build(studies, confirm)
        console.print(summary.best_table(comp))
        for line in summary.best_notes(comp):
            console.print(line, highlight=False, soft_wrap=True)
        study, trial = overall
        final = trial.user_attrs.get("final", {})
        opt = trial.user_attrs.get("optimizer")
        ref = f"{opt}:{trial.number}" if len(studies) > 1 else str(trial.number)
        se = comp.se(trial.value)
        console.print(f"\n[bold]best search trial:[/] {study.study_name} #{trial.number} ({opt})  "
                      f"val/acc {summary.fmt(trial.value)} ± {summary.fmt(se)} (split SE)  "
                      f"test/acc {summary.fmt(final.get('test/acc'))}"
                      f"  test/loss {summary.fmt(final.get('test/loss'))}", highlight=False)
        for k, v in trial.params.items():
            console.print(f"  {k} = {v}", highlight=False)
        console.print(f"  MLflow run: {study_mod.run_id(study, trial) or '-'}", highlight=False)
        console.print("reproduce it:", highlight=False)
        console.print(f"  sweeps reproduce {name} --trial {ref}", highlight=False, soft_wrap=True)
        cfg = trial.user_attrs.get("config")
        if cfg:
            from trainer.compose import overrides_for

            console.print(f"  {trainer_command(overrides_for(cfg))}", highlight=False,
                          soft_wrap=True)
        return 0

    _guard(body)


@app.command()
def confirm(
    args: Args = None,
    seeds: Annotated[int, typer.Option("--seeds", help="seeds per configuration (K >= 2)")] = 5,
    top: Annotated[int, typer.Option("--top", help="configurations per optimizer (N >= 1)")] = 1,
    workers: Annotated[int | None, typer.Option(
        "--workers", help="local worker processes (default: the sweep's; 0: only queue)")] = None,
    storage: StorageOpt = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Re-run each optimizer's top-N configurations with K new seeds (paired across optimizers)."""
    from sweeps.confirm_run import check_request
    from sweeps.confirm_run import confirm as run_confirm

    def body() -> int:
        check_request(seeds, top, workers)
        t = _target(args, storage, tracking_uri)
        name, studies = _studies(t)
        return run_confirm(name, studies, t.storage_url, tracking_uri, seeds, top, workers, console)

    _guard(body)


@app.command()
def reproduce(
    args: Args = None,
    trial: Annotated[str, typer.Option("--trial", help="best, N, or OPTIMIZER:N")] = "best",
    tolerance: Annotated[float | None, typer.Option(
        help="max |difference| allowed (default: 0 on CPU, 1e-3 on GPU)")] = None,
    storage: StorageOpt = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Re-run a trial from its stored config and seed; compare with the original."""
    from sweeps.reproduce import comparison_table
    from sweeps.reproduce import reproduce as run_reproduce

    def body() -> int:
        t = _target(args, storage, tracking_uri)
        name, studies = _studies(t)
        console.print(f"reproducing {name} trial {trial} ...")
        comparison, result, run_id = run_reproduce(studies, trial, tolerance, t.tracking_uri)
        console.print(comparison_table(comparison))
        console.print(f"new MLflow run {run_id}; outputs in {result.output_dir}", highlight=False)
        if comparison.ok:
            console.print("[green]reproduced: identical within tolerance[/]")
            return 0
        console.print("[red]NOT reproduced: metrics differ beyond the tolerance[/]")
        return 1

    _guard(body)


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
    from sweeps import confirm as confirm_mod
    from sweeps import storage as storage_mod
    from sweeps import tracking
    from sweeps.report import write_report

    def body() -> int:
        if target is not None and not 0.0 < target <= 1.0:
            raise UserError(f"--target {target}: must be a validation accuracy in (0, 1]")
        if top is not None and top < 1:
            raise UserError(f"--top {top}: must be >= 1")
        t = _target(args, storage, tracking_uri)
        name, studies = _studies(t)
        confirm = confirm_mod.load(storage_mod.open_storage(t.storage_url), name)
        latest = max(studies, key=lambda s: s.user_attrs.get("launched_at", 0.0)).user_attrs
        parent = latest.get("parent_run_id")
        uploader = tracking.ReportUploader(tracking.resolve_uri(tracking_uri or latest.get(
            "tracking_uri"))) if parent else None
        try:
            _, files = write_report(studies, confirm, out or os.path.join("reports", name),
                                    target=target, top=top)
            for f in files:
                console.print(f"wrote {f}", highlight=False)
            console.print(files[1].read_text(), highlight=False, markup=False, soft_wrap=True)
            if uploader is not None and parent:
                failed = uploader.upload(parent, files)
                if failed is None:
                    console.print(f"logged to MLflow run {parent} (artifacts: report/)",
                                  highlight=False)
                else:  # the files are written; tracking only mirrors them
                    console.print(f"[yellow]note:[/] could not log the report to MLflow ({failed})")
        finally:
            if uploader is not None:
                uploader.close()
        return 0

    _guard(body)


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
    from sweeps import paths as paths_mod
    from trainer.optim import list_optimizers

    def body() -> int:
        fn_names = [f.strip() for f in functions.split(",") if f.strip()]
        unknown = [f for f in fn_names if f not in paths_mod.FUNCTIONS]
        if unknown or not fn_names:
            raise UserError(f"--functions {functions}: allowed: {', '.join(paths_mod.FUNCTIONS)}")
        if steps < 1:
            raise UserError(f"--steps {steps}: must be >= 1")
        names = [a for a in (args or []) if "=" not in a]
        sections: dict[str, dict[str, Any]] = {}
        chosen = [o.strip() for o in optimizers.split(",")] if optimizers else None
        if names:
            from sweeps import summary

            t = _target(args, storage, None)
            name, studies = _studies(t)
            best = summary.best_per_optimizer(studies)
            for opt in chosen or summary.sweep_optimizers(studies):
                if opt not in best:
                    raise UserError(f"--optimizers: sweep {name!r} has no completed {opt} trial")
                sections[opt] = dict(best[opt][1].user_attrs["config"]["optimizer"])
            out_dir = out or os.path.join("reports", name, "paths")
        else:
            for opt in chosen or list_optimizers():
                if opt not in list_optimizers():
                    raise UserError(f"--optimizers: {opt!r} is not one of "
                                    f"{', '.join(list_optimizers())}")
                sections[opt] = paths_mod.optimizer_section(opt)
            out_dir = out or os.path.join("reports", "paths")
        rates = paths_mod.parse_lrs(lr or [], list(sections))
        from pathlib import Path

        from rich.table import Table

        results = paths_mod.draw_all(fn_names, sections, rates, steps, Path(out_dir))
        table = Table(title=f"optimizer paths, {steps} steps")
        for col in ("function", "optimizer", "lr", "final f", "distance to a minimum"):
            table.add_column(col, justify="left" if col in ("function", "optimizer") else "right")
        for fn_name, (written, found) in results.items():
            fn = paths_mod.FUNCTIONS[fn_name]
            for p in found:
                end = p.points[-1]
                dist = min(((end[0] - mx) ** 2 + (end[1] - my) ** 2) ** 0.5 for mx, my in fn.minima)
                table.add_row(fn_name, p.optimizer, f"{p.lr:.3g} ({p.lr_source})",
                              "diverged" if p.diverged else f"{p.final:.3g}",
                              "-" if p.diverged else f"{dist:.3g}")
            console.print(f"wrote {written}", highlight=False)
        console.print(table)
        return 0

    _guard(body)


@app.command()
def sync(args: Args = None, storage: StorageOpt = None, tracking_uri: TrackingOpt = None) -> None:
    """Write into MLflow what it is missing (runs never created, epochs never sent) from the
    Optuna record, after a tracking outage longer than tracking.patience_s."""
    from sweeps import confirm as confirm_mod
    from sweeps import storage as storage_mod
    from sweeps import tracking
    from sweeps.sync import sync as run_sync

    def body() -> int:
        t = _target(args, storage, tracking_uri)
        name, studies = _studies(t)
        latest = max(studies, key=lambda s: s.user_attrs.get("launched_at", 0.0)).user_attrs
        uri = tracking.resolve_uri(tracking_uri or latest.get("tracking_uri"))
        tracking.check_reachable(uri)
        confirm = confirm_mod.load(storage_mod.open_storage(t.storage_url), name)
        r = run_sync(studies, confirm, uri, name)
        console.print(f"synced sweep {name} to {storage_mod.redact(uri)}: {r.created} run(s) created, "
                      f"{r.completed} completed, {r.intact} already complete"
                      + (f", {r.skipped} failed before training (nothing to write)" if r.skipped else ""),
                      highlight=False)
        return 0

    _guard(body)


UI_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # a variable the user set wins


@app.command()
def ui(
    args: Args = None,
    host: Annotated[str, typer.Option(envvar="SWEEPS_UI_HOST", help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="SWEEPS_UI_PORT")] = 5000,
    storage: StorageOpt = None,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Start the MLflow UI on the sweep's tracking store and print its URL."""
    from sweeps import tracking

    def body() -> int:
        t = _target(args, storage, tracking_uri)
        uri = t.tracking_uri
        sweep = None
        if t.name is not None or uri is None:
            try:
                sweep, studies = _studies(t)
                uri = uri or studies[0].user_attrs.get("tracking_uri")
            except UserError:
                pass
        uri = tracking.resolve_uri(uri)
        if uri.startswith(("http://", "https://")):
            console.print(f"the tracking store is an MLflow server: open {tracking.ui_url(uri, uri, sweep)}",
                          highlight=False, soft_wrap=True)
            return 0
        exe = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or shutil.which("mlflow")
        if exe is None:
            raise UserError("the mlflow command is not installed in this environment")
        url = tracking.ui_url(f"http://{host}:{port}", uri, sweep)
        console.print(f"MLflow UI for {uri} at [bold]{url}[/] (Ctrl-C to stop)", highlight=False,
                      soft_wrap=True)
        # one user's UI: one server process (MLflow's default is 4) and none of the
        # background job processes MLflow starts for its GenAI features (7 more, ~1 GB):
        # it starts in about half the time
        cmd = [exe, "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port),
               "--workers", "1"]
        env = {**UI_ENV, **os.environ}
        return subprocess.call(cmd, env=env)

    _guard(body)


def main() -> None:
    import logging

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    app()


if __name__ == "__main__":
    main()
