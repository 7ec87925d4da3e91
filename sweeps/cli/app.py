"""What every `sweeps` command shares: the typer app, the consoles, the options, the guard.

`guard` runs a command's body: bad input ends in one line and exit 2, Ctrl-C in 130, an
unexpected error in one line and exit 1 (the traceback only with SWEEPS_DEBUG=1).
`sweep_target` reads a command's trailing words (a bare word is the sweep name, the rest are
Hydra overrides of the sweep config) and `open_sweep` opens the `sweeps.api.Sweep` they name:
each command is parse, one call into `sweeps.api`, print.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from trainer.api import UserError

if TYPE_CHECKING:
    from sweeps.api.handle import Location, Sweep

# `sweeps --help` lists the commands in the order of a sweep's life, not of their modules
ORDER = ("launch", "worker", "status", "best", "confirm", "reproduce", "report", "paths", "sync", "ui")


class _InOrder(TyperGroup):
    def list_commands(self, ctx: Any) -> list[str]:
        names = list(self.commands)
        return sorted(names, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        """A typo in an option (`--seeds five`, `--nosuch`) is one line and exit 2, as any
        other bad input is, not a usage box."""
        from typer._click import exceptions as click

        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, windows_expand_args,
                                **extra)
        argv = list(sys.argv[1:] if args is None else args)
        try:
            code = super().main(argv, prog_name, complete_var, False, windows_expand_args, **extra)
        except click.NoArgsIsHelpError as err:  # `sweeps` or `sweeps CMD` alone
            err.show()
            sys.exit(err.exit_code)
        except click.ClickException as err:
            err_console.print(f"[red]error:[/] {escape(usage_line(err, argv))}", highlight=False,
                              soft_wrap=True)
            sys.exit(err.exit_code)
        except typer.Abort:
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def usage_line(err: Any, argv: Sequence[str]) -> str:
    """Click's message on one line, with the value typed and where to read what is allowed."""
    from typer._click import exceptions as click

    text = " ".join(err.format_message().split())
    command = err.ctx.command_path if getattr(err, "ctx", None) is not None else "sweeps"
    if isinstance(err, click.BadParameter) and err.param is not None:
        value = _typed_value(argv, [*err.param.opts, *err.param.secondary_opts])
        if value is not None:
            text = f"{text} (got {value!r})"
    return f"{text.rstrip('.')}; see `{command} --help`"


def _typed_value(argv: Sequence[str], opts: Sequence[str]) -> str | None:
    for i, word in enumerate(argv):
        for opt in opts:
            if word == opt and i + 1 < len(argv):
                return argv[i + 1]
            if word.startswith(opt + "="):
                return word[len(opt) + 1:]
    return None


