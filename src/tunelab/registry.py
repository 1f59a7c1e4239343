"""Name -> entry registries for tasks and methods (PEFT's register_peft_method, in small)."""

from collections.abc import Callable
from typing import Generic, TypeVar

from tunelab.errors import TunelabError

T = TypeVar("T")


class Registry(Generic[T]):
    """Entries registered by name; unknown names get a one-line error listing the known ones."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' registered twice")
            self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise TunelabError(f"unknown {self.kind} '{name}'; known: {', '.join(self.names())}")
        return self._entries[name]

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return sorted(self._entries)

    def values(self) -> list[T]:
        return [self._entries[n] for n in self.names()]
