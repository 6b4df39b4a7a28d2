"""When the tracker reads a task again: soon after it starts, then every half minute at most.

A task is read first ``lo`` seconds after it was submitted; after that the gap grows with the
task's age (``age * growth``) up to ``hi``. With the live defaults (20 s, 29 s) a task that takes
minutes costs about a third of the reads of a fixed 10-second poll (0.35x for 15-minute tasks;
the provider's tasks take 2-20 minutes, so an earlier first read mostly buys nothing), and the
tracker learns that it finished at most 29 seconds after the provider did: the provider advises
one read per 30 s, and a second is left for the read itself and an open page's own refresh. Demo
tasks finish in seconds, so demo mode starts at 2 s.

A read that failed backs off (doubling per consecutive failure, up to a few minutes: a provider
that is down is not helped by being asked more). A task whose outcome will also arrive by
callback is read on a slow schedule only, in case the callback never comes.
"""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = [
    "CALLBACK_FALLBACK",
    "DEMO_MIN",
    "LIVE_MIN",
    "MAX_INTERVAL",
    "Schedule",
]

LIVE_MIN = 20.0
"""Seconds to the first read of a live task (the provider takes minutes)."""
DEMO_MIN = 2.0
"""Seconds to the first read of a demo task (the emulator takes seconds)."""
MAX_INTERVAL = 29.0
"""Longest gap between reads: the provider's advised 30 s, less a second for the read itself."""
CALLBACK_FALLBACK = 600.0
"""Gap between reads of a task whose outcome a callback will bring: a safety net only (a 15-minute
task then costs two reads: one at 10 minutes, one when its callback arrives)."""
_GROWTH = 3.0
_MAX_BACKOFF = 240.0


class Schedule:
    """The tracker's reading schedule (pure: times in, times out)."""

    def __init__(self, lo: float = LIVE_MIN, hi: float = MAX_INTERVAL, *, growth: float = _GROWTH) -> None:
        self.lo = max(0.5, float(lo))
        self.hi = max(self.lo, float(hi))
        self.growth = growth

    def interval(self, age: float, *, failures: int = 0, callback: bool = False) -> float:
        """Seconds from a read of a task ``age`` seconds old to its next read."""
        gap = min(self.hi, max(self.lo, age * self.growth))
        if failures:
            gap = min(max(_MAX_BACKOFF, self.hi), gap * 2 ** min(failures, 8))
        if callback:
            gap = max(gap, CALLBACK_FALLBACK)
        return gap

    def first_check(self, submitted_at: datetime) -> datetime:
        """When to read a task that was just submitted (or added)."""
        return submitted_at + timedelta(seconds=self.lo)

    def next_check(
        self, submitted_at: datetime, now: datetime, *, failures: int = 0, callback: bool = False
    ) -> datetime:
        """When to read a task again after reading it ``now``."""
        age = max(0.0, (now - submitted_at).total_seconds())
        return now + timedelta(seconds=self.interval(age, failures=failures, callback=callback))
