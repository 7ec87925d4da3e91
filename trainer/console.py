"""Terminal output of a run: a progress bar while an epoch runs, one table row per epoch."""

from __future__ import annotations

import math
from collections.abc import Mapping

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from trainer.callbacks import Callback, RunInfo
from trainer.loop import FitResult

COLUMNS = [  # (metric, header, format)
    ("epoch", "epoch", "{:>5.0f}"),
    ("train/loss", "train/loss", "{:>10.4f}"),
    ("train/acc", "train/acc", "{:>9.4f}"),
    ("val/loss", "val/loss", "{:>9.4f}"),
    ("val/acc", "val/acc", "{:>8.4f}"),
    ("gap/acc", "gap/acc", "{:>+8.4f}"),
    ("lr", "lr", "{:>10.3e}"),
    ("time/epoch_s", "sec", "{:>7.2f}"),
    ("time/samples_per_s", "samples/s", "{:>10.0f}"),
]


ACCURACY = ("train/acc", "val/acc", "gap/acc")
_LOSSES = [c for c in COLUMNS if c[0] not in ACCURACY]
REGRESSION_COLUMNS = [*_LOSSES[:3], ("gap/loss", "gap/loss", "{:>+9.4f}"), *_LOSSES[3:]]


def _columns(regression: bool) -> list[tuple[str, str, str]]:
    return REGRESSION_COLUMNS if regression else COLUMNS


def format_row(metrics: Mapping[str, float], regression: bool = False) -> str:
    cells = []
    for key, header, fmt in _columns(regression):
        value = metrics.get(key, math.nan)
        cell = fmt.format(value) if math.isfinite(value) else "nan"
        cells.append(cell.rjust(len(header)))
    return "  ".join(cells)


def header(regression: bool = False) -> str:
    columns = _columns(regression)
    widths = [len(fmt.format(0.0)) for _, _, fmt in columns]
    return "  ".join(h.rjust(max(w, len(h))) for (_, h, _), w in zip(columns, widths, strict=True))


class ConsoleReporter(Callback):
    """Prints the per-epoch table; shows a transient progress bar on a terminal."""

    regression = False

    def __init__(self, console: Console | None = None, progress: bool = True) -> None:
        self.console = console or Console()
        self.show_progress = progress and self.console.is_terminal
        self._progress: Progress | None = None
        self._task: int | None = None
        self._epoch_start_step = 0

    def on_fit_start(self, run: RunInfo) -> None:
        from trainer.tasks import task_of

        self.regression = not task_of(run.cfg).has_accuracy
        self.console.print(header(self.regression), style="bold", highlight=False, soft_wrap=True)

    def on_epoch_start(self, run: RunInfo, epoch: int) -> None:
        self._epoch_start_step = run.global_step
        if self.show_progress:
            self._progress = Progress(
                TextColumn(f"epoch {epoch}/{run.cfg['trainer']['epochs']}"), BarColumn(),
                MofNCompleteColumn(), TextColumn("loss {task.fields[loss]}"),
                TimeRemainingColumn(), console=self.console, transient=True)
            self._task = self._progress.add_task("train", total=run.steps_per_epoch, loss="-")
            self._progress.start()

    def on_step(self, run: RunInfo, step: int, metrics: Mapping[str, float]) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(TaskID(self._task), completed=step - self._epoch_start_step,
                                  loss=f"{metrics['batch/loss']:.4f}")

    def _stop_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def on_epoch_end(self, run: RunInfo, epoch: int, metrics: Mapping[str, float]) -> None:
        self._stop_progress()
        self.console.print(format_row(metrics, self.regression), highlight=False, soft_wrap=True)

    def on_fit_end(self, run: RunInfo, result: FitResult) -> None:
        self._stop_progress()
        if result.status == "diverged" and result.history:
            self.console.print(format_row(result.history[-1], self.regression), highlight=False,
                               soft_wrap=True)
        f = result.final
        style = {"completed": "green", "diverged": "red"}.get(result.status, "yellow")
        self.console.print(f"[{style}]{result.status}[/]"
                           + (f" ({result.stop_reason})" if result.stop_reason else ""))
        best = "best/val_loss" if self.regression else "best/val_acc"
        test = (f"test/loss {f['test/loss']:.4f}" if self.regression else
                f"test/acc {f['test/acc']:.4f}  test/loss {f['test/loss']:.4f}") \
            if "test/loss" in f else "no test split"
        label = "val/loss" if self.regression else "val/acc"
        self.console.print(f"best {label} {f[best]:.4f} at epoch {f['best/epoch']:.0f}; {test}",
                           highlight=False)
        if "switch/step" in f:
            self.console.print(f"switched Adam -> SGD at step {f['switch/step']:.0f} "
                               f"(epoch {f['switch/epoch']:.2f}) with SGD lr {f['switch/lr']:.4g} "
                               f"(largest applied after it: {f['switch/lr_max']:.4g})",
                               highlight=False)
        elif result.switch is not None:
            self.console.print("no Adam -> SGD switch happened in this run", highlight=False)
        self.console.print(f"history: {result.output_dir}/history.json", highlight=False)
