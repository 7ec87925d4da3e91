"""Sweep config: composition, studies and budgets, every bad input, fast trial configs."""

from __future__ import annotations

import math

import pytest

from sweeps.search.load import load_sweep, trainer_part
from sweeps.search.trial_configs import TrialConfigs
from trainer.errors import UserError
from trainer.optim import list_optimizers
from trainer.validation import compose, load_config, overrides_for, to_container, validate


def test_quick_sweep_has_one_study_per_optimizer_with_equal_budgets() -> None:
    spec = load_sweep(["sweep=quick"])
    assert [s.optimizer for s in spec.studies] == list(spec.optimizers)
    assert set(spec.optimizers) == set(list_optimizers())
    assert {s.budget for s in spec.studies} == {spec.n_trials // len(spec.optimizers)}
    assert spec.studies[0].base["dataset"]["name"] == "mnist_5k"
    names = {d.name for d in spec.study("quick.adam_to_sgd").space.dims}
    assert {"policy", "switch_at", "swats_eps", "sgd_lr", "lr", "batch_size", "schedule"} <= names


def test_joint_mode_searches_the_optimizer() -> None:
    spec = load_sweep(["sweep=quick", "sweep.mode=joint", "sweep.optimizers=[sgd,adam]"])
    (study,) = spec.studies
    assert study.name == "quick" and study.budget == spec.n_trials
    first = study.space.dims[0]
    assert first.name == "optimizer" and first.choices == ("sgd", "adam")
    assert all(d.when.get("optimizer") in ("sgd", "adam") for d in study.space.dims
               if d.name.startswith(("sgd.", "adam.")))


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_bundled_sweeps_validate(name: str) -> None:
    spec = load_sweep([f"sweep={name}"])
    assert spec.name == name and len(spec.studies) == 8


BAD = [
    (["sweep.optimizers=[sgd,foo]"], "sweep.optimizers", "unknown optimizer"),
    (["sweep.optimizers=[]"], "sweep.optimizers", "non-empty"),
    (["search.common.schedule.choices=[cosine,warp]"], "search.common.schedule.choices",
     "unknown schedule"),
    (["sweep.sampler.name=bayes"], "sweep.sampler.name", "allowed: cmaes, gp, grid, qmc, random, tpe"),
    (["sweep.pruner.name=asha"], "sweep.pruner.name", "allowed: hyperband, median, none"),
    (["search.adam.lr.low=0.5", "search.adam.lr.high=0.1"], "search.adam.lr.low", "< high"),
    (["search.sgd.lr.low=0", "search.sgd.lr.high=0.1"], "search.sgd.lr.low", "> 0 for a log range"),
    (["search.momentum.momentum.low=-0.5"], "search.momentum.momentum", "optimizer.momentum"),
    (["search.common.batch_size.choices=[]"], "search.common.batch_size.choices", "non-empty"),
    (["search.common.batch_size.choices=[0,64]"], "search.common.batch_size", "trainer.batch_size"),
    (["sweep.n_trials=0"], "sweep.n_trials", "in [1, 100000]"),
    (["sweep.n_trials=-4"], "sweep.n_trials", "in [1, 100000]"),
    (["sweep.n_trials=1000000"], "sweep.n_trials", "in [1, 100000]"),
    (["sweep.threads_per_worker=100000000000000000000"], "sweep.threads_per_worker", "in [1, 1024]"),
    (["sweep.threads_per_worker=1e20"], "sweep.threads_per_worker", "an integer"),
    (["sweep.fail_fast=-1"], "sweep.fail_fast", "in [0, 1000]"),
    (["sweep.name=" + "a" * 300], "sweep.name", "at most 100 characters"),
    (["sweep.n_trials=3"], "sweep.n_trials", "at least one trial per optimizer"),
    (["sweep.workers=-1"], "sweep.workers", "in [0, 512]"),
    (["sweep.mode=both"], "sweep.mode", "compare, joint"),
    (["sweep.timeout=0"], "sweep.timeout", "> 0"),
    (["sweep.objective=test"], "sweep.objective", "best, last"),
    (["search.adam.lr.key=optimizer.learning_rate"], "search.adam.lr.key", "not a setting of"),
    (["search.adam.one_minus_beta1.high=2.0"], "search.adam.one_minus_beta1", "outside [0, 1)"),
    (["sweep=nope"], "sweep", "allowed: base, cifar10, mnist, quick"),
    (["optimizer.lr=-1"], "optimizer.lr", "> 0"),
    (["trainer.epochs=1", "search.common.warmup_epochs.high=1.0"], "search.common.warmup_epochs.high",
     "< trainer.epochs (1)"),
]


@pytest.mark.parametrize(("overrides", "key", "allowed"), BAD)
def test_bad_sweep_input_is_one_clear_line(overrides: list[str], key: str, allowed: str) -> None:
    with pytest.raises(UserError) as info:
        load_sweep(["sweep=quick", *overrides])
    message = str(info.value)
    assert message.startswith(key), message
    assert allowed in message and "\n" not in message


@pytest.mark.parametrize("opt", ["adam_to_sgd", "rmsprop"])
def test_fast_trial_configs_equal_a_full_composition(opt: str) -> None:
    import optuna

    spec = load_sweep(["sweep=quick"])
    study = spec.study(f"quick.{opt}")
    configs = TrialConfigs(spec)
    if opt == "rmsprop":  # as a worker's start-up prepares it: the same configs
        configs.prepare()
        assert configs._parser is not None
    sampler = optuna.samplers.RandomSampler(seed=1)
    s = optuna.create_study(direction="maximize", sampler=sampler)
    for _ in range(6):
        trial = s.ask()
        _, overrides = study.space.sample(trial, study.base)
        fast = configs.resolve(study, [*study.base_overrides, *overrides])
        full = validate(trainer_part(to_container(compose(
            [*spec.overrides, "sweep=quick", *study.base_overrides, *overrides], "sweeps"))))
        assert fast == full
        s.tell(trial, 0.5)
        # and the printed `python -m trainer` command gives the same config
        again = validate(load_config(overrides_for(fast)))
        assert again == {**fast, "trainer": {**fast["trainer"], "output_dir": None}}


def test_plain_overrides_parse_as_hydra_parses_them() -> None:
    """The fast path for sampled numbers gives what Hydra's grammar gives, type included;
    anything else is left to Hydra."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from sweeps.search.trial_configs import _plain

    parser = OverridesParser.create()
    for text in ("a.b=0", "a.b=64", "a.b=-3", "a.b=+7", "a.b=0.9", "a.b=1e-05", "a.b=2.5E+3",
                 "a.b=.5", "a.b=3.", "a.b=0.00012345678901234567", "a.b=true", "a.b=false"):
        (hydra,) = parser.parse_overrides([text])
        fast = _plain(text)
        assert fast == (hydra.key_or_group, hydra.value()), text
        assert type(fast[1]) is type(hydra.value()), text
    for text in ("a.b=cosine", "a.b=[1,2]", "a.b=null", "a.b=1_000", "a.b=inf", "a.b=True",
                 "+a.b=1", "a.b='1'"):
        assert _plain(text) is None, text


@pytest.mark.parametrize("sweep", ["quick", "mnist", "cifar10"])
def test_compare_mode_is_a_fair_comparison(sweep: str) -> None:
    """Every study shares the same common dimensions (schedule choices included), and
    adam_to_sgd searches exactly adam's hyperparameters over the same ranges."""
    spec = load_sweep([f"sweep={sweep}"])
    common = {d.name: d for d in spec.study(f"{sweep}.sgd").space.dims
              if d.name in spec.raw["search"]["common"]}
    assert "schedule" in common and "batch_size" in common
    for study in spec.studies:
        dims = {d.name: d for d in study.space.dims}
        assert {k: dims[k] for k in common} == common, study.name
    adam = {d.name: d for d in spec.study(f"{sweep}.adam").space.dims}
    a2s = {d.name: d for d in spec.study(f"{sweep}.adam_to_sgd").space.dims}
    for name in ("lr", "one_minus_beta1", "one_minus_beta2", "eps", "weight_decay"):
        assert a2s[name] == adam[name], name
    # the plain baselines of Adam->SGD's two phases are in every bundled comparison
    assert {"adam", "momentum", "adam_to_sgd"} <= set(spec.optimizers)


def test_warmup_is_never_sampled_for_onecycle() -> None:
    import optuna

    spec = load_sweep(["sweep=quick"])
    study = spec.study("quick.adam")
    s = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(60):
        trial = s.ask()
        params, _ = study.space.sample(trial, study.base)
        seen.add(params["schedule"])
        assert ("warmup_epochs" in params) == (params["schedule"] != "onecycle")
        s.tell(trial, 0.0)
    assert {"onecycle", "cosine"} <= seen


def test_a_when_list_naming_a_schedule_without_the_key_is_refused() -> None:
    with pytest.raises(UserError, match="not a setting of schedule"):
        load_sweep(["sweep=quick", "+search.common.gamma2={type: float, low: 0.1, high: 0.9, "
                    "key: schedule.gamma, when: {schedule: [step, cosine]}}"])


def test_swats_tolerance_range_gives_early_and_late_switches_on_the_quick_sweep(tmp_path) -> None:
    """The searched swats_eps range spans "switch almost at once" to "switch late or never"
    on the quick sweep's own model and data (adam defaults, batch 256)."""
    from trainer.loop import fit

    spec = load_sweep(["sweep=quick"])
    study = spec.study("quick.adam_to_sgd")
    dim = next(d for d in study.space.dims if d.name == "swats_eps")
    shares = {}
    for eps in (dim.low, dim.high):
        overrides = ["optimizer.policy=swats", f"optimizer.swats_eps={eps!r}",
                     "trainer.batch_size=256", "trainer.threads=1", "schedule=constant"]
        cfg = TrialConfigs(spec).resolve(study, [*study.base_overrides, *overrides])
        result = fit(cfg, output_dir=tmp_path / str(eps))
        total = len(result.history) * math.ceil(3000 / 256)
        shares[eps] = result.final.get("switch/step", total) / total
    assert shares[dim.high] < 0.1, shares  # loose tolerance: switches within the first 10 %
    assert shares[dim.low] > 0.3, shares  # tight tolerance: late, or never (share 1.0)
