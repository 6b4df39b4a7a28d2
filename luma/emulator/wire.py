"""The wire types both adapters share: one HTTP request in, one answer out, and their parsers.

The in-process httpx transport (``transport.py``) and the loopback server (``server.py``) turn
what they receive into an :class:`EmulatorRequest`, hand it to a :class:`Service` (the emulator's
backend is one) and turn the :class:`EmulatorResponse` back into HTTP. Adapters import this module
and never the backend, so the backend can be loaded, tested and replaced without them, as moto
keeps its models apart from the layers that expose them.

Everything here is pure: no state, no I/O except reading a response's file lazily.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from email.parser import HeaderParser
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "EmulatorRequest",
    "EmulatorResponse",
    "Service",
    "json_response",
    "parse_multipart",
    "parse_range",
    "text_response",
]

_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*")
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class EmulatorRequest:
    """One HTTP request, as both adapters hand it to :meth:`Service.handle`."""

    method: str
    """Upper-case HTTP method."""
    target: str
    """Path and query as sent (``/api/v1/modify/record-info?taskId=...``)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Header values by lower-case name."""
    body: bytes = b""
    """The whole request body."""
    read_timeout: float | None = None
    """The caller's own read timeout, when known (in-process); caps an injected hang."""

    @classmethod
    def build(
        cls,
        method: str,
        target: str,
        headers: Iterable[tuple[str, str]],
        body: bytes = b"",
        read_timeout: float | None = None,
    ) -> EmulatorRequest:
        """Build from raw header pairs (names are folded to lower case)."""
        folded: dict[str, str] = {}
        for name, value in headers:
            folded[name.lower()] = value
        return cls(method.upper(), target, folded, body, read_timeout)

    @property
    def path(self) -> str:
        """The URL path, percent-decoding left to the routes."""
        return urlsplit(self.target).path or "/"

    @property
    def query(self) -> dict[str, str]:
        """First value of each query parameter."""
        return {k: v[0] for k, v in parse_qs(urlsplit(self.target).query, keep_blank_values=True).items()}


@dataclass
class EmulatorResponse:
    """What :meth:`Service.handle` answers; the adapters turn it into HTTP."""

    status: int
    """HTTP status."""
    headers: list[tuple[str, str]] = field(default_factory=list)
    """Response headers (Content-Length included)."""
    body: bytes = b""
    """Body bytes, when not streamed from ``file``."""
    file: Path | None = None
    """A file to stream instead of ``body``."""
    offset: int = 0
    """First byte of ``file`` to send."""
    length: int = 0
    """Bytes of ``file`` to send (0 with ``file=None``)."""
    hang: float = 0.0
    """When > 0: send nothing, hold the connection this many seconds, then drop it."""
    send_body: bool = True
    """False for HEAD: headers only."""

    def chunks(self) -> Iterator[bytes]:
        """The body, in chunks (reads ``file`` lazily)."""
        if not self.send_body:
            return
        if self.file is None:
            if self.body:
                yield self.body
            return
        remaining = self.length
        with open(self.file, "rb") as handle:
            handle.seek(self.offset)
            while remaining > 0:
                chunk = handle.read(min(_CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk

    def header(self, name: str) -> str | None:
        """First header value by case-insensitive name."""
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)


class Service(Protocol):
    """What an adapter serves: :class:`~luma.emulator.backend.EmulatorBackend` is one.

    Adapters are typed against this, never against the backend's class, so importing an adapter
    never loads the backend (and PyAV behind it).
    """

    @property
    def public_base(self) -> str:
        """Origin of the file URLs the service hands out; adapters answer ``/files/`` there."""
        ...

    def handle(self, request: EmulatorRequest) -> EmulatorResponse:
        """Answer one request; thread-safe, never raises for anything a client can send."""
        ...

    def hold(self, seconds: float) -> None:
        """Wait out an injected timeout (:attr:`EmulatorResponse.hang`) on the service's own clock."""
        ...

    def configure(self, **changes: Any) -> object:
        """Change settings on the running service (the server points ``public_base`` at itself)."""
        ...


# --- pure answers --------------------------------------------------------------------------------


def json_response(status: int, value: Any, extra: Iterable[tuple[str, str]] = ()) -> EmulatorResponse:
    """A compact JSON answer with its length (``extra`` headers after the standard ones)."""
    payload = json.dumps(value, separators=(",", ":")).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload))), *extra]
    return EmulatorResponse(status, headers, payload)


