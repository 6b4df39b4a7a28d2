"""The emulator as an httpx transport: demo mode and tests run the real client against it, in-process.

``LumaClient(api_key="demo", transport=emulator.transport())`` sends every request (any host: API,
upload host, file URLs) to :meth:`Emulator.handle` without touching the network. The async side
runs the same sync handler in a worker thread, so injected latency, sample generation or an
injected hang never block the event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import anyio
import httpx

from .core import EmulatorRequest, EmulatorResponse

if TYPE_CHECKING:
    from .core import Emulator

__all__ = ["EmulatorTransport"]


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


class EmulatorTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Answers httpx requests from an :class:`~luma.emulator.core.Emulator`."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

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
            self.emulator._sleep(wait)
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
        """Sync path: the emulator answers in the calling thread."""
        return self._answer(request, request.read())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Async path: the same handler, in a worker thread."""
        body = await request.aread()
        return await anyio.to_thread.run_sync(self._answer, request, body)

    def close(self) -> None:
        """Nothing to release: the emulator outlives its transports (close the emulator itself)."""

    async def aclose(self) -> None:
        """Nothing to release: the emulator outlives its transports."""

    def __repr__(self) -> str:
        return f"EmulatorTransport({self.emulator!r})"
