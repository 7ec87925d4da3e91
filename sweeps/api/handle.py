"""A sweep as a Python object: `sweeps.open(name)` and what it answers.

Every method reads the studies again (another process may be running trials) and calls
the same functions as the `sweeps` command of the same name; nothing is printed unless
`progress=True` is asked for. Bad input raises `UserError` with the CLI's one-line message.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from sweeps.api import frames
from sweeps.api.errors import SweepFailed, UserError
from sweeps.api.results import Report, Reproduction

if TYPE_CHECKING:
    import optuna
    import pandas as pd


def console_for(progress: bool) -> Console:
    """The terminal (or Jupyter) when progress is asked for; else a buffer nobody sees, kept
    so that a failure can say what the command said."""
    return Console(record=True) if progress else Console(file=io.StringIO(), width=120, record=True)


def check_code(code: int, console: Console, what: str) -> None:
    """A command's exit code as an exception (`SweepFailed` with that `exit_code`), with the
    lines it printed at the end; `shown`: those lines went to the caller's screen."""
    if code == 0:
        return
    said = console.export_text(clear=False) if console.record else ""
    lines = [ln for ln in said.splitlines() if ln.strip()]
    err = SweepFailed(f"{what} did not succeed (exit {code}): " + " / ".join(lines[-3:]))
    err.exit_code, err.shown = code, not isinstance(console.file, io.StringIO)
    raise err


def default_storage(config_dir: str | None = None) -> str:
    """`storage.url` of the bundled config: $SWEEPS_STORAGE, else the journal file here."""
    from trainer.api import compose

    return str(compose([], "sweeps", config_dir=config_dir).storage.url)


def as_dir(path: str | Path | None) -> str | None:
    """A config dir argument made absolute; one line when it is not a directory."""
    from trainer.api import user_dir

    resolved = user_dir.resolve(path)
    return None if resolved is None else str(resolved)


@dataclass
class Location:
    """Where a command's words point: a sweep name (None: the storage's only one), the
    storage, the tracking URI and the sweep config they compose (`locate`)."""

    name: str | None
    storage: str
    tracking_uri: str | None
    config_dir: str | None
    cfg: Any
    allowed_targets: tuple[str, ...] = ()

    def open(self) -> Sweep:
        """The sweep there; `UserError` when there is none (or, without a name, several)."""
        from sweeps.search.studies import open_sweep as find

        name, studies = find(self.storage, self.name)
        return Sweep(name, self.storage, self.tracking_uri, self.config_dir, studies=studies,
                     allowed_targets=self.allowed_targets)


def locate(words: Sequence[str] = (), storage: str | None = None, tracking_uri: str | None = None,
           config_dir: str | Path | None = None) -> Location:
    """A command's trailing words read as the CLI reads them: a bare word is the sweep's
    name, the rest are overrides of the sweep config (`storage=postgres`, `sweep.name=x`)."""
    from trainer.api import compose

    names = [w for w in words if "=" not in w]
    overrides = [w for w in words if "=" in w]
    if len(names) > 1:
        raise UserError(f"expected one sweep name, got {' '.join(names)}")
    where = as_dir(config_dir)
    cfg = compose(overrides, "sweeps", config_dir=where)
    name = names[0] if names else None
    if any(o.split("=", 1)[0].lstrip("+~") in ("sweep", "sweep.name") for o in overrides):
        if name is not None and name != str(cfg.sweep.name):  # which one: say so, act on neither
            raise UserError(f"the sweep is named twice: {name} and sweep.name={cfg.sweep.name}; "
                            "give one")
        name = str(cfg.sweep.name)
    uri = tracking_uri if tracking_uri is not None else cfg.tracking.uri
    return Location(name, storage or str(cfg.storage.url), None if uri is None else str(uri), where, cfg)


