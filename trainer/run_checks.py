"""What `python -m trainer` checks on this machine before Hydra makes its run folder.

A config can be valid and still not run here: the device is absent (`cuda:7` on a
one-GPU machine), the resume file is missing, the output dir is read-only, or the dataset
is neither on disk nor downloadable. Each is one line and exit 2 before anything is
written. The data loaded here is kept for the run (`trainer.data.prepare` caches it per process).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainer.errors import ConfigError
from trainer.writable import check_writable

HYDRA_OUTPUTS = "outputs"  # where Hydra makes its run folder (conf/config.yaml hydra.run.dir)


def check_resume(resume: str | None) -> None:
    if resume is None:
        return
    path = Path(str(resume)).expanduser()
    if not path.is_file():
        raise ConfigError("trainer.resume", str(resume), "no such file (a checkpoint: "
                          "<output dir>/checkpoints/last.pt of a run with trainer.checkpoint="
                          "every_epoch or last)")
    if not os.access(path, os.R_OK):
        raise ConfigError("trainer.resume", str(resume), "not readable by this user")


def check_machine(cfg: Mapping[str, Any]) -> None:
    """The device, the resume file, the output dir and the dataset, in that order."""
    from trainer.data.prepare import make_splits
    from trainer.loop import resolve_device

    t = cfg["trainer"]
    device = resolve_device(str(t["device"]))
    check_resume(t["resume"])
    if t["output_dir"]:
        check_writable(t["output_dir"], "trainer.output_dir")
    else:
        check_writable(HYDRA_OUTPUTS, "trainer.output_dir (null: Hydra's run folder under ./outputs)")
    make_splits(cfg["dataset"], device)  # DatasetUnavailableError: the offline message
