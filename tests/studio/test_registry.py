"""The process registry that replaces st.cache_resource for what must survive a cache clear."""

from __future__ import annotations

import threading

from studio.registry import Registry


def test_builds_once_per_key_even_when_raced():
    built = []
    gate = threading.Event()

    def build():
        gate.wait(1)
        built.append(1)
        return object()

    registry = Registry()
    results = []
    threads = [threading.Thread(target=lambda: results.append(registry.get("k", build))) for _ in range(8)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert len(built) == 1 and len({id(r) for r in results}) == 1


def test_evicts_least_recently_used_and_closes_it():
    closed = []
    registry = Registry(max_entries=2)
    registry.get("a", lambda: "A", closed.append)
    registry.get("b", lambda: "B", closed.append)
    registry.get("a", lambda: "A2", closed.append)  # touch a
    registry.get("c", lambda: "C", closed.append)
    assert closed == ["B"]
    registry.clear()
    assert sorted(closed) == ["A", "B", "C"]
