"""Who may use the dashboard: the wrong-password throttle and the browsers that passed the gate.

Both live in process memory, shared by every session of the server, so that neither a reload
nor a new tab resets them (session state would).

:class:`PasswordThrottle`
    After a wrong password, the client address that sent it must wait before its next try:
    1 s, doubling per failure up to a minute, forgotten after a quiet quarter of an hour. A
    try during the wait is refused without comparing the password, so opening many tabs does
    not multiply the guesses. Failures from *all* addresses together are throttled too, so
    rotating addresses does not help either: past a burst, every address waits a few seconds.

:class:`BrowserGrants`
    The browsers (by the HTTP-only cookie the web edge sets) that have a live session past the
    gate. The edge serves ``/media/`` files (videos, exports) only to those: a file URL alone,
    without that browser's cookie and a live session, gets 403.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["GRANTS", "THROTTLE", "BrowserGrants", "PasswordThrottle", "ThrottleState"]


@dataclass
class ThrottleState:
    """Failures of one client address."""

    failures: int = 0
    """Wrong passwords since the last success (or since they were forgotten)."""
    last_failure: float = 0.0
    """When the last one came (clock seconds)."""
    until: float = 0.0
    """No try is taken before this moment (clock seconds)."""


class PasswordThrottle:
    """Wrong-password waits per client address and over all addresses together."""

    def __init__(
        self,
        *,
        first_wait: float = 1.0,
        max_wait: float = 60.0,
        forget_after: float = 900.0,
        burst: int = 20,
        burst_window: float = 60.0,
        burst_wait: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._first = first_wait
        self._max = max_wait
        self._forget = forget_after
        self._burst = burst
        self._window = burst_window
        self._burst_wait = burst_wait
        self._clock = clock
        self._clients: dict[str, ThrottleState] = {}
        self._recent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        while self._recent and self._recent[0] <= now - self._window:
            self._recent.popleft()
        stale = [c for c, s in self._clients.items() if now - s.last_failure > self._forget and now >= s.until]
        for client in stale:
            del self._clients[client]

    def _overall_until(self) -> float:
        # In a burst (many failures from anywhere), every try waits a little after the last one.
        if len(self._recent) >= self._burst:
            return self._recent[-1] + self._burst_wait
        return 0.0

    def wait_left(self, client: str) -> float:
        """Seconds before ``client`` may try a password again (0: now)."""
        now = self._clock()
        with self._lock:
            self._prune(now)
            state = self._clients.get(client)
            until = max(state.until if state else 0.0, self._overall_until())
        return max(0.0, until - now)

    def failed(self, client: str) -> float:
        """Record a wrong password from ``client``; returns the wait it now has to sit out."""
        now = self._clock()
        with self._lock:
            self._prune(now)
            state = self._clients.setdefault(client, ThrottleState())
            state.failures += 1
            state.last_failure = now
            state.until = now + min(self._max, self._first * 2 ** (state.failures - 1))
            self._recent.append(now)
            until = max(state.until, self._overall_until())
        return until - now

    def succeeded(self, client: str) -> None:
        """The right password from ``client``: its count starts over."""
        with self._lock:
            self._clients.pop(client, None)

    def clear(self) -> None:
        """Forget everything (tests)."""
        with self._lock:
            self._clients.clear()
            self._recent.clear()


class BrowserGrants:
    """Browser ids with at least one live session that passed the gate.

    ``is_live(session_id)`` is injected (the Streamlit runtime's own answer on the server); a
    grant whose sessions have all ended no longer opens anything.
    """

    def __init__(self, is_live: Callable[[str], bool] | None = None) -> None:
        self._is_live = is_live or (lambda session_id: True)
        self._sessions: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def set_liveness(self, is_live: Callable[[str], bool]) -> None:
        """Use the server's view of which sessions are live (set once the runtime exists)."""
        self._is_live = is_live

    def grant(self, browser_id: str, session_id: str) -> None:
        """This session of this browser is past the gate."""
        with self._lock:
            self._sessions.setdefault(browser_id, set()).add(session_id)

    def revoke(self, session_id: str) -> None:
        """This session signed out."""
        with self._lock:
            for sessions in self._sessions.values():
                sessions.discard(session_id)

    def allows(self, browser_id: str | None) -> bool:
        """True when this browser has a live session past the gate."""
        if not browser_id:
            return False
        with self._lock:
            sessions = self._sessions.get(browser_id)
            if not sessions:
                return False
            live = {s for s in sessions if self._is_live(s)}
            if live:
                self._sessions[browser_id] = live
                return True
            del self._sessions[browser_id]
            return False

    def clear(self) -> None:
        """Forget every grant (tests)."""
        with self._lock:
            self._sessions.clear()


#: The server's one throttle and grant registry (process-wide; the web edge and every session
#: share them).
THROTTLE = PasswordThrottle()
GRANTS = BrowserGrants()
