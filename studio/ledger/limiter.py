"""The create limiter shared by every server process that uses one ledger database.

The provider allows 20 creates per 10 s *per API key*, counted across everything that uses the
key; :class:`luma._retry.CreateLimiter` keeps that window in process memory, so two server
processes would each allow 20. :class:`LedgerCreateLimiter` keeps the same window in the
``create_slots`` table instead, with the same semantics (a slot is busy while its create is in
flight, its window starts when the answer comes, ``sent=False`` gives it back), so ``hold()``,
``hold_async()`` and ``CreateSlot.release()`` work unchanged.

Each reservation is one short transaction that first locks the key's ``create_keys`` row
(``INSERT ... ON CONFLICT DO NOTHING`` then ``UPDATE``: a row lock on Postgres; SQLite's write
transactions are serialised already), so two processes cannot both take the 20th slot.

Times are wall-clock (``time.time``): the processes share no monotonic clock. A process that
dies mid-create leaves its slot in flight for ever; such a slot is counted as answered at
``reserved + stale_after`` (two minutes: far beyond any create's timeout), so it stops blocking.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from luma._constants import CREATE_LIMIT, CREATE_WINDOW
from luma._retry import CreateLimiter, CreateSlot

from .engine import upsert
from .errors import LedgerUnavailable
from .schema import create_keys, create_slots
from .store import Ledger

__all__ = ["IN_FLIGHT_BOUND", "LedgerCreateLimiter"]

log = logging.getLogger("luma.ledger")

# Seconds after which a slot still in flight is taken for a crashed process's: no create waits
# this long for its answer (the client's read timeout is 30 s).
IN_FLIGHT_BOUND: Final = 120.0
# Seconds between looks while every slot that must free is a create in flight. Each look is a
# write transaction on a shared database, so a little slower than the in-process limiter's.
_IN_FLIGHT_POLL: Final = 0.1


def _stamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


class _LedgerSlot(CreateSlot):
    """A :class:`CreateSlot` that knows its row in ``create_slots``."""

    __slots__ = ("slot_id",)

    def __init__(self, limiter: LedgerCreateLimiter, at: float, slot_id: int) -> None:
        super().__init__(limiter, at)
        self.slot_id = slot_id
        """The slot's row id."""


