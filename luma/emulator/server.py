"""The emulator over real HTTP: a stdlib ``ThreadingHTTPServer`` on loopback, HTTP/1.1 keep-alive.

Every request is handed to the same handler the in-process transport uses, so the
API paths, the upload paths and ``/files/...`` behave identically over a socket. An injected
timeout holds the connection for ``timeout_seconds`` and then closes it without an answer, which
is what a client sees when a provider hangs. The request log (off unless ``verbose``) prints the
method, path and status only: never a header, so never the API key.

Like the transport, the server knows the emulator only as a :class:`~luma.emulator.wire.Service`.
"""

from __future__ import annotations

import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TextIO

from .config import DEFAULT_PUBLIC_BASE
from .wire import EmulatorRequest, Service

__all__ = ["EmulatorServer"]

# Uploads and creates never need more than the largest video plus multipart framing.
_MAX_BODY = 600 * 1024 * 1024


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    emulator: Service
    verbose: bool
    log_to: TextIO
    stopping: threading.Event


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class _BodyError(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "luma-emulator/1.0"
    # Headers and body go out in separate writes; without this, Nagle's algorithm meets the
    # client's delayed ACK and every keep-alive request stalls ~40 ms.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def do_GET(self) -> None:
        self._dispatch()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET  # noqa: N815

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except _BodyError as exc:
            self.close_connection = True
            self.send_error(400 if str(exc) != "too large" else 413, str(exc))
            return
        request = EmulatorRequest.build(self.command, self.path, self.headers.items(), body)
        answer = self.server.emulator.handle(request)
        if answer.hang > 0:
            # Hold the request like a stuck upstream, then drop the connection without a byte.
            self.server.stopping.wait(answer.hang)
            self.close_connection = True
            return
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        try:
            for chunk in answer.chunks():
                self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            # A browser seeking in a video drops connections mid-body; nothing to report.
            self.close_connection = True

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        if not length.isdigit():
            raise _BodyError("bad Content-Length")
        size = int(length)
        if size > _MAX_BODY:
            raise _BodyError("too large")
        return self.rfile.read(size)

    def _read_chunked(self) -> bytes:
        # httpx streams uploads with a progress callback as chunked bodies.
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";")[0].strip(), 16)
            except ValueError:
                raise _BodyError("bad chunk size") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            total += size
            if total > _MAX_BODY:
                raise _BodyError("too large")
            parts.append(self.rfile.read(size))
            self.rfile.readline(16)  # the CRLF after each chunk

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if self.server.verbose:
            print(f"{self.address_string()} {self.command} {self.path} -> {code}", file=self.server.log_to, flush=True)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        if self.server.verbose:
            print(f"{self.address_string()} {format % args}", file=self.server.log_to, flush=True)


class EmulatorServer:
    """Serves an emulator (any :class:`~luma.emulator.wire.Service`) on ``host:port`` (port 0 picks a free one)."""

    def __init__(
        self,
        emulator: Service,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        verbose: bool = False,
        log_to: TextIO | None = None,
    ) -> None:
        server_class = _HTTPServer6 if ":" in host else _HTTPServer
        self._httpd = server_class((host, port), _Handler)
        self._httpd.emulator = emulator
        self._httpd.verbose = verbose
        self._httpd.log_to = log_to if log_to is not None else sys.stderr
        self._httpd.stopping = threading.Event()
        self.emulator = emulator
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None
        if emulator.public_base == DEFAULT_PUBLIC_BASE:
            # File URLs must point at this server, or browsers and the preflight cannot fetch them.
            emulator.configure(public_base=self.url)

    @property
    def url(self) -> str:
        """``http://host:port`` of this server."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> EmulatorServer:
        """Serve in a background daemon thread; returns self."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="luma-emulator-server", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until :meth:`close` (or KeyboardInterrupt)."""
        self._httpd.serve_forever(poll_interval=0.1)

    def close(self) -> None:
        """Stop serving, release held (hanging) requests and the socket. The emulator stays open."""
        self._httpd.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
