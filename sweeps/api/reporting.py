"""The report and a reproduction, as the API returns them and the CLI prints them.

`write` is `sweeps report` without the printing: check the input, write report.html and
summary.md, log them to the sweep's MLflow parent run. `reproduce` is `sweeps reproduce`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sweeps.api import frames
from sweeps.api.results import Report, Reproduction
from trainer.api import UserError

if TYPE_CHECKING:
    import optuna


def check_report_input(out: str | Path | None, target: float | None, top: int | None) -> None:
    from trainer.api import check_writable

    if target is not None and not 0.0 < target <= 1.0:
        raise UserError(f"--target {target}: must be a validation accuracy in (0, 1]")
    if top is not None and top < 1:
        raise UserError(f"--top {top}: must be >= 1")
    if out is not None:
        check_writable(str(out), "--out")


def write(name: str, tracking_uri: str | None, studies: Sequence[optuna.Study],
          confirm: optuna.Study | None, out: str | Path | None, target: float | None,
          top: int | None, log_to_mlflow: bool = True) -> Report:
    """Write the report into `out` (default reports/NAME) and, where the sweep has a parent
    run, log both files to it (a failed upload is noted in the result, never raised: the
    files are written, tracking only mirrors them)."""
    from sweeps.report.document import write_report
    from sweeps.search.studies import latest_attrs
    from sweeps.tracking import clients
    from sweeps.tracking.report_upload import ReportUploader

    check_report_input(out, target, top)
    latest = latest_attrs(studies)
    parent = latest.get("parent_run_id") if log_to_mlflow else None
    uploader = ReportUploader(clients.resolve_uri(tracking_uri or latest.get(
        "tracking_uri"))) if parent else None
    try:
        built, files = write_report(studies, confirm, out or os.path.join("reports", name),
                                    target=target, top=top)
        failed = uploader.upload(parent, files) if uploader is not None and parent else None
    finally:
        if uploader is not None:
            uploader.close()
    comp = built.comparison
    return Report(html=files[0], summary=files[1], ranking=frames.ranking(comp),
                  pairs=frames.pairs(comp), verdict=[p.sentence() for p in comp.pairs],
                  mlflow_run_id=parent if parent and failed is None else None,
                  mlflow_error=failed)


def reproduce(studies: Sequence[optuna.Study], trial: str, tolerance: float | None,
              tracking_uri: str | None, output_root: str = "outputs",
              config_dir: str | None = None, allowed: Sequence[str] = ()) -> Reproduction:
    import math

    import pandas as pd

    from sweeps.report.summary import trainer_command
    from sweeps.run.reproduce import reproduce as run_reproduce
    from sweeps.search.studies import config_dir_for
    from trainer.api import overrides_for

    if tolerance is not None and not (math.isfinite(tolerance) and tolerance >= 0):
        raise UserError(f"--tolerance {tolerance}: must be a number >= 0 (the largest "
                        "|difference| of a metric taken as identical)")
    from sweeps.search import allowed_targets
    from sweeps.search.studies import recorded_config_dir

    where = config_dir_for(studies, config_dir)
    may_call = allowed_targets.for_this_machine(config_dir, allowed, recorded_config_dir(studies))
    comparison, result, run_id = run_reproduce(studies, trial, tolerance, tracking_uri, output_root,
                                               may_call)
    # object columns keep a curve row's "no single value" (None) apart from a NaN metric
    table = pd.DataFrame(comparison.rows, columns=["metric", "original", "reproduced", "difference"],
                         dtype=object)
    return Reproduction(identical=comparison.ok, tolerance=comparison.tolerance, comparison=table,
                        run_id=run_id, output_dir=Path(result.output_dir),
                        trainer_command=trainer_command(overrides_for(result.config, config_dir=where),
                                                        where))
