"""``LumaClient`` and ``AsyncLumaClient``: every documented endpoint, typed, with safe retries.

Both clients share one core: requests are described once (:class:`_Call`), answers are read by
one function (:func:`interpret_response`), and only the sending differs. The transport is
injectable, so tests (``httpx.MockTransport``) and the offline emulator plug in underneath and
run exactly the code that talks to the real provider.

Choices the brief leaves to us, stated once:

* Arguments are checked before anything is sent; a refused argument raises
  :class:`~luma.errors.InvalidInputError` (a :class:`ValueError` too). A bad client setup (base
  URL, key text, timeout) raises :class:`~luma.errors.ConfigurationError`.
* ``api_key=None`` or a blank key sends no ``Authorization`` header; the provider then answers
  401, which becomes :class:`~luma.errors.AuthenticationError`.
* The key is sent only to the origins of ``api_base`` and ``upload_base``; ``fetch`` of any
  other host carries no ``Authorization`` header, and httpx strips it on cross-origin redirects.
* A server fetching URLs users gave it passes ``transport=luma.egress.guarded_transport()``:
  every connection, redirect hops included, then goes to public addresses only, and a refused
  one raises :class:`~luma.errors.AddressRefusedError`, which is never retried.
* An injected transport belongs to the caller: closing the client does not close it.
* Reads (``get_task``, ``get_tasks``, ``get_credits``, ``get_download_url``, ``fetch``) are
  retried on 429, 455, 5xx except 501/505 (definitive answers), timeouts, dropped connections
  and malformed answers. Creates and uploads are sent again only after a
  :class:`~luma.errors.ConnectError`: anything later may have reached the provider.
* ``record-info`` answering ``data: null`` reads as :class:`~luma.errors.NotFoundError` (the
  shape of an unknown id is undocumented; an empty record says the same as a 404).
"""

from __future__ import annotations

import asyncio
import base64
import json
import mimetypes
import re
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, Generic, Literal, TypeVar

import httpx

from ._constants import (
    CONNECT_TIMEOUT,
    DEFAULT_API_BASE,
    DEFAULT_CONCURRENCY,
    DEFAULT_UPLOAD_BASE,
    DEFAULT_UPLOAD_PATH,
    PATH_CREATE,
    PATH_CREDITS,
    PATH_DOWNLOAD_URL,
    PATH_RECORD,
    PATH_UPLOAD_BASE64,
    PATH_UPLOAD_STREAM,
    PATH_UPLOAD_URL,
    READ_TIMEOUT,
    RETRY_AFTER_CAP,
    UPLOAD_CHUNK_BYTES,
    UPLOAD_TIMEOUT,
    USER_AGENT,
)
from ._retry import CreateLimiter, RetryPolicy, is_retryable_read, is_unsent, parse_retry_after
from ._transport import AsyncBorrowedTransport, BorrowedTransport
from .egress import refusal_of
from .errors import (
    AddressRefusedError,
    APIError,
    ConfigurationError,
    ConnectError,
    InvalidInputError,
    LumaError,
    MalformedResponseError,
    RequestTimeout,
    TransportError,
    error_for_code,
)
from .models import Task, TaskBatch, UploadedFile, parse_task, parse_upload

__all__ = ["AsyncLumaClient", "LumaClient", "interpret_response"]

T = TypeVar("T")
Envelope = Literal["api", "upload", "raw"]
ProgressCallback = Callable[[int, int], None]

# --- reading answers ----------------------------------------------------------------------------

_NOT_JSON = object()


def _json_body(response: httpx.Response) -> Any:
    if not response.content:
        return _NOT_JSON
    try:
        return json.loads(response.content)
    except (ValueError, RecursionError):
        # ValueError covers JSONDecodeError and UnicodeDecodeError (an HTML error page, say).
        return _NOT_JSON


