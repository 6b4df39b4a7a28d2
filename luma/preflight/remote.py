"""The URL check: one sans-IO flow and its two drivers (sync and async).

The checks are written once, as a generator that yields the requests it needs and receives their
answers (:func:`_url_flow`); :func:`check_url` and :func:`check_url_async` only carry them out,
and :func:`check_url_over` lends a transport someone else owns. Redirects are followed by hand so
that every hop's host is judged before it is contacted.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field, replace

import httpx

from .._constants import MAX_VIDEO_BYTES, MAX_VIDEO_SECONDS
from .._transport import BorrowedTransport
from ..egress import EgressPolicy, guarded_transport, parse_ip_literal, refusal_of, refusal_reason
from .checks import (
    _FASTSTART,
    Check,
    Outcome,
    PreflightReport,
    _check,
    _container_check,
    _content_type_check,
    _duration_check,
    _fmt_seconds,
    _private_check,
    _refused_check,
    _report,
    _size_check,
    _status_check,
    _truncated,
    _unreachable_check,
    _url_check,
)
from .container import HeaderInfo, _merge_tail, inspect_header

__all__ = [
    "DEFAULT_HEADER_BYTES",
    "DEFAULT_TAIL_BYTES",
    "DEFAULT_TIMEOUT",
    "check_url",
    "check_url_async",
    "check_url_over",
]

#: Bytes read from the start of a remote file to identify its format (and, for most files,
#: its length: the MP4 index of a "faststart" file and the AVI header sit there).
DEFAULT_HEADER_BYTES = 256 * 1024
#: Bytes read from the end of a remote MP4/MOV whose index was not in the first bytes. A
#: 10-second clip's index is a few kilobytes; a long film's can be megabytes, but its header
#: box (which carries the length) comes first inside it.
DEFAULT_TAIL_BYTES = 1024 * 1024
#: Short on purpose: a server that cannot answer a HEAD within seconds will not serve the
#: provider well either, and the user is waiting.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)

_MAX_REDIRECTS = 10


@dataclass(frozen=True)
class _Request:
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    #: Body bytes to keep at most; the rest of the body is never read.
    limit: int = 0
    #: Read the body only from a 206 answer (a tail read that got the whole file must stop).
    partial_only: bool = False


@dataclass(frozen=True)
class _Answer:
    status: int = 0
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    body: bytes = b""
    #: The body ended before ``limit`` was reached: ``body`` is all of it.
    exhausted: bool = False
    #: "connect", "timeout", "refused" (by the egress guard) or "other" when no answer came.
    error: str | None = None
    #: For "refused": what the host is, e.g. "resolves to a private network address".
    refusal: str | None = None


@dataclass(frozen=True)
class _Fetched:
    answer: _Answer
    url: httpx.URL
    #: Set when following redirects went wrong (reachable: FAIL).
    failure: Check | None = None


_Flow = Generator[_Request, _Answer, PreflightReport]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_METHOD_REFUSED = frozenset({405, 501})
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".localdomain")


def _private_reason(host: str) -> str | None:
    """Why the provider cannot reach ``host`` from the internet, or None when it may.

    Judged from the host as written (no DNS): IP literals in every spelling, and local names.
    """
    ip = parse_ip_literal(host)
    if ip is not None:
        reason = refusal_reason(ip)
        return f"is {reason}" if reason else None
    name = host.lower().rstrip(".").strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return "is this machine (localhost)"
    if "." not in name or name.endswith(_LOCAL_SUFFIXES):
        return "is a local network name, not a public internet address"
    return None



def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host.lower().rstrip("."), url.port or {"http": 80, "https": 443}.get(url.scheme)


def _origins(values: Iterable[str]) -> frozenset[tuple[str, str, int | None]]:
    """``local_origins`` as comparable (scheme, host, port) triples."""
    if isinstance(values, str):
        values = (values,)
    found = set()
    for value in values:
        url = httpx.URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"local_origins must be http(s) origins, not {value!r}")
        found.add(_origin(url))
    return frozenset(found)


@dataclass(frozen=True)
class _Scope:
    """Which hosts skip the by-name private check, and why."""

    #: Origins served in-process (no network is used for them).
    local: frozenset[tuple[str, str, int | None]] = frozenset()
    #: The deprecated ``allow_private=True``: every host skips it.
    anything: bool = False
    #: The deployment's trusted hosts (:attr:`EgressPolicy.allow_hosts`): a host it configured
    #: itself, say its own provider on a private network, is reachable by that provider.
    trusted: EgressPolicy | None = None

    def is_local(self, url: httpx.URL) -> bool:
        return _origin(url) in self.local

    def reason(self, url: httpx.URL) -> str | None:
        if self.anything or self.is_local(url):
            return None
        if self.trusted is not None and self.trusted.allow_hosts and self.trusted.allows(url.host, url.port):
            return None
        return _private_reason(url.host)


def _fetch(
    url: httpx.URL,
    method: str,
    headers: tuple[tuple[str, str], ...],
    *,
    limit: int = 0,
    partial_only: bool = False,
    scope: _Scope,
) -> Generator[_Request, _Answer, _Fetched]:
    """One request, following redirects by hand so that every hop's host is checked."""
    previous: str | None = None
    for _ in range(_MAX_REDIRECTS + 1):
        answer = yield _Request(method, str(url), headers, limit, partial_only)
        if answer.error == "refused":
            refused = _refused_check(url.host, answer.refusal or "is a private or local address", via=previous)
            return _Fetched(answer, url, refused)
        location = answer.headers.get("location")
        if answer.error or answer.status not in _REDIRECTS or not location:
            return _Fetched(answer, url)
        try:
            nxt = url.join(location)
        except (httpx.InvalidURL, ValueError):
            nxt = None
        if nxt is None or nxt.scheme not in ("http", "https") or not nxt.host:
            failure = _check(
                "reachable",
                Outcome.FAIL,
                f"{url.host} redirects to an address the provider cannot download from.",
                "Use the direct link to the video file.",
            )
            return _Fetched(answer, url, failure)
        reason = scope.reason(nxt)
        if reason:
            check = _private_check(nxt.host, reason)
            failure = replace(check, detail=f"{url.host} redirects to {check.detail}")
            return _Fetched(answer, url, failure)
        previous, url = url.host, nxt
    failure = _check(
        "reachable",
        Outcome.FAIL,
        f"{url.host} redirects more than {_MAX_REDIRECTS} times in a row.",
        "Use the direct link to the video file.",
    )
    return _Fetched(_Answer(), url, failure)


