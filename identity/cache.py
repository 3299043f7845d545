"""The one cache idiom of the pack: a bounded, thread-safe map with an owner that can clear it.

Every cache hangs off the object whose lifetime it shares (an engine's re-embedded profiles, an adapter's ID
tokens, a store's loaded profiles, the process's loaded engines), so a test makes a fresh owner instead of
reaching into a module, and nothing grows without bound in a long-running ComfyUI.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class BoundedCache(Generic[V]):
    """At most `size` entries, least recently used dropped first; `on_drop` releases what a dropped entry holds."""

    def __init__(self, size: int, on_drop: Callable[[V], None] | None = None):
        if size < 1:
            raise ValueError("a cache holds at least one entry")
        self.size = size
        self._entries: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()
        self._making: dict[Hashable, threading.Lock] = {}  # a lock per key being made
        self._on_drop = on_drop

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            if key not in self._entries:
                return None
            self._entries.move_to_end(key)
            return self._entries[key]

    def put(self, key: Hashable, value: V) -> V:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            dropped = [self._entries.popitem(last=False)[1] for _ in range(len(self._entries) - self.size)]
        self._drop(dropped)
        return value

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        """The cached value, or `make()`'s. One make per key at a time: a second caller for the same key waits
        for the first's value (an engine is never loaded twice), and a slow make never blocks other keys."""
        found = self.get(key)
        if found is not None:
            return found
        with self._lock:
            making = self._making.setdefault(key, threading.Lock())
        try:
            with making:
                found = self.get(key)
                return found if found is not None else self.put(key, make())
        finally:
            with self._lock:
                self._making.pop(key, None)

    def pop(self, key: Hashable) -> None:
        with self._lock:
            value = self._entries.pop(key, None)
        self._drop([] if value is None else [value])

    def clear(self) -> None:
        with self._lock:
            dropped = list(self._entries.values())
            self._entries.clear()
        self._drop(dropped)

    def _drop(self, values: list[V]) -> None:
        if self._on_drop is not None:
            for value in values:
                self._on_drop(value)
