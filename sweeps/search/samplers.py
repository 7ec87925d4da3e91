"""Samplers and pruners by config name (``sweep.sampler.name``, ``sweep.pruner.name``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import optuna

from sweeps.store.quiet import quietly
from trainer.api import Registry


@dataclass(frozen=True)
class SamplerInfo:
    name: str
    build: Callable[[Mapping[str, Any], int, Mapping[str, list[Any]]], optuna.samplers.BaseSampler]
    doc: str


@dataclass(frozen=True)
class PrunerInfo:
    name: str
    build: Callable[[Mapping[str, Any], int], optuna.pruners.BasePruner]
    doc: str


SAMPLERS: Registry[SamplerInfo] = Registry("sweep.sampler.name")


PRUNERS: Registry[PrunerInfo] = Registry("sweep.pruner.name")


def _tpe(c: Mapping[str, Any], seed: int, grid: Mapping[str, list[Any]]) -> optuna.samplers.BaseSampler:
    from sweeps.search.history import WindowedTPESampler

    history = None if c.get("history") is None else int(c["history"])  # None: every trial
    return WindowedTPESampler(history, seed=seed, n_startup_trials=int(c["n_startup_trials"]))


SAMPLERS.register("tpe", SamplerInfo("tpe", _tpe, "Tree-structured Parzen Estimator"))


SAMPLERS.register("random", SamplerInfo("random", lambda c, seed, grid: optuna.samplers.RandomSampler(
    seed=seed), "uniform random search"))


SAMPLERS.register("grid", SamplerInfo("grid", lambda c, seed, grid: optuna.samplers.GridSampler(
    dict(grid), seed=seed), "grid over choices and grid_points values per range"))


SAMPLERS.register("cmaes", SamplerInfo("cmaes", lambda c, seed, grid: quietly(
    optuna.samplers.CmaEsSampler, seed=seed, n_startup_trials=int(c["n_startup_trials"]),
    warn_independent_sampling=False), "CMA-ES (categoricals sampled independently)"))


SAMPLERS.register("gp", SamplerInfo("gp", lambda c, seed, grid: quietly(
    optuna.samplers.GPSampler, seed=seed, n_startup_trials=int(c["n_startup_trials"]),
    warn_independent_sampling=False), "Gaussian-process Bayesian optimization"))


SAMPLERS.register("qmc", SamplerInfo("qmc", lambda c, seed, grid: quietly(
    optuna.samplers.QMCSampler, seed=seed, scramble=True, warn_independent_sampling=False,
    warn_asynchronous_seeding=False), "quasi-Monte Carlo (Sobol)"))


PRUNERS.register("median", PrunerInfo("median", lambda c, epochs: optuna.pruners.MedianPruner(
    n_startup_trials=int(c["n_startup_trials"]), n_warmup_steps=int(c["n_warmup_steps"])),
    "prune below the median of earlier trials at the same epoch"))


PRUNERS.register("hyperband", PrunerInfo("hyperband", lambda c, epochs: optuna.pruners.HyperbandPruner(
    min_resource=int(c["min_resource"]), max_resource=epochs,
    reduction_factor=int(c["reduction_factor"])), "Hyperband (Li et al. 2018)"))


PRUNERS.register("successive_halving", PrunerInfo(
    "successive_halving", lambda c, epochs: optuna.pruners.SuccessiveHalvingPruner(
        min_resource=int(c["min_resource"]), reduction_factor=int(c["reduction_factor"])),
    "asynchronous successive halving"))


PRUNERS.register("none", PrunerInfo("none", lambda c, epochs: optuna.pruners.NopPruner(),
                                    "never prune"))


def build_sampler(cfg: Mapping[str, Any], seed: int,
                  grid: Mapping[str, list[Any]]) -> optuna.samplers.BaseSampler:
    return SAMPLERS.get(cfg["name"]).build(cfg, seed, grid)


def build_pruner(cfg: Mapping[str, Any], epochs: int) -> optuna.pruners.BasePruner:
    return PRUNERS.get(cfg["name"]).build(cfg, epochs)
