"""Process-wide objects (the demo emulator, API clients) kept outside Streamlit's caches.

``st.cache_resource`` can be emptied by any connected browser: the "clear cache" message needs
no password, and emptying it used to rebuild the demo emulator under signed-in users, whose
tasks then read as unknown. What must outlive such a message lives here instead, keyed by its
configuration, built once per key and closed when evicted or cleared.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry:
    """A small, thread-safe, least-recently-used map from keys to built objects."""

    def __init__(self, max_entries: int = 16) -> None:
        self._max = max_entries
        self._items: OrderedDict[Hashable, tuple[Any, Callable[[Any], None] | None]] = OrderedDict()
        self._building: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], T], close: Callable[[T], None] | None = None) -> T:
        """The object for ``key``, built by ``build()`` the first time (once, even when raced)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
            building = self._building.setdefault(key, threading.Lock())
        with building:  # one builder per key; others wait for its object
            with self._lock:
                if key in self._items:
                    return self._items[key][0]
            value = build()
            with self._lock:
                self._items[key] = (value, close)
                self._building.pop(key, None)
                evicted = []
                while len(self._items) > self._max:
                    evicted.append(self._items.popitem(last=False)[1])
        for old, old_close in evicted:
            if old_close is not None:
                old_close(old)
        return value

    def clear(self) -> None:
        """Close and forget everything (tests, shutdown)."""
        with self._lock:
            items = list(self._items.values())
            self._items.clear()
        for value, close in items:
            if close is not None:
                close(value)