class Sweep:
    """One sweep in a storage: its studies, trials, confirm runs and report.

    `config_dir`: your config dir, where the one the sweep was launched with is not found
    from here (None: that recorded one). `studies`: the sweep's studies as just read (every
    method reads their trials afresh)."""

    def __init__(self, name: str, storage: str, tracking_uri: str | None = None,
                 config_dir: str | None = None, *, studies: Sequence[optuna.Study] | None = None,
                 allowed_targets: Sequence[str] = ()) -> None:
        self.name, self.storage, self.tracking_uri = name, storage, tracking_uri
        self.config_dir = config_dir
        # packages whose `_target_`s this process may call beyond its config dir's
        self.allowed_targets = tuple(allowed_targets)
        self._studies = list(studies) if studies is not None else None

    def __repr__(self) -> str:
        from sweeps.store.urls import redact

        return f"Sweep({self.name!r}, storage={redact(self.storage)!r})"

    def studies(self) -> list[optuna.Study]:
        """The sweep's search studies (their trials are read afresh at every call)."""
        from sweeps.search.studies import open_sweep

        if self._studies is None:
            self._studies = open_sweep(self.storage, self.name)[1]
        return self._studies

    def confirm_study(self) -> optuna.Study | None:
        """The sweep's confirm study (its seed re-runs), None before `confirm`."""
        return self._confirm_study()

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
                yes: bool = False, progress: bool = False, console: Console | None = None,
                queue_only: bool = False) -> pd.DataFrame:
        """Re-run each optimizer's top `top` configurations with `seeds` new seeds, paired
        across optimizers (`sweeps confirm`); returns the confirm runs. Runs already done are
        reused. `workers`: local worker processes (default: the sweep's), or `0` to run them
        in this process (a sweep of Python objects launched with `workers=0` needs that).
        `queue_only`: with `workers=0`, queue them for `sweeps worker` and return.
        `console`: where to show progress (the CLI's terminal)."""
        from sweeps.api.in_process import run_here
        from sweeps.run.confirm import confirm as run_confirm

        console = console or console_for(progress)
        studies = self.studies()
        check_code(run_confirm(self.name, studies, self.storage, self.tracking_uri, seeds, top,
                               workers, console, yes=yes, config_dir=self.config_dir,
                               allowed=self.allowed_targets),
                   console, f"sweeps confirm {self.name}")
        if workers == 0 and not queue_only:
            run_here(self.storage, self.name, self.tracking_uri, ("confirm",), quiet=not progress,
                     config_dir=self.config_dir, allowed_targets=self.allowed_targets)
        return self.confirm_runs()

    def report(self, out: str | Path | None = None, *, target: float | None = None,
               top: int | None = None, log_to_mlflow: bool = True, absolute: bool = True) -> Report:
        """Write report.html and summary.md (default `reports/NAME/`) and return them with the
        ranking and the paired comparisons as tables (`sweeps report`). `absolute=False`:
        the files' paths as written (relative to here where `out` is)."""
        import dataclasses

        from sweeps.api.reporting import write

        result = write(self.name, self.tracking_uri, self.studies(), self._confirm_study(),
                       None if out is None else str(out), target, top, log_to_mlflow)
        if not absolute:
            return result
        return dataclasses.replace(result, html=result.html.resolve(), summary=result.summary.resolve())

    def find(self, trial: str | int = "best") -> tuple[str, int]:
        """The study and number of a trial reference ("best", N or "OPTIMIZER:N"); `UserError`
        naming the choices when there is no such trial."""
        from sweeps.run.reproduce import find_trial

        study, found = find_trial(self.studies(), str(trial))
        return study.study_name, found.number

    def reproduce(self, trial: str | int = "best", tolerance: float | None = None,
                  output_root: str | Path = "outputs") -> Reproduction:
        """Train a trial again from its stored config and seed and compare the metrics
        (`sweeps reproduce`); `trial`: "best", a number, or "OPTIMIZER:N"."""
        from sweeps.api.reporting import reproduce

        return reproduce(self.studies(), str(trial), tolerance, self.tracking_uri, str(output_root),
                         self.config_dir, self.allowed_targets)


def open_sweep(name: str | None = None, storage: str | None = None,
               tracking_uri: str | None = None, config_dir: str | Path | None = None,
               allowed_targets: Sequence[str] = ()) -> Sweep:
    """The sweep `name` in `storage` (default: `$SWEEPS_STORAGE`, else `sweeps.journal` in
    the working directory; `name` None: the storage's only sweep). Reads, writes nothing.
    `config_dir`: the config dir of your own models and data, where the sweep's recorded one
    is not found from here. `allowed_targets`: packages whose `_target_`s may be called here
    beyond the bundled ones and your config dir's (a stored config is data, not code)."""
    from sweeps.search.studies import open_sweep as find

    where = as_dir(config_dir)
    url = storage or default_storage(where)
    found, studies = find(url, name)
    return Sweep(found, url, tracking_uri, where, studies=studies, allowed_targets=allowed_targets)
