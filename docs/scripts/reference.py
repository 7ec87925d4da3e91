"""The reference pages, made from the code: the CLI from the typer app, every config key
from the key specs that validation uses (`trainer.config.spec.Param` tables) with the bundled
files' values as defaults, and the exit codes from `sweeps.cli.app.EXIT_CODES`.

`gen_pages.py` writes them into the site at build time (mkdocs-gen-files); the tests call
the same functions, so the pages cannot drift from what the code accepts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"
GROUPS = ("dataset", "model", "optimizer", "schedule")


def value(v: Any) -> str:
    """A config value as YAML writes it, in code format."""
    if v is None:
        text = "null"
    elif isinstance(v, bool):
        text = "true" if v else "false"
    elif isinstance(v, list | tuple):
        text = "[" + ", ".join(value(x).strip("`") for x in v) + "]"
    elif isinstance(v, Mapping):
        text = "{" + ", ".join(f"{k}: {value(x).strip('`')}" for k, x in v.items()) + "}"
    else:
        text = str(v)
    return f"`{text}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(rows: Iterator[tuple[str, Any, Any, bool]] | list[tuple[str, Any, Any, bool]]) -> str:
    """key | allowed | default | meaning, one row per (key, Param, default, has_default)."""
    lines = ["| key | allowed | default | meaning |", "|---|---|---|---|"]
    for key, param, default, has_default in rows:
        shown = value(default) if has_default else "-"
        lines.append(f"| `{key}` | {_cell(param.describe())} | {_cell(shown)} | {_cell(param.doc)} |")
    return "\n".join(lines) + "\n"


def option_file(group: str, option: str) -> dict[str, Any]:
    data = yaml.safe_load((CONF / group / f"{option}.yaml").read_text()) or {}
    return {k: v for k, v in data.items() if k != "defaults"}


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def first_comment(path: Path) -> str:
    """A bundled file's own description: its leading comment lines."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        if not line.startswith("# @package"):
            lines.append(line.lstrip("# ").rstrip())
    return " ".join(lines)


def config_reference() -> str:
    """Every key of every group, with what it may hold, its bundled default and meaning."""
    parts = [_INTRO, _trainer(), _dataset(), _model(), _optimizer(), _schedule(), _sweep(),
             _search(), _stores(), _launcher()]
    return "\n".join(parts)


_INTRO = """# Configuration keys

Every key below is checked when the config is loaded, before any data is touched or anything
is written: an unknown key, an unknown option or a value out of range stops the command with
one line naming the key and what is allowed (exit 2). This page is generated from the same
tables the checks use.

Set a key on the command line (`sweeps launch trainer.epochs=10`, `python -m trainer
optimizer.lr=0.01`), in a sweep file of your config dir, or pick another option of a group
(`optimizer=nesterov`, `schedule=cosine`). *Default* is the value in the bundled file.
"""


def _trainer() -> str:
    from trainer.validation import TRAINER_PARAMS

    base = yaml.safe_load((CONF / "config.yaml").read_text())["trainer"]
    rows = [(f"trainer.{k}", p, base.get(k), k in base) for k, p in TRAINER_PARAMS.items()]
    return "## trainer\n\nOne training run: `python -m trainer trainer.KEY=VALUE`.\n\n" + table(rows)


def _dataset() -> str:
    from trainer.config.dataset_keys import BUNDLED_ARGS, DATASET_DEFAULTS, DATASET_PARAMS, LOADER_PARAMS

    out = ["## dataset\n",
           "A dataset file names a callable (`_target_`) and its arguments; the keys below are the "
           "trainer's own, optional in a file of yours (the default applies). Every other key is an "
           "argument of the callable.\n",
           table((f"dataset.{k}", p, DATASET_DEFAULTS[k], True) for k, p in DATASET_PARAMS.items()
                 if k != "loader"),
           "### dataset.loader\n",
           "For a split that is a `torch.utils.data.Dataset` (the DataLoader path).\n",
           table((f"dataset.loader.{k}", p, DATASET_DEFAULTS["loader"][k], True)
                 for k, p in LOADER_PARAMS.items()),
           "### Bundled datasets\n"]
    for option in options("dataset"):
        data = option_file("dataset", option)
        out.append(f"#### `dataset={option}`\n\n{first_comment(CONF / 'dataset' / f'{option}.yaml')}"
                   f" Calls `{data['_target_']}`.\n")
        rows = [(f"dataset.{k}", DATASET_PARAMS.get(k) or BUNDLED_ARGS[k], v, True)
                for k, v in data.items() if k not in ("_target_", "name")]
        out.append(table(rows))
    return "\n".join(out)


