"""A name -> record registry whose lookups fail with the list of valid names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from trainer.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps config names (e.g. ``optimizer.name``) to records."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T) -> T:
        if name in self._items:
            raise ValueError(f"{self.key}: {name!r} registered twice")
        self._items[name] = item
        return item

    def get(self, name: object) -> T:
        """The record of `name`: any value a config may hold, so a wrong one (None, a number)
        fails with the allowed names too."""
        if isinstance(name, str) and name in self._items:
            return self._items[name]
        raise ConfigError(self.key, name, "unknown; allowed: " + ", ".join(self.names()))

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
