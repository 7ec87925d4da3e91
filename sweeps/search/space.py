"""Search spaces: per-optimizer dimensions from conf/search/, sampled into trainer overrides.

A dimension (YAML) is ``{type: float|int|categorical, low, high, log, choices, key,
transform, when}``. Sampling walks the dimensions in order; ``when`` conditions are
checked against what was sampled so far and the base config, so schedule parameters are
only sampled for the schedule that was picked. A condition's value is one value, or a
list of values any of which matches (``when: {schedule: [constant, cosine]}``). The
result of a sample is a list of Hydra overrides (``optimizer.lr=0.01``,
``schedule=cosine``): the trial's config is the base config plus these, and so is the
command that reproduces it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna

from trainer.api import ConfigError, Param

TYPES = ("float", "int", "categorical")
TRANSFORMS = ("one_minus",)
GROUP_KEYS = ("dataset", "model", "optimizer", "schedule")
# The fields of a search dimension (`search.<optimizer>.<dim>.*`): what each holds.
DIMENSION_FIELDS: dict[str, Param] = {
    "type": Param("choice", choices=TYPES, doc="float, int or categorical"),
    "low": Param("float", nullable=True, doc="float, int: the lowest value"),
    "high": Param("float", nullable=True, doc="float, int: the highest value (> low)"),
    "log": Param("bool", nullable=True, doc="float, int: sample on a log scale (low > 0)"),
    "choices": Param("any", doc="categorical: the values, none repeated"),
    "key": Param("str", nullable=True, doc="the trainer config key it sets (optimizer.lr); a "
                 "group name (schedule) picks that group's option"),
    "transform": Param("choice", choices=(None, *TRANSFORMS), doc="one_minus: the key gets 1 - "
                       "the value (so 1 - beta2 can be searched on a log scale)"),
    "when": Param("any", doc="sample only when other keys have these values, e.g. "
                  "{schedule: [step, cosine]}"),
}


@dataclass(frozen=True)
class Dimension:
    name: str
    type: str
    key: str | None
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    transform: str | None = None
    when: Mapping[str, Any] = field(default_factory=dict)

    def bounds(self) -> tuple[float, float]:
        """low and high of a float or int range (parse_dimension sets both for those)."""
        assert self.low is not None and self.high is not None, f"{self.name}: not a range"
        return self.low, self.high

    def distribution(self) -> optuna.distributions.BaseDistribution:
        if self.type == "categorical":
            return optuna.distributions.CategoricalDistribution(self.choices)
        low, high = self.bounds()
        if self.type == "float":
            return optuna.distributions.FloatDistribution(low, high, log=self.log)
        return optuna.distributions.IntDistribution(int(low), int(high), log=self.log)

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.type == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        low, high = self.bounds()
        if self.type == "float":
            return trial.suggest_float(self.name, low, high, log=self.log)
        return trial.suggest_int(self.name, int(low), int(high), log=self.log)

    def config_value(self, raw: Any) -> Any:
        return 1.0 - raw if self.transform == "one_minus" else raw

    def endpoints(self) -> list[Any]:
        if self.type == "categorical":
            return list(self.choices)
        return [self.config_value(self.low), self.config_value(self.high)]

    def grid(self, points: int) -> list[Any]:
        if self.type == "categorical":
            return list(self.choices)
        lo, hi = float(self.low), float(self.high)  # type: ignore[arg-type]
        if points == 1:
            values = [lo]
        elif self.log:
            values = [math.exp(math.log(lo) + i * (math.log(hi) - math.log(lo)) / (points - 1))
                      for i in range(points)]
        else:
            values = [lo + i * (hi - lo) / (points - 1) for i in range(points)]
        if points > 1:  # exact endpoints, no rounding drift out of range
            values[0], values[-1] = lo, hi
        if self.type == "int":
            return sorted({round(v) for v in values})
        return values

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type, "key": self.key}
        if self.type == "categorical":
            out["choices"] = list(self.choices)
        else:
            out.update(low=self.low, high=self.high, log=self.log)
        if self.transform:
            out["transform"] = self.transform
        if self.when:
            out["when"] = dict(self.when)
        return out


def parse_dimension(path: str, name: str, spec: Any) -> Dimension:
    """Build a Dimension from YAML, rejecting bad ranges with one clear line."""
    where = f"{path}.{name}"
    if not isinstance(spec, Mapping):
        raise ConfigError(where, spec, "must be a mapping with type, low/high or choices, key")
    allowed = set(DIMENSION_FIELDS)
    extra = sorted(set(spec) - allowed)
    if extra:
        raise ConfigError(f"{where}.{extra[0]}", spec[extra[0]],
                          f"unknown field; allowed: {', '.join(sorted(allowed))}")
    kind = spec.get("type")
    if kind not in TYPES:
        raise ConfigError(f"{where}.type", kind, "must be one of " + ", ".join(TYPES))
    key = spec.get("key")
    if key is not None and not isinstance(key, str):
        raise ConfigError(f"{where}.key", key, "must be a config key such as optimizer.lr, or null")
    transform = spec.get("transform")
    if transform is not None and transform not in TRANSFORMS:
        raise ConfigError(f"{where}.transform", transform, "must be one of " + ", ".join(TRANSFORMS))
    when = dict(spec.get("when") or {})
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, Sequence) or isinstance(choices, str) or len(choices) == 0:
            raise ConfigError(f"{where}.choices", choices, "must be a non-empty list")
        if len(set(map(repr, choices))) != len(choices):
            raise ConfigError(f"{where}.choices", list(choices), "must not repeat a value")
        return Dimension(name, kind, key, choices=tuple(choices), transform=transform, when=when)
    low, high, log = spec.get("low"), spec.get("high"), bool(spec.get("log", False))
    for bound, value in (("low", low), ("high", high)):
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise ConfigError(f"{where}.{bound}", value, "must be a finite number")
        if kind == "int" and int(value) != value:
            raise ConfigError(f"{where}.{bound}", value, "must be an integer for type int")
    assert isinstance(low, int | float) and isinstance(high, int | float)  # checked just above
    if low >= high:
        raise ConfigError(f"{where}.low", low, f"must be < high ({high})")
    if log and low <= 0:
        raise ConfigError(f"{where}.low", low, "must be > 0 for a log range")
    return Dimension(name, kind, key, float(low), float(high), log, transform=transform, when=when)


@dataclass(frozen=True)
class SearchSpace:
    """The ordered dimensions of one study (the optimizer's own plus the common ones)."""

    dims: tuple[Dimension, ...]

    def describe(self) -> dict[str, Any]:
        return {d.name: d.describe() for d in self.dims}

    def sample(self, trial: optuna.Trial, base: Mapping[str, Any],
               bases: Mapping[str, Mapping[str, Any]] | None = None,
               ) -> tuple[dict[str, Any], list[str]]:
        """Sample the active dimensions; return (params, trainer overrides).

        `bases` (joint mode) maps each optimizer to its base config, used once the
        optimizer has been sampled (e.g. for the other element of ``betas``).
        """
        params: dict[str, Any] = {}
        values: dict[str, Any] = {}
        for dim in self.dims:
            if not _active(dim, params, values, base):
                continue
            raw = dim.suggest(trial)
            params[dim.name] = raw
            if dim.key is not None:
                values[dim.key] = dim.config_value(raw)
            if dim.key == "optimizer" and bases and raw in bases:
                base = bases[raw]
        return params, to_overrides(values, base)

    def overrides_for(self, params: Mapping[str, Any], base: Mapping[str, Any]) -> list[str]:
        """Rebuild the overrides from stored params (what `sample` returned for them)."""
        values = {d.key: d.config_value(params[d.name]) for d in self.dims
                  if d.name in params and d.key is not None}
        return to_overrides(values, base)

    def grid(self, points: int) -> dict[str, list[Any]]:
        return {d.name: d.grid(points) for d in self.dims}


def condition_values(expected: Any) -> list[Any]:
    """The values a ``when`` condition accepts: a list is "any of these"."""
    return list(expected) if isinstance(expected, list | tuple) else [expected]


def _active(dim: Dimension, params: Mapping[str, Any], values: Mapping[str, Any],
            base: Mapping[str, Any]) -> bool:
    for key, expected in dim.when.items():
        if key in params:
            actual = params[key]
        elif key in values:
            actual = values[key]
        else:
            actual = lookup(base, key)
        if actual not in condition_values(expected):
            return False
    return True


def lookup(cfg: Mapping[str, Any], key: str) -> Any:
    """`optimizer.betas.0` in a nested dict/list config; a group name gives its option."""
    if key in GROUP_KEYS:
        return cfg.get(key, {}).get("name")
    node: Any = cfg
    for part in key.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, Sequence) and not isinstance(node, str) and part.isdigit() \
                and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def to_overrides(values: Mapping[str, Any], base: Mapping[str, Any]) -> list[str]:
    """Hydra overrides for sampled values; list elements (betas.0) become one list override.

    Group choices come first so that the values after them land in the chosen option.
    """
    from trainer.api import override_value

    groups = [f"{k}={v}" for k, v in values.items() if k in GROUP_KEYS]
    lists: dict[str, list[Any]] = {}
    scalars: list[str] = []
    for key, value in values.items():
        if key in GROUP_KEYS:
            continue
        parent, _, last = key.rpartition(".")
        if last.isdigit():
            current = lists.setdefault(parent, list(lookup(base, parent) or []))
            if int(last) >= len(current):
                raise ConfigError(key, value, f"the base config's {parent} has no element {last}")
            current[int(last)] = value
        else:
            scalars.append(f"{key}={override_value(value)}")
    return groups + [f"{k}={override_value(v)}" for k, v in lists.items()] + scalars
