"""The server's shared services, one set per process and configuration: ledger, keys, tracker, emulator.

Everything a page, the web edge, the tracker and the headless ``track`` command share lives in
one :class:`Studio`, built on first use for a :class:`~studio.config.DeploymentConfig` and kept
in process memory (outside Streamlit's caches, which any browser can empty). Nothing here
imports Streamlit: the dashboard hands in its configuration, the headless tracker reads the same
secrets file itself.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from luma import AsyncLumaClient, LumaClient, RetryPolicy
from luma.egress import EgressPolicy, GuardedTransports
from luma.emulator import Emulator, EmulatorConfig

from .archive import Archive, Archiver
from .config import DeploymentConfig, host_of
from .creates import SettleQueue
from .dispatcher import CreateRoute, Dispatcher
from .keys import KeyRing
from .registry import Registry
from .schedule import CALLBACK_FALLBACK, Schedule
from .tracker import Route, Tracker, utcnow
from .web import CALLBACK_PREFIX, VERSION, CallbackLog, callback_token

__all__ = ["DEMO_KEY", "Studio", "shutdown_all", "studio_for"]

_LOG = logging.getLogger("luma.studio")

DEMO_KEY = "demo"
"""The key demo mode sends to its in-process emulator (any key works there)."""

INTERRUPTED_AFTER = 90.0
"""Seconds after which a create still being sent is taken for interrupted (its process died)."""

# The tracker is not on a page's path: it can wait longer for an answer than a page can.
_TRACKER_TIMEOUT = 10.0
_TRACKER_RETRY = RetryPolicy(max_attempts=2, max_delay=1.0, max_total=8.0)
_CREATE_TIMEOUT = 30.0


class Studio:
    """The shared services of one configuration (see the module docstring)."""

    def __init__(self, config: DeploymentConfig) -> None:
        from .ledger import Ledger

        self.config = config
        self.keys = KeyRing()
        if config.api_key:
            self.keys.add(config.api_key)
        self.policy = EgressPolicy(allow_hosts=frozenset(config.network_hosts))
        self.network = GuardedTransports(self.policy)
        """The guarded way out, for everything the server fetches for users (sync and async)."""
        if config.database_url.startswith("sqlite:///"):
            Path(config.database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger(config.database_url)
        self._migrated = False
        self._emulator: Emulator | None = None
        self._lock = threading.Lock()
        self.callbacks = CallbackLog()
        """What the callback receiver has seen (Settings and health show it)."""
        # Demo callbacks are signed too, with a key of this process when the deployment has none.
        self._demo_key = config.callback_key or secrets.token_urlsafe(24)
        self.settles = SettleQueue()
        """Create answers the ledger could not take at once (written by the tracker's next cycle)."""
        self.tracker = Tracker(self.ledger, self.route_for, before_cycle=self._housekeeping)
        self.dispatcher = Dispatcher(
            self.ledger, self.create_route_for, process_id=self.tracker.process_id, settles=self.settles,
            on_created=self.tracker.nudge,
        )
        self._create_clients = Registry(max_entries=32)
        self.archive: Archive | None = Archive(config.archive_url) if config.archive_url else None
        """Where finished results are copied once, so they outlive the provider's 14 days (optional)."""
        self.archiver = Archiver(self.ledger, self.archive, self.fetch_result) if self.archive is not None else None
        self._archived_at = 0.0
        self.observed_price: int | None = None
        """What the last create sent alone cost, measured from the balance (Settings compares it with the price)."""
        self.wrap: Callable[[Any], Any] = lambda transport: transport
        """Wraps the transports the tracker reads through (a test seam; identity otherwise)."""
        self._swept_at = 0.0

    # -- the ledger ------------------------------------------------------------------------------

    def ready(self) -> None:
        """Migrate the ledger (once) and sweep creates a dead process left unanswered.

        Raises the ledger's ``LedgerUnavailable`` when the database cannot be reached; callers
        show a banner and try again on the next page.
        """
        with self._lock:
            if self._migrated:
                return
            self.ledger.migrate()
            self._migrated = True
        self._sweep()

    def _sweep(self) -> None:
        # A create still "creating" whose sending process on this host is gone, or long after any
        # create could take (the limiter's wait plus the create's own timeout) was cut off by a
        # dying process: its outcome is unknown.
        swept = self.ledger.mark_orphaned_creates(socket.gethostname(), _pid_alive)
        swept += self.ledger.mark_interrupted_creates(timedelta(seconds=INTERRUPTED_AFTER))
        if swept:
            _LOG.warning("%d create(s) were interrupted: marked 'outcome unknown'.", swept)

    def _housekeeping(self) -> None:
        if len(self.settles):
            self.settles.flush(self.ledger)
        now = time.monotonic()
        if now - self._swept_at > 10.0:
            self._swept_at = now
            self._sweep()
        if self.archiver is not None and now - self._archived_at > 5.0:
            self._archived_at = now
            # A few per cycle: copying is slow next to reading, and the tracker must keep its pace.
            self.archiver.run_once(limit=3)

    def fetch_result(self, row: Any) -> bytes | None:
        """The result video's bytes from the provider (for the archive); None without a way to ask."""
        url = row.result_url
        if not url:
            return None
        if row.mode == "demo":
            with LumaClient(DEMO_KEY, transport=self.demo_transport()) as client:
                return client.fetch(url)
        api_key = self.keys.get(row.key_ref)
        if api_key is None:
            return None
        api_base = row.api_base or self.config.api_base
        with LumaClient(api_key, api_base=api_base, upload_base=self.config.upload_base, transport=self.network,
                        timeout=_CREATE_TIMEOUT) as client:
            # Result URLs are the provider's; a fresh download link is what can be fetched.
            return client.fetch(client.get_download_url(url))

    def ensure_tracking(self) -> Tracker:
        """The tracker and the dispatcher, started if not running (idempotent; the lifespan or a first page)."""
        self.ready()
        self.tracker.start()
        self.dispatcher.start()
        return self.tracker

    # -- the demo emulator -----------------------------------------------------------------------

    def emulator(self) -> Emulator:
        """The demo emulator, built once and kept in the data folder across restarts."""
        with self._lock:
            if self._emulator is None:
                options = dict(self.config.demo_options)
                allowed = set(options.get("allow_hosts", ())) | set(self.config.network_hosts)
                origin = httpx.URL(self.config.server_origin) if self.config.server_origin else None
                if origin is not None:
                    # Past the emulator's by-name check; CallbackGate then lets only POSTs to this
                    # server's callback route through, and its fetches never get the exception.
                    allowed.add(f"{origin.host}:{origin.port}")
                options["allow_hosts"] = tuple(sorted(allowed))
                options.setdefault("signing_key", self._demo_key)
                config = EmulatorConfig(data_dir=self.config.emulator_dir, **options)
                _LOG.info("Starting the demo emulator (data folder: %s).", self.config.emulator_dir)
                emulator = Emulator(
                    config,
                    fetch_transport=GuardedTransports(self.policy),
                    callback_transport=CallbackGate(self.config.server_origin, GuardedTransports(self.policy)),
                )
                # Draw missing sample clips in the background, one at a time, the one Submit
                # shows first; they are kept in the data folder, so only a first start does this.
                clips = emulator.samples()
                emulator.prepare_samples(first=clips[0].slug if clips else None)
                self._emulator = emulator
            return self._emulator

    def demo_transport(self) -> Any:
        """The emulator's transport; a file on any other host goes out through the guard."""
        return self.emulator().transport(network=self.network)

    # -- callbacks -------------------------------------------------------------------------------

    def callback_key(self, mode: str) -> str | None:
        """The HMAC key callbacks of this mode must be signed with (None: the token alone)."""
        return self.config.callback_key if mode == "live" else self._demo_key

    def callback_base(self, mode: str) -> str | None:
        """Where the provider can reach this server's callback route, in this mode (None: polling).

        Live: the deployment's public URL. Demo: the server itself on loopback, where the in-process
        emulator delivers (only when the server runs, i.e. started through app.py).
        """
        return self.config.callback_base if mode == "live" else self.config.server_origin

    def callback_for(self, mode: str) -> tuple[str, str] | None:
        """(callback URL for one new task, the hash the ledger keeps), or None when callbacks are off."""
        base = self.callback_base(mode)
        if not base:
            return None
        token, hashed = callback_token()
        return f"{base}{CALLBACK_PREFIX}{token}", hashed

    # -- health ----------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """What ``/api/health`` answers: no secret, no task data."""
        reachable = self.ledger.ping()
        last = self.tracker.last
        lag = self.tracker.lag_seconds()
        # A tracker that has not finished a cycle for a minute is stuck (it cycles every second).
        tracker_ok = self.tracker.running and lag is not None and lag < 60
        healthy = reachable and tracker_ok
        return {
            "status": "healthy" if healthy else "unhealthy",
            "mode": "live" if self.config.api_key else "demo",
            "version": VERSION,
            "ledger": {"reachable": reachable},
            "tracker": {
                "running": self.tracker.running,
                "last_cycle": last.started.isoformat() if last is not None else None,
                "lag_seconds": round(lag, 3) if lag is not None else None,
                "last_cycle_lag_seconds": round(last.lag, 3) if last is not None else None,
                "provider_outage": self.tracker.outage is not None,
            },
            "callbacks": {
                "enabled": bool(self.config.callback_base),
                "received": self.callbacks.received,
                "refused": self.callbacks.refused,
                "last_received": self.callbacks.last_received_at.isoformat() if self.callbacks.last_received_at else None,
            },
        }

    # -- routes for the tracker ------------------------------------------------------------------

    def schedule(self, demo: bool) -> Schedule:
        """The reading schedule of one mode."""
        return Schedule(lo=self.config.first_read(demo), hi=self.config.refresh_max)

    def route_for(self, row: Any) -> Route | str:
        """How the tracker reads ``row``, or why this process cannot (the task is parked)."""
        if row.mode == "demo":
            transport = self.wrap(self.demo_transport())
            return Route(
                key=("demo",),
                client=lambda: AsyncLumaClient(
                    DEMO_KEY, transport=transport, timeout=_TRACKER_TIMEOUT, retry=_TRACKER_RETRY
                ),
                schedule=self.schedule(True),
            )
        api_key = self.keys.get(row.key_ref)
        if api_key is None:
            return "key"
        api_base = row.api_base or self.config.api_base
        if row.key_ref == self.config.key_ref and host_of(api_base) not in self.config.key_hosts:
            # Never: submit refuses it. But the deployment's key goes nowhere else, whatever a row says.
            return "base"
        network = self.wrap(self.network)
        return Route(
            key=("live", row.key_ref, api_base),
            client=lambda: AsyncLumaClient(
                api_key,
                api_base=api_base,
                upload_base=self.config.upload_base,
                transport=network,
                timeout=_TRACKER_TIMEOUT,
                retry=_TRACKER_RETRY,
            ),
            schedule=self.schedule(False),
        )

    def create_route_for(self, row: Any) -> CreateRoute | str:
        """How the dispatcher sends a queued take, or why this process cannot (it is given back)."""
        from .ledger import LedgerCreateLimiter

        demo = row.mode == "demo"
        api_key = DEMO_KEY if demo else self.keys.get(row.key_ref)
        if api_key is None:
            return "key"
        api_base = row.api_base or self.config.api_base
        if not demo and row.key_ref == self.config.key_ref and host_of(api_base) not in self.config.key_hosts:
            return "base"

        def build() -> LumaClient:
            transport = self.wrap(self.demo_transport() if demo else self.network)
            return LumaClient(
                api_key, api_base=api_base, upload_base=self.config.upload_base, transport=transport,
                timeout=_CREATE_TIMEOUT, retry=_TRACKER_RETRY,
                create_limiter=LedgerCreateLimiter(self.ledger, "demo" if demo else str(row.key_ref)),
            )

        client = self._create_clients.get((row.mode, row.key_ref, api_base), build, LumaClient.close)
        schedule = self.schedule(demo)
        mode = row.mode

        def create(take: Any) -> str:
            ours = self.callback_for(mode) if take.callback_url is None else None
            if ours is not None:
                self.ledger.set_callback_token(take.request_key, ours[1])
            return client.create_task(
                take.prompt, take.video_url, callback_url=ours[0] if ours else take.callback_url,
                watermark=take.watermark,
            )

        def first_check() -> datetime:
            # A take whose callback will come is read only as a safety net.
            delay = CALLBACK_FALLBACK if self.callback_base(mode) else schedule.lo
            return utcnow() + timedelta(seconds=delay)

        return CreateRoute(create=create, first_check=first_check)

    def add_key(self, api_key: str) -> str:
        """Keep a session's key in memory so its tasks are tracked; wakes tasks waiting for it."""
        ref, new = self.keys.add(api_key)
        if new:
            try:
                if self.ledger.unpark(ref):
                    self.tracker.nudge()
            except Exception as err:  # noqa: BLE001 - the key is kept; parked tasks wait for the next try
                _LOG.warning("Could not wake tasks waiting for a key (%s).", type(err).__name__)
        return ref

    # -- shutdown --------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the tracker, then close the emulator, the network pools and the ledger."""
        self.dispatcher.stop()
        self.tracker.stop()
        self._create_clients.clear()
        with self._lock:
            emulator, self._emulator = self._emulator, None
        if emulator is not None:
            emulator.close()
        self.network.close()
        self.ledger.close()

    def __repr__(self) -> str:
        return f"Studio(database={self.config.database_url.split('@')[-1]!r}, tracker={self.tracker!r})"


class CallbackGate(httpx.BaseTransport):
    """The demo emulator's way out for callbacks: to this server's own callback route on loopback
    (and nowhere else on it), everything else through the guard like any other user address."""

    def __init__(self, server_origin: str | None, guarded: httpx.BaseTransport) -> None:
        self._origin = httpx.URL(server_origin) if server_origin else None
        self._guarded = guarded
        # Built at the first callback: an httpx transport loads the CA bundle (~45 ms) as it is
        # made, which the server would otherwise pay while its first page loads.
        self._loopback: httpx.HTTPTransport | None = None
        self._lock = threading.Lock()

    def _own(self) -> httpx.HTTPTransport:
        with self._lock:
            if self._loopback is None:
                self._loopback = httpx.HTTPTransport(trust_env=False)
            return self._loopback

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        origin = self._origin
        own = (
            origin is not None
            and (request.url.scheme, request.url.host, request.url.port) == (origin.scheme, origin.host, origin.port)
            and request.url.path.startswith(CALLBACK_PREFIX)
        )
        return (self._own() if own else self._guarded).handle_request(request)

    def close(self) -> None:
        if self._loopback is not None:
            self._loopback.close()
        self._guarded.close()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


_STUDIOS = Registry(max_entries=8)


def studio_for(config: DeploymentConfig) -> Studio:
    """The process's services for this configuration (built once)."""
    return _STUDIOS.get(config.identity, lambda: Studio(config), Studio.close)


def shutdown_all() -> None:
    """Close every studio of this process (server shutdown, tests)."""
    _STUDIOS.clear()
