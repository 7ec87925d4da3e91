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
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)

Args = Annotated[list[str] | None, typer.Argument(
    help="[NAME] and Hydra overrides, e.g. quick  or  sweep=mnist storage=postgres")]
StorageOpt = Annotated[str | None, typer.Option(
    "--storage", envvar="SWEEPS_STORAGE", help="journal file or database URL (default: storage.url)")]
TrackingOpt = Annotated[str | None, typer.Option(
    "--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI")]


def _guard(fn: Callable[[], int | None]) -> None:
    """Run a command body: UserError -> one line + exit 2; Ctrl-C -> exit 130."""
    try:
        code = fn() or 0
    except UserError as err:
        err_console.print(f"[red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        raise typer.Exit(err.exit_code) from None
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None
    raise typer.Exit(code)


@dataclass
class Target:
    name: str | None
    overrides: list[str]
    storage_url: str
    tracking_uri: str | None
    cfg: Any


def _target(args: Sequence[str] | None, storage: str | None, tracking_uri: str | None) -> Target:
    from trainer.config import compose

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
    output_dir: Annotated[str, typer.Option(help="where trial outputs go")] = "outputs",
    index: Annotated[int, typer.Option(help="worker index (varies sampler seeds)")] = 0,
) -> None:
    """Join an existing sweep (from another terminal or machine) and run trials to the budget."""
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
        if study not in study_mod.sweep_names(st):
            summaries = {s.study_name: s for s in st.get_all_studies()}
            if study in summaries:
                sweep_name = summaries[study].user_attrs.get("sweep", study)
                only = study
        w = Worker(t.storage_url, sweep_name, only_study=only, index=index,
                   tracking_uri=tracking_uri, output_root=output_dir, quiet=False,
                   storage_cfg=dict(t.cfg.storage))
        console.print(f"worker {study_mod.worker_id()} joined sweep {w.sweep} "
                      f"({len(w.studies)} stud{'y' if len(w.studies) == 1 else 'ies'})")
        n = w.run()
        console.print(f"budget reached; this worker ran {n} trial(s)")
        return 0

    _guard(body)


@app.command()
def status(args: Args = None, storage: StorageOpt = None) -> None:
    """Trials by state and the best value per optimizer."""
    from sweeps import summary

    def body() -> int:
        name, studies = _studies(_target(args, storage, None))
        console.print(summary.status_table(studies, f"sweep {name}"))
        return 0

    _guard(body)


def trainer_command(overrides: Sequence[str]) -> str:
    import shlex

    return "python -m trainer " + " ".join(shlex.quote(o) for o in overrides)


@app.command()
def best(args: Args = None, storage: StorageOpt = None) -> None:
    """The best trial (overall and per optimizer) and how to reproduce it."""
    from sweeps import summary

    def body() -> int:
        name, studies = _studies(_target(args, storage, None))
        overall = summary.overall_best(studies)
        if overall is None:
            raise UserError(f"sweep {name!r} has no completed trial yet")
        console.print(summary.best_table(studies))
        study, t = overall
        final = t.user_attrs.get("final", {})
        opt = t.user_attrs.get("optimizer")
        ref = f"{opt}:{t.number}" if len(studies) > 1 else str(t.number)
        console.print(f"\n[bold]best overall:[/] {study.study_name} #{t.number} ({opt})  "
                      f"val/acc {summary.fmt(t.value)}  test/acc {summary.fmt(final.get('test/acc'))}"
                      f"  test/loss {summary.fmt(final.get('test/loss'))}", highlight=False)
        for k, v in t.params.items():
            console.print(f"  {k} = {v}", highlight=False)
        console.print(f"  MLflow run: {t.user_attrs.get('mlflow_run_id', '-')}", highlight=False)
        console.print("reproduce it:", highlight=False)
        console.print(f"  sweeps reproduce {name} --trial {ref}", highlight=False, soft_wrap=True)
        cfg = t.user_attrs.get("config")
        if cfg:
            from trainer.config import overrides_for

            console.print(f"  {trainer_command(overrides_for(cfg))}", highlight=False,
                          soft_wrap=True)
        return 0

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
    out: Annotated[str | None, typer.Option(help="directory (default reports/NAME)")] = None,
) -> None:
    """Write an HTML report and a Markdown summary of a sweep."""
    from sweeps.report import write_report

    def body() -> int:
        name, studies = _studies(_target(args, storage, None))
        files = write_report(studies, name, out or os.path.join("reports", name))
        for f in files:
            console.print(f"wrote {f}", highlight=False)
        console.print((files[1]).read_text(), highlight=False, markup=False)
        return 0

    _guard(body)


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
        if t.name is not None or uri is None:
            try:
                _, studies = _studies(t)
                uri = uri or studies[0].user_attrs.get("tracking_uri")
            except UserError:
                pass
        uri = tracking.resolve_uri(uri)
        if uri.startswith(("http://", "https://")):
            console.print(f"the tracking store is an MLflow server: open {uri}")
            return 0
        exe = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or shutil.which("mlflow")
        if exe is None:
            raise UserError("the mlflow command is not installed in this environment")
        console.print(f"MLflow UI for {uri} at [bold]http://{host}:{port}[/] (Ctrl-C to stop)")
        cmd = [exe, "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port)]
        return subprocess.call(cmd)

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
