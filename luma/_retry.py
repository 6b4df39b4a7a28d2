"""Retrying reads, and keeping creates under the provider's rate limit.

Two rules from the provider's documentation and the cost of a task shape this module:

* Reads (task status, credits, download links, file fetches) change nothing, so a read that
  met a rate limit (429), maintenance (455), a server error (5xx), a timeout, a dropped
  connection or an unreadable answer is tried again, with exponential backoff and *full*
  jitter so that many dashboards polling at once do not retry in lock-step. A ``Retry-After``
  header wins over the computed backoff. Attempts and total time are both bounded.
* A create costs money and the provider has no idempotency key, so it is sent again only when
  the connection failed before any byte left this machine (:class:`~luma.errors.ConnectError`).
  :class:`CreateLimiter` keeps creates under 20 per 10 s per key, so a burst waits here
  instead of being refused with 429.

Clocks, sleeps and the random source are injectable so tests run on a fake clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import ClassVar, TypeVar

from ._constants import (
    CREATE_LIMIT,
    CREATE_WINDOW,
    RETRY_AFTER_CAP,
    RETRY_BASE_DELAY,
    RETRY_MAX_ATTEMPTS,
    RETRY_MAX_DELAY,
    RETRY_MAX_TOTAL,
)
from .errors import ConfigurationError, LumaError

__all__ = [
    "CreateLimiter",
    "CreateSlot",
    "RetryPolicy",
    "is_retryable_read",
    "is_unsent",
    "parse_retry_after",
]

T = TypeVar("T")

log = logging.getLogger("luma")

# 2**62 * any sane base delay is already far past any max_delay; higher powers only risk overflow.
_MAX_EXPONENT = 62
# Seconds between looks at the limiter while every slot that must free is a create in flight.
_IN_FLIGHT_POLL = 0.05


def parse_retry_after(value: str | None, *, now: float, cap: float = RETRY_AFTER_CAP) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date).

    ``now`` is the wall-clock time (epoch seconds) an HTTP date is measured from. The result is
    clamped to ``[0, cap]`` so a confused server cannot park us for hours; None when the header
    is absent or unreadable.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), cap)


def is_retryable_read(error: LumaError) -> bool:
    """Whether a failed read is worth repeating: 429, 455, 5xx, transport and malformed answers.

    501 (generation failed) and 505 (feature disabled) are definitive answers, not outages, so
    their classes are not ``retryable`` and repeating them would only burn the time budget.
    """
    return error.retryable


def is_unsent(error: LumaError) -> bool:
    """Whether a create may be sent again: it provably never left this machine, and trying again
    may help (a connection refused because the address is private will be refused again)."""
    return getattr(error, "request_sent", True) is False and error.retryable


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry, with injectable time so tests never really sleep."""

    max_attempts: int = RETRY_MAX_ATTEMPTS
    """Total tries, the first one included (1 = never retry)."""
    base_delay: float = RETRY_BASE_DELAY
    """Backoff ceiling of the first retry, in seconds; doubles per retry."""
    max_delay: float = RETRY_MAX_DELAY
    """Largest backoff ceiling, in seconds."""
    max_total: float = RETRY_MAX_TOTAL
    """No retry is started that would end later than this many seconds after the first try."""
    retry_after_cap: float = RETRY_AFTER_CAP
    """Largest ``Retry-After`` honoured, in seconds."""
    clock: Callable[[], float] = time.monotonic
    """Measures elapsed time (monotonic seconds)."""
    wall_clock: Callable[[], float] = time.time
    """Epoch seconds, for ``Retry-After`` given as an HTTP date."""
    sleep: Callable[[float], None] = time.sleep
    """Waits between tries of the sync client."""
    async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    """Waits between tries of the async client."""
    random: Callable[[], float] = random.random
    """Uniform in [0, 1): the jitter source."""

    def __post_init__(self) -> None:
        if not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ConfigurationError("RetryPolicy.max_attempts must be a whole number of at least 1.")
        for name in ("base_delay", "max_delay", "max_total", "retry_after_cap"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
                raise ConfigurationError(f"RetryPolicy.{name} must be a number of seconds >= 0.")

    @classmethod
    def never(cls) -> RetryPolicy:
        """A policy that tries everything once."""
        return cls(max_attempts=1)

    def backoff(self, retry_index: int) -> float:
        """Full-jitter backoff before retry number ``retry_index`` (0 for the first retry).

        Uniform in ``[0, min(max_delay, base_delay * 2**retry_index))``: spreading the whole
        interval, not just a fringe, is what keeps many clients from retrying in step.
        """
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(retry_index, _MAX_EXPONENT))
        return self.random() * ceiling

    def delay_for(self, error: LumaError, retry_index: int) -> float:
        """The wait before the next try: the provider's ``Retry-After`` if it gave one, else backoff."""
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(max(float(retry_after), 0.0), self.retry_after_cap)
        return self.backoff(retry_index)

    def _plan(
        self,
        error: LumaError,
        retry_index: int,
        started: float,
        should_retry: Callable[[LumaError], bool],
        operation: str,
    ) -> float | None:
        """Seconds to wait before trying again, or None to give up and raise ``error``."""
        error.attempts = retry_index + 1
        if retry_index + 1 >= self.max_attempts or not should_retry(error):
            return None
        delay = self.delay_for(error, retry_index)
        if self.clock() - started + delay > self.max_total:
            # Waiting would overrun the budget: give up now rather than sleep and then fail.
            return None
        log.info(
            "luma: %s failed with %s (try %d of %d); retrying in %.2f s",
            operation,
            type(error).__name__,
            retry_index + 1,
            self.max_attempts,
            delay,
        )
        return delay

    def run(
        self,
        attempt: Callable[[], T],
        *,
        should_retry: Callable[[LumaError], bool] = is_retryable_read,
        operation: str = "request",
    ) -> T:
        """Call ``attempt`` until it returns, retrying the :class:`LumaError` s ``should_retry`` allows."""
        started = self.clock()
        retry_index = 0
        while True:
            try:
                return attempt()
            except LumaError as error:
                delay = self._plan(error, retry_index, started, should_retry, operation)
                if delay is None:
                    raise
            self.sleep(delay)
            retry_index += 1

    async def run_async(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        should_retry: Callable[[LumaError], bool] = is_retryable_read,
        operation: str = "request",
    ) -> T:
        """The async twin of :meth:`run`."""
        started = self.clock()
        retry_index = 0
        while True:
            try:
                return await attempt()
            except LumaError as error:
                delay = self._plan(error, retry_index, started, should_retry, operation)
                if delay is None:
                    raise
            await self.async_sleep(delay)
            retry_index += 1


