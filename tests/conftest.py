"""Shared fixtures: composed configs with tiny budgets and output under tmp_path."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import settings

# The suite's own processes train too: their OpenMP threads sleep while they wait, as the
# commands' do (trainer.startup.passive_openmp_waits), set before anything imports torch.
# With two test processes on two cores, spinning threads would hold cores the other needs.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from omegaconf import DictConfig

from trainer.validation import load_config

from .servers import mlflow_server as start_mlflow_server

# Property tests: the same examples on every run (a red CI is reproducible, never a draw),
# no per-example deadline (a first call imports scipy), no example database written.
settings.register_profile("sweeps", derandomize=True, deadline=None, database=None,
                          print_blob=True)
# `make mutate` runs the selected tests once per mutant: fewer examples each
settings.register_profile("mutate", parent=settings.get_profile("sweeps"), max_examples=15)
settings.load_profile(os.environ.get("SWEEPS_HYPOTHESIS_PROFILE", "sweeps"))
# A benchmark a test runs writes its result file here, never over benchmarks/results/
os.environ.setdefault("SWEEPS_BENCH_RESULTS", os.path.join(
    os.environ.get("TMPDIR", "/tmp"), f"sweeps-bench-results-{os.getpid()}"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest and the slow tests first. Under `make mutate`
    (mutmut sets MUTANT_UNDER_TEST), a mutant's tests quickest first, by the durations
    mutmut measured: with `-x` a mutant then dies at its cheapest failing test instead of
    after an 8 s end-to-end one. The verdicts are the same."""
    if not os.environ.get("MUTANT_UNDER_TEST"):
        # the longest tests (tests/longest.txt), then the other slow ones, then the rest
        # (tests/ordering.py says why this order suits xdist's worksteal)
        from .ordering import longest_listed, ordered

        rank = longest_listed()
        by_id = {item.nodeid: item for item in items}
        items[:] = ordered(items, {by_id[n]: r for n, r in rank.items() if n in by_id},
                           {item for item in items if item.get_closest_marker("slow")})
        return
    if len(items) < 2:
        return
    import json

    stats = Path("mutmut-stats.json")  # mutmut runs the tests from mutants/, beside it
    if not stats.is_file():
        return
    durations = json.loads(stats.read_text()).get("duration_by_test", {})
    items.sort(key=lambda item: durations.get(item.nodeid, 0.0))


TINY = [
    "dataset=mnist_5k",
    "dataset.val_size=300",
    "model=mlp",
    "model.width=32",
    "trainer.epochs=2",
    "trainer.batch_size=256",
    "trainer.progress=false",
    "trainer.threads=1",
    "trainer.checkpoint=never",
]


@pytest.fixture(autouse=True)
def _no_config_dir_through_the_environment() -> Iterator[None]:
    """A config dir is passed as an argument past the command line, never written to
    `SWEEPS_CONFIG_DIR` for later code (or the next test) to find: every test checks that."""
    import os

    before = os.environ.get("SWEEPS_CONFIG_DIR")
    yield
    assert os.environ.get("SWEEPS_CONFIG_DIR") == before, "the config dir went into the environment"


@pytest.fixture
def tiny_cfg(tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose a validated tiny config; extra overrides win."""

    def make(*overrides: str, extra: Sequence[str] = ()) -> DictConfig:
        return load_config([*TINY, f"trainer.output_dir={tmp_path / 'run'}", *overrides, *extra])

    return make


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One `mlflow server` per test process (it takes ~20 s to start), shared by the slow
    tests; each uses its own experiment (sweep) name. Its store is on PostgreSQL, in a
    database made by the script docker-compose.yml runs, as in the compose file; SQLite
    where no PostgreSQL is reachable (the tests that need PostgreSQL say so themselves)."""
    import contextlib

    from .servers import mlflow_database, postgres_url_reachable

    with contextlib.ExitStack() as stack:
        admin = postgres_url_reachable()
        store = stack.enter_context(mlflow_database(admin)) if admin else None
        yield stack.enter_context(start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"), store))
