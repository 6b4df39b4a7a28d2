"""Lending a transport that someone else owns to a short-lived httpx client."""

from __future__ import annotations

import httpx

__all__ = ["AsyncBorrowedTransport", "BorrowedTransport"]


class BorrowedTransport(httpx.BaseTransport):
    """Delegates to a caller's transport without closing it.

    The dashboard shares one emulator transport between every client it makes; closing a
    client must not close the transport under the others.
    """

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._inner.handle_request(request)

    def close(self) -> None:
        pass


class AsyncBorrowedTransport(httpx.AsyncBaseTransport):
    """The async twin of :class:`BorrowedTransport`."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        pass
