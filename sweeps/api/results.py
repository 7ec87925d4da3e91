"""What the API's long calls return: a report's files and tables, a reproduction's verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Report:
    """`Sweep.report()`: the files written, and the comparison as tables.

    `ranking` and `pairs` are empty before `Sweep.confirm()` (a single-seed search is not a
    ranking); `verdict` holds the sentences of the report's verdict, as `summary.md` has them.
    """

    html: Path
    summary: Path
    ranking: pd.DataFrame
    pairs: pd.DataFrame
    verdict: list[str] = field(default_factory=list)
    mlflow_run_id: str | None = None  # the parent run the files were logged to, if any
    mlflow_error: str | None = None  # why they could not be logged (the files are written)

    def _repr_markdown_(self) -> str:  # Jupyter shows the summary
        return self.summary.read_text()


@dataclass(frozen=True)
class Reproduction:
    """`Sweep.reproduce()`: the original against the reproduced metrics.

    `identical` is True when every difference is within `tolerance` (0 on CPU, 1e-3 on a GPU
    unless given); `comparison` has one row per metric (`metric`, `original`, `reproduced`,
    `difference`). `trainer_command` runs the same training without the sweep layer.
    """

    identical: bool
    tolerance: float
    comparison: pd.DataFrame
    run_id: str
    output_dir: Path
    trainer_command: str