def _int_code(value: Any) -> int | None:
    """The envelope's ``code`` as an int (some proxies send "200"); None if absent or unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def interpret_response(
    response: httpx.Response,
    *,
    operation: str,
    envelope: Envelope = "api",
    now: float,
    retry_after_cap: float = RETRY_AFTER_CAP,
) -> Any:
    """Return the useful part of an answer, or raise the matching typed error.

    The one place where answers become errors. A failure is recognised from the HTTP status
    *and* the body (``code != 200``; for uploads also ``success: false``), whichever carries
    it: HTTP 200 with body code 402 and HTTP 402 with no body both become
    :class:`~luma.errors.InsufficientCreditsError`, and a proxy's HTML 502 page becomes
    :class:`~luma.errors.ServerError`. When both carry a code, the body's wins (it is the
    provider's own and more specific). ``msg`` is never matched on. A 2xx answer that is not
    the documented envelope raises :class:`~luma.errors.MalformedResponseError`.

    ``envelope`` is ``"api"`` (``{code, msg, data}``, returns ``data``), ``"upload"`` (the same
    plus ``success``) or ``"raw"`` (any file; returns the bytes). ``now`` is the wall-clock time
    used to read a ``Retry-After`` HTTP date.
    """
    status = response.status_code
    retry_after = parse_retry_after(
        response.headers.get("Retry-After"), now=now, cap=retry_after_cap
    )
    if envelope == "raw":
        if 200 <= status < 300:
            return response.content
        raise error_for_code(status, http_status=status, operation=operation, retry_after=retry_after)

    body = _json_body(response)
    mapping = body if isinstance(body, dict) else None
    body_code = _int_code(mapping.get("code")) if mapping is not None else None
    msg = mapping.get("msg") if mapping is not None else None
    provider_message = msg if isinstance(msg, str) and msg else None
    failed = envelope == "upload" and mapping is not None and mapping.get("success") is False

    code: int | None = None
    if body_code is not None and body_code != 200:
        code = body_code
    elif not 200 <= status < 300:
        code = status
    if code is not None:
        raise error_for_code(
            code,
            http_status=status,
            provider_message=provider_message,
            operation=operation,
            retry_after=retry_after,
        )
    if failed:
        raise APIError(
            "The upload host reported a failure without an error code. Try the upload again.",
            code=body_code if body_code is not None else status,
            http_status=status,
            provider_message=provider_message,
            operation=operation,
        )
    if mapping is None:
        raise MalformedResponseError(
            f"The provider's answer to {operation} was not the documented JSON envelope "
            f"(HTTP {status}, {response.headers.get('Content-Type', 'no content type')})."
        )
    succeeded = body_code == 200 or (
        envelope == "upload" and body_code is None and mapping.get("success") is True
    )
    if not succeeded:
        raise MalformedResponseError(
            f"The provider's answer to {operation} had no readable result code."
        )
    return mapping.get("data")


# --- checking arguments -------------------------------------------------------------------------


def _check_key(api_key: str | None) -> str | None:
    if api_key is None:
        return None
    if not isinstance(api_key, str):
        raise ConfigurationError("The API key must be text.")
    key = api_key.strip()
    if not key:
        return None
    # h11 echoes an illegal header value in its exception message; refusing such keys here
    # keeps the key out of every error text.
    if any(not 33 <= ord(ch) <= 126 for ch in key):
        raise ConfigurationError(
            "The API key contains spaces, line breaks or non-ASCII characters, so it cannot be "
            "sent. Copy it again from the provider's API key page."
        )
    return key


def _check_base(value: str, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{name} is empty: set it to the provider's https:// address.")
    text = value.strip().rstrip("/")
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL:
        raise ConfigurationError(f"{name} is not a valid URL.") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"{name} must be an http:// or https:// address with a host name."
        )
    if url.query or url.fragment:
        raise ConfigurationError(f"{name} must not contain a query or fragment.")
    return text


def _check_user_agent(value: str) -> str:
    if not isinstance(value, str) or not value.strip() or any(
        not 32 <= ord(ch) <= 126 for ch in value
    ):
        raise ConfigurationError(
            "user_agent must be non-empty printable ASCII (the upload host refuses clients "
            "without a real User-Agent)."
        )
    return value.strip()


def _check_text(value: Any, field: str, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"The {what} must be text.", field=field)
    if not value.strip():
        raise InvalidInputError(f"The {what} is empty.", field=field)
    return value


def _check_http_url(value: Any, field: str, what: str) -> str:
    text = _check_text(value, field, what).strip()
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL:
        raise InvalidInputError(f"The {what} is not a valid URL.", field=field) from None
    if url.scheme not in ("http", "https") or not url.host:
        # Echo only the scheme: the rest of whatever was pasted is not ours to repeat.
        scheme = f" (it starts with {url.scheme!r})" if url.scheme else ""
        raise InvalidInputError(
            f"The {what} must be a public http:// or https:// address{scheme}.", field=field
        )
    return text


def _optional_url(value: str | None, field: str, what: str) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _check_http_url(value, field, what)


def _check_upload_path(value: Any) -> str:
    text = _check_text(value, "upload_path", "upload folder").strip().strip("/")
    if not text:
        raise InvalidInputError("The upload folder is empty.", field="upload_path")
    return text


def _check_file_name(value: Any, *, required: bool) -> str | None:
    if value is None and not required:
        return None
    text = _check_text(value, "file_name", "file name").strip()
    if "/" in text or "\\" in text:
        raise InvalidInputError(
            "The file name must not contain folders; pass the folder as upload_path.",
            field="file_name",
        )
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise InvalidInputError("The file name contains control characters.", field="file_name")
    return text


def _check_concurrency(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError("concurrency must be a whole number of at least 1.", field="concurrency")
    return value


_MIME = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def _base64_payload(data: bytes | str, mime_type: str) -> str:
    """``base64Data`` for the upload host: always a data URL, so the host learns the type."""
    if not isinstance(mime_type, str) or not _MIME.fullmatch(mime_type):
        raise InvalidInputError("mime_type must look like 'video/mp4'.", field="mime_type")
    if isinstance(data, (bytes, bytearray, memoryview)):
        if not len(data):
            raise InvalidInputError("The file is empty.", field="data")
        return f"data:{mime_type};base64,{base64.b64encode(bytes(data)).decode('ascii')}"
    if not isinstance(data, str):
        raise InvalidInputError("data must be bytes or base64 text.", field="data")
    text = data.strip()
    prefix = ""
    payload = text
    if text.startswith("data:"):
        head, sep, payload = text.partition(",")
        if not sep or not head.endswith(";base64"):
            raise InvalidInputError(
                "The data URL must be base64-encoded ('data:<type>;base64,...').", field="data"
            )
        prefix = head + ","
    payload = "".join(payload.split())
    if not payload:
        raise InvalidInputError("The base64 data is empty.", field="data")
    if len(payload) % 4 or not _BASE64.fullmatch(payload):
        raise InvalidInputError("The data is not valid base64.", field="data")
    return (prefix or f"data:{mime_type};base64,") + payload


# --- streaming multipart uploads ----------------------------------------------------------------


class _FileSource:
    """The bytes of ``upload_file``'s argument, readable from the start as often as needed."""

    def __init__(self, file: bytes | BinaryIO) -> None:
        self._data: bytes | None = None
        self._file: BinaryIO | None = None
        self._start = 0
        if isinstance(file, (bytes, bytearray, memoryview)):
            self._data = bytes(file)
            self.size = len(self._data)
        elif hasattr(file, "read"):
            probe = file.read(0)
            if not isinstance(probe, bytes):
                raise InvalidInputError(
                    "The file is open in text mode; open it with 'rb'.", field="file"
                )
            seekable = getattr(file, "seekable", None)
            if callable(seekable) and seekable():
                self._file = file
                self._start = file.tell()
                self.size = file.seek(0, 2) - self._start
                file.seek(self._start)
            else:
                # A pipe or socket cannot be rewound for a re-send, nor measured for
                # Content-Length; read it once.
                self._data = file.read()
                self.size = len(self._data)
        else:
            raise InvalidInputError("file must be bytes or a binary file object.", field="file")
        if self.size <= 0:
            raise InvalidInputError("The file is empty.", field="file")

    def chunks(self) -> Iterator[bytes]:
        if self._data is not None:
            view = memoryview(self._data)
            for offset in range(0, self.size, UPLOAD_CHUNK_BYTES):
                yield bytes(view[offset : offset + UPLOAD_CHUNK_BYTES])
            return
        assert self._file is not None
        self._file.seek(self._start)
        remaining = self.size
        while remaining:
            chunk = self._file.read(min(UPLOAD_CHUNK_BYTES, remaining))
            if not chunk:
                # Content-Length is already promised; a short body would hang the server.
                raise InvalidInputError(
                    "The file got shorter while it was being uploaded.", field="file"
                )
            remaining -= len(chunk)
            yield chunk


