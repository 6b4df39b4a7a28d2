"""API keys the server may use while it runs: in process memory only, found by their hash.

The ledger stores which key a task belongs to as a hash (:func:`studio.config.key_ref`), never the
key. The tracker finds the key itself here: the deployment's key is added at start-up, and a key
a user typed on Settings is added for as long as this server process runs, so that session's
tasks keep being tracked after the tab closes. After a restart such tasks wait (parked, marked
as waiting for their key) until someone enters that key again.
"""

from __future__ import annotations

import threading

from .config import key_ref

__all__ = ["KeyRing"]


class KeyRing:
    """Keys by their ledger name; thread-safe; never logged, never written anywhere."""

    def __init__(self) -> None:
        self._keys: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, api_key: str) -> tuple[str, bool]:
        """Keep ``api_key``; returns its ledger name and whether it is new to this process."""
        ref = key_ref(api_key)
        with self._lock:
            new = ref not in self._keys
            self._keys[ref] = api_key
        return ref, new

    def get(self, ref: str | None) -> str | None:
        """The key with this ledger name, if this process has it."""
        if ref is None:
            return None
        with self._lock:
            return self._keys.get(ref)

    def __contains__(self, ref: object) -> bool:
        with self._lock:
            return ref in self._keys

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing({len(self)} key(s), hidden)"
