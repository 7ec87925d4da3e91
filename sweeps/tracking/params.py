"""Which params go on which run: the sweep's constant config once, on the launch's parent
run; on each trial's run only what varies between trials.

A trial's run holds its sampled values (``hp.*``), the optimizer, schedule, model and
dataset names, the seed, and every config key whose value differs from the parent's
constant part (the keys a search dimension sets, an optimizer's own settings in a compare
sweep, a worker's device or threads). `rebuild` puts parent and child back together into
the trial's whole flattened config; a run with no parent gets the whole config.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sweeps.search.spec import TRAINER_SECTIONS, SweepSpec
from sweeps.store.urls import redact

# Always on a trial's run, even where the sweep holds them constant: what a reader compares,
# and the torch threads, which each worker sets for its own trials.
CHILD_KEYS = ("optimizer.name", "schedule.name", "model.name", "dataset.name", "trainer.seed",
              "trainer.threads")


SAMPLED = "hp."  # sorts before optimizer.*, schedule.*, trainer.*: the UI's default compare axes


def flat_params(d: Mapping[str, Any]) -> dict[str, str]:
    """MLflow params: flattened keys, values as text, passwords redacted, within MLflow's limit."""
    from trainer.api import flatten

    return {k: redact(str(v))[:6000] for k, v in flatten(d).items()}


def _varied(key: str, dims: Iterable[str]) -> bool:
    """Whether a search dimension sets `key` (``optimizer.betas.0`` sets ``optimizer.betas``;
    ``schedule`` picks the whole ``schedule.*`` section)."""
    return any(d == key or d.startswith(key + ".") or key.startswith(d + ".") for d in dims)


def constant_config(spec: SweepSpec) -> dict[str, str]:
    """The flattened config every trial of the sweep starts from alike: keys with one value
    in every study's base config that no search dimension sets, less `CHILD_KEYS`."""
    bases = [b for st in spec.studies for b in (st.base, *st.bases.values())]
    flats = [flat_params(b) for b in bases]
    dims = {d.key for st in spec.studies for d in st.space.dims if d.key is not None}
    first, rest = flats[0], flats[1:]
    return {k: v for k, v in first.items()
            if k not in CHILD_KEYS and not _varied(k, dims) and all(f.get(k) == v for f in rest)}


def constant_yaml(spec: SweepSpec) -> str:
    """The parent run's ``config.yaml``: the composed config every trial starts from, with
    only the keys that are constant over the sweep (each trial's run has the rest)."""
    import yaml

    keep = constant_config(spec)
    base = spec.studies[0].base

    def prune(node: Mapping[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in node.items():
            if isinstance(v, Mapping):
                sub = prune(v, f"{prefix}{k}.")
                if sub:
                    out[k] = sub
            elif f"{prefix}{k}" in keep:
                out[k] = v
        return out

    head = ("# The config every trial of this sweep shares. Each trial's run has the rest as\n"
            "# its params: its sampled values, optimizer, schedule, model, dataset and seed.\n")
    return head + redact(yaml.safe_dump(prune(base, ""), sort_keys=False))


def trial_params(config: Mapping[str, Any], sampled: Mapping[str, Any],
                 constant: Mapping[str, str] | None) -> dict[str, str]:
    """A trial run's params: what differs from `constant` (None: a run with no parent, which
    gets the whole config), `CHILD_KEYS`, and the sampled values."""
    flat = flat_params(config)
    if constant is not None:
        flat = {k: v for k, v in flat.items() if k in CHILD_KEYS or constant.get(k) != v}
    return {**flat, **{f"{SAMPLED}{k}": redact(str(v)) for k, v in sampled.items()}}


def config_part(params: Mapping[str, str]) -> dict[str, str]:
    """The trainer config's params among a run's (a parent run also has ``sweep.*`` etc.)."""
    return {k: v for k, v in params.items() if k.split(".", 1)[0] in TRAINER_SECTIONS}


def rebuild(parent: Mapping[str, str], child: Mapping[str, str]) -> dict[str, str]:
    """A trial's whole flattened config (as `flat_params` writes it) from its parent run's
    params and its own: the child's values win where both have a key."""
    return {**config_part(parent), **config_part(child)}