def _form_quote(value: str) -> str:
    # The HTML5 multipart rules browsers (and httpx) follow for names in quoted parameters.
    return value.replace("\\", "\\\\").replace('"', "%22")


@dataclass(frozen=True)
class _Multipart:
    """A multipart/form-data body around one file: head and tail around the streamed bytes."""

    head: bytes
    tail: bytes
    content_type: str

    @classmethod
    def build(cls, *, upload_path: str, file_name: str, mime_type: str) -> _Multipart:
        boundary = uuid.uuid4().hex
        dash = f"--{boundary}\r\n"
        # Text fields before the file: a streaming server can then place the file as it arrives.
        head = (
            f'{dash}Content-Disposition: form-data; name="uploadPath"\r\n\r\n{upload_path}\r\n'
            f'{dash}Content-Disposition: form-data; name="fileName"\r\n\r\n{file_name}\r\n'
            f'{dash}Content-Disposition: form-data; name="file"; '
            f'filename="{_form_quote(file_name)}"\r\nContent-Type: {mime_type}\r\n\r\n'
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode("ascii")
        return cls(head, tail, f"multipart/form-data; boundary={boundary}")


def _stream_body(
    parts: _Multipart, source: _FileSource, progress: ProgressCallback | None
) -> Iterator[bytes]:
    yield parts.head
    sent = 0
    if progress is not None:
        progress(0, source.size)
    for chunk in source.chunks():
        yield chunk
        # Resumed only once the transport has taken the chunk: it counts as sent.
        sent += len(chunk)
        if progress is not None:
            progress(sent, source.size)
    yield parts.tail


async def _astream_body(
    parts: _Multipart, source: _FileSource, progress: ProgressCallback | None
) -> AsyncIterator[bytes]:
    # Chunks are read synchronously: in-memory files (what the dashboard uploads) never block,
    # and a 256 KiB read from local disk is shorter than the network write it feeds.
    for chunk in _stream_body(parts, source, progress):
        yield chunk


# --- describing requests ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Call(Generic[T]):
    """One request as both clients send it, and how to read its answer."""

    operation: str
    method: str
    url: str
    envelope: Envelope
    read: bool
    """True: idempotent, retried on transient failures. False: sent again only if never sent."""
    parse: Callable[[Any], T]
    params: dict[str, str] | None = None
    json: Any = None
    body: Callable[[], Any] | None = None
    """Builds a fresh streamed body per attempt (a consumed iterator cannot be re-sent)."""
    headers: dict[str, str] | None = None
    timeout: httpx.Timeout | None = None
    follow_redirects: bool = False


def _parse_task_id(data: Any) -> str:
    task_id = data.get("taskId") if isinstance(data, dict) else None
    if not isinstance(task_id, str) or not task_id.strip():
        raise MalformedResponseError(
            "The provider accepted the create request but its answer had no task id. The task "
            "may have been created: check the jobs list before submitting again."
        )
    return task_id.strip()


def _parse_credits(data: Any) -> int:
    if isinstance(data, bool):
        data = None
    if isinstance(data, float) and data.is_integer():
        return int(data)
    if isinstance(data, str) and data.strip().lstrip("-").isdigit():
        return int(data.strip())
    if isinstance(data, int):
        return data
    raise MalformedResponseError("The provider's credit balance was not a whole number.")


def _parse_bytes(data: Any) -> bytes:
    if not isinstance(data, bytes):
        raise MalformedResponseError("The file host's answer had no body.")
    return data


def _parse_link(data: Any) -> str:
    if isinstance(data, str) and data.strip().startswith(("http://", "https://")):
        return data.strip()
    raise MalformedResponseError("The provider's answer had no download link.")


def _task_parser(task_id: str) -> Callable[[Any], Task]:
    def parse(data: Any) -> Task:
        if data is None:
            # An unknown id's answer is undocumented; an empty record says the same as a 404.
            raise error_for_code(404, http_status=200, operation="get_task")
        return parse_task(data, task_id=task_id)

    return parse


def _guess_mime(file_name: str) -> str:
    return mimetypes.guess_type(file_name)[0] or "application/octet-stream"


def _host(url: str) -> str:
    try:
        return httpx.URL(url).host or url
    except httpx.InvalidURL:
        return url


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    port = url.port or {"http": 80, "https": 443}.get(url.scheme)
    return (url.scheme, url.host.lower(), port)


class _BearerAuth(httpx.Auth):
    """Adds the key only to requests for the configured API and upload origins."""

    def __init__(self, api_key: str, origins: Iterable[httpx.URL]) -> None:
        self._value = f"Bearer {api_key}"
        self._origins = frozenset(_origin(url) for url in origins)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if _origin(request.url) in self._origins:
            request.headers["Authorization"] = self._value
        yield request

    def __repr__(self) -> str:
        return "_BearerAuth(<hidden>)"


def _timeouts(timeout: float | httpx.Timeout | None) -> tuple[httpx.Timeout, httpx.Timeout]:
    """The timeout for ordinary calls, and a longer one for uploads."""
    if timeout is None:
        base = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
    elif isinstance(timeout, httpx.Timeout):
        base = timeout
    elif isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0:
        base = httpx.Timeout(float(timeout), connect=min(CONNECT_TIMEOUT, float(timeout)))
    else:
        raise ConfigurationError("timeout must be a positive number of seconds or an httpx.Timeout.")

    def longer(value: float | None) -> float | None:
        # None means "no limit", which is already as long as it gets.
        return None if value is None else max(value, UPLOAD_TIMEOUT)

    upload = httpx.Timeout(
        connect=base.connect, read=longer(base.read), write=longer(base.write), pool=base.pool
    )
    return base, upload


# Only the errors of the operating system are safe to quote: h11's protocol errors may echo
# header values, and those include the key.
_QUOTABLE = (httpx.ConnectError, httpx.ReadError, httpx.WriteError, httpx.CloseError)


class _Core:
    """Everything the sync and async clients share: setup, request building, answer reading."""

    def __init__(
        self,
        api_key: str | None,
        *,
        api_base: str,
        upload_base: str,
        timeout: float | httpx.Timeout | None,
        retry: RetryPolicy | None,
        create_limiter: CreateLimiter | None,
        user_agent: str,
    ) -> None:
        self._api_key = _check_key(api_key)
        self.api_base = _check_base(api_base, "api_base")
        self.upload_base = _check_base(upload_base, "upload_base")
        self._timeout, self._upload_timeout = _timeouts(timeout)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ConfigurationError("retry must be a luma.RetryPolicy.")
        self.retry = retry if retry is not None else RetryPolicy()
        self.create_limiter = (
            create_limiter if create_limiter is not None else CreateLimiter.shared(self._api_key)
        )
        self.user_agent = _check_user_agent(user_agent)
        self._auth: httpx.Auth | None = (
            _BearerAuth(self._api_key, (httpx.URL(self.api_base), httpx.URL(self.upload_base)))
            if self._api_key
            else None
        )
        self._headers = {"User-Agent": self.user_agent, "Accept": "application/json"}

    def __repr__(self) -> str:
        key = "<hidden>" if self._api_key else None
        return (
            f"{type(self).__name__}(api_base={self.api_base!r}, "
            f"upload_base={self.upload_base!r}, api_key={key})"
        )

    @property
    def has_api_key(self) -> bool:
        """Whether requests to the provider carry an API key."""
        return self._api_key is not None

    # -- requests --

    def _create_call(
        self, prompt: str, video_url: str, callback_url: str | None, watermark: str | None
    ) -> _Call[str]:
        prompt = _check_text(prompt, "prompt", "prompt")
        body: dict[str, str] = {
            "prompt": prompt,
            "videoUrl": _check_http_url(video_url, "video_url", "video URL"),
        }
        callback = _optional_url(callback_url, "callback_url", "callback URL")
        if callback is not None:
            body["callBackUrl"] = callback
        if watermark is not None:
            if not isinstance(watermark, str):
                raise InvalidInputError("The watermark must be text.", field="watermark")
            if watermark.strip():
                body["watermark"] = watermark.strip()
        return _Call(
            "create_task", "POST", self.api_base + PATH_CREATE, "api", False, _parse_task_id, json=body
        )

    def _task_call(self, task_id: str) -> _Call[Task]:
        # Any non-empty id is sent as is: the provider, not a local pattern, decides what exists.
        tid = _check_text(task_id, "task_id", "task id").strip()
        return _Call(
            "get_task", "GET", self.api_base + PATH_RECORD, "api", True, _task_parser(tid),
            params={"taskId": tid},
        )

    def _credits_call(self) -> _Call[int]:
        return _Call("get_credits", "GET", self.api_base + PATH_CREDITS, "api", True, _parse_credits)

    def _download_call(self, url: str) -> _Call[str]:
        link = _check_http_url(url, "url", "file URL")
        return _Call(
            "get_download_url", "POST", self.api_base + PATH_DOWNLOAD_URL, "api", True, _parse_link,
            json={"url": link},
        )

    def _upload_json_call(self, operation: str, path: str, body: dict[str, str]) -> _Call[UploadedFile]:
        return _Call(
            operation, "POST", self.upload_base + path, "upload", False, parse_upload, json=body,
            timeout=self._upload_timeout,
        )

    def _upload_base64_call(
        self, data: bytes | str, file_name: str | None, upload_path: str, mime_type: str
    ) -> _Call[UploadedFile]:
        body = {
            "base64Data": _base64_payload(data, mime_type),
            "uploadPath": _check_upload_path(upload_path),
        }
        name = _check_file_name(file_name, required=False)
        if name is not None:
            body["fileName"] = name
        return self._upload_json_call("upload_base64", PATH_UPLOAD_BASE64, body)

    def _upload_url_call(self, file_url: str, file_name: str | None, upload_path: str) -> _Call[UploadedFile]:
        body = {
            "fileUrl": _check_http_url(file_url, "file_url", "file URL"),
            "uploadPath": _check_upload_path(upload_path),
        }
        name = _check_file_name(file_name, required=False)
        if name is not None:
            body["fileName"] = name
        return self._upload_json_call("upload_url", PATH_UPLOAD_URL, body)

    def _upload_stream_call(
        self,
        file: bytes | BinaryIO,
        file_name: str,
        upload_path: str,
        progress: ProgressCallback | None,
        body: Callable[[_Multipart, _FileSource, ProgressCallback | None], Any],
    ) -> _Call[UploadedFile]:
        name = _check_file_name(file_name, required=True)
        assert name is not None
        folder = _check_upload_path(upload_path)
        if progress is not None and not callable(progress):
            raise InvalidInputError("progress must be a function of (bytes_sent, total).", field="progress")
        source = _FileSource(file)
        parts = _Multipart.build(upload_path=folder, file_name=name, mime_type=_guess_mime(name))
        headers = {
            "Content-Type": parts.content_type,
            "Content-Length": str(len(parts.head) + source.size + len(parts.tail)),
        }
        return _Call(
            "upload_file", "POST", self.upload_base + PATH_UPLOAD_STREAM, "upload", False,
            parse_upload, body=lambda: body(parts, source, progress), headers=headers,
            timeout=self._upload_timeout,
        )

    def _fetch_call(self, url: str) -> _Call[bytes]:
        link = _check_http_url(url, "url", "file URL")
        return _Call(
            "fetch", "GET", link, "raw", True, _parse_bytes,
            headers={"Accept": "*/*"}, follow_redirects=True,
        )

    # -- answers and failures --

    def _read(self, response: httpx.Response, call: _Call[T]) -> T:
        try:
            data = interpret_response(
                response,
                operation=call.operation,
                envelope=call.envelope,
                now=self.retry.wall_clock(),
                retry_after_cap=self.retry.retry_after_cap,
            )
        except APIError as error:
            # Some APIs echo the rejected key in their message; the dashboard may show this text.
            if error.provider_message:
                error.provider_message = self._scrub(error.provider_message)
            raise
        return call.parse(data)

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "<hidden>") if self._api_key else text

    def _transport_error(self, exc: httpx.RequestError, call: _Call[Any]) -> LumaError:
        refused = refusal_of(exc)
        if refused is not None:
            # Words from the guard, never the resolved address: a server's internal DNS answers
            # are not the user's business.
            words = f"resolves to {refused.reason}" if refused.address else f"is {refused.reason}"
            return AddressRefusedError(
                f"Did not connect to {refused.host}: it {words}, and only public addresses are "
                "fetched. The request was not sent.",
                host=refused.host,
                reason=refused.reason,
            )
        host = _host(call.url)
        detail = ""
        if isinstance(exc, _QUOTABLE) and str(exc):
            detail = f" ({self._scrub(str(exc))[:200]})"
        if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
            # No connection was ever handed the request, so nothing reached the provider.
            return ConnectError(f"Could not connect to {host}{detail}; the request was not sent.")
        if isinstance(exc, httpx.UnsupportedProtocol):
            return ConfigurationError(f"The address for {call.operation} is not http(s).")
        if isinstance(exc, httpx.DecodingError):
            return MalformedResponseError(
                f"The answer from {host} could not be decoded (bad compression or encoding)."
            )
        if isinstance(exc, httpx.TooManyRedirects):
            return TransportError(f"{host} redirected too many times.")
        timed_out = isinstance(exc, httpx.TimeoutException)
        what = "did not answer in time" if timed_out else f"dropped the connection{detail}"
        if call.operation == "create_task":
            message = (
                f"The create request was sent but {host} {what}. The task may exist: check the "
                "jobs list before resubmitting, or you may pay twice."
            )
        elif not call.read:
            message = (
                f"The upload was sent but {host} {what}; the file may or may not be stored. "
                "Try the upload again (uploads are free)."
            )
        else:
            message = f"{host} {what}."
        return RequestTimeout(message) if timed_out else TransportError(message)

    def _should_retry(self, call: _Call[Any]) -> Callable[[LumaError], bool]:
        return is_retryable_read if call.read else is_unsent