def text_response(status: int, reason: str, extra: Iterable[tuple[str, str]] = (), *,
                  content_type: str = "text/plain; charset=utf-8") -> EmulatorResponse:
    """A one-line text answer (file-host errors, the bot filter's page)."""
    payload = (reason + "\n").encode()
    headers = [("Content-Type", content_type), ("Content-Length", str(len(payload))), *extra]
    return EmulatorResponse(status, headers, payload)


# --- parsers -------------------------------------------------------------------------------------


def parse_range(header: str, size: int) -> tuple[int, int] | Literal["unsatisfiable"] | None:
    """One ``bytes=`` range: (start, end) inclusive, "unsatisfiable", or None to send it all.

    Several ranges, or syntax we do not understand, get the whole file (RFC 9110 allows that).
    """
    match = _RANGE.fullmatch(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = int(last)
        if suffix == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - suffix), size - 1
    start = int(first)
    if last and int(last) < start:
        return None  # syntactically invalid: ignored, per RFC 9110
    if start >= size:
        return "unsatisfiable"
    end = int(last) if last else size - 1
    return start, min(end, size - 1)


def parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, str], dict[str, tuple[str | None, str | None, bytes]]]:
    """Split a multipart/form-data body into text fields and files.

    Returns ``(fields, files)``: ``fields[name] = text``; ``files[name] = (filename, content type,
    bytes)``. Parts are located with ``bytes.find`` (fast on large videos); their headers are read
    by the stdlib email parser. Raises ``ValueError`` on a body that is not well formed.
    """
    header = HeaderParser().parsestr(f"Content-Type: {content_type}\r\n\r\n")
    boundary = header.get_param("boundary")
    if not boundary or not isinstance(boundary, str):
        raise ValueError("no boundary in the Content-Type")
    delimiter = b"--" + boundary.encode("latin-1")
    fields: dict[str, str] = {}
    files: dict[str, tuple[str | None, str | None, bytes]] = {}
    start = body.find(delimiter)
    if start < 0:
        raise ValueError("the boundary never appears")
    position = start + len(delimiter)
    while True:
        if body[position:position + 2] == b"--":
            break  # the closing delimiter
        if body[position:position + 2] != b"\r\n":
            raise ValueError("a boundary line is not followed by CRLF")
        position += 2
        end = body.find(b"\r\n" + delimiter, position)
        if end < 0:
            raise ValueError("a part is not terminated by the boundary")
        part = body[position:end]
        head_end = part.find(b"\r\n\r\n")
        if head_end < 0:
            raise ValueError("a part has no header section")
        headers = HeaderParser().parsestr(part[:head_end].decode("utf-8", "replace") + "\r\n\r\n")
        content = part[head_end + 4:]
        disposition = headers.get("Content-Disposition", "")
        if not disposition.lower().startswith("form-data"):
            raise ValueError("a part is not form-data")
        name = headers.get_param("name", header="Content-Disposition")
        filename = headers.get_param("filename", header="Content-Disposition")
        if isinstance(name, tuple) or isinstance(filename, tuple):  # RFC 2231 encoded values
            name = name if not isinstance(name, tuple) else name[2]
            filename = filename if not isinstance(filename, tuple) else filename[2]
        if not name:
            raise ValueError("a part has no name")
        if filename is not None:
            files[name] = (filename or None, headers.get_content_type() if headers.get("Content-Type") else None, content)
        else:
            fields[name] = content.decode("utf-8", "replace")
        position = end + 2 + len(delimiter)
    return fields, files