def _options_of(group: str, intro: str,
                describe: Callable[[str, dict[str, Any]], tuple[str, Mapping[str, Any]]]) -> str:
    """A group's section: per bundled option, its description and its keys' table.
    `describe(option, file)` gives the option's sentence and its key table."""
    out = [f"## {group}\n", intro]
    for option in options(group):
        data = option_file(group, option)
        text, params = describe(option, data)
        out.append(f"### `{group}={option}`\n\n{text}\n")
        out.append(table((f"{group}.{k}", p, data.get(k), k in data) for k, p in params.items()))
    return "\n".join(out)


def _model() -> str:
    from trainer.models import BUNDLED

    return _options_of(
        "model", "A bundled model, or your own `_target_` (its keyword arguments are its keys; the "
        "trainer passes `in_shape` and `num_outputs` where the signature takes them).\n",
        lambda option, data: (f"{first_comment(CONF / 'model' / f'{option}.yaml')} "
                              f"Calls `{data['_target_']}`.", BUNDLED[data["_target_"]]))


def _optimizer() -> str:
    from trainer.optim.factory import OPTIMIZERS

    def describe(option: str, data: dict[str, Any]) -> tuple[str, Mapping[str, Any]]:
        info = OPTIMIZERS.get(option)
        pinned = ", ".join(f"`{k}={value(v).strip('`')}`" for k, v in info.pinned.items())
        return f"{info.doc}: `{info.cls_path}`.{f' Fixed: {pinned}.' if pinned else ''}", info.params

    return _options_of("optimizer", "Every argument of the `torch.optim` class is a key; a key the "
                       "chosen optimizer does not take is an error, not ignored.\n", describe)


def _schedule() -> str:
    from trainer.optim.schedules import SCHEDULES

    def describe(option: str, data: dict[str, Any]) -> tuple[str, Mapping[str, Any]]:
        info = SCHEDULES.get(option)
        return (f"{first_comment(CONF / 'schedule' / f'{option}.yaml')} "
                f"Steps per {'batch' if info.interval == 'step' else 'epoch'}."), info.params

    return _options_of("schedule", "Each schedule also takes a linear warmup (`warmup_epochs`, "
                       "`warmup_start_factor`).\n", describe)


def _sweep() -> str:
    from sweeps.search.spec import PRUNER_PARAMS, SAMPLER_PARAMS, SWEEP_PARAMS

    base = yaml.safe_load((CONF / "sweep" / "base.yaml").read_text())["sweep"]
    out = ["## sweep\n", "The sweep's settings (`conf/sweep/base.yaml`; a sweep file of yours can "
           "start from `base` or `quick`).\n",
           table((f"sweep.{k}", p, base.get(k), k in base) for k, p in SWEEP_PARAMS.items()
                 if k not in ("sampler", "pruner")),
           "### sweep.sampler\n",
           table((f"sweep.sampler.{k}", p, base["sampler"].get(k), k in base["sampler"])
                 for k, p in SAMPLER_PARAMS.items()),
           "### sweep.pruner\n",
           table((f"sweep.pruner.{k}", p, base["pruner"].get(k), k in base["pruner"])
                 for k, p in PRUNER_PARAMS.items()),
           "### Bundled sweeps\n", "| `sweep=` | what it is |", "|---|---|"]
    for option in options("sweep"):
        out.append(f"| `{option}` | {_cell(first_comment(CONF / 'sweep' / f'{option}.yaml'))} |")
    return "\n".join(out) + "\n"


def _search() -> str:
    from sweeps.search.space import DIMENSION_FIELDS

    out = ["## search\n", "One search space per optimizer (`search.OPTIMIZER.DIM`) plus "
           "`search.common` (every optimizer's study shares it). A dimension's fields:\n",
           table((k, p, None, False) for k, p in DIMENSION_FIELDS.items()),
           "Change a range on the command line (`search.adam.lr.high=0.01`), turn a dimension "
           "off (`search.common.batch_size=null`), or set its key to a value: a key you set is "
           "not searched.\n", "### Bundled search spaces\n"]
    for option in ["common", *[o for o in options("search") if o != "common"]]:
        dims = yaml.safe_load((CONF / "search" / f"{option}.yaml").read_text()) or {}
        out.append(f"#### `search.{option}`\n")
        out.append("| dimension | sets | values | when |\n|---|---|---|---|")
        for name, dim in dims.items():
            out.append(f"| `{name}` | `{dim.get('key')}` | {_cell(_range(dim))} | "
                       f"{_cell(value(dim['when']) if dim.get('when') else '-')} |")
        out.append("")
    return "\n".join(out)


