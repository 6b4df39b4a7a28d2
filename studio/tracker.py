"""The tracker: one per server process, reading due tasks from the provider into the ledger.

Open tabs never ask the provider for a task's status; they read the ledger. The tracker is the
only reader: each cycle it *claims* the tasks that are due (a lease in the database, so several
server processes on one Postgres share the work and never read one task twice in an interval),
reads them concurrently, one client per API key and base URL, and writes each answer back. The
ledger refuses to overwrite a final status with anything, so a late or failed read cannot undo a
result. When a task cannot be read here (its session key is not in this process, e.g. after a
restart), it is parked with the reason, to be picked up when that key is entered again.

It runs in a daemon thread started by the server's lifespan (``app.py``), or on first use where
no lifespan runs, or headless with ``python -m studio track`` for a deployment whose app sleeps.
Between cycles it sleeps until the next task is due (at most a second or two), and wakes at once
when a page adds a task or a callback brings one forward (:meth:`Tracker.nudge`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from luma import AsyncLumaClient, LumaError, Task, TaskBatch

from .schedule import Schedule

__all__ = ["CycleReport", "Route", "RouteFor", "Tracker", "utcnow"]

_LOG = logging.getLogger("luma.tracker")


def utcnow() -> datetime:
    """Now, timezone-aware UTC (the ledger's clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Route:
    """How to reach the provider for a group of tasks: tasks with one route share a client."""

    key: Hashable
    """Groups tasks read with one client (mode, key name, base URL)."""
    client: Callable[[], AsyncLumaClient]
    """Makes the async client for one cycle (closed after it)."""
    schedule: Schedule
    """This group's reading schedule (demo tasks are read sooner than live ones)."""


RouteFor = Callable[[Any], "Route | str"]
"""Given a ledger row, its route, or the reason it cannot be read by this process (it is parked)."""


@dataclass
class CycleReport:
    """What one cycle did."""

    started: datetime
    """When the cycle began (UTC)."""
    claimed: int = 0
    """Due tasks this process claimed."""
    read: int = 0
    """Tasks read successfully."""
    failed: int = 0
    """Reads that failed (the task keeps its last known status)."""
    parked: int = 0
    """Tasks this process cannot read now (e.g. their key is not here)."""
    finished: int = 0
    """Tasks whose read brought a final status."""
    lag: float = 0.0
    """Seconds the most overdue claimed task waited past its due time."""
    outage: str | None = None
    """Set when every read failed for a reason on the provider's side."""
    seconds: float = 0.0
    """How long the cycle took."""
    changed: list[str] = field(default_factory=list)
    """Task ids whose row changed."""


def _process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Tracker:
    """Reads due tasks into the ledger; see the module docstring."""

    def __init__(
        self,
        ledger: Any,
        route_for: RouteFor,
        *,
        batch: int = 200,
        lease_seconds: float = 120.0,
        idle: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
        process_id: str | None = None,
        mode: str | None = None,
        before_cycle: Callable[[], object] | None = None,
    ) -> None:
        self.ledger = ledger
        self.before_cycle = before_cycle
        """Called at the start of every cycle (the service writes late create answers there)."""
        self.mode = mode
        """Only tasks of this mode ("live", "demo"); None: both."""
        self.route_for = route_for
        self.batch = batch
        self.lease_seconds = lease_seconds
        self.idle = idle
        self.clock = clock
        self.process_id = process_id or _process_id()
        self.last: CycleReport | None = None
        """The last cycle's report (health)."""
        self.outage: str | None = None
        """Why the provider seems down: set by a cycle whose every read failed on its side,
        cleared by the next cycle that reads anything (cycles with nothing due leave it as is)."""
        self.cycles = 0
        """Cycles run since start."""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._cycle_lock = threading.Lock()

    # -- one cycle -------------------------------------------------------------------------------

    def cycle(self) -> CycleReport:
        """Claim what is due, read it, write the answers. Safe to call from any thread."""
        with self._cycle_lock:
            report = self._cycle()
        self.last = report
        if report.outage:
            self.outage = report.outage
        elif report.read:
            self.outage = None
        self.cycles += 1
        return report

    def _cycle(self) -> CycleReport:
        if self.before_cycle is not None:
            self.before_cycle()
        started = self.clock()
        clock_start = time.monotonic()
        report = CycleReport(started=started)
        rows = self.ledger.claim_due(
            now=started,
            limit=self.batch,
            lease_owner=self.process_id,
            lease_seconds=self.lease_seconds,
            mode=self.mode,
        )
        report.claimed = len(rows)
        if not rows:
            return report
        report.lag = max(
            0.0, max((started - r.next_check_at).total_seconds() for r in rows if r.next_check_at is not None)
        ) if any(r.next_check_at is not None for r in rows) else 0.0
        groups: dict[Hashable, tuple[Route, list[Any]]] = {}
        for row in rows:
            route = self.route_for(row)
            if isinstance(route, str):
                self.ledger.park(row.task_id, route)
                report.parked += 1
                continue
            groups.setdefault(route.key, (route, []))[1].append(row)
        if groups:
            results = asyncio.run(self._read(list(groups.values())))
            outage_errors = 0
            # The cycle's answers in one transaction, successful reads in one statement (not N commits).
            reads: list[tuple[Task, datetime, datetime | None]] = []
            with self.ledger.batch():
                for route, group, batch, read_started in results:
                    for row in group:
                        self._apply(route, row, batch, read_started, report, reads)
                    outage_errors += sum(1 for err in batch.errors.values() if _is_outage(err))
                self.ledger.record_reads(reads, now=self.clock())
            if report.failed and not report.read and outage_errors == report.failed:
                report.outage = "The provider did not answer the tracker's reads."
        report.seconds = time.monotonic() - clock_start
        return report

    async def _read(self, groups: list[tuple[Route, list[Any]]]) -> list[tuple[Route, list[Any], TaskBatch, datetime]]:
        async def one(route: Route, rows: list[Any]) -> tuple[Route, list[Any], TaskBatch, datetime]:
            read_started = self.clock()
            try:
                async with route.client() as client:
                    batch = await client.get_tasks([r.task_id for r in rows])
            except LumaError as err:
                batch = TaskBatch(tasks={}, errors={r.task_id: err for r in rows})
            return route, rows, batch, read_started

        return await asyncio.gather(*(one(route, rows) for route, rows in groups))

    def _apply(
        self,
        route: Route,
        row: Any,
        batch: TaskBatch,
        read_started: datetime,
        report: CycleReport,
        reads: list[tuple[Task, datetime, datetime | None]],
    ) -> None:
        now = self.clock()
        base = row.submitted_at_best
        task: Task | None = batch.tasks.get(row.task_id)
        if task is not None:
            final = task.status.is_final
            # A callback came and the read still says "not finished": the provider finalises a task
            # only once its callback is answered, so the news is read again on the short schedule,
            # not at the fallback's pace meant for callbacks still to come.
            heard = getattr(row, "callback_at", None)
            first_after = heard is not None and (row.checked_at is None or row.checked_at < heard)
            next_check = None if final else (
                read_started + timedelta(seconds=route.schedule.lo) if first_after else route.schedule.next_check(
                    task.created_at or base, read_started,
                    callback=heard is None and bool(getattr(row, "callback_token", None)),
                )
            )
            reads.append((task, read_started, next_check))
            report.read += 1
            if final:
                report.finished += 1
                report.changed.append(row.task_id)
            return
        error = batch.errors.get(row.task_id)
        if error is None:  # the batch lost it: read it again soon rather than never
            error = LumaError("The task was not read in this cycle.")
        report.failed += 1
        retryable = bool(getattr(error, "retryable", False))
        next_check = (
            route.schedule.next_check(base, read_started, failures=row.failures + 1) if retryable else None
        )
        self.ledger.record_read_failure(
            row.task_id, message=error.message, retryable=retryable, now=now, next_check_at=next_check
        )

    # -- the thread ------------------------------------------------------------------------------

    def start(self) -> bool:
        """Run in a daemon thread (once per tracker); returns True if this call started it."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="luma-tracker", daemon=True)
            self._thread.start()
            return True

    @property
    def running(self) -> bool:
        """True while the tracker thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def nudge(self) -> None:
        """Wake the tracker now (a task was added, or a callback brought one forward)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread after its current cycle."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        _LOG.info("Tracker %s started.", self.process_id)
        while not self._stop.is_set():
            pause = self.idle
            try:
                report = self.cycle()
                if report.claimed >= self.batch:
                    continue  # more is due right now
                due = self.ledger.next_due_at(mode=self.mode)
                if due is not None:
                    pause = min(self.idle, max(0.0, (due - self.clock()).total_seconds()))
            except Exception as err:  # noqa: BLE001 - the tracker outlives a database or provider hiccup
                _LOG.warning("Tracker cycle failed (%s: %s); trying again shortly.", type(err).__name__, err)
                pause = 5.0
            if pause > 0 and self._wake.wait(pause):
                self._wake.clear()
        _LOG.info("Tracker %s stopped.", self.process_id)

    def lag_seconds(self) -> float | None:
        """Seconds since the last cycle began (None before the first)."""
        if self.last is None:
            return None
        return (self.clock() - self.last.started).total_seconds()

    def __repr__(self) -> str:
        return f"Tracker({self.process_id}, running={self.running}, cycles={self.cycles})"


def _is_outage(err: LumaError) -> bool:
    from luma.errors import MaintenanceError, ServerError, TransportError

    return isinstance(err, (TransportError, ServerError, MaintenanceError)) and err.retryable


def due_in(seconds: float, now: datetime | None = None) -> datetime:
    """A due time ``seconds`` from now (for callers scheduling a first read)."""
    return (now or utcnow()) + timedelta(seconds=seconds)
