"""The server's own HTTP routes (served by ``st.App`` beside Streamlit): callbacks and health.

``POST /api/callbacks/luma/<token>``
    The provider's callback. The token is a per-task secret this dashboard put in the callback
    URL it gave the provider; the ledger keeps only its SHA-256, and the lookup compares hashes in
    constant time. When the deployment sets the provider's webhook HMAC key, the signature must
    verify too (the spec's scheme: taskId + timestamp, a 300 s window). The provider signs only
    the task id and the time, never the body, so a callback is a *nudge*: the tracker reads that
    task from the provider at once, and that read is what the ledger records. Duplicates and
    replays are harmless. Refusals: unknown token 401, bad or stale signature 403, a body over
    64 KiB 413, another method 405, with nothing written. It answers within a
    second either way: the work is two short database statements.

``GET /api/health``
    JSON for an uptime monitor: the ledger reachable or not, the tracker's last cycle and lag,
    callbacks received, the mode, the version. No secret, no task data. 200 when healthy, 503
    otherwise. When the deployment sets ``[health] token``, the route wants it as a bearer token.

Every route authenticates itself: the page's password gate does not cover them. Imports
Starlette, never Streamlit.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["CALLBACK_PREFIX", "MAX_CALLBACK_BYTES", "CallbackLog", "callback_token", "routes"]

_LOG = logging.getLogger("luma.web")

CALLBACK_PREFIX = "/api/callbacks/luma/"
MAX_CALLBACK_BYTES = 64 * 1024
"""The provider's callback is a few hundred bytes; anything much larger is not one."""
_TEST_TTL = 120.0
VERSION = "0.5.0"


def callback_token() -> tuple[str, str]:
    """A new per-task callback secret and its SHA-256 (the ledger keeps only the hash)."""
    token = secrets.token_urlsafe(24)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    """The SHA-256 of a callback secret, as the ledger stores it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass
class CallbackLog:
    """What the receiver has seen since the server started (for Settings and health)."""

    received: int = 0
    """Valid callbacks accepted."""
    refused: int = 0
    """Callbacks refused (bad token, bad signature, too large)."""
    last_received_at: datetime | None = None
    """When the last valid one arrived (UTC)."""
    last_refusal: str | None = None
    """Why the last one was refused (plain words, no secrets)."""
    _tests: dict[str, float] = field(default_factory=dict)
    _tests_seen: dict[str, datetime] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def accepted(self) -> None:
        with self._lock:
            self.received += 1
            self.last_received_at = datetime.now(UTC)

    def refuse(self, why: str) -> None:
        with self._lock:
            self.refused += 1
            self.last_refusal = why

    def new_test(self) -> str:
        """A one-time token for "send a test callback" (valid two minutes, never in the ledger)."""
        token = "test-" + secrets.token_urlsafe(18)
        with self._lock:
            now = time.monotonic()
            self._tests = {t: at for t, at in self._tests.items() if now - at < _TEST_TTL}
            self._tests[token] = now
        return token

    def take_test(self, token: str) -> bool:
        """True (once) when ``token`` is a live test token; records that it arrived."""
        with self._lock:
            at = self._tests.pop(token, None)
            if at is None or time.monotonic() - at > _TEST_TTL:
                return False
            self._tests_seen[token] = datetime.now(UTC)
            return True

    def test_seen(self, token: str) -> datetime | None:
        """When the test callback with this token arrived (None: not yet)."""
        with self._lock:
            return self._tests_seen.get(token)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status, headers={"Cache-Control": "no-store"})


async def _body(request: Request) -> bytes | None:
    """The request body, or None when it is over the limit (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_CALLBACK_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_CALLBACK_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _body_task_id(body: bytes) -> str | None:
    try:
        data = json.loads(body or b"null")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    inner = data.get("data")
    if isinstance(inner, dict):
        value = inner.get("taskId") or inner.get("task_id")
        if value:
            return str(value)
    value = data.get("taskId")
    return str(value) if value else None


def routes(get_studio: Callable[[], Any], *, version: str = VERSION) -> list[Route]:
    """The server's routes over the process's :class:`studio.service.Studio` (``get_studio()``
    raises the ledger's error when it cannot be built; the routes answer 503 then)."""

    async def callback(request: Request) -> Response:
        if request.method != "POST":
            # Answered here: left to routing, a GET would fall through to Streamlit's page (200).
            return JSONResponse({"ok": False, "error": "Callbacks are POSTed."}, status_code=405, headers={"Allow": "POST"})
        token = str(request.path_params.get("token", ""))
        body = await _body(request)
        try:
            studio = await anyio.to_thread.run_sync(get_studio)
        except Exception as err:  # noqa: BLE001 - the provider retries; say so and write nothing
            _LOG.warning("A callback arrived while the ledger was unreachable (%s).", type(err).__name__)
            return _error(503, "The ledger is unreachable; try again later.")
        log: CallbackLog = studio.callbacks
        if body is None:
            log.refuse("the body was over the size limit")
            return _error(413, f"A callback body is at most {MAX_CALLBACK_BYTES} bytes.")
        if token.startswith("test-"):
            if log.take_test(token):
                return JSONResponse({"ok": True, "test": True})
            log.refuse("an unknown test token")
            return _error(401, "Unknown callback token.")
        hashed = token_hash(token)
        row = await anyio.to_thread.run_sync(studio.ledger.find_callback, hashed)
        # Looked up by hash, then compared in constant time all the same.
        if row is None or not row.callback_token or not hmac.compare_digest(row.callback_token, hashed) or not row.task_id:
            log.refuse("an unknown callback token")
            return _error(401, "Unknown callback token.")
        claimed = _body_task_id(body)
        if claimed is not None and claimed != row.task_id:
            log.refuse("the body names another task")
            return _error(403, "The callback names another task.")
        key = studio.callback_key(row.mode)
        if key:
            # Imported here: app.py imports this module before the server answers, and the luma
            # client (httpx, httpcore) is for the start-up thread to load, not the health check.
            from luma.callbacks import verify_signature
            from luma.errors import SignatureError

            try:
                verify_signature(
                    row.task_id,
                    request.headers.get("x-webhook-timestamp"),
                    request.headers.get("x-webhook-signature"),
                    key,
                )
            except SignatureError as err:
                log.refuse(err.message)
                return _error(403, err.message)
        now = datetime.now(UTC)
        await anyio.to_thread.run_sync(studio.ledger.record_callback, row.task_id, now)
        studio.tracker.nudge()
        log.accepted()
        return JSONResponse({"ok": True})

    async def health(request: Request) -> Response:
        try:
            studio = await anyio.to_thread.run_sync(get_studio)
        except Exception as err:  # noqa: BLE001 - unhealthy, in words, without the URL
            return JSONResponse(
                {"status": "unhealthy", "ledger": {"reachable": False, "error": type(err).__name__}, "version": version},
                status_code=503,
                headers={"Cache-Control": "no-store"},
            )
        token = studio.config.health_token
        if token:
            given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), token.encode()):
                return _error(401, "This health check needs its token (Authorization: Bearer ...).")
        report = await anyio.to_thread.run_sync(studio.health)
        return JSONResponse(report, status_code=200 if report["status"] == "healthy" else 503,
                            headers={"Cache-Control": "no-store"})

    return [
        Route(CALLBACK_PREFIX + "{token}", callback, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
        Route("/api/health", health, methods=["GET"]),
    ]