def _range(dim: Mapping[str, Any]) -> str:
    if dim["type"] == "categorical":
        return "one of " + value(dim["choices"])
    text = f"{dim['type']} in [{dim['low']:g}, {dim['high']:g}]"
    if dim.get("log"):
        text += ", log scale"
    if dim.get("transform") == "one_minus":
        text += " (the key gets 1 - the value)"
    return text


def _stores() -> str:
    from sweeps.search.spec import STORAGE_PARAMS, TRACKING_PARAMS

    out = ["## storage\n", "Where the Optuna studies live: `storage=embedded` (a journal file, "
           "the default) or `storage=postgres`.\n"]
    for option in options("storage"):
        data = option_file("storage", option)
        out += [f"### `storage={option}`\n",
                table((f"storage.{k}", p, data[k], True) for k, p in STORAGE_PARAMS.items()
                      if k in data)]
    out.append("## tracking\n\nWhere MLflow records go: `tracking=embedded` (MLflow's `mlflow.db` "
               "in the launch directory) or `tracking=server` (an `mlflow server`).\n")
    for option in options("tracking"):
        data = option_file("tracking", option)
        out += [f"### `tracking={option}`\n",
                table((f"tracking.{k}", p, data[k], True) for k, p in TRACKING_PARAMS.items()
                      if k in data)]
    return "\n".join(out)


def _launcher() -> str:
    from sweeps.search.launcher import SLURM_PARAMS

    data = option_file("launcher", "slurm")
    return "\n".join([
        "## launcher\n", "Where a launch runs its workers: `launcher=local` (processes on this "
        "machine, `sweep.workers` of them; no other keys) or `launcher=slurm`.\n",
        "### `launcher=slurm`\n", first_comment(CONF / "launcher" / "slurm.yaml") + "\n",
        table((f"launcher.{k}", p, data.get(k), k in data) for k, p in SLURM_PARAMS.items())])


def cli_reference() -> str:
    """Every command and option, from the typer app (typer's own Markdown generator)."""
    import typer
    from typer.cli import MARKUP_MODE_KEY, get_docs_for_click

    from sweeps.cli import app

    command = typer.main.get_command(app)
    ctx = typer.Context(command, info_name="sweeps")
    ctx.obj = {MARKUP_MODE_KEY: app.rich_markup_mode}
    body = get_docs_for_click(obj=command, ctx=ctx, name="sweeps", title="Command line: `sweeps`")
    intro = ("Generated from the `sweeps` command itself (`sweeps COMMAND --help` prints the same). "
             "Every command takes trailing Hydra overrides of the sweep config; a bare word is the "
             "sweep name. `--config-dir DIR` may stand anywhere on the line. The Python training "
             "entry point is `python -m trainer KEY=VALUE ...`: its keys are in "
             "[Configuration keys](config.md).\n\n")
    title, _, rest = body.partition("\n\n")
    # the commands' list: each a link to its section, with its whole first sentence
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        first = " ".join((sub.help or "").split("\n\n")[0].split()).split(". ")[0].rstrip(".")
        rest = re.sub(rf"^\* `{name}`: .*$", f"* [`sweeps {name}`](#sweeps-{name}): {first}.", rest,
                      count=1, flags=re.M)
    return f"{title}\n\n{intro}{rest.strip()}\n"


def exit_codes() -> str:
    from sweeps.cli.app import EXIT_CODES

    rows = "\n".join(f"| `{code}` | {_cell(text)} |" for code, text in EXIT_CODES.items())
    return ("# Exit codes\n\nEvery `sweeps` command ends with one of these statuses, so that scripts "
            "and schedulers can act on it. `python -m trainer` uses 0, 1, 2 and 130 the same way.\n\n"
            "| status | meaning |\n|---|---|\n" + rows + "\n")


PAGES = {"reference/cli.md": cli_reference, "reference/config.md": config_reference,
         "reference/exit-codes.md": exit_codes}


if __name__ == "__main__":  # `python docs/scripts/reference.py`: write the pages into docs/
    for page, make in PAGES.items():
        (ROOT / "docs" / page).write_text(make())
        print(f"wrote docs/{page}")