_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*$", re.I)


def _content_range(headers: httpx.Headers) -> tuple[int | None, int | None]:
    """(first byte, total size) from Content-Range, each None when absent or unknown."""
    match = _CONTENT_RANGE.match(headers.get("content-range", ""))
    if not match:
        return None, None
    first = int(match.group(1)) if match.group(1) else None
    total = int(match.group(3)) if match.group(3) != "*" else None
    return first, total


def _content_length(headers: httpx.Headers) -> int | None:
    value = headers.get("content-length", "").strip()
    return int(value) if value.isdigit() else None


def _is_ok(answer: _Answer) -> bool:
    return answer.error is None and 200 <= answer.status < 300


def _url_flow(
    url: str,
    *,
    max_bytes: int,
    max_seconds: float,
    header_bytes: int,
    tail_bytes: int,
    scope: _Scope,
) -> _Flow:
    checks: list[Check] = []
    parsed, url_check = _url_check(url)
    checks.append(url_check)
    if parsed is None:
        return PreflightReport(tuple(checks))
    host = parsed.host
    reason = scope.reason(parsed)
    if reason:
        checks.append(_private_check(host, reason))
        return PreflightReport(tuple(checks))

    identity = (("Accept-Encoding", "identity"),)  # byte ranges and lengths of the file itself
    head = yield from _fetch(parsed, "HEAD", identity, scope=scope)
    if head.failure:
        return PreflightReport((*checks, head.failure))
    if head.answer.error:
        return PreflightReport((*checks, _unreachable_check(host, head.answer.error)))
    head_ok = _is_ok(head.answer)

    # The first bytes: the format, and for most files the length. Also the HEAD fallback.
    ranged = (*identity, ("Range", f"bytes=0-{header_bytes - 1}"))
    start = yield from _fetch(head.url if head_ok else parsed, "GET", ranged, limit=header_bytes, scope=scope)
    if start.failure:
        return PreflightReport((*checks, start.failure))
    got = start.answer
    got_ok = _is_ok(got) or got.status == 416  # 416 to "bytes=0-...": the file is empty
    got_error_status = got.error is None and got.status >= 400 and got.status != 416
    final_host = (start.url if got_ok else head.url).host
    via = f" (after a redirect to {final_host})" if final_host != host else ""

    if head_ok:
        if got_error_status:
            return PreflightReport((*checks, _status_check(host, got.status, download_only=True)))
        checks.append(
            _check(
                "reachable",
                Outcome.PASS,
                f"{host} answered{via}."
                # A local origin is served in-process for the demo, where the "provider" is here.
                + ("" if scope.is_local(parsed) or (scope.anything and _private_reason(host)) else (
                    " This shows it is reachable from here; the provider must reach it from the "
                    "internet as well."
                )),
            )
        )
    elif got_ok:
        checks.append(
            _check(
                "reachable",
                Outcome.PASS,
                f"{host} sent the start of the file{via} (it refused a HEAD request with HTTP "
                f"{head.answer.status}, which is harmless).",
            )
        )
    elif got_error_status and got.status not in _METHOD_REFUSED:
        return PreflightReport((*checks, _status_check(host, got.status)))
    elif head.answer.status >= 400 and head.answer.status not in _METHOD_REFUSED:
        return PreflightReport((*checks, _status_check(host, head.answer.status)))
    else:
        checks.append(
            _check(
                "reachable",
                Outcome.WARN,
                f"{host} refuses HEAD requests (HTTP {head.answer.status}) and gave no usable answer to a "
                "ranged download either, so the file could not be checked.",
                "Check that the link downloads the video in a browser.",
            )
        )

    # Size: Content-Range totals are the file's; a HEAD length or a whole-body length next.
    _, size = _content_range(got.headers) if got.status in (206, 416) else (None, None)
    if size is None and head_ok:
        size = _content_length(head.answer.headers)
    if size is None and got.status == 200 and got.error is None:
        size = len(got.body) if got.exhausted else _content_length(got.headers)

    info: HeaderInfo | None = None
    tail_reason = ""
    if _is_ok(got) and got.body:
        info = _truncated(inspect_header(got.body, total_size=size), got.body, size)
        if info.needs_tail and got.status == 200:
            tail_reason = (
                "The server ignores range requests, so reading the length at the end of the file "
                "would mean downloading all of it."
            )
        elif info.needs_tail:
            span = tail_bytes
            after = None if size is None or info.tail_offset is None else size - info.tail_offset
            if after is not None and 0 < after <= tail_bytes:
                span = after  # exactly the boxes after the last one walked
            tail = yield from _fetch(
                start.url,
                "GET",
                (*identity, ("Range", f"bytes=-{span}")),
                limit=span,
                partial_only=True,
                scope=scope,
            )
            answer = tail.answer
            if answer.error == "refused" and tail.failure is not None:
                # The name answered public a moment ago and private now: refuse, do not warn.
                kept = [c for c in checks if c.key != "reachable"]
                return PreflightReport((*kept, tail.failure))
            if tail.failure is None and answer.error is None and answer.status == 206 and answer.body:
                first, _total = _content_range(answer.headers)
                aligned = first is not None and first == info.tail_offset
                info = _merge_tail(info, answer.body, aligned=aligned)
                tail_reason = "The index at the end of the file held no length."
            else:
                tail_reason = "The end of the file, where its length is stored, could not be read."

    media = ""
    label_source = head.answer if head_ok else (got if _is_ok(got) else None)
    if label_source is not None:
        media = label_source.headers.get("content-type", "").split(";")[0].strip().lower()

    def report() -> PreflightReport:
        return _report(checks, info, content_type=media or None, size=size)

    checks.append(_content_type_check(media, info))
    if checks[-1].outcome is Outcome.FAIL:
        return report()
    checks.append(_size_check(size, max_bytes, where="The server"))
    if size == 0:
        return report()
    if info is None:
        if got.error:
            why = "the download broke off"
        elif got.status and not _is_ok(got):
            why = f"the server answered HTTP {got.status}"
        else:
            why = "the server sent no bytes"
        checks.append(
            _check(
                "container",
                Outcome.WARN,
                f"The start of the file could not be read ({why}), so its format is unknown.",
                "Make sure the link gives an MP4, MOV or AVI file.",
            )
        )
        checks.append(
            _check(
                "duration",
                Outcome.WARN,
                "The length could not be read because the start of the file could not be read.",
                f"Make sure the clip is at most {_fmt_seconds(max_seconds)} long.",
            )
        )
        return report()
    container_check = _container_check(info)
    checks.append(container_check)
    if container_check.outcome is Outcome.FAIL:
        return report()
    if info.needs_tail:
        checks.append(_duration_check(info, max_seconds, unknown=tail_reason, fix=_FASTSTART))
    else:
        checks.append(_duration_check(info, max_seconds, unknown="The file does not state its length."))
    return report()


