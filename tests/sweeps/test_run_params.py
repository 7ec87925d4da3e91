"""What goes on which MLflow run: the sweep's constant config on the parent, what varies on
each trial's run, and the two together give back the trial's whole config."""

from __future__ import annotations

import optuna
import pytest

from sweeps.search.load import load_sweep
from sweeps.search.trial_configs import TrialConfigs
from sweeps.tracking import params as tracking_params
from sweeps.tracking.runs import reproduce_command

from .conftest import SMALL


def _trial_configs(overrides: list[str], n: int = 6) -> list[tuple[dict, dict]]:
    """(config, sampled params) of `n` trials per study, sampled as a worker samples them."""
    spec = load_sweep(overrides)
    configs = TrialConfigs(spec)
    out = []
    for st in spec.studies:
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
        for _ in range(n):
            trial = study.ask()
            params, trial_overrides = st.space.sample(trial, st.base, st.bases)
            cfg = configs.resolve(st, [*st.base_overrides, *trial_overrides, "trainer.threads=1"])
            out.append((cfg, params))
    return out


@pytest.mark.parametrize("mode", ["compare", "joint"])
def test_parent_and_child_params_rebuild_every_trial_config(mode: str) -> None:
    overrides = [*SMALL, f"sweep.mode={mode}", "sweep.optimizers=[sgd,adam,adam_to_sgd]"]
    spec = load_sweep(overrides)
    constant = tracking_params.constant_config(spec)
    parent = {"sweep.n_trials": "4", **constant}
    for cfg, sampled in _trial_configs(overrides):
        child = tracking_params.trial_params(cfg, sampled, constant)
        assert tracking_params.rebuild(parent, child) == tracking_params.flat_params(cfg)
        assert {f"hp.{k}" for k in sampled} <= set(child)
        # the UI's compare view plots the first three differing params, sorted: the sampled ones
        varying = sorted(k for k in child if k not in tracking_params.CHILD_KEYS)
        assert varying[:len(sampled)] == sorted(f"hp.{k}" for k in sampled)
        assert set(tracking_params.CHILD_KEYS) <= set(child)
        assert not set(child) & set(constant)  # nothing twice


def test_sampled_keys_never_sit_on_the_parent_and_constant_ones_never_on_a_trial() -> None:
    spec = load_sweep([*SMALL, "sweep.optimizers=[sgd,adam]"])
    constant = tracking_params.constant_config(spec)
    # set by a search dimension, or picked with the schedule: a parent value would mislead
    for key in ("optimizer.lr", "optimizer.betas", "trainer.batch_size", "schedule.warmup_epochs"):
        assert key not in constant
    assert not [k for k in constant if k.startswith("schedule.")]  # the schedule is sampled
    # an optimizer setting sits on the parent only where both optimizers have it alike
    shared = {k for k in constant if k.startswith("optimizer.")}
    assert shared == {"optimizer.maximize", "optimizer.foreach"}
    assert not set(tracking_params.CHILD_KEYS) & set(constant)
    assert constant["trainer.epochs"] == "2" and constant["model.width"] == "32"
    cfg, sampled = _trial_configs([*SMALL, "sweep.optimizers=[sgd,adam]"], n=1)[1]
    child = tracking_params.trial_params(cfg, sampled, constant)
    assert "trainer.epochs" not in child and "model.width" not in child
    assert child["optimizer.name"] == "adam" and child["trainer.threads"] == "1"
    assert len(child) < len(tracking_params.flat_params(cfg)) / 2


def test_a_run_without_a_parent_gets_the_whole_config() -> None:
    cfg, sampled = _trial_configs(SMALL, n=1)[0]
    whole = tracking_params.trial_params(cfg, sampled, None)
    assert tracking_params.config_part(whole) == tracking_params.flat_params(cfg)


def test_the_parent_config_yaml_holds_the_constant_part() -> None:
    import yaml

    from trainer.config.compose import flatten

    spec = load_sweep(SMALL)
    text = tracking_params.constant_yaml(spec)
    assert text.startswith("# The config every trial of this sweep shares")
    flat = {k: str(v) for k, v in flatten(yaml.safe_load(text)).items()}
    assert flat == tracking_params.constant_config(spec)


def test_reproduce_command_names_a_storage_other_than_the_default() -> None:
    assert reproduce_command("quick", "quick.adam", 3, "sweeps.journal") == \
        "sweeps reproduce quick --trial quick.adam:3"
    line = reproduce_command("mnist", "mnist.sgd", 0, "postgresql://u:secret@db/sweeps")
    assert line == "sweeps reproduce mnist --trial mnist.sgd:0 --storage 'postgresql://u:***@db/sweeps'"
