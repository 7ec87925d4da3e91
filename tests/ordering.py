"""The order the suite's tests are handed to pytest-xdist, so that its longest tests run side
by side from the start instead of one after another at the end.

`--dist worksteal` gives each of its k workers one contiguous share of the collected list
(the first ``n // k`` tests to the first, and so on), runs each share from its head, and lets
an idle worker steal from the *tail* of the busiest one. A list sorted longest-first would
put every long test in the first worker's share, where nothing steals them: the others run
short tests while it runs the long ones in a row. So the list is built as k shares of the
scheduler's sizes, each headed by its turn of the longest tests (`tests/longest.txt`, longest
first, dealt round-robin), then its turn of the other slow-marked tests, then short ones:
steals take short tests, and the long ones start at once on every worker.
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


def share_sizes(n: int, workers: int) -> list[int]:
    """How many tests worksteal hands each idle worker at the start (xdist's own sum)."""
    sizes, left = [], n
    for i in range(workers):
        sizes.append(left // (workers - i))
        left -= sizes[-1]
    return sizes


def dealt(items: Sequence[T], workers: int, rank: dict[T, int], slow: set[T]) -> list[T]:
    """`items` reordered into the workers' shares (see the module's docstring); with one
    worker, the longest first, then the slow ones, then the rest, each in collection order."""
    longest = sorted((i for i in items if i in rank), key=lambda i: rank[i])
    rest_slow = [i for i in items if i not in rank and i in slow]
    short = [i for i in items if i not in rank and i not in slow]
    if workers <= 1:
        return [*longest, *rest_slow, *short]
    shares: list[list[T]] = [[] for _ in range(workers)]
    for turn, item in enumerate([*longest, *rest_slow]):
        shares[turn % workers].append(item)
    sizes = share_sizes(len(items), workers)
    queue = iter(short)
    for share, size in zip(shares, sizes, strict=True):
        share.extend(item for _, item in zip(range(size - len(share)), queue, strict=False))
    shares[-1].extend(queue)  # where the slow tests overfilled a share, the sizes shift
    return [item for share in shares for item in share]
