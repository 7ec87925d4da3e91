"""The suite's own test order (tests/ordering.py): every xdist worker's share starts with its
turn of the longest tests, and the shares have the sizes worksteal hands out."""

from __future__ import annotations

from pathlib import Path

from .ordering import dealt, longest_listed, share_sizes


def test_share_sizes_are_xdists() -> None:
    assert share_sizes(20, 2) == [10, 10]
    assert share_sizes(21, 2) == [10, 11]
    assert share_sizes(10, 3) == [3, 3, 4]
    assert sum(share_sizes(907, 2)) == 907


def test_each_share_starts_with_its_turn_of_the_longest_then_the_slow() -> None:
    items = list(range(20))
    rank = {11: 0, 5: 1, 17: 2, 2: 3}  # 11 is the longest
    order = dealt(items, 2, rank, slow={1, 9})
    assert sorted(order) == items  # a permutation: nothing lost, nothing twice
    first, second = order[:10], order[10:]
    assert first[:3] == [11, 17, 1] and second[:3] == [5, 2, 9]
    # the short tests keep their collection order within each share
    assert [i for i in first if i not in (11, 17, 1)] == sorted(i for i in first if i not in (11, 17, 1))


def test_one_worker_runs_the_longest_first() -> None:
    assert dealt([1, 2, 3, 4], 1, {3: 0}, slow={4}) == [3, 4, 1, 2]


def test_more_slow_tests_than_a_share_holds_lose_nothing() -> None:
    order = dealt(list(range(5)), 2, {0: 0, 1: 1, 2: 2, 3: 3}, slow={4})
    assert sorted(order) == list(range(5)) and order[:1] == [0]


def test_the_listed_tests_exist() -> None:
    """A renamed test would silently drop out of the list."""
    root = Path(__file__).resolve().parents[1]
    for nodeid in longest_listed():
        path, _, name = nodeid.partition("::")
        assert (root / path).is_file(), nodeid
        assert f"def {name.split('[')[0]}(" in (root / path).read_text(), nodeid
