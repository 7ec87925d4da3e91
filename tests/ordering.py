"""The order the suite's tests are handed to pytest-xdist: the longest first, then the other
slow-marked ones, then the rest (each group in collection order).

`--dist worksteal` gives each of its k workers one contiguous share of the list and lets an
idle worker steal from the *tail* of the busiest one. So the longest tests (from
`tests/longest.txt`) land in the first worker's share and start at once, beside the other
worker's short in-process tests, and the other worker takes over the first one's tail once
its own share is done. The longest tests still left at the end run one after another on
the first worker: on 2 cores the suite's end is its weak spot (see CHANGELOG.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

LISTED = Path(__file__).with_name("longest.txt")

T = TypeVar("T")


def longest_listed(path: Path = LISTED) -> dict[str, int]:
    """Node id -> rank in the list of longest tests (0 = the longest)."""
    names = [n.strip() for n in path.read_text().splitlines()]
    return {name: i for i, name in enumerate(n for n in names if n and not n.startswith("#"))}


def ordered(items: Sequence[T], rank: dict[T, int], slow: set[T]) -> list[T]:
    """The longest first (by rank), then the other slow ones, then the rest."""
    longest = sorted((i for i in items if i in rank), key=lambda i: rank[i])
    rest_slow = [i for i in items if i not in rank and i in slow]
    short = [i for i in items if i not in rank and i not in slow]
    return [*longest, *rest_slow, *short]
