"""Figure 2, polling cost: status calls over a task's life, and how late the jobs page learns it is done.

Method (simulated clock, no network). One task is submitted at t = 0 and becomes final at
t = D + u, for D = 1, 5 and 15 minutes and u swept over [0, 30) s in 0.1 s steps (every phase of
the slowest 30 s interval). The jobs page is modelled the way pages/jobs.py runs: its fragment
wakes every ``tasks.refresh_interval(...)`` seconds (the timer is re-registered by a full rerun
whenever that value changes), and on each wake it reads exactly the tasks
``tasks.due_task_ids(...)`` returns, folding the answer in with ``tasks.apply_batch``. All three
are the dashboard's own functions from pages/_support/jobs.py, at the default bounds (2-30 s).
The first read happens when the page first renders, at t = 0. The baseline is a fixed 10 s poll
(the provider quickstart's), also reading at t = 0. Delay = when the page knows - when the task
finished. Streamlit's own timer jitter and render time are not modelled.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from luma.models import Task, TaskBatch, TaskStatus
from pages._support import tasks

from .common import Options, Result

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TASK_ID = "0" * 32
FIXED_POLL = 10.0
# A bound on the simulated page wakes of one task's life (a 15-minute task needs about 40).
MAX_WAKES = 10_000


@dataclass(frozen=True)
class Life:
    calls: int
    """Status reads sent until the page knew the task was final."""
    wakes: int
    """Times the page's timer fired (a wake may read nothing when no task is due yet)."""
    delay: float
    """Seconds between the task finishing and the page knowing."""


def _task(status: TaskStatus, finish: float | None) -> Task:
    completed = T0 + timedelta(seconds=finish) if finish is not None else None
    return Task(task_id=TASK_ID, status=status, created_at=T0, completed_at=completed)


def dashboard_life(finish: float, lo: float = tasks.DEFAULT_MIN_INTERVAL, hi: float = tasks.DEFAULT_MAX_INTERVAL) -> Life:
    """One task's life under the jobs page's schedule (its own functions, a simulated clock)."""
    items = {TASK_ID: tasks.TrackedTask(task_id=TASK_ID, added_at=T0)}
    t = 0.0
    calls = 0
    for wakes in range(1, MAX_WAKES + 1):
        now = T0 + timedelta(seconds=t)
        due = tasks.due_task_ids(items.values(), now, lo, hi)
        if due:
            calls += len(due)
            done = t >= finish
            task = _task(TaskStatus.SUCCESS if done else TaskStatus.GENERATING, finish if done else None)
            items = tasks.apply_batch(items, TaskBatch(tasks={TASK_ID: task}), now)
            if done:
                return Life(calls, wakes, t - finish)
        interval = tasks.refresh_interval(items.values(), now, lo, hi)
        if interval is None:
            raise RuntimeError("the page stopped refreshing a task that is not final")
        t += interval
    raise RuntimeError("the simulated page never learnt that the task finished")


def fixed_life(finish: float, every: float = FIXED_POLL) -> Life:
    """The same task polled every ``every`` seconds from t = 0."""
    reads = math.ceil(finish / every - 1e-9)
    known = reads * every
    return Life(reads + 1, reads + 1, known - finish)


def sweep(minutes: float, step: float = 0.1, span: float = 30.0) -> dict[str, dict[str, float]]:
    finishes = [minutes * 60 + i * step for i in range(int(round(span / step)))]
    out = {}
    for name, life in (("dashboard", dashboard_life), ("fixed_10s", fixed_life)):
        lives = [life(f) for f in finishes]
        out[name] = {
            "calls_mean": statistics.fmean(x.calls for x in lives),
            "calls_max": max(x.calls for x in lives),
            "wakes_mean": statistics.fmean(x.wakes for x in lives),
            "delay_mean": statistics.fmean(x.delay for x in lives),
            "delay_worst": max(x.delay for x in lives),
        }
    return out


def run(options: Options) -> Result:
    result = Result("polling", "Polling cost over a task's life (dashboard schedule vs fixed 10 s)")
    minutes = [1, 5] if options.quick or options.tiny else [1, 5, 15]
    step = 1.0 if options.tiny else 0.5 if options.quick else 0.1
    result.notes.append(
        "Simulated clock driving pages/_support/jobs.py (refresh_interval, due_task_ids, apply_batch) at its "
        f"default 2-30 s bounds; finish times swept over [D, D+30 s) in {step} s steps; first read at t=0 for both."
    )
    for m in minutes:
        data = sweep(m, step=step)
        result.raw[f"{m}min"] = data
        ours, fixed = data["dashboard"], data["fixed_10s"]
        result.add(f"{m} min task: calls, dashboard / fixed 10 s", ours["calls_mean"] / fixed["calls_mean"], "x",
                   f"{ours['calls_mean']:.1f} vs {fixed['calls_mean']:.1f} status calls per task")
        result.add(f"{m} min task: mean delay to know", ours["delay_mean"], "s",
                   f"fixed 10 s: {fixed['delay_mean']:.1f} s")
        result.add(f"{m} min task: worst delay to know", ours["delay_worst"], "s",
                   f"fixed 10 s: {fixed['delay_worst']:.1f} s; page wakes {ours['wakes_mean']:.1f} for "
                   f"{ours['calls_mean']:.1f} reads")
    return result