def _build(
    client: httpx.Client | httpx.AsyncClient, req: _Request, timeout: float | httpx.Timeout
) -> httpx.Request:
    request = client.build_request(req.method, req.url, headers=list(req.headers), timeout=timeout)
    # The provider fetches the video with no credentials: neither may we (and an API key set
    # on a shared client must never go to a third-party host).
    for name in ("authorization", "cookie"):
        request.headers.pop(name, None)
    return request


def _error_answer(exc: Exception) -> _Answer:
    refused = refusal_of(exc)
    if refused is not None:
        words = f"resolves to {refused.reason}" if refused.address else f"is {refused.reason}"
        return _Answer(error="refused", refusal=words)
    return _Answer(error=_error_kind(exc))


def _error_kind(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    return "other"


def _wants_body(req: _Request, status: int) -> bool:
    if req.limit <= 0:
        return False
    return status == 206 if req.partial_only else 200 <= status < 300


def _send(client: httpx.Client, req: _Request, timeout: float | httpx.Timeout) -> _Answer:
    try:
        request = _build(client, req, timeout)
        response = client.send(request, stream=True, auth=None, follow_redirects=False)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return _error_answer(exc)
    body = bytearray()
    exhausted = False
    try:
        if _wants_body(req, response.status_code):
            for chunk in response.iter_bytes():
                body += chunk[: req.limit - len(body)]
                if len(body) >= req.limit:
                    break
            else:
                exhausted = True
    except httpx.HTTPError:
        pass  # keep what arrived: a partial start is still worth inspecting
    finally:
        response.close()
    return _Answer(response.status_code, response.headers, bytes(body), exhausted)


async def _send_async(client: httpx.AsyncClient, req: _Request, timeout: float | httpx.Timeout) -> _Answer:
    try:
        request = _build(client, req, timeout)
        response = await client.send(request, stream=True, auth=None, follow_redirects=False)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return _error_answer(exc)
    body = bytearray()
    exhausted = False
    try:
        if _wants_body(req, response.status_code):
            async for chunk in response.aiter_bytes():
                body += chunk[: req.limit - len(body)]
                if len(body) >= req.limit:
                    break
            else:
                exhausted = True
    except httpx.HTTPError:
        pass
    finally:
        await response.aclose()
    return _Answer(response.status_code, response.headers, bytes(body), exhausted)


def _validate(header_bytes: int, tail_bytes: int) -> None:
    if header_bytes < 64 or tail_bytes < 64:
        raise ValueError("header_bytes and tail_bytes must be at least 64")


def _scope(local_origins: Iterable[str], allow_private: bool, trusted: EgressPolicy | None = None) -> _Scope:
    if allow_private:
        warnings.warn(
            "allow_private is deprecated: it skips the private-address check for every host. Pass "
            "local_origins (the origins served in-process, e.g. the emulator's public_base) instead.",
            DeprecationWarning,
            stacklevel=3,
        )
    return _Scope(_origins(local_origins), allow_private, trusted)


def _run(
    url: str,
    client: httpx.Client,
    scope: _Scope,
    *,
    max_bytes: int,
    max_seconds: float,
    header_bytes: int,
    tail_bytes: int,
    timeout: float | httpx.Timeout,
) -> PreflightReport:
    """The sync driver: carry out the flow's requests one by one."""
    _validate(header_bytes, tail_bytes)
    flow = _url_flow(
        url,
        max_bytes=max_bytes,
        max_seconds=max_seconds,
        header_bytes=header_bytes,
        tail_bytes=tail_bytes,
        scope=scope,
    )
    try:
        req = next(flow)
        while True:
            req = flow.send(_send(client, req, timeout))
    except StopIteration as done:
        report: PreflightReport = done.value  # what _Flow returns; StopIteration types it Any
        return report


def check_url(
    url: str,
    *,
    client: httpx.Client,
    max_bytes: int = MAX_VIDEO_BYTES,
    max_seconds: float = MAX_VIDEO_SECONDS,
    header_bytes: int = DEFAULT_HEADER_BYTES,
    tail_bytes: int = DEFAULT_TAIL_BYTES,
    local_origins: Iterable[str] = (),
    allow_private: bool = False,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
) -> PreflightReport:
    """Check a video URL the way the provider will fetch it, without downloading it whole.

    Checks, in order: ``url`` (well-formed http(s)), ``reachable`` (HEAD, falling back to a
    ranged GET; private and local hosts fail), ``content_type``, ``size`` (<= ``max_bytes``),
    ``container`` (MP4/MOV/AVI by the bytes) and ``duration`` (<= ``max_seconds``). At most
    ``header_bytes`` are read from the start, and ``tail_bytes`` from the end of an MP4/MOV that
    keeps its index there. ``local_origins`` ("http://luma-emulator.local") are origins the
    caller's transport serves in-process, exempt from the private-address check; the offline demo
    needs its file host there. ``allow_private`` is deprecated (it exempts every host).
    Never raises for anything the server does; every request goes through ``client``, whose
    transport decides what the network may reach (see :func:`check_url_over`).
    """
    scope = _scope(local_origins, allow_private)
    return _run(
        url, client, scope, max_bytes=max_bytes, max_seconds=max_seconds, header_bytes=header_bytes,
        tail_bytes=tail_bytes, timeout=timeout,
    )


def check_url_over(
    url: str,
    *,
    transport: httpx.BaseTransport | None,
    local_origins: Iterable[str] = (),
    egress: EgressPolicy | None = None,
    allow_private: bool = False,
) -> PreflightReport:
    """:func:`check_url` through a transport someone else owns (e.g. ``LumaClient.transport``).

    ``None`` means the real network, through :func:`luma.egress.guarded_transport` with
    ``egress`` (default: public addresses only): never httpx's plain network, which would connect
    wherever a name resolves. A given transport is left open, so the emulator's can be lent for
    one check; callers need not import httpx.
    """
    scope = _scope(local_origins, allow_private, egress)
    inner = guarded_transport(egress) if transport is None else BorrowedTransport(transport)
    with httpx.Client(transport=inner) as http:  # closes the guarded transport made here only
        return _run(
            url, http, scope, max_bytes=MAX_VIDEO_BYTES, max_seconds=MAX_VIDEO_SECONDS,
            header_bytes=DEFAULT_HEADER_BYTES, tail_bytes=DEFAULT_TAIL_BYTES, timeout=DEFAULT_TIMEOUT,
        )


async def check_url_async(
    url: str,
    *,
    client: httpx.AsyncClient,
    max_bytes: int = MAX_VIDEO_BYTES,
    max_seconds: float = MAX_VIDEO_SECONDS,
    header_bytes: int = DEFAULT_HEADER_BYTES,
    tail_bytes: int = DEFAULT_TAIL_BYTES,
    local_origins: Iterable[str] = (),
    allow_private: bool = False,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
) -> PreflightReport:
    """:func:`check_url` over an :class:`httpx.AsyncClient` (the same checks, the same logic)."""
    scope = _scope(local_origins, allow_private)
    _validate(header_bytes, tail_bytes)
    flow = _url_flow(
        url,
        max_bytes=max_bytes,
        max_seconds=max_seconds,
        header_bytes=header_bytes,
        tail_bytes=tail_bytes,
        scope=scope,
    )
    try:
        req = next(flow)
        while True:
            req = flow.send(await _send_async(client, req, timeout))
    except StopIteration as done:
        report: PreflightReport = done.value  # what _Flow returns; StopIteration types it Any
        return report