class LedgerCreateLimiter(CreateLimiter):
    """A :class:`CreateLimiter` whose window lives in the ledger database, shared by processes."""

    def __init__(
        self,
        ledger: Ledger,
        key_ref: str,
        limit: int = CREATE_LIMIT,
        window: float = CREATE_WINDOW,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        stale_after: float = IN_FLIGHT_BOUND,
    ) -> None:
        super().__init__(limit, window, clock=clock, sleep=sleep, async_sleep=async_sleep)
        if not key_ref:
            raise ValueError("LedgerCreateLimiter needs the key's reference (a hash, never the key).")
        self.ledger = ledger
        self.key_ref = key_ref
        self.stale_after = float(stale_after)

    def __repr__(self) -> str:
        return f"LedgerCreateLimiter({self.key_ref[:8]}..., limit={self.limit}, window={self.window})"

    # --- the window, read from the database ------------------------------------------------------

    def _window(self, conn: Connection, now: float) -> list[float]:
        """When each slot of the current window started (+inf: in flight). Expired slots are left out."""
        horizon = now - self.window
        found = conn.execute(
            sa.select(create_slots.c.reserved_at, create_slots.c.settled_at).where(
                create_slots.c.key_ref == self.key_ref,
                sa.or_(create_slots.c.settled_at.is_(None), create_slots.c.settled_at > _stamp(horizon)),
            )
        ).all()
        starts = []
        for reserved, settled in found:
            if settled is not None:
                at = settled.timestamp()
            elif now - reserved.timestamp() >= self.stale_after:
                at = reserved.timestamp() + self.stale_after  # its process died mid-create
            else:
                at = math.inf
            if at > horizon:
                starts.append(at)
        return starts

    def _delay(self, starts: list[float], now: float, *, in_flight_wait: float) -> float:
        """Seconds until a slot frees, as :class:`CreateLimiter` computes it (0: one is free)."""
        if len(starts) < self.limit:
            return 0.0
        settled = sorted(at for at in starts if at != math.inf)
        # Enough slots must expire to leave one free; in-flight slots expire last.
        needed = len(starts) - self.limit + 1
        if len(settled) < needed:
            return in_flight_wait
        # Never 0 while full: rounding at the window's edge must not let a 21st slot through.
        return max(settled[needed - 1] + self.window - now, 1e-3)

    def _insert(self, conn: Connection) -> Any:
        # The dialect's Insert (Postgres's or SQLite's), which spells on_conflict_do_nothing alike.
        return upsert(conn.dialect.name)(create_keys)

    # --- the overridden steps --------------------------------------------------------------------

    def _reserve(self, *, in_flight: bool) -> tuple[float, CreateSlot | None]:
        """Take a slot (returns 0 and it), or return the seconds until one frees."""
        with self.ledger.transaction(write=True) as conn:
            touched = _stamp(self._clock())
            conn.execute(self._insert(conn).values(key_ref=self.key_ref, touched_at=touched).on_conflict_do_nothing())
            # The key's row lock: the other processes' reservations wait here until we commit.
            conn.execute(sa.update(create_keys).where(create_keys.c.key_ref == self.key_ref).values(touched_at=touched))
            now = self._clock()  # read after the lock: the window below is the committed one
            conn.execute(
                sa.delete(create_slots).where(
                    create_slots.c.key_ref == self.key_ref,
                    sa.or_(
                        create_slots.c.settled_at <= _stamp(now - self.window),
                        # A crashed process's slot, counted as answered at reserved + stale_after.
                        sa.and_(
                            create_slots.c.settled_at.is_(None),
                            create_slots.c.reserved_at <= _stamp(now - self.window - self.stale_after),
                        ),
                    ),
                )
            )
            delay = self._delay(self._window(conn, now), now, in_flight_wait=min(self.window, _IN_FLIGHT_POLL))
            if delay > 0:
                return delay, None
            slot_id = conn.execute(
                sa.insert(create_slots)
                .values(key_ref=self.key_ref, reserved_at=_stamp(now), settled_at=None if in_flight else _stamp(now))
                .returning(create_slots.c.id)
            ).scalar_one()
        return 0.0, _LedgerSlot(self, math.inf if in_flight else now, slot_id)

    def _settle(self, slot: CreateSlot, *, sent: bool) -> None:
        # Called from the client's ``finally``: raising here would hide the create's own answer
        # (its task id). So a database failure is logged, and the slot left in flight is
        # counted as answered after ``stale_after``.
        if not isinstance(slot, _LedgerSlot):
            return
        rows = create_slots.c
        try:
            with self.ledger.transaction(write=True) as conn:
                if not sent:
                    conn.execute(sa.delete(create_slots).where(rows.id == slot.slot_id))
                    return
                if slot.at != math.inf:
                    return
                at = self._clock()
                conn.execute(
                    sa.update(create_slots)
                    .where(rows.id == slot.slot_id, rows.settled_at.is_(None))
                    .values(settled_at=_stamp(at))
                )
                slot.at = at
        except LedgerUnavailable as error:
            log.warning(
                "luma: could not record a create's answer in the ledger (%s); its slot frees in %.0f s",
                error,
                self.stale_after,
            )

    def wait_time(self) -> float:
        """Seconds the next create would wait right now (0 when a slot is free); reserves nothing.

        While every slot that would have to free is still in flight, the wait is unknown; the
        window is returned as the bound it will not exceed once those answers arrive.
        """
        with self.ledger.transaction() as conn:
            now = self._clock()
            return self._delay(self._window(conn, now), now, in_flight_wait=self.window)
