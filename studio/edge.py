"""The web edge: ASGI middleware in front of Streamlit (installed by app.py through ``st.App``).

It does three things on plain HTTP (the websocket passes through untouched):

* gives every browser an id in an HTTP-only cookie (``luma_browser``), set on the page response
  when missing, so the server can tell one browser from another across tabs and reloads
  without any script being able to read or steal it;
* serves Streamlit's ``/media/`` files (videos handed over as bytes, export files) only to a
  browser with a live session past the access gate (:class:`studio.access.BrowserGrants`):
  anyone else, including someone holding a copied file URL, gets 403;
* adds security headers to every response: no MIME sniffing, no referrer to other sites, a
  content security policy Streamlit's own page works under (its scripts and styles are inline,
  so those stay allowed; nothing loads from other origins but media and images, which live
  results need), frame rules that keep Community Cloud's embedding working, and HSTS over TLS.

Pure ASGI (no ``BaseHTTPMiddleware``), so range requests and streamed video bodies pass
through unbuffered. Imports Starlette only, never Streamlit. :func:`quiet_protocol_errors` keeps
the websocket's forged messages to one log line.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

from .access import BrowserGrants

__all__ = ["BROWSER_COOKIE", "EdgeMiddleware", "browser_id_from", "quiet_protocol_errors"]

BROWSER_COOKIE = "luma_browser"
# A year: the id is what "Mine" means for a browser without a sign-in.
_COOKIE_MAX_AGE = 365 * 24 * 3600
_VALID_ID = re.compile(r"^[A-Za-z0-9_-]{20,64}$")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def browser_id_from(cookie_header: str | None) -> str | None:
    """The browser id in a ``Cookie`` header value, or None when absent or malformed."""
    if not cookie_header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(cookie_header)
    except CookieError:
        return None
    morsel = jar.get(BROWSER_COOKIE)
    value = morsel.value if morsel is not None else None
    return value if value and _VALID_ID.match(value) else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _is_https(scope: Scope) -> bool:
    if scope.get("scheme") == "https":
        return True
    # Behind a TLS-terminating proxy the request arrives as http.
    return (_header(scope, b"x-forwarded-proto") or "").split(",")[0].strip().lower() == "https"


class EdgeMiddleware:
    """Browser-id cookie on page responses; ``/media/`` only for browsers past the gate."""

    def __init__(
        self, app: ASGIApp, *, grants: BrowserGrants, base_path: str | Callable[[], str] = ""
    ) -> None:
        self.app = app
        self.grants = grants
        # A callable: the server's base path is configured after this module is imported.
        self._base_path = base_path if callable(base_path) else (lambda: base_path)

    @property
    def media_prefix(self) -> str:
        """Where Streamlit serves media files (under the configured base path)."""
        base = self._base_path().strip("/")
        return f"/{base}/media/" if base else "/media/"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        secure = _is_https(scope)
        extra = security_headers(secure=secure)
        browser = browser_id_from(_header(scope, b"cookie"))
        if scope.get("path", "").startswith(self.media_prefix) and not self.grants.allows(browser):
            await _forbidden(send, extra)
            return
        cookie = None if browser is not None else _set_cookie(secrets.token_urlsafe(24), secure=secure)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                # The id goes on the page itself only: static files and API answers need none.
                if cookie is not None and content_type.startswith(b"text/html"):
                    headers.append((b"set-cookie", cookie.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Community Cloud shows an app inside its own pages; anything else may not frame the dashboard.
FRAME_ANCESTORS = "'self' https://*.streamlit.app https://share.streamlit.io"
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        # Streamlit's page and its charts run inline scripts and styles, and Vega compiles expressions;
        # an inline v2 component (the compare player) is loaded by Streamlit from a blob: URL.
        "script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob: https:",
        # Live results play straight from the provider's file host.
        "media-src 'self' data: blob: https:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "frame-src 'self'",
        f"frame-ancestors {FRAME_ANCESTORS}",
        "object-src 'none'",
        "base-uri 'self'",
    )
)


def security_headers(*, secure: bool) -> list[tuple[bytes, bytes]]:
    """The headers added to every HTTP response."""
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    ]
    if secure:
        headers.append((b"strict-transport-security", b"max-age=31536000"))
    return headers


def _set_cookie(value: str, *, secure: bool) -> str:
    parts = [f"{BROWSER_COOKIE}={value}", "Path=/", f"Max-Age={_COOKIE_MAX_AGE}", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


async def _forbidden(send: Send, extra: list[tuple[bytes, bytes]]) -> None:
    body = b"This file is only served to a signed-in browser session. Open the dashboard and try again.\n"
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class _OneLineProtocolErrors(logging.Filter):
    """Streamlit logs a full traceback for every undecodable websocket message; anyone can send
    one, so keep it to one line (the message is still refused and the socket closed)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Error deserializing back message"):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_protocol_errors() -> None:
    """Install :class:`_OneLineProtocolErrors` on Streamlit's websocket logger (idempotent)."""
    logger = logging.getLogger("streamlit.web.server.starlette.starlette_websocket")
    if not any(isinstance(f, _OneLineProtocolErrors) for f in logger.filters):
        logger.addFilter(_OneLineProtocolErrors())
