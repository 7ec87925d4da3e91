"""The `sweeps` command line (typer + rich): parse, call one function, print.

Every subcommand takes Hydra overrides as trailing arguments (``sweep=mnist``,
``storage=postgres``, ``sweep.n_trials=40``); a bare word is the sweep name. Bad input
exits with one line and status 2, never a traceback. The commands live in three modules
by what they touch (`run_commands`, `view_commands`, `tracking_commands`; what they share is
`app`); the logic they
call lives in the packages below (`sweeps.run`, `sweeps.report`, `sweeps.tracking`).

May import every other `sweeps` package; nothing imports it.
"""

from sweeps.cli import run_commands, tracking_commands, view_commands  # noqa: F401  (register the commands)
from sweeps.cli.app import app, main

__all__ = ["app", "main"]

if __name__ == "__main__":
    main()
