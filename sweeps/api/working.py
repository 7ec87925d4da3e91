"""`sweeps.work(...)`: the `sweeps worker` command as a function call: join a sweep from
this process (any machine that reaches its storage) and run its jobs until none is left."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from sweeps.api.errors import SweepFailed, UserError
from sweeps.api.handle import as_dir, console_for, locate


def work(study: str, words: Sequence[str] = (), *, storage: str | None = None,
         tracking_uri: str | None = None, output_dir: str | Path | None = None, index: int = 0,
         config_dir: str | Path | None = None, allowed_targets: Sequence[str] = (),
         progress: bool = False, console: Console | None = None) -> int:
    """Run the queued confirm runs and the trials of `study` (a sweep's name: all its studies;
    one study's name; ``NAME.confirm``: only the confirm runs) until the budget is spent;
    returns how many ran. `SweepFailed` when the sweep stopped on a repeated failure.
    `allowed_targets`: packages whose `_target_`s this worker may call beyond the bundled
    ones and its config dir's (what the storage names is data, not code)."""
    from sweeps.run import fail_fast
    from sweeps.run.checkpoints import check_writable
    from sweeps.run.claims import CONFIRM_KIND
    from sweeps.run.worker import join
    from sweeps.store.owners import worker_id
    from sweeps.tracking.runs import close_orphan_parents

    console = console or console_for(progress)
    if index < 0:
        raise UserError(f"--index {index}: must be >= 0 (it varies the sampler seeds)")
    if output_dir is not None:
        check_writable(str(output_dir), "--output-dir")
    where = locate(words, storage, tracking_uri, config_dir)
    w = join(where.storage, study, where.cfg.storage, index=index, tracking_uri=tracking_uri,
             output_dir=None if output_dir is None else str(output_dir),
             config_dir=as_dir(config_dir), allowed_targets=allowed_targets)
    what = "confirm runs" if w.claims.kinds == (CONFIRM_KIND,) else \
        f"{len(w.studies)} stud{'y' if len(w.studies) == 1 else 'ies'} and its confirm runs"
    console.print(f"worker {worker_id()} joined sweep {w.sweep} ({what})")
    with contextlib.suppress(Exception):  # tidying up must not stop a worker
        for run_id in close_orphan_parents(w.uri, w.sweep):
            console.print(f"closed MLflow run {run_id}: its launch ended without closing it (killed)")
    n = w.run()
    if w.claims.halt is not None:  # trials failed the same way: claiming more burns budget
        lines = fail_fast.describe(w.claims.halt, w.sweep)
        console.print(f"[red]{escape(lines[0])}[/]; this worker ran {n} trial(s)",
                      highlight=False, soft_wrap=True)
        for line in lines[1:]:
            console.print(line, highlight=False, markup=False, soft_wrap=True)
        err = SweepFailed(lines[0])
        err.shown = not isinstance(console.file, io.StringIO)
        raise err
    console.print(f"nothing left to run; this worker ran {n} trial(s) or confirm run(s)")
    return n
