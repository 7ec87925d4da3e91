"""Declarative constraints for config values.

Each registry entry (optimizer, schedule, dataset, model) lists the keys it
accepts as `Param`s; `check_section` validates a whole config section at load
time so that a bad value fails before any training starts, naming the key, the
value and what is allowed. The sweep layer reuses the same records to validate
search-space ranges.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trainer.errors import ConfigError


@dataclass(frozen=True)
class Param:
    """What one config key may hold."""

    kind: str  # float | int | bool | str | choice | betas | floats | path | size | section | log_every | any
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] = ()
    nullable: bool = False
    doc: str = ""

    def describe(self) -> str:
        if self.kind == "choice":
            text = "one of " + ", ".join(map(str, self.choices))
        elif self.kind == "bool":
            text = "true or false"
        elif self.kind == "betas":
            text = "[beta1, beta2] with each in [0, 1)"
        elif self.kind == "floats":
            text = "a list of positive numbers"
        elif self.kind in ("str", "path"):
            text = "a string"
        elif self.kind == "any":
            text = "any value"
        elif self.kind == "size":
            text = "a count >= 1 or a fraction in (0, 1)"
        elif self.kind == "section":
            text = "a mapping of settings"
        elif self.kind == "log_every":
            text = "auto or an integer >= 1"
        else:
            text = "an integer" if self.kind == "int" else "a number"
            bounds = self._bounds()
            if bounds:
                text += " " + bounds
        return text + (" or null" if self.nullable else "")

    def _bounds(self, full: bool = False) -> str:
        lo, hi = self.low, self.high
        if hi == MAX_COUNT and not full:  # the bound of every count: said where it is passed
            hi = None
        if lo is not None and hi is not None:
            left = "(" if self.low_open else "["
            right = ")" if self.high_open else "]"
            return f"in {left}{_fmt(lo)}, {_fmt(hi)}{right}"
        if lo is not None:
            return f"{'>' if self.low_open else '>='} {_fmt(lo)}"
        if hi is not None:
            return f"{'<' if self.high_open else '<='} {_fmt(hi)}"
        return ""

    def in_bounds(self, x: float) -> bool:
        if not math.isfinite(x):
            return False
        if self.low is not None and (x < self.low or (self.low_open and x == self.low)):
            return False
        return not (self.high is not None and (x > self.high or (self.high_open and x == self.high)))

    def check(self, key: str, value: Any) -> None:
        """Raise ConfigError unless `value` is allowed for `key`."""
        if self.kind == "any":
            return
        if value is None:
            if self.nullable:
                return
            raise ConfigError(key, value, "must be " + self.describe())
        ok = True
        if self.kind == "bool":
            ok = isinstance(value, bool)
        elif self.kind in ("str", "path"):
            ok = isinstance(value, str) and value != ""
        elif self.kind == "choice":
            ok = value in self.choices
        elif self.kind == "size":
            ok = _is_number(value) and (value >= 1 if isinstance(value, int) else 0 < value < 1
                                        or (float(value).is_integer() and value >= 1))
        elif self.kind == "section":
            ok = isinstance(value, Mapping)
        elif self.kind == "log_every":
            ok = value == "auto" or (isinstance(value, int) and not isinstance(value, bool)
                                     and value >= 1)
        elif self.kind == "int":
            ok = isinstance(value, int) and not isinstance(value, bool) and self.in_bounds(value)
        elif self.kind == "float":
            ok = _is_number(value) and self.in_bounds(float(value))
        elif self.kind == "betas":
            ok = (
                _is_sequence(value)
                and len(value) == 2
                and all(_is_number(b) and 0.0 <= float(b) < 1.0 for b in value)
            )
        elif self.kind == "floats":
            ok = (
                _is_sequence(value)
                and len(value) > 0
                and all(_is_number(v) and float(v) > 0 for v in value)
            )
        if not ok:
            beyond = self.high == MAX_COUNT and _is_number(value) and value > MAX_COUNT
            raise ConfigError(key, _plain(value), "must be " + (
                f"an integer {self._bounds(full=True)}" if beyond else self.describe()))


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) >= 1e6 else f"{x:g}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_sequence(value: Any) -> bool:
    return isinstance(value, list | tuple) or type(value).__name__ == "ListConfig"


def _plain(value: Any) -> Any:
    return list(value) if _is_sequence(value) else value


# Shorthands used by the registries.
def positive(doc: str = "", *, nullable: bool = False) -> Param:
    return Param("float", low=0.0, low_open=True, nullable=nullable, doc=doc)


def nonneg(doc: str = "") -> Param:
    return Param("float", low=0.0, doc=doc)


def unit(doc: str = "", *, high_open: bool = True, nullable: bool = False) -> Param:
    return Param("float", low=0.0, high=1.0, high_open=high_open, nullable=nullable, doc=doc)


MAX_COUNT = 2**31 - 1  # no count is unbounded: past this, torch's int32 sizes and indices overflow


def count(low: int = 1, doc: str = "", *, nullable: bool = False, high: int = MAX_COUNT) -> Param:
    return Param("int", low=low, high=high, nullable=nullable, doc=doc)


def flag(doc: str = "", *, nullable: bool = False) -> Param:
    return Param("bool", nullable=nullable, doc=doc)


def one_of(*choices: Any, doc: str = "") -> Param:
    return Param("choice", choices=tuple(choices), doc=doc)


def check_section(section: str, values: Mapping[str, Any], params: Mapping[str, Param],
                  *, owner: str) -> None:
    """Validate every key of a config section against `params`.

    Unknown keys are rejected (listing the keys `owner` accepts); a key the
    section lacks is an error too, since defaults live in conf/ only.
    """
    for key, value in values.items():
        if key == "name":
            continue
        if key not in params:
            raise ConfigError(
                f"{section}.{key}", _plain(value),
                f"not a setting of {owner}; allowed: {', '.join(sorted(params))}",
            )
        params[key].check(f"{section}.{key}", value)
    missing = [k for k in params if k not in values]
    if missing:
        raise ConfigError(f"{section}.{missing[0]}", None,
                          f"required by {owner} but missing from the config")
