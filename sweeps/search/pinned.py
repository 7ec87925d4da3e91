"""A value the user sets is never silently replaced by the search.

A bundled search space samples keys a user may also set: `search.common.batch_size` samples
`trainer.batch_size` from 32 to 1024, so a `trainer.batch_size: 64` in the user's sweep file
(or on the command line) would have no effect. The rule:

- the user's value wins: a dimension whose key the sweep file chain (the chosen sweep file
  and the sweep files in its defaults list) or the command line sets is dropped, and the
  launch says so in one line;
- unless the dimension is given too: then the command line beats a file (``schedule=cosine``
  on the command line pins the schedule that a sweep file searches), and where both come from
  the same place the search wins and the launch says how to pin the value instead
  (``search.common.batch_size: null``).

A group choice pins only itself: ``schedule=cosine`` drops the `schedule` dimension, not the
cosine schedule's own dimensions (``schedule.min_lr_ratio``).

Only what the user wrote counts, read from the files and overrides themselves: a bundled
default (``trainer.batch_size: 128`` in config.yaml) is nobody's choice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweeps.search.spec import TRAINER_SECTIONS
from trainer.api import conf_dir, flatten

CLI = "the command line"


@dataclass(frozen=True)
class Written:
    """What the user wrote: config keys (``trainer.batch_size``, group choices as ``schedule``)
    and search dimensions (``search.common.batch_size``), each with where."""

    keys: Mapping[str, str]
    dims: Mapping[str, str]


def written(overrides: Sequence[str], sweep: str, config_dir: str | None = None) -> Written:
    user = Path(config_dir) if config_dir is not None else None
    keys: dict[str, str] = {}
    dims: dict[str, str] = {}
    for path, data in _sweep_files(sweep, user):
        where = _where(path, user)
        for group in _group_choices(data.get("defaults") or []):
            keys.setdefault(group, where)
        for key in flatten({k: v for k, v in data.items() if k in TRAINER_SECTIONS}):
            keys.setdefault(key, where)
        for section, spec in (data.get("search") or {}).items():
            for name in spec or {}:
                dims.setdefault(f"search.{section}.{name}", where)
    for o in overrides:
        if "=" not in o:
            continue
        key = o.split("=", 1)[0].lstrip("+~")
        root = key.split(".")[0]
        if root in TRAINER_SECTIONS:
            keys[key] = CLI
        elif root == "search" and key.count(".") >= 2:
            dims[".".join(key.split(".")[:3])] = CLI
    return Written(keys, dims)


def apply(search: Mapping[str, Any], user: Written, sections: Sequence[str]
          ) -> tuple[dict[str, Any], list[str]]:
    """The search without the dimensions the user pinned, and one line per decision (per
    key, over the `sections` the sweep uses: common and its optimizers)."""
    out: dict[str, Any] = {}
    dropped: dict[tuple[str, str], list[str]] = {}
    notes: list[str] = []
    for section, spec in search.items():
        if not isinstance(spec, Mapping):
            out[section] = spec
            continue
        kept = {}
        for name, raw in spec.items():
            if raw is None:  # `search.common.batch_size: null`: the user turned it off
                continue
            target = raw.get("key") if isinstance(raw, Mapping) else None
            set_by = _set_by(target, user.keys) if isinstance(target, str) else None
            dim = f"search.{section}.{name}"
            if set_by is None or _search_wins(set_by[1], user.dims.get(dim)):
                kept[name] = raw
            else:
                dropped.setdefault(set_by, []).append(dim)
            if set_by is not None and _search_wins(set_by[1], user.dims.get(dim)) and section in sections:
                notes.append(f"note: {set_by[0]} is set {_in(set_by[1])} but {dim} (set "
                             f"{_in(user.dims[dim])}) searches it: the search wins; to pin it, "
                             f"set {dim}: null")
        out[section] = kept
    for (key, where), dims in dropped.items():
        used = [d for d in dims if d.split(".")[1] in sections]
        if used:
            notes.append(f"note: {key} is set {_in(where)}, so your value is used: {_names(used)} "
                         f"{'is' if len(used) == 1 else 'are'} not searched (give "
                         f"{'it' if len(used) == 1 else 'one'} a range to search it)")
    return out, notes


def _in(where: str) -> str:
    return "on the command line" if where == CLI else f"in {where}"


def _names(dims: Sequence[str]) -> str:
    """``search.sgd.lr, search.adam.lr`` as ``search.{sgd,adam}.lr``."""
    if len(dims) == 1:
        return dims[0]
    parts = [d.split(".") for d in dims]
    if len({p[2] for p in parts}) == 1:
        return f"search.{{{','.join(p[1] for p in parts)}}}.{parts[0][2]}"
    return ", ".join(dims)


def _search_wins(key_where: str, dim_where: str | None) -> bool:
    """Both written: the command line beats a file; otherwise the dimension, asked for in the
    same place as the value, wins (and the launch says how to pin the value instead)."""
    if dim_where is None:
        return False
    return not (key_where == CLI and dim_where != CLI)


def _set_by(target: str, keys: Mapping[str, str]) -> tuple[str, str] | None:
    """The user's key that fixes `target` (itself, or a parent: ``optimizer.betas`` fixes
    ``optimizer.betas.0``; a group choice such as ``schedule`` fixes only the choice, not the
    keys of the chosen option), with where it was set."""
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in keys and (i == len(parts) or key not in TRAINER_SECTIONS):
            return key, keys[key]
    return None


def _sweep_files(sweep: str, user: Path | None) -> Iterable[tuple[Path, Mapping[str, Any]]]:
    """The chosen sweep file and the sweep files its defaults list names, each once."""
    from omegaconf import OmegaConf

    todo, seen = [sweep], set()
    while todo:
        name = todo.pop()
        path = _find(name, user)
        if path is None or path in seen:
            continue
        seen.add(path)
        loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        if not isinstance(loaded, dict):
            continue
        data = {str(k): v for k, v in loaded.items()}
        yield path, data
        todo += [d for d in data.get("defaults") or [] if isinstance(d, str) and d != "_self_"]


def _find(name: str, user: Path | None) -> Path | None:
    for root in ([user] if user is not None else []) + [Path(conf_dir())]:
        path = root / "sweep" / f"{name}.yaml"
        if path.is_file():
            return path
    return None


def _group_choices(defaults: Sequence[Any]) -> list[str]:
    """``override /schedule: cosine`` in a defaults list chooses the `schedule` option."""
    out = []
    for entry in defaults:
        if isinstance(entry, Mapping):
            for key in entry:
                group = str(key).removeprefix("override").strip().lstrip("/")
                if group in TRAINER_SECTIONS:
                    out.append(group)
    return out


def _where(path: Path, user: Path | None) -> str:
    if user is not None and path.is_relative_to(user):
        return f"{path.relative_to(user.parent)}"
    return f"the bundled sweep/{path.name}"
