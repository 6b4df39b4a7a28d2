"""The dispatcher: sends the queued takes of variant sets, on the server, whatever the tabs do.

A variant set's takes are written to the ledger *queued* before any is sent (so closing the tab
neither stops nor duplicates the set). One dispatcher thread per server process claims queued
takes with a lease (several processes share the work), moves each to "creating" only if it is
still queued (a take cancelled meanwhile is never sent), sends it through a client whose create
limiter is kept in the ledger (the provider's 20 creates per 10 s, per key, across processes), and
settles it like any create: created with its task id, failed with the provider's reason
("refused"), or unknown.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from luma.errors import LumaError

from .creates import SettleQueue, send_claimed
from .tracker import utcnow

__all__ = ["CreateRoute", "Dispatcher"]

_LOG = logging.getLogger("luma.dispatcher")


@dataclass(frozen=True)
class CreateRoute:
    """How to send one take's create."""

    create: Callable[[Any], str]
    """Sends the take's create (given its row); returns the task id or raises the client's error."""
    first_check: Callable[[], datetime]
    """When the tracker should first read the created task."""


class Dispatcher:
    """Sends queued takes (see the module docstring)."""

    def __init__(
        self,
        ledger: Any,
        route_for: Callable[[Any], CreateRoute | str],
        *,
        process_id: str,
        settles: SettleQueue | None = None,
        lease_seconds: float = 300.0,
        idle: float = 1.0,
        on_created: Callable[[], object] | None = None,
    ) -> None:
        self.ledger = ledger
        self.route_for = route_for
        self.process_id = process_id
        self.settles = settles
        self.lease_seconds = lease_seconds
        self.idle = idle
        self.on_created = on_created
        self.sent = 0
        """Creates this dispatcher sent since start."""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run_once(self, limit: int = 10) -> int:
        """Send up to ``limit`` queued takes now; returns how many were sent (or refused)."""
        rows = self.ledger.claim_queued(
            now=utcnow(), limit=limit, lease_owner=self.process_id, lease_seconds=self.lease_seconds
        )
        done = 0
        for row in rows:
            route = self.route_for(row)
            if isinstance(route, str):
                # Its key is not in this process (yet): give it back for a later try.
                self.ledger.release_queued(row.request_key)
                continue
            if not self.ledger.start_queued(row.request_key, sender=self.process_id):
                continue  # cancelled meanwhile, or another process took it: nothing is sent
            try:
                send_claimed(self.ledger, row.request_key, _bound(route, row), queue=self.settles,
                             first_check=route.first_check)
            except LumaError as err:
                _LOG.info("A queued take was not created (%s).", type(err).__name__)
            except Exception:  # noqa: BLE001 - settled as unknown by send_claimed; the thread goes on
                _LOG.exception("Sending a queued take failed unexpectedly")
            self.sent += 1
            done += 1
            if self.on_created is not None:
                self.on_created()
        return done

    def start(self) -> bool:
        """Run in a daemon thread (once); returns True if this call started it."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="luma-dispatcher", daemon=True)
            self._thread.start()
            return True

    def nudge(self) -> None:
        """Wake the dispatcher now (a set was queued)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the current take."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """True while the thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self.run_once():
                    continue
            except Exception as err:  # noqa: BLE001 - outlives a database hiccup
                _LOG.warning("Dispatching queued takes failed (%s); trying again shortly.", type(err).__name__)
            if self._wake.wait(self.idle):
                self._wake.clear()


def _bound(route: CreateRoute, row: Any) -> Callable[[], str]:
    return lambda: route.create(row)