app = typer.Typer(cls=_InOrder, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Hyperparameter sweeps for deep-learning optimizers (Optuna + MLflow).")
# Piped or captured output is read by grep and scripts: tables get room, lines never break mid-sentence.
_PIPED = not sys.stdout.isatty()
console = Console(width=160 if _PIPED else None, soft_wrap=_PIPED)
err_console = Console(stderr=True, soft_wrap=not sys.stderr.isatty())

# What the exit status of a `sweeps` command means (docs/reference/exit-codes.md is made from it).
EXIT_CODES: dict[int, str] = {
    0: "Done: the command did what it was asked.",
    1: "It ran and did not succeed: `reproduce` found metrics that differ beyond the tolerance; "
       "a launch or `confirm` lost workers past `sweep.max_worker_restarts`, or a launch ended "
       "with no completed trial; the sweep stopped on `sweep.fail_fast` (trials failing the same "
       "way); an unexpected error (one line; `SWEEPS_DEBUG=1` prints the traceback). The stores "
       "stay consistent: running the same command again continues.",
    2: "Bad input: one line names the key, option or file and what is allowed. Nothing was "
       "written to the study, the tracking store or the output directory.",
    130: "Stopped by Ctrl-C: running trials are marked failed (`interrupted`), their MLflow runs "
         "closed; the next launch retries them from their checkpoints.",
    124: "Stopped by its watchdog: the command made no progress for `SWEEPS_WATCHDOG_S` "
         "seconds (default 900). One line says where it waited; every thread's stack is kept "
         "in a file it names; its child processes were stopped with it.",
    143: "Stopped by SIGTERM (Slurm, Kubernetes, systemd): as Ctrl-C, within 30 s.",
}

Args = Annotated[list[str] | None, typer.Argument(
    help="[NAME] and Hydra overrides, e.g. quick  or  sweep=mnist storage=postgres")]
StorageOpt = Annotated[str | None, typer.Option(
    "--storage", envvar="SWEEPS_STORAGE", help="journal file or database URL (default: storage.url)")]
TrackingOpt = Annotated[str | None, typer.Option(
    "--tracking-uri", envvar="MLFLOW_TRACKING_URI", help="MLflow tracking URI")]
AllowOpt = Annotated[list[str] | None, typer.Option(
    "--allow-target", help="a package whose _target_s may be called here, beyond the bundled "
    "ones and your config dir's (repeatable; also SWEEPS_ALLOWED_TARGETS)")]


INTERACTIVE_PATIENCE_S = 30.0  # a tracking server's outage, waited out by commands a person waits on


def guard(fn: Callable[[], int | None]) -> None:
    """Run a command body: UserError -> one line + exit 2; Ctrl-C -> exit 130; anything else
    (a bug, a store that fails mid-command) -> one line + exit 1, with the traceback only when
    SWEEPS_DEBUG=1 asks for it."""
    from sweeps.api.errors import SweepFailed
    from trainer.api import watchdog

    watchdog.arm(f"sweeps {_command_name()}")  # no silent hang: past its bound, one line
    if _command_name() not in ("launch", "worker"):  # nothing running to protect: a person waits
        from sweeps.tracking import outage

        outage.set_patience(INTERACTIVE_PATIENCE_S)
    try:
        code = fn() or 0
    except SweepFailed as err:
        if not err.shown:  # said on the screen already, as the command ran
            err_console.print(f"[red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        raise typer.Exit(err.exit_code) from None
    except UserError as err:
        err_console.print(f"[red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        raise typer.Exit(err.exit_code) from None
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM (sweeps.run.stopping)
        from sweeps.run import stopping

        err_console.print(stopping.reason(err))
        raise typer.Exit(stopping.exit_code(err)) from None
    except Exception as err:
        from sweeps.store import os_errors

        if os.environ.get("SWEEPS_DEBUG") == "1":
            raise
        machine = os_errors.describe(err)
        if machine is not None:  # disk full, read-only, ...: the machine's, not a bug
            err_console.print(f"[red]error:[/] {escape(machine)}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        first = (str(err).strip().splitlines() or [""])[0]
        err_console.print(f"[red]error:[/] unexpected {type(err).__name__}: {escape(first)} "
                          "(run with SWEEPS_DEBUG=1 for the traceback)", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    finally:
        watchdog.disarm()
    raise typer.Exit(code)


def _command_name() -> str:
    """The verb being run (`status`, ...), for the lines that name it."""
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    if ctx is not None and ctx.info_name in ORDER:
        return str(ctx.info_name)
    return next((word for word in sys.argv[1:] if word in ORDER), "command")


def sweep_target(args: Sequence[str] | None, storage: str | None, tracking_uri: str | None,
                 uses_tracking: bool = True) -> Location:
    """Where the command's words point (`sweeps.api.handle.locate`), with this command
    line's config dir; an override the command would not use is refused (`check_overrides`)."""
    from sweeps.api.handle import locate

    check_overrides(args, uses_tracking)
    return locate(list(args or []), storage, tracking_uri, config_dir_given())


def check_overrides(args: Sequence[str] | None, uses_tracking: bool) -> None:
    """The commands that read a sweep take overrides that say where it is (`sweep=`,
    `sweep.name=`, `storage...`, and `tracking...` where they use MLflow); any other would be
    silently ignored, since they read the sweep as it was launched: one line instead."""
    keys = ["sweep=", "sweep.name=", "storage=", "storage.*="]
    keys += ["tracking=", "tracking.*="] if uses_tracking else []
    for word in args or []:
        if "=" not in word:
            continue
        key = word.split("=", 1)[0].lstrip("+~")
        root = key.split(".", 1)[0]
        if key in ("sweep", "sweep.name") or root == "storage" or (uses_tracking and root == "tracking"):
            continue
        raise UserError(f"{word}: `sweeps {_command_name()}` does not use it (it reads the sweep as "
                        f"it was launched); it takes the sweep's name and {', '.join(keys)}")


def tracking_given(args: Sequence[str] | None, tracking_uri: str | None) -> bool:
    """Whether this command line names a tracking store (`--tracking-uri`, `tracking=...` or
    `tracking.uri=...`): it then wins over the one the sweep recorded."""
    return tracking_uri is not None or any(
        "=" in w and w.split("=", 1)[0].lstrip("+~").split(".", 1)[0] == "tracking" for w in args or [])


def studies_of(t: Location) -> tuple[str, list[Any]]:
    """The sweep a command names (or the storage's only one) and its studies."""
    sweep = t.open()
    return sweep.name, sweep.studies()


def open_sweep(args: Sequence[str] | None, storage: str | None, tracking_uri: str | None, *,
               recorded_uri: bool = False, allowed_targets: Sequence[str] | None = None,
               uses_tracking: bool = True) -> Sweep:
    """The `Sweep` the command's words name (the API's object every verb works on).
    `recorded_uri`: unless this command line names a tracking store (`tracking_given`), the
    tracking URI the sweep was launched with rather than the config's
    (`$MLFLOW_TRACKING_URI`); its `tracking_uri` is then None."""
    import dataclasses

    where = sweep_target(args, storage, tracking_uri, uses_tracking)
    if recorded_uri and not tracking_given(args, tracking_uri):
        where = dataclasses.replace(where, tracking_uri=None)
    return dataclasses.replace(where, allowed_targets=tuple(allowed_targets or ())).open()


# The command line's config dir: `main` takes `--config-dir` from anywhere on the line, the
# callback resolves it (else `$SWEEPS_CONFIG_DIR`) once per command; the commands pass it on
# as an argument. This module is the CLI's edge: nothing below it reads either.
_from_argv: str | None = None
_config_dir: str | None = None


@app.callback()
def _options(config_dir: Annotated[str | None, typer.Option(
        "--config-dir", help="your config dir: its model/, dataset/, sweep/, search/ files join "
        "the bundled ones (yours win); also SWEEPS_CONFIG_DIR, and any command's --config-dir")] = None,
) -> None:
    """Hyperparameter sweeps for deep-learning optimizers (Optuna + MLflow)."""
    global _config_dir
    _config_dir = _resolved(config_dir if config_dir is not None else _from_argv)


def config_dir_given() -> str | None:
    """The user's config dir of this command line (`--config-dir`, anywhere on it, else
    `$SWEEPS_CONFIG_DIR`), absolute; None: none given."""
    return _config_dir


def _resolved(path: str | None) -> str | None:
    """The directory made absolute, or the environment's; exit 2 with one line if missing."""
    from trainer.api import user_dir

    try:
        found = user_dir.resolve(path) if path is not None else user_dir.from_env()
    except UserError as err:
        err_console.print(f"[red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        raise SystemExit(err.exit_code) from None
    return str(found) if found is not None else None


def _only_help(argv: Sequence[str]) -> bool:
    return not argv or any(a in ("--help", "-h") for a in argv)


def main() -> None:
    """The `sweeps` entry point: `--config-dir DIR` is taken anywhere on the line (`sweeps
    launch --config-dir DIR sweep=...`), and the working directory is importable, so a
    user's package beside their config dir needs no install."""

    from trainer.api import importable_from_cwd, passive_openmp_waits, skip_exit_gc, user_dir

    passive_openmp_waits()  # before torch loads, here or in any process this one starts
    skip_exit_gc()
    # What a command writes (journal, locks, mlflow.db, checkpoints, reports) holds the sweep:
    # this user's alone, whatever the shell's umask; its worker processes inherit this.
    os.umask(os.umask(0o077) | 0o077)
    # Workers stopped while they start up (a launch that gives up) leave semaphores that
    # multiprocessing's resource tracker then removes, with a two-line warning on stderr
    # after the launch's one-line error: the tracker inherits this filter when it starts.
    sys.warnoptions.append("ignore:resource_tracker:UserWarning")
    argv = sys.argv[1:]
    if not _only_help(argv):  # `--help` reads no study: it does not import Optuna (~0.3 s)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    from sweeps.store import logs

    logs.setup()  # one line per warning, here and in every process this command starts
    global _from_argv
    _from_argv = user_dir.from_argv(argv)
    argv = user_dir.without_flag(argv)
    importable_from_cwd()
    from sweeps.run import stopping

    stopping.install()  # SIGTERM (a scheduler's stop) takes the path Ctrl-C takes
    app(args=argv, prog_name="sweeps")
