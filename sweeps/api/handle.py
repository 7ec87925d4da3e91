"""A sweep as a Python object: `sweeps.open(name)` and what it answers.

Every method reads the studies again (another process may be running trials) and calls
the same functions as the `sweeps` command of the same name; nothing is printed unless
`progress=True` is asked for. Bad input raises `UserError` with the CLI's one-line message.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from sweeps.api import frames
from sweeps.api.errors import SweepFailed
from sweeps.api.results import Report, Reproduction

if TYPE_CHECKING:
    import optuna
    import pandas as pd


def console_for(progress: bool) -> Console:
    """The terminal (or Jupyter) when progress is asked for; else a buffer nobody sees, kept
    so that a failure can say what the command said."""
    return Console(record=True) if progress else Console(file=io.StringIO(), width=120, record=True)


def check_code(code: int, console: Console, what: str) -> None:
    """A command's exit code 1 as an exception, with the lines it printed at the end."""
    if code == 0:
        return
    lines = [ln for ln in console.export_text(clear=False).splitlines() if ln.strip()]
    raise SweepFailed(f"{what} did not succeed (exit {code}): " + " / ".join(lines[-3:]))


def default_storage() -> str:
    """`storage.url` of the bundled config: $SWEEPS_STORAGE, else the journal file here."""
    from trainer.api import compose

    return str(compose([], "sweeps").storage.url)


class Sweep:
    """One sweep in a storage: its studies, trials, confirm runs and report."""

    def __init__(self, name: str, storage: str, tracking_uri: str | None = None) -> None:
        self.name, self.storage, self.tracking_uri = name, storage, tracking_uri

    def __repr__(self) -> str:
        from sweeps.store.urls import redact

        return f"Sweep({self.name!r}, storage={redact(self.storage)!r})"

    def studies(self) -> list[optuna.Study]:
        """The sweep's search studies, read now."""
        from sweeps.search.studies import open_sweep

        return open_sweep(self.storage, self.name)[1]

    def _confirm_study(self) -> optuna.Study | None:
        from sweeps.search import confirm_jobs
        from sweeps.store.storages import open_storage

        return confirm_jobs.load(open_storage(self.storage, create=False), self.name)

    def status(self) -> pd.DataFrame:
        """Per study: trials by state, the budget, the best value and trial (`sweeps status`)."""
        return frames.status(self.studies())

    def trials(self) -> pd.DataFrame:
        """One row per search trial, with its parameters and final metrics."""
        return frames.trials(self.studies())

    def best(self) -> pd.DataFrame:
        """Each optimizer's best search trial, best first (`sweeps best`): one seed each,
        not a ranking; with confirm runs, their mean and standard deviation too."""
        from sweeps.report import comparison

        return frames.best(comparison.build(self.studies(), self._confirm_study()))

    def confirm_runs(self) -> pd.DataFrame:
        """The confirm runs so far, one row each."""
        return frames.confirm_runs(self._confirm_study())

    def confirm(self, seeds: int = 5, top: int = 1, workers: int | None = None, *,
                yes: bool = False, progress: bool = False) -> pd.DataFrame:
        """Re-run each optimizer's top `top` configurations with `seeds` new seeds, paired
        across optimizers (`sweeps confirm`); returns the confirm runs. Runs already done are
        reused. `workers`: local worker processes (default: the sweep's), or `0` to run them
        in this process (a sweep of Python objects launched with `workers=0` needs that)."""
        from sweeps.api.in_process import run_here
        from sweeps.run.confirm import confirm as run_confirm

        console = console_for(progress)
        studies = self.studies()
        check_code(run_confirm(self.name, studies, self.storage, self.tracking_uri, seeds, top,
                               workers, console, yes=yes), console, f"sweeps confirm {self.name}")
        if workers == 0:
            run_here(self.storage, self.name, self.tracking_uri, ("confirm",), quiet=not progress)
        return self.confirm_runs()

    def report(self, out: str | Path | None = None, *, target: float | None = None,
               top: int | None = None, log_to_mlflow: bool = True) -> Report:
        """Write report.html and summary.md (default `reports/NAME/`) and return them with the
        ranking and the paired comparisons as tables (`sweeps report`)."""
        import dataclasses

        from sweeps.api.reporting import write

        result = write(self.name, self.tracking_uri, self.studies(), self._confirm_study(), out,
                       target, top, log_to_mlflow)
        return dataclasses.replace(result, html=result.html.resolve(), summary=result.summary.resolve())

    def reproduce(self, trial: str | int = "best", tolerance: float | None = None,
                  output_root: str | Path = "outputs") -> Reproduction:
        """Train a trial again from its stored config and seed and compare the metrics
        (`sweeps reproduce`); `trial`: "best", a number, or "OPTIMIZER:N"."""
        from sweeps.api.reporting import reproduce

        return reproduce(self.studies(), str(trial), tolerance, self.tracking_uri, str(output_root))


def open_sweep(name: str | None = None, storage: str | None = None,
               tracking_uri: str | None = None, config_dir: str | Path | None = None) -> Sweep:
    """The sweep `name` in `storage` (default: `$SWEEPS_STORAGE`, else `sweeps.journal` in
    the working directory; `name` None: the storage's only sweep). Reads, writes nothing.
    `config_dir`: the config dir of your own models and data, where the sweep's recorded one
    is not found from here."""
    from sweeps.search.studies import open_sweep as find

    if config_dir is not None:
        use_config_dir(config_dir)
    url = storage or default_storage()
    found, _ = find(url, name)
    return Sweep(found, url, tracking_uri)


def use_config_dir(path: str | Path) -> None:
    from trainer.api import config_dir

    config_dir.use(str(path))
