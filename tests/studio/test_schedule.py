"""The tracker's schedule: few reads, never more than 29 s late, backoff, callback safety net."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from studio.schedule import CALLBACK_FALLBACK, MAX_INTERVAL, Schedule

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def life(schedule: Schedule, finish: float) -> tuple[int, float]:
    """(reads, seconds late) of a task that the provider finishes ``finish`` s after submit."""
    t = schedule.first_check(T0)
    reads = 0
    while True:
        reads += 1
        age = (t - T0).total_seconds()
        if age >= finish:
            return reads, age - finish
        t = schedule.next_check(T0, t)


@pytest.mark.parametrize("minutes", [1, 2, 5, 15, 20])
def test_live_tasks_cost_fewer_reads_than_a_fixed_10s_poll_and_are_never_30s_late(minutes):
    # Every phase of the slowest interval: tasks finishing anywhere in [D, D + 30 s).
    finishes = [minutes * 60.0 + step * 0.5 for step in range(60)]
    lives = [life(Schedule(), f) for f in finishes]
    fixed = [math.ceil(f / 10) + 1 for f in finishes]  # a fixed poll reads at 0, 10, 20, ... until past the finish
    reads = sum(r for r, _ in lives) / len(lives)
    assert reads <= sum(fixed) / len(fixed)
    assert max(late for _, late in lives) <= MAX_INTERVAL < 30
    if minutes >= 15:
        # Long tasks approach one read per 29 s: about a third of a fixed 10 s poll.
        assert reads <= 0.35 * sum(fixed) / len(fixed)


def test_demo_tasks_are_known_within_seconds():
    reads, late = life(Schedule(lo=2.0), 5.0)
    assert late <= 4.0 and reads <= 3


def test_failures_back_off_and_callbacks_slow_to_a_safety_net():
    s = Schedule()
    assert s.interval(600, failures=1) > s.interval(600)
    assert s.interval(600, failures=20) <= 240
    assert s.interval(0, callback=True) == CALLBACK_FALLBACK


def test_bounds_are_sane():
    s = Schedule(lo=0.1, hi=0.0)
    assert s.lo == 0.5 and s.hi == 0.5
