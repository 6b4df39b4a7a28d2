"""The emulator as an httpx transport: demo mode and tests run the real client against it, in-process.

``LumaClient(api_key="demo", transport=emulator.transport())`` sends the API and upload paths (on
any host: it is the provider) and everything on the emulator's own ``public_base`` (its file host)
to the emulator's handler, without touching the network. Any other request (a video on another
host) goes to the ``network`` transport it was given, or fails as an unreachable host when there
is none: answering ``/files/`` for any host would let ``http://169.254.169.254/files/...`` pass a
video check that never contacted it. The async side runs the same sync handler in a worker
thread, so injected latency, sample generation or an injected hang never block the event loop.

This adapter knows the emulator only as a :class:`~luma.emulator.wire.Service`: importing it never
loads the backend (nor PyAV behind it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import anyio
import httpx

from .._constants import (
    DEFAULT_API_BASE,
    DEFAULT_UPLOAD_BASE,
    PATH_CREATE,
    PATH_CREDITS,
    PATH_DOWNLOAD_URL,
    PATH_RECORD,
    PATH_UPLOAD_BASE64,
    PATH_UPLOAD_STREAM,
    PATH_UPLOAD_URL,
)
from .wire import EmulatorRequest, EmulatorResponse, Service

__all__ = ["EmulatorTransport"]

# The provider's own hosts: every path there is the provider's (a wrong one gets its 404).
_PROVIDER_HOSTS = frozenset(str(httpx.URL(base).host) for base in (DEFAULT_API_BASE, DEFAULT_UPLOAD_BASE))
# The API and upload paths, matched as suffixes: a client may reach them through a prefix
# ("https://proxy.example/kie" + path).
_PROVIDER_PATHS = (
    PATH_CREATE, PATH_RECORD, PATH_CREDITS, PATH_DOWNLOAD_URL, PATH_UPLOAD_STREAM, PATH_UPLOAD_BASE64,
    PATH_UPLOAD_URL,
)


class _Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body read lazily (result videos can be large), usable sync and async."""

    def __init__(self, response: EmulatorResponse) -> None:
        self._response = response

    def __iter__(self) -> Iterator[bytes]:
        yield from self._response.chunks()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        # Local file reads of 64 KiB chunks are short enough to do on the loop thread.
        for chunk in self._response.chunks():
            yield chunk


def _origin(scheme: str, host: str, port: int | None) -> tuple[str, str, int | None]:
    return scheme.lower(), host.lower().rstrip("."), port or {"http": 80, "https": 443}.get(scheme.lower())


class EmulatorTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Answers httpx requests from an emulator (any :class:`~luma.emulator.wire.Service`); others go to ``network``."""

    def __init__(
        self, emulator: Service, *, network: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.emulator = emulator
        #: Where requests the emulator does not serve go (None: they fail as unreachable).
        self.network = network

    @property
    def local_origins(self) -> tuple[str, ...]:
        """The origins answered in-process (the emulator's ``public_base``), for the video check."""
        return (self.emulator.public_base.rstrip("/"),)

    def serves(self, url: httpx.URL) -> bool:
        """Whether the emulator answers ``url`` itself: its own origin, or an API or upload path."""
        ours = urlsplit(self.emulator.public_base)
        if _origin(url.scheme, url.host, url.port) == _origin(ours.scheme, ours.hostname or "", ours.port):
            return True
        if url.host in _PROVIDER_HOSTS:
            return True
        # The API on whatever host the client is set up with; unknown /api/ paths get the
        # provider's 404 envelope, as from the real API.
        path = url.path.rstrip("/")
        return path.startswith("/api/") or path.endswith(_PROVIDER_PATHS)

    def _unreachable(self, request: httpx.Request) -> httpx.ConnectError:
        return httpx.ConnectError(
            f"{request.url.host} is not served by the emulator, and no network transport was given",
            request=request,
        )

    def _answer(self, request: httpx.Request, body: bytes) -> httpx.Response:
        timeouts = request.extensions.get("timeout") or {}
        emulated = EmulatorRequest.build(
            request.method,
            request.url.raw_path.decode("ascii"),
            request.headers.multi_items(),
            body,
            read_timeout=timeouts.get("read"),
        )
        answer = self.emulator.handle(emulated)
        if answer.hang > 0:
            # The request was received (a create has happened) but the answer never comes: wait
            # as long as the caller would have, then fail the way a real socket read would.
            wait = answer.hang if emulated.read_timeout is None else min(answer.hang, emulated.read_timeout)
            self.emulator.hold(wait)
            raise httpx.ReadTimeout("The emulator held the request without answering (injected timeout)",
                                    request=request)
        return httpx.Response(
            answer.status,
            headers=answer.headers,
            stream=_Body(answer),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Sync path: the emulator answers in the calling thread; other hosts go to ``network``."""
        if not self.serves(request.url):
            if not isinstance(self.network, httpx.BaseTransport):
                raise self._unreachable(request)
            return self.network.handle_request(request)
        return self._answer(request, request.read())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Async path: the same handler, in a worker thread; other hosts go to an async ``network``."""
        if not self.serves(request.url):
            if not isinstance(self.network, httpx.AsyncBaseTransport):
                raise self._unreachable(request)
            return await self.network.handle_async_request(request)
        body = await request.aread()
        return await anyio.to_thread.run_sync(self._answer, request, body)

    def close(self) -> None:
        """Nothing to release: the emulator outlives its transports, and ``network`` is the caller's."""

    async def aclose(self) -> None:
        """Nothing to release: the emulator outlives its transports, and ``network`` is the caller's."""

    def __repr__(self) -> str:
        return f"EmulatorTransport({self.emulator!r})"