def _batch_ids(task_ids: Iterable[str]) -> tuple[list[str], dict[str, LumaError]]:
    """Unique, stripped ids in input order, and an error for each unusable one."""
    if isinstance(task_ids, (str, bytes)):
        raise InvalidInputError("task_ids must be a list of task ids, not one string.", field="task_ids")
    try:
        items = list(task_ids)
    except TypeError:
        raise InvalidInputError("task_ids must be a list of task ids.", field="task_ids") from None
    errors: dict[str, LumaError] = {}
    unique: dict[str, None] = {}  # an ordered set: first mention wins, input order is kept
    for item in items:
        if not isinstance(item, str) or not item.strip():
            key = item if isinstance(item, str) else repr(item)
            errors[key] = InvalidInputError("The task id is empty or not text.", field="task_id")
            continue
        unique.setdefault(item.strip(), None)
    return list(unique), errors


# --- the clients --------------------------------------------------------------------------------


class LumaClient(_Core):
    """Synchronous client for the provider's API, upload host and result files.

    Reads are retried per :class:`RetryPolicy`; creates and uploads are sent once (again only
    after a :class:`~luma.errors.ConnectError`). Use as a context manager, or call :meth:`close`.
    """

    transport: httpx.BaseTransport | None
    """The injected transport (None: httpx's own network transport)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        api_base: str = DEFAULT_API_BASE,
        upload_base: str = DEFAULT_UPLOAD_BASE,
        timeout: float | httpx.Timeout | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        create_limiter: CreateLimiter | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        super().__init__(
            api_key,
            api_base=api_base,
            upload_base=upload_base,
            timeout=timeout,
            retry=retry,
            create_limiter=create_limiter,
            user_agent=user_agent,
        )
        if transport is not None and not callable(getattr(transport, "handle_request", None)):
            raise ConfigurationError("transport must be an httpx.BaseTransport (sync).")
        self.transport = transport
        self._http = httpx.Client(
            transport=BorrowedTransport(transport) if transport is not None else None,
            auth=self._auth,
            headers=self._headers,
            timeout=self._timeout,
            follow_redirects=False,
        )

    def __enter__(self) -> LumaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release connections (an injected transport is left open for its owner)."""
        self._http.close()

    def _send_once(self, call: _Call[T]) -> T:
        # A create holds its rate-limit slot until the answer is back (see CreateLimiter.hold).
        slot = self.create_limiter.hold() if call.operation == "create_task" else None
        sent = True
        try:
            request = self._http.build_request(
                call.method,
                call.url,
                params=call.params,
                json=call.json,
                content=call.body() if call.body is not None else None,
                headers=call.headers,
                timeout=call.timeout if call.timeout is not None else self._timeout,
            )
            try:
                response = self._http.send(request, follow_redirects=call.follow_redirects)
            except httpx.RequestError as exc:
                error = self._transport_error(exc, call)
                sent = getattr(error, "request_sent", True)
                # from None: the httpx exception holds the request, headers and all.
                raise error from None
        finally:
            if slot is not None:
                slot.release(sent=sent)
        return self._read(response, call)

    def _execute(self, call: _Call[T]) -> T:
        return self.retry.run(
            lambda: self._send_once(call),
            should_retry=self._should_retry(call),
            operation=call.operation,
        )

    def create_task(
        self,
        prompt: str,
        video_url: str,
        *,
        callback_url: str | None = None,
        watermark: str | None = None,
    ) -> str:
        """Start a modification task and return its id. Costs credits; never sent twice."""
        return self._execute(self._create_call(prompt, video_url, callback_url, watermark))

    def get_task(self, task_id: str) -> Task:
        """The task's current status and, once done, its result URLs."""
        return self._execute(self._task_call(task_id))

    def get_tasks(
        self, task_ids: Iterable[str], *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> TaskBatch:
        """Read many tasks at once, ``concurrency`` at a time; failures are kept per task id."""
        workers = _check_concurrency(concurrency)
        ids, errors = _batch_ids(task_ids)
        results: dict[str, Task | LumaError] = {}
        if ids:

            def one(tid: str) -> Task | LumaError:
                try:
                    return self.get_task(tid)
                except LumaError as error:
                    return error

            with ThreadPoolExecutor(
                max_workers=min(workers, len(ids)), thread_name_prefix="luma-get-tasks"
            ) as pool:
                results = dict(zip(ids, pool.map(one, ids), strict=True))
        return _batch(ids, results, errors)

    def get_credits(self) -> int:
        """Remaining credits on the account."""
        return self._execute(self._credits_call())

    def get_download_url(self, url: str) -> str:
        """A fresh link (valid 20 minutes) for a file the provider generated."""
        return self._execute(self._download_call(url))

    def upload_file(
        self,
        file: bytes | BinaryIO,
        *,
        file_name: str,
        upload_path: str = DEFAULT_UPLOAD_PATH,
        progress: ProgressCallback | None = None,
    ) -> UploadedFile:
        """Stream a file to the upload host (multipart); ``progress(bytes_sent, total)`` as it goes."""
        call = self._upload_stream_call(file, file_name, upload_path, progress, _stream_body)
        return self._execute(call)

    def upload_base64(
        self,
        data: bytes | str,
        *,
        file_name: str | None = None,
        upload_path: str = DEFAULT_UPLOAD_PATH,
        mime_type: str = "video/mp4",
    ) -> UploadedFile:
        """Upload bytes, base64 text or a base64 data URL (sent as a data URL of ``mime_type``)."""
        call = self._upload_base64_call(data, file_name, upload_path, mime_type)
        return self._execute(call)

    def upload_url(
        self, file_url: str, *, file_name: str | None = None, upload_path: str = DEFAULT_UPLOAD_PATH
    ) -> UploadedFile:
        """Have the upload host copy a public URL (it fetches with a 30 s timeout)."""
        return self._execute(self._upload_url_call(file_url, file_name, upload_path))

    def fetch(self, url: str) -> bytes:
        """GET a public file (e.g. a result video); no API key is sent to foreign hosts."""
        return self._execute(self._fetch_call(url))


class AsyncLumaClient(_Core):
    """The asynchronous twin of :class:`LumaClient`: the same methods, all ``async``."""

    transport: httpx.AsyncBaseTransport | None
    """The injected transport (None: httpx's own network transport)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        api_base: str = DEFAULT_API_BASE,
        upload_base: str = DEFAULT_UPLOAD_BASE,
        timeout: float | httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        create_limiter: CreateLimiter | None = None,
        user_agent: str = USER_AGENT,
    ) -> None:
        super().__init__(
            api_key,
            api_base=api_base,
            upload_base=upload_base,
            timeout=timeout,
            retry=retry,
            create_limiter=create_limiter,
            user_agent=user_agent,
        )
        if transport is not None and not callable(getattr(transport, "handle_async_request", None)):
            raise ConfigurationError("transport must be an httpx.AsyncBaseTransport (async).")
        self.transport = transport
        self._http = httpx.AsyncClient(
            transport=AsyncBorrowedTransport(transport) if transport is not None else None,
            auth=self._auth,
            headers=self._headers,
            timeout=self._timeout,
            follow_redirects=False,
        )

    async def __aenter__(self) -> AsyncLumaClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Release connections (an injected transport is left open for its owner)."""
        await self._http.aclose()

    aclose = close

    async def _send_once(self, call: _Call[T]) -> T:
        slot = await self.create_limiter.hold_async() if call.operation == "create_task" else None
        sent = True
        try:
            request = self._http.build_request(
                call.method,
                call.url,
                params=call.params,
                json=call.json,
                content=call.body() if call.body is not None else None,
                headers=call.headers,
                timeout=call.timeout if call.timeout is not None else self._timeout,
            )
            try:
                response = await self._http.send(request, follow_redirects=call.follow_redirects)
            except httpx.RequestError as exc:
                error = self._transport_error(exc, call)
                sent = getattr(error, "request_sent", True)
                raise error from None
        finally:
            # Cancelled mid-flight counts as sent: the provider may have counted it.
            if slot is not None:
                slot.release(sent=sent)
        return self._read(response, call)

    async def _execute(self, call: _Call[T]) -> T:
        return await self.retry.run_async(
            lambda: self._send_once(call),
            should_retry=self._should_retry(call),
            operation=call.operation,
        )

    async def create_task(
        self,
        prompt: str,
        video_url: str,
        *,
        callback_url: str | None = None,
        watermark: str | None = None,
    ) -> str:
        """Start a modification task and return its id. Costs credits; never sent twice."""
        return await self._execute(self._create_call(prompt, video_url, callback_url, watermark))

    async def get_task(self, task_id: str) -> Task:
        """The task's current status and, once done, its result URLs."""
        return await self._execute(self._task_call(task_id))

    async def get_tasks(
        self, task_ids: Iterable[str], *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> TaskBatch:
        """Read many tasks concurrently under an :class:`asyncio.Semaphore`; failures kept per id."""
        limit = asyncio.Semaphore(_check_concurrency(concurrency))
        ids, errors = _batch_ids(task_ids)

        async def one(tid: str) -> Task | LumaError:
            async with limit:
                try:
                    return await self.get_task(tid)
                except LumaError as error:
                    return error

        # return_exceptions: an unexpected bug in one read must not orphan the others mid-flight.
        outcomes = await asyncio.gather(*(one(tid) for tid in ids), return_exceptions=True)
        results: dict[str, Task | LumaError] = {}
        for tid, outcome in zip(ids, outcomes, strict=True):
            if isinstance(outcome, BaseException) and not isinstance(outcome, LumaError):
                raise outcome
            results[tid] = outcome
        return _batch(ids, results, errors)

    async def get_credits(self) -> int:
        """Remaining credits on the account."""
        return await self._execute(self._credits_call())

    async def get_download_url(self, url: str) -> str:
        """A fresh link (valid 20 minutes) for a file the provider generated."""
        return await self._execute(self._download_call(url))

    async def upload_file(
        self,
        file: bytes | BinaryIO,
        *,
        file_name: str,
        upload_path: str = DEFAULT_UPLOAD_PATH,
        progress: ProgressCallback | None = None,
    ) -> UploadedFile:
        """Stream a file to the upload host (multipart); ``progress(bytes_sent, total)`` as it goes."""
        call = self._upload_stream_call(file, file_name, upload_path, progress, _astream_body)
        return await self._execute(call)

    async def upload_base64(
        self,
        data: bytes | str,
        *,
        file_name: str | None = None,
        upload_path: str = DEFAULT_UPLOAD_PATH,
        mime_type: str = "video/mp4",
    ) -> UploadedFile:
        """Upload bytes, base64 text or a base64 data URL (sent as a data URL of ``mime_type``)."""
        call = self._upload_base64_call(data, file_name, upload_path, mime_type)
        return await self._execute(call)

    async def upload_url(
        self, file_url: str, *, file_name: str | None = None, upload_path: str = DEFAULT_UPLOAD_PATH
    ) -> UploadedFile:
        """Have the upload host copy a public URL (it fetches with a 30 s timeout)."""
        return await self._execute(self._upload_url_call(file_url, file_name, upload_path))

    async def fetch(self, url: str) -> bytes:
        """GET a public file (e.g. a result video); no API key is sent to foreign hosts."""
        return await self._execute(self._fetch_call(url))


def _batch(
    ids: list[str], results: dict[str, Task | LumaError], errors: dict[str, LumaError]
) -> TaskBatch:
    tasks: dict[str, Task] = {}
    failed: dict[str, LumaError] = dict(errors)
    for tid in ids:
        outcome = results[tid]
        if isinstance(outcome, Task):
            tasks[tid] = outcome
        else:
            failed[tid] = outcome
    return TaskBatch(tasks=tasks, errors=failed)
