"""The suite's own test order (tests/ordering.py): the longest tests first, longest first,
then the other slow ones, then the rest, nothing lost."""

from __future__ import annotations

from pathlib import Path

from .ordering import longest_listed, ordered


def test_the_longest_first_then_the_slow_then_the_rest() -> None:
    items = list(range(10))
    order = ordered(items, {7: 0, 2: 1}, slow={5, 1})
    assert order == [7, 2, 1, 5, 0, 3, 4, 6, 8, 9]
    assert sorted(order) == items


def test_the_listed_tests_exist() -> None:
    """A renamed test would silently drop out of the list."""
    root = Path(__file__).resolve().parents[1]
    listed = longest_listed()
    assert len(listed) >= 10
    for nodeid in listed:
        path, _, name = nodeid.partition("::")
        assert (root / path).is_file(), nodeid
        assert f"def {name.split('[')[0]}(" in (root / path).read_text(), nodeid
