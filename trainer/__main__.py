"""`python -m trainer [--config-dir DIR] key=value ...`: one training run, Hydra-composed
from conf/ (and the user's config dir, whose files win over bundled ones of the same name).

Before Hydra takes over, the overrides are composed and validated once, and checked
against this machine (the device, a resume file, the output dir, the dataset:
`trainer.run_checks`), so a bad option, key, value or environment exits with one line
(status 2) before anything is written, instead of a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig
from rich.console import Console
from rich.markup import escape

from trainer.config import user_dir
from trainer.errors import UserError
from trainer.validation import load_config

err_console = Console(stderr=True)


def _fail(err: UserError) -> None:
    err_console.print(f"[red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
    sys.exit(err.exit_code)


@hydra.main(config_path="pkg://sweeps_conf", config_name="config", version_base=None)
def _run(cfg: DictConfig) -> None:
    from omegaconf import OmegaConf

    from trainer.config.compose import with_group_names
    from trainer.console import ConsoleReporter
    from trainer.loop import fit

    try:
        runtime = HydraConfig.get().runtime
        plain = OmegaConf.create(OmegaConf.to_container(cfg))  # not struct: the names may be added
        choices = {"hydra": {"runtime": {"choices": dict(runtime.choices)}}}
        merged = OmegaConf.merge(plain, choices)
        assert isinstance(merged, DictConfig)  # a config file is a mapping
        cfg = with_group_names(merged)
        out = cfg.trainer.output_dir or runtime.output_dir
        result = fit(cfg, [ConsoleReporter(progress=bool(cfg.trainer.progress))], out)
    except UserError as err:
        _fail(err)
    except KeyboardInterrupt:
        err_console.print("interrupted; continue with trainer.resume=<output dir>/checkpoints/"
                          "last.pt (needs trainer.checkpoint=every_epoch)")
        sys.exit(130)
    if result.status == "interrupted":
        sys.exit(130)


def _user_dir(argv: list[str]) -> Path | None:
    """The command line's `--config-dir DIR`, else `$SWEEPS_CONFIG_DIR`."""
    given = user_dir.from_argv(argv)
    try:
        return user_dir.resolve(given) if given is not None else user_dir.from_env()
    except UserError as err:
        _fail(err)
        raise  # not reached: _fail exits


def _preflight(argv: list[str], user: Path | None) -> None:
    """Validate plain overrides (not other Hydra flags, hydra.* keys or multirun sweeps)."""
    from trainer.config.targets import importable_from_cwd

    importable_from_cwd()
    argv = user_dir.without_flag(argv)
    if any(a.startswith("-") for a in argv):
        return
    overrides = [a for a in argv if not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    try:
        from trainer.run_checks import check_machine
        from trainer.validation import validate
        from trainer.writable import check_writable

        for word in argv:  # Hydra makes its run folder first, with a traceback if it cannot
            key, _, value = word.lstrip("+").partition("=")
            if key in ("hydra.run.dir", "hydra.sweep.dir") and value and "${" not in value:
                check_writable(value, key)

        # before Hydra makes its run folder
        check_machine(validate(load_config(overrides, config_dir=user)))
    except UserError as err:
        _fail(err)


def main() -> None:
    from trainer.startup import passive_openmp_waits, skip_exit_gc

    passive_openmp_waits()  # before torch loads
    skip_exit_gc()
    user = _user_dir(sys.argv[1:])
    _preflight(sys.argv[1:], user)
    sys.argv = [sys.argv[0], *user_dir.without_flag(sys.argv[1:])]  # Hydra's own flag puts it last
    with user_dir.searching(user):  # the user's files first, for Hydra's run as for the check
        _run()


if __name__ == "__main__":
    main()
