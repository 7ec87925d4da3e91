"""Boundary warnings: a best value at the edge of its search range.

If the best learning rate sits at the top of its range, the optimum probably lies
beyond it, and the comparison says more about the range than about the optimizer. A
value counts as "at the edge" when it lies within `MARGIN` (5 %) of the range's width
from an end, measured on the log scale for log dimensions. Edges that cannot be moved
(the trainer's own limits: warmup 0, dampening 0, a ratio of 1) never warn: a best
value there is not a sign of a narrow range.

Only where the range could have been wider and the study can say so: an integer range of
fewer than `MIN_INT_VALUES` values (``step_size`` in [1, 3]) never warns (its ends are most of
it), and a study with fewer than `MIN_TRIALS` completed trials is not checked at all (its first
samples are random draws, and one of a few draws lands near an edge by chance).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sweeps.search.space import Dimension, parse_dimension
from trainer.api import ConfigError

MARGIN = 0.05
MIN_INT_VALUES = 10  # an integer range of fewer values: its edges are no sign of narrowness
MIN_TRIALS = 8  # completed trials a study needs before its best values are checked


@dataclass(frozen=True)
class BoundaryHit:
    dim: str
    edge: str  # low | high
    value: float
    low: float
    high: float
    log: bool

    def describe(self) -> str:
        scale = ", log scale" if self.log else ""
        return (f"{self.dim} = {self.value:.4g} is within {MARGIN:.0%} of the {self.edge} edge of "
                f"[{self.low:g}, {self.high:g}]{scale}: the range was probably too narrow")


def position(dim: Dimension, value: float) -> float:
    """Where `value` lies in the dimension's range: 0 at low, 1 at high (log-scaled if log)."""
    lo, hi, x = float(dim.low), float(dim.high), float(value)  # type: ignore[arg-type]
    if dim.log:
        lo, hi, x = math.log(lo), math.log(hi), math.log(max(x, 1e-300))
    return (x - lo) / (hi - lo)


def fixed_edges(dim: Dimension, base: Mapping[str, Any], optimizer: str) -> tuple[bool, bool]:
    """(low, high): whether each end of the range is a limit of the trainer itself."""
    from sweeps.search.validate import param_for

    if dim.key is None or dim.type == "categorical":
        return False, False
    try:
        param = param_for(dim.key, dim, base, optimizer)
    except ConfigError:
        return False, False
    bounds = (0.0, 1.0) if param is None else (param.low, param.high)  # None: an element of betas
    ends = [dim.config_value(dim.low), dim.config_value(dim.high)]
    return (any(b is not None and math.isclose(ends[0], b, abs_tol=1e-12) for b in bounds),
            any(b is not None and math.isclose(ends[1], b, abs_tol=1e-12) for b in bounds))


def fixed_edges_of(dims: Sequence[Dimension], base: Mapping[str, Any], optimizer: str,
                   bases: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, list[bool]]:
    """Every range dimension's fixed edges, as stored with the study at launch (the read-only
    commands then need not load the trainer's registries, and torch with them)."""
    out = {}
    for dim in dims:
        if dim.type != "categorical":
            owner = str(dim.when.get("optimizer", optimizer))
            out[dim.name] = list(fixed_edges(dim, (bases or {}).get(owner, base), owner))
    return out


def hits(params: Mapping[str, Any], dims: Sequence[Dimension], base: Mapping[str, Any],
         optimizer: str, margin: float = MARGIN,
         fixed: Mapping[str, Sequence[bool]] | None = None) -> list[BoundaryHit]:
    """The sampled values of `params` that lie within `margin` of a movable range edge.

    `fixed` (dimension -> [low fixed, high fixed]) saves working the edges out again.
    """
    out = []
    for dim in dims:
        if dim.type == "categorical" or dim.name not in params:
            continue
        if dim.type == "int" and float(dim.high) - float(dim.low) + 1 < MIN_INT_VALUES:  # type: ignore[arg-type]
            continue
        value = params[dim.name]
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        where = position(dim, value)
        owner = str(dim.when.get("optimizer", optimizer))
        if fixed is not None and dim.name in fixed:
            fixed_low, fixed_high = fixed[dim.name]
        else:
            fixed_low, fixed_high = fixed_edges(dim, base, owner)
        for edge, near, immovable in (("low", where <= margin, fixed_low),
                                      ("high", where >= 1.0 - margin, fixed_high)):
            if near and not immovable:
                out.append(BoundaryHit(dim.name, edge, float(value), float(dim.low),  # type: ignore[arg-type]
                                       float(dim.high), dim.log))  # type: ignore[arg-type]
    return out


def tag(found: Iterable[BoundaryHit]) -> str:
    """The MLflow tag value: ``lr:high,momentum:low``."""
    return ",".join(f"{h.dim}:{h.edge}" for h in found)


def dims_of(described: Mapping[str, Mapping[str, Any]]) -> list[Dimension]:
    """Dimensions back from a study's stored ``search_space`` attribute."""
    return [parse_dimension("search", name, dict(spec)) for name, spec in described.items()]


def trial_hits(study_attrs: Mapping[str, Any], params: Mapping[str, Any],
               optimizer: str) -> list[BoundaryHit]:
    """Boundary hits of a stored trial, from what its study recorded at launch."""
    space = study_attrs.get("search_space") or {}
    base = study_attrs.get("base_config") or {}
    return hits(params, dims_of(space), base, optimizer, fixed=study_attrs.get("fixed_edges"))
