"""Figure 2, polling cost: status calls over a task's life, and how late the dashboard learns it is done.

Method (simulated clock, no network). One task is submitted at t = 0 and becomes final at
t = D + u, for D = 1, 2, 5 and 15 minutes and u swept over [0, 30) s in 0.1 s steps (every phase
of the slowest interval). The server's tracker is modelled the way studio/tracker.py runs it: it
reads the task at ``Schedule.first_check`` and then at each ``Schedule.next_check`` (the live
defaults, 10-29 s), waking at the due time. Delay = when the ledger knows - when the task
finished; an open Jobs page shows the ledger within its own refresh (1 s while tasks run). The
baseline is a fixed 10 s poll (the provider quickstart's) reading at t = 0, 10, 20, ...
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime

from studio.schedule import Schedule

from .common import Options, Result

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FIXED_POLL = 10.0
PAGE_REFRESH = 1.0
# A bound on the simulated reads of one task's life (a 15-minute task needs about 32).
MAX_READS = 10_000


@dataclass(frozen=True)
class Life:
    calls: int
    """Status reads sent until the tracker knew the task was final."""
    delay: float
    """Seconds between the task finishing and the ledger knowing."""


def tracker_life(finish: float, schedule: Schedule | None = None) -> Life:
    """One task's life under the tracker's schedule."""
    schedule = schedule or Schedule()
    t = schedule.first_check(T0)
    for calls in range(1, MAX_READS + 1):
        age = (t - T0).total_seconds()
        if age >= finish:
            return Life(calls, age - finish)
        t = schedule.next_check(T0, t)
    raise RuntimeError("the simulated tracker never learnt that the task finished")


def fixed_life(finish: float, every: float = FIXED_POLL) -> Life:
    """The same task polled every ``every`` seconds from t = 0."""
    reads = math.ceil(finish / every - 1e-9)
    known = reads * every
    return Life(reads + 1, known - finish)


def sweep(minutes: float, step: float = 0.1, span: float = 30.0) -> dict[str, dict[str, float]]:
    finishes = [minutes * 60 + i * step for i in range(int(round(span / step)))]
    out = {}
    for name, life in (("tracker", tracker_life), ("fixed_10s", fixed_life)):
        lives = [life(f) for f in finishes]
        out[name] = {
            "calls_mean": statistics.fmean(x.calls for x in lives),
            "calls_max": max(x.calls for x in lives),
            "delay_mean": statistics.fmean(x.delay for x in lives),
            "delay_worst": max(x.delay for x in lives),
        }
    return out


def run(options: Options) -> Result:
    result = Result("polling", "Polling cost over a task's life (the server's tracker vs fixed 10 s)")
    minutes = [1, 5] if options.quick or options.tiny else [1, 2, 5, 15]
    step = 1.0 if options.tiny else 0.5 if options.quick else 0.1
    result.notes.append(
        "Simulated clock driving studio.schedule.Schedule (live defaults 20-29 s) as the tracker uses it; "
        f"finish times swept over [D, D+30 s) in {step} s steps; the fixed poll reads at t=0, 10, 20, ..."
    )
    for m in minutes:
        data = sweep(m, step=step)
        result.raw[f"{m}min"] = data
        ours, fixed = data["tracker"], data["fixed_10s"]
        result.add(f"{m} min task: calls, tracker / fixed 10 s", ours["calls_mean"] / fixed["calls_mean"], "x",
                   f"{ours['calls_mean']:.1f} vs {fixed['calls_mean']:.1f} status calls per task",
                   ok=None if options.tiny else ours["calls_mean"] <= fixed["calls_mean"])
        result.add(f"{m} min task: mean delay to know", ours["delay_mean"], "s",
                   f"fixed 10 s: {fixed['delay_mean']:.1f} s")
        result.add(f"{m} min task: worst delay to know", ours["delay_worst"], "s",
                   f"fixed 10 s: {fixed['delay_worst']:.1f} s; an open page shows it within {PAGE_REFRESH:g} s more",
                   ok=None if options.tiny else ours["delay_worst"] + PAGE_REFRESH <= 30.0)
    return result
