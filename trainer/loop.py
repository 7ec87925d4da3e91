"""The fit loop: one training run from a validated config.

Per epoch it records ``train/loss``, ``train/acc`` (running averages over the
minibatches the model trained on this epoch, in train mode, with augmentation),
``val/loss``, ``val/acc``, ``gap/acc`` (train - val), ``gap/loss`` (val - train),
``lr`` (the rate in effect when the epoch started), ``time/epoch_s`` (training
part of the epoch) and ``time/samples_per_s``; every ``trainer.log_every``
steps (``auto``: about ten per epoch) ``batch/loss``. A regression run has no
``*/acc`` metrics (`trainer.tasks`).
At the end the test split, where there is one, is evaluated once, with the
weights of the best validation epoch. A non-finite loss ends the run with
status ``diverged``: a result, not a crash.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from trainer import checkpoint
from trainer.callbacks import Callback, CallbackList, RunInfo, batch_log_every
from trainer.data.prepare import Splits, augment_batch, make_splits, num_batches
from trainer.errors import UserError
from trainer.models import build_model
from trainer.optim import AdamToSGD, build_optimizer, effective_lr
from trainer.optim.schedules import Schedule
from trainer.preflight import check_first_batch
from trainer.result import FitResult
from trainer.tasks import Loss, Task, task_of
from trainer.validation import flatten, validate

log = logging.getLogger("trainer")

# Keys that may differ between a checkpoint's config and the resuming one.
RESUMABLE_CHANGES = {"trainer.resume", "trainer.epochs", "trainer.output_dir", "trainer.progress",
                     "trainer.checkpoint", "trainer.checkpoint_every_s", "trainer.threads",
                     "dataset.data_root", "dataset.loader.num_workers", "dataset.loader.pin_memory",
                     "dataset.loader.persistent_workers"}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"trainer.device={name!r}: CUDA is not available on this machine; "
                        "use trainer.device=auto or cpu")
    if device.type == "cuda" and device.index is not None \
            and device.index >= torch.cuda.device_count():
        n = torch.cuda.device_count()
        raise UserError(f"trainer.device={name!r}: this machine has {n} CUDA device(s) "
                        f"(cuda:0 to cuda:{n - 1}); use trainer.device=auto or one of those")
    return device


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return the generator that drives data order."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed + 1)


def _check_resume_config(saved: Mapping[str, Any], current: Mapping[str, Any]) -> None:
    a, b = flatten(saved), flatten(current)
    diff = [k for k in sorted(set(a) | set(b)) if k not in RESUMABLE_CHANGES and a.get(k) != b.get(k)]
    if diff:
        k = diff[0]
        raise UserError(f"trainer.resume: the checkpoint was made with a different config "
                        f"({k}={a.get(k)!r} there, {b.get(k)!r} now; {len(diff)} key(s) differ)")


@torch.no_grad()
def evaluate(model: nn.Module, batches: Any, n: int, device: torch.device, loss_fn: Loss,
             task: Task, amp: contextlib.AbstractContextManager[Any] | None = None,
             channels_last: bool = False) -> tuple[float, float]:
    """Mean loss and accuracy (NaN for regression) over `n` examples, in eval mode."""
    model.eval()
    loss = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    for xb, yb in batches:
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        with amp or contextlib.nullcontext():
            out = model(xb)
        loss += loss_fn.total(out, yb)
        if task.has_accuracy:
            correct += (out.argmax(1) == yb).sum()
    return float(loss) / n, float(correct) / n if task.has_accuracy else math.nan


class _Trainer:
    """State of one run; `fit()` is the public entry point."""

    def __init__(self, cfg: dict[str, Any], callbacks: Sequence[Callback], output_dir: Path) -> None:
        self.cfg, self.t = cfg, cfg["trainer"]
        self.callbacks = CallbackList(callbacks)
        self.output_dir = output_dir
        if self.t["threads"] > 0:
            torch.set_num_threads(int(self.t["threads"]))
        self.device = resolve_device(self.t["device"])
        self.data_gen = seed_everything(int(self.t["seed"]))
        self.data: Any = make_splits(cfg["dataset"], self.device)  # Splits or loader.Loaders
        self.sizes = self.data.sizes()
        self.task = task_of(cfg)
        self.loss = Loss(self.task, self.t["loss"])
        self.model = build_model(cfg["model"], self.data.input_shape, self.data.num_outputs)
        self.channels_last = bool(self.t["channels_last"]) and self.device.type == "cuda"
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        # torch's stubs lack the (device, memory_format) overload that torch accepts
        self.model.to(self.device, memory_format=memory_format)  # type: ignore[call-overload]
        self.amp = self.t["precision"] == "bf16" and self.device.type == "cuda"
        if self.t["precision"] == "bf16" and not self.amp:
            log.warning("trainer.precision=bf16 applies on CUDA only; training in fp32 on %s",
                        self.device)
        check_first_batch(self.model, self.data, self.task, self.loss, self.device)
        self.steps_per_epoch = num_batches(self.sizes[0], int(self.t["batch_size"]),
                                           bool(self.t["drop_last"]))
        if self.steps_per_epoch == 0:
            raise UserError(f"trainer.batch_size={self.t['batch_size']}: larger than the "
                            f"{self.sizes[0]} training examples with drop_last=true")
        self.optimizer = build_optimizer(cfg["optimizer"], self.model.parameters(),
                                         steps_per_epoch=self.steps_per_epoch,
                                         total_steps=self.steps_per_epoch * int(self.t["epochs"]))
        self.schedule = Schedule(self.optimizer, cfg["schedule"],
                                 steps_per_epoch=self.steps_per_epoch,
                                 epochs=int(self.t["epochs"]))
        self.history: list[dict[str, float]] = []
        self.steps: list[dict[str, float]] = []
        self.best: dict[str, Any] = {"epoch": 0, "val_acc": -math.inf, "val_loss": math.inf,
                                     "model": None}
        self.objective = f"val_{self.task.metric}"  # the key of `best` that ranks epochs
        self.start_epoch, self.global_step = 1, 0
        self._last_save = time.monotonic()  # last.pt is due `checkpoint_every_s` after this
        self.run = RunInfo(cfg, output_dir, self.device, self.model, self.optimizer,
                           self.steps_per_epoch, history=self.history)
        log.info("data %s: %d train / %d val / %s test on %s%s", cfg["dataset"].get("name"),
                 self.sizes[0], self.sizes[1], self.sizes[2] or "no", self.device,
                 "" if isinstance(self.data, Splits) else " (DataLoader)")
        log.info("model %s: %s parameters; optimizer %s; schedule %s", cfg["model"].get("name"),
                 f"{sum(p.numel() for p in self.model.parameters()):,}",
                 cfg["optimizer"]["name"], cfg["schedule"]["name"])

    # -------------------------------------------------------------- resume
    def resume(self, path: str) -> None:
        payload = checkpoint.load(path)
        _check_resume_config(payload["config"], self.cfg)
        try:
            self._restore(payload)
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
            raise UserError(f"trainer.resume={path!r}: the checkpoint does not fit this run "
                            f"({type(err).__name__}: {first})") from None
        log.info("resumed from %s at epoch %d", path, payload["epoch"])

    def _restore(self, payload: dict[str, Any]) -> None:
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.schedule.load_state_dict(payload["schedule"])
        self.history[:] = payload["history"]
        self.steps[:] = payload["steps"]
        best = payload["best"]
        if best["model"] is not None:
            best["model"] = {k: v.to(self.device) for k, v in best["model"].items()}
        self.best = best
        checkpoint.set_rng_state(payload["rng"], self.data_gen)
        self.start_epoch = int(payload["epoch"]) + 1
        self.global_step = int(payload["global_step"])
        self.run.global_step, self.run.epoch = self.global_step, int(payload["epoch"])

    def _save(self, name: str, epoch: int) -> None:
        checkpoint.save(self.output_dir / "checkpoints" / name, {
            "epoch": epoch, "global_step": self.global_step,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(), "best": self.best,
            "history": self.history, "steps": self.steps,
            "rng": checkpoint.rng_state(self.data_gen), "config": self.cfg,
        })

    def _checkpoint_due(self) -> bool:
        """A checkpoint costs milliseconds: on epochs that take milliseconds too, one every
        few seconds keeps a resumed run's lost work small at a negligible cost."""
        return time.monotonic() - self._last_save >= float(self.t["checkpoint_every_s"])

    # --------------------------------------------------------------- epochs
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _train_epoch(self, epoch: int) -> tuple[float, float, int, bool]:
        """Train one epoch; returns (loss, acc, samples seen, diverged)."""
        self.model.train()
        ds, t = self.cfg["dataset"], self.t
        # per step only what cannot wait (one add, one argmax); summed once at the epoch's end
        loss_sum = torch.zeros((), device=self.device)
        preds: list[torch.Tensor] = []
        targets: list[torch.Tensor] = []
        seen, log_every = 0, batch_log_every(t["log_every"], self.steps_per_epoch)
        augment = bool(ds["augment"]) and isinstance(self.data, Splits)
        accuracy = self.task.has_accuracy
        for x, y in self.data.train_batches(int(t["batch_size"]), self.data_gen,
                                            bool(t["drop_last"])):
            if augment:
                x = augment_batch(x, padding=int(ds["crop_padding"]), hflip=bool(ds["hflip"]),
                                  generator=self.data_gen)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                logits = self.model(x)
                loss = self.loss.mean(logits, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            logged = (self.global_step + 1) % log_every == 0
            if logged:  # the rate this step applies: read before it (a switch acts from the next)
                step_lr = effective_lr(self.optimizer)
            self.optimizer.step()
            self.schedule.after_batch()
            self.global_step += 1
            self.run.global_step = self.global_step
            batch_loss = loss.detach()
            loss_sum.add_(batch_loss, alpha=len(y))
            if accuracy:
                preds.append(logits.detach().argmax(1))
                targets.append(y)
            seen += len(y)
            if logged:
                value = float(batch_loss)
                self.steps.append({"step": self.global_step, "epoch": epoch, "batch/loss": value,
                                   "batch/lr": step_lr})
                if not math.isfinite(value):
                    return value, math.nan, seen, True
                self.callbacks.on_step(self.run, self.global_step,
                                       {"batch/loss": value, "batch/lr": step_lr})
                if self.run.stop_requested:
                    break
        train_loss = float(loss_sum) / max(seen, 1)
        correct = int((torch.cat(preds) == torch.cat(targets)).sum()) if preds else 0
        acc = correct / max(seen, 1) if accuracy else math.nan
        return train_loss, acc, seen, not math.isfinite(train_loss)

    def _epoch_metrics(self, epoch: int, lr: float, train: tuple[float, float, int],
                       val: tuple[float, float], seconds: float) -> dict[str, float]:
        (tl, ta, seen), (vl, va) = train, val
        metrics = {
            "epoch": epoch, "train/loss": tl, "train/acc": ta, "val/loss": vl, "val/acc": va,
            "gap/acc": ta - va, "gap/loss": vl - tl, "lr": lr,
            "time/epoch_s": seconds, "time/samples_per_s": seen / seconds if seconds > 0 else 0.0,
        }
        if not self.task.has_accuracy:
            for key in ("train/acc", "val/acc", "gap/acc"):
                del metrics[key]
        return metrics

    def _run_epochs(self) -> tuple[str, str | None]:
        t = self.t
        for epoch in range(self.start_epoch, int(t["epochs"]) + 1):
            self.run.epoch = epoch
            self.callbacks.on_epoch_start(self.run, epoch)
            lr = effective_lr(self.optimizer)
            start = time.perf_counter()
            tl, ta, seen, diverged = self._train_epoch(epoch)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            seconds = time.perf_counter() - start
            if diverged:
                nan = math.nan
                self.history.append(self._epoch_metrics(epoch, lr, (tl, nan, seen), (nan, nan),
                                                        seconds))
                return "diverged", f"non-finite training loss ({tl}) at epoch {epoch}"
            val = self._evaluate("val")
            metrics = self._epoch_metrics(epoch, lr, (tl, ta, seen), val, seconds)
            self.history.append(metrics)
            if not math.isfinite(val[0]):
                return "diverged", f"non-finite validation loss at epoch {epoch}"
            self.schedule.after_epoch(val[0])
            score = val[1] if self.task.has_accuracy else val[0]
            improved = self.task.better(score, self.best[self.objective])
            if improved:
                self.best = {"epoch": epoch, "val_acc": val[1], "val_loss": val[0],
                             "model": {k: v.detach().clone()
                                       for k, v in self.model.state_dict().items()}}
            if t["checkpoint"] in ("every_epoch", "last") and self._checkpoint_due():
                self._save("last.pt", epoch)
                self._last_save = time.monotonic()
            if improved and t["checkpoint"] in ("every_epoch", "best"):
                self._save("best.pt", epoch)
            self.callbacks.on_epoch_end(self.run, epoch, metrics)
            self._write_history("running", None, {})
            if self.run.stop_requested:
                return "stopped", self.run.stop_reason
        return "completed", None

    def _evaluate(self, split: str) -> tuple[float, float]:
        n = self.sizes[1] if split == "val" else self.sizes[2]
        batches = self.data.eval_batches(split, int(self.t["eval_batch_size"]))
        return evaluate(self.model, batches, n, self.device, self.loss, self.task,
                        self._autocast(), self.channels_last)

    def _final_metrics(self) -> dict[str, float]:
        use_best = self.t["selection"] == "best" and self.best["model"] is not None
        if use_best:
            self.model.load_state_dict(self.best["model"])
        if not self.history or (not use_best and not math.isfinite(self.history[-1]["val/loss"])):
            test_loss, test_acc = math.nan, math.nan
        elif self.sizes[2]:
            test_loss, test_acc = self._evaluate("test")
        best = self.best[self.objective]
        final = {self.task.best_key: best if math.isfinite(best) else math.nan,
                 "best/epoch": float(self.best["epoch"])}
        final["data/train_size"], final["data/val_size"] = float(self.sizes[0]), float(self.sizes[1])
        if self.sizes[2]:  # no test split: no test metrics (not NaN)
            final["data/test_size"] = float(self.sizes[2])
            final["test/loss"] = test_loss
            if self.task.has_accuracy:
                final["test/acc"] = test_acc
        if isinstance(self.optimizer, AdamToSGD):
            report = self.optimizer.switch_report()[0]
            if report["switch_step"] is not None:
                final["switch/step"] = float(report["switch_step"])
                final["switch/epoch"] = report["switch_step"] / self.steps_per_epoch
                final["switch/lr"] = float(report["switch_lr"])
                final["switch/lr_max"] = float(report["switch_lr_max"] or report["switch_lr"])
        return final

    def _write_history(self, status: str, reason: str | None, final: Mapping[str, float],
                       duration: float = 0.0) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        doc = {"status": status, "stop_reason": reason, "final": dict(final),
               "epochs": self.history, "steps": self.steps, "device": str(self.device),
               "duration_s": duration, "config": self.cfg}
        if isinstance(self.optimizer, AdamToSGD):
            doc["switch"] = self.optimizer.switch_report()
        tmp = self.output_dir / "history.json.tmp"
        # compact: json's C encoder (an indent falls back to its pure-Python one, ~3 ms a write)
        tmp.write_text(json.dumps(doc, separators=(",", ":"), default=str, allow_nan=True))
        os.replace(tmp, self.output_dir / "history.json")

    def fit(self) -> FitResult:
        started = time.perf_counter()
        self._last_save = time.monotonic()
        if self.t["resume"]:
            self.resume(str(self.t["resume"]))
        self.callbacks.on_fit_start(self.run)
        try:
            status, reason = self._run_epochs()
        except (KeyboardInterrupt, SystemExit) as err:  # Ctrl-C, SIGTERM, a scheduler's requeue
            self._write_history("interrupted", type(err).__name__, {},
                                time.perf_counter() - started)
            raise
        final = self._final_metrics()
        duration = time.perf_counter() - started
        self._write_history(status, reason, final, duration)
        switch = self.optimizer.switch_report() if isinstance(self.optimizer, AdamToSGD) else None
        result = FitResult(status, reason, list(self.history), list(self.steps), final,
                           str(self.output_dir), str(self.device), duration, switch, self.cfg)
        self.callbacks.on_fit_end(self.run, result)
        return result


def fit(cfg: DictConfig | Mapping[str, Any], callbacks: Sequence[Callback] = (),
        output_dir: str | Path | None = None) -> FitResult:
    """Train one model as `cfg` says; `callbacks` observe it and may stop it.

    `cfg` is a composed trainer config (see `trainer.validation.load_config`); it is
    validated again here, so callers cannot skip validation.
    """
    data = validate(cfg)
    out = Path(output_dir or data["trainer"]["output_dir"] or "outputs/run")
    return _Trainer(data, callbacks, out).fit()