class CreateLimiter:
    """A sliding-window limit on creates: at most ``limit`` in any ``window`` seconds.

    The provider refuses (not queues) the 21st create in 10 s, and a refused create would be
    an error the user has to resubmit by hand; waiting here a few seconds is kinder. One
    limiter must be shared by every client using the same key (see :meth:`shared`), since the
    provider counts per account, not per client object. Thread-safe; the async path shares the
    same bookkeeping, so sync and async clients of one key can share a limiter.

    The provider counts a create when it *arrives*, which is later than when it was sent here,
    and by a different amount for each request. A slot stamped at send time can therefore
    expire here while the provider still counts it: at full speed, a create sent exactly one
    window after an earlier, slower one reaches the provider inside that window and is refused
    (the fault soak in ``bench/`` showed 6 of 60 creates refused that way). So the clients use
    :meth:`hold`: the slot is taken before sending, counts as busy while the request is in
    flight, and is stamped when the answer (or failure) comes back, by which time the provider
    has certainly counted it. A create that provably never left (``sent=False``) gives its slot
    back. :meth:`acquire` keeps the plain stamp-at-acquire behaviour.
    """

    _registry: ClassVar[dict[str, CreateLimiter]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()
    # A per-process salt: the registry's keys are useless outside this process, so even a
    # memory dump does not yield a stable fingerprint of the API key.
    _salt: ClassVar[bytes] = os.urandom(16)

    def __init__(
        self,
        limit: int = CREATE_LIMIT,
        window: float = CREATE_WINDOW,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not isinstance(limit, int) or limit < 1:
            raise ConfigurationError("CreateLimiter.limit must be a whole number of at least 1.")
        if not isinstance(window, (int, float)) or not window > 0:
            raise ConfigurationError("CreateLimiter.window must be a positive number of seconds.")
        self.limit = limit
        self.window = float(window)
        self._clock = clock
        self._sleep = sleep
        self._async_sleep = async_sleep
        # Slots of the current window; a slot in flight is stamped +inf until its answer comes.
        self._slots: list[CreateSlot] = []
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CreateLimiter(limit={self.limit}, window={self.window})"

    @classmethod
    def shared(cls, api_key: str | None) -> CreateLimiter:
        """The one process-wide limiter for ``api_key`` (held under a salted hash, never the key)."""
        digest = hmac.new(cls._salt, (api_key or "").encode("utf-8"), hashlib.sha256).hexdigest()
        with cls._registry_lock:
            limiter = cls._registry.get(digest)
            if limiter is None:
                limiter = cls._registry[digest] = cls()
            return limiter

    def _wait_locked(self, now: float) -> float:
        """Seconds until a slot frees (0: one is free now). Drops expired slots. Lock held."""
        self._slots = [s for s in self._slots if s.at > now - self.window]
        if len(self._slots) < self.limit:
            return 0.0
        settled = sorted(s.at for s in self._slots if s.at != math.inf)
        # Enough slots must expire to leave one free; in-flight slots expire last.
        needed = len(self._slots) - self.limit + 1
        if len(settled) < needed:
            # Every slot that would have to free is still in flight: look again shortly.
            return min(self.window, _IN_FLIGHT_POLL)
        return max(settled[needed - 1] + self.window - now, 0.0) or 1e-3

    def _reserve(self, *, in_flight: bool) -> tuple[float, CreateSlot | None]:
        """Take a slot (returns 0 and it), or return the seconds until one frees."""
        with self._lock:
            now = self._clock()
            delay = self._wait_locked(now)
            if delay > 0:
                return delay, None
            slot = CreateSlot(self, math.inf if in_flight else now)
            self._slots.append(slot)
            return 0.0, slot

    def _settle(self, slot: CreateSlot, *, sent: bool) -> None:
        with self._lock:
            if not sent:
                if slot in self._slots:
                    self._slots.remove(slot)
                return
            if slot.at == math.inf:
                slot.at = self._clock()

    def wait_time(self) -> float:
        """Seconds the next create would wait right now (0 when a slot is free); reserves nothing.

        While every slot that would have to free is still in flight, the wait is unknown; the
        window is returned as the bound it will not exceed once those answers arrive.
        """
        with self._lock:
            now = self._clock()
            self._slots = [s for s in self._slots if s.at > now - self.window]
            if len(self._slots) < self.limit:
                return 0.0
            settled = sorted(s.at for s in self._slots if s.at != math.inf)
            needed = len(self._slots) - self.limit + 1
            if len(settled) < needed:
                return self.window
            return max(settled[needed - 1] + self.window - now, 0.0)

    def _take(self, *, in_flight: bool) -> tuple[float, CreateSlot]:
        waited = 0.0
        while True:
            delay, slot = self._reserve(in_flight=in_flight)
            if slot is not None:
                return waited, slot
            log.info("luma: create rate limit reached; waiting %.2f s", delay)
            self._sleep(delay)
            waited += delay

    async def _take_async(self, *, in_flight: bool) -> tuple[float, CreateSlot]:
        waited = 0.0
        while True:
            delay, slot = self._reserve(in_flight=in_flight)
            if slot is not None:
                return waited, slot
            log.info("luma: create rate limit reached; waiting %.2f s", delay)
            await self._async_sleep(delay)
            waited += delay

    def acquire(self) -> float:
        """Block until a create may be sent; returns the seconds waited (slot stamped now)."""
        return self._take(in_flight=False)[0]

    async def acquire_async(self) -> float:
        """Wait (without blocking the event loop) until a create may be sent; returns seconds waited."""
        return (await self._take_async(in_flight=False))[0]

    def hold(self) -> CreateSlot:
        """Block until a create may be sent; the slot stays busy until :meth:`CreateSlot.release`."""
        return self._take(in_flight=True)[1]

    async def hold_async(self) -> CreateSlot:
        """The async twin of :meth:`hold`."""
        return (await self._take_async(in_flight=True))[1]


class CreateSlot:
    """One create's place in a :class:`CreateLimiter` window (see :meth:`CreateLimiter.hold`)."""

    __slots__ = ("_limiter", "at")

    def __init__(self, limiter: CreateLimiter, at: float) -> None:
        self._limiter = limiter
        self.at = at
        """When the slot's window started (the limiter's clock); +inf while the create is in flight."""

    def release(self, *, sent: bool = True) -> None:
        """The create's answer (or failure) is here: start the slot's window now.

        ``sent=False`` when the request provably never left this machine: the slot is given
        back. Releasing twice changes nothing.
        """
        self._limiter._settle(self, sent=sent)
