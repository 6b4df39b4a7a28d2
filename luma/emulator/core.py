"""The emulator's state and its one request handler.

:class:`Emulator` answers every path of the provider's API (create, record-info, credits,
download-url), of its upload host (stream, base64 and URL uploads) and the public file URLs it
hands out, through one function, :meth:`Emulator.handle`. Two thin adapters feed it: the httpx
transport (``transport.py``, in-process demo mode and tests) and the loopback HTTP server
(``server.py``, ``python -m luma.emulator``), so both behave identically.

Faithfulness comes from the spec in ``/work/shared/spec/kie-luma-api.md``: the envelopes and field
names, each documented variant on demand (``response`` null or absent while generating,
``errorCode`` as int or string, both upload shapes, errors in the body or in the HTTP status), the
limits (20 creates per 10 s, 500 MB, 10 s, MP4/MOV/AVI), the lifetimes (uploads 3 days, download
links 20 minutes, results 14 days) and signed, retried callbacks.

Tasks are real work: on create the input video is fetched (the emulator's own file URLs resolve
locally, anything else goes through ``fetch_transport``), probed, copied to an "origin" file, and
rendered by :func:`luma.emulator.media.render_result` in a small worker pool. A task stays
GENERATING until rendering is done *and* ``processing_delay`` seconds have passed on the injected
clock, so tests can move time by hand.

Like the provider, the emulator fetches and calls back only public addresses: its default fetch
and callback transports are :func:`luma.egress.guarded_transport` s, which check every connection
(redirect hops included) at connect time, and a URL whose host is a private IP literal is refused
before any request. ``EmulatorConfig.allow_hosts`` names the exceptions (a test server on
127.0.0.1, an internal file host).

The API key is only ever hashed (to keep each key's credits, rate window and tasks apart); it is
never stored, logged or written to ``creates.jsonl``.
"""

from __future__ import annotations

import base64
import binascii
import collections
import dataclasses
import hashlib
import hmac
import json
import logging
import mimetypes
import os
import random
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.parser import HeaderParser
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx

from .._constants import (
    CREATE_LIMIT,
    CREATE_WINDOW,
    DOWNLOAD_LINK_LIFETIME_SECONDS,
    MAX_VIDEO_BYTES,
    MAX_VIDEO_SECONDS,
    PATH_CREATE,
    PATH_CREDITS,
    PATH_DOWNLOAD_URL,
    PATH_RECORD,
    PATH_UPLOAD_BASE64,
    PATH_UPLOAD_STREAM,
    PATH_UPLOAD_URL,
    RESULT_LIFETIME_SECONDS,
    UPLOAD_LIFETIME_SECONDS,
    USER_AGENT,
    VIDEO_CONTAINERS,
)
from ..egress import AddressRefused, EgressPolicy, guarded_transport, refusal_of
from ..models import TaskStatus
from .delivery import CALLBACK_BACKOFF, CALLBACK_RETRIES, CALLBACK_TIMEOUT, CallbackSender, failure_body, success_body

if TYPE_CHECKING:
    from .transport import EmulatorTransport

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_PUBLIC_BASE",
    "Emulator",
    "EmulatorConfig",
    "EmulatorRequest",
    "EmulatorResponse",
    "SampleClip",
]

DEFAULT_PUBLIC_BASE = "http://luma-emulator.local"
UNAUTHORIZED_MESSAGE = "You do not have access permissions"
#: Seconds the emulator waits for a remote ``videoUrl`` (a provider would not wait long either).
FETCH_TIMEOUT = 10.0
#: The upload host's documented timeout for ``fileUrl``.
URL_UPLOAD_TIMEOUT = 30.0
#: Content types served for the containers the provider accepts.
VIDEO_TYPES = {".mp4": "video/mp4", ".mov": "video/quicktime", ".avi": "video/x-msvideo"}
_EXT_FOR_CONTAINER = {"mp4": ".mp4", "mov": ".mov", "avi": ".avi"}
_EXT_FOR_TYPE = {v: k for k, v in VIDEO_TYPES.items()}
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*")
_CHUNK = 64 * 1024
_LIBRARY_AGENTS = ("python-httpx/", "python-requests/", "python-urllib/", "curl/", "wget/", "go-http-client/")
_ERROR_STYLES = ("body", "http")
_GENERATING_SHAPES = ("null", "absent")
_ERROR_CODE_TYPES = ("int", "string")
_UPLOAD_SHAPES = ("auto", "A", "B")


# --- configuration -------------------------------------------------------------------------------


@dataclass
class EmulatorConfig:
    """How the emulator behaves; every default makes a pleasant, fault-free demo.

    Fields may be changed on a running emulator with :meth:`Emulator.configure` (except
    ``data_dir``, which is fixed when the emulator starts).
    """

    data_dir: Path | None = None
    """Where uploads, origins, results, samples and ``creates.jsonl`` live (a temp dir if None)."""
    public_base: str = DEFAULT_PUBLIC_BASE
    """Origin of the file URLs handed out; the server sets ``http://HOST:PORT`` when left default."""
    required_key: str | None = None
    """The one accepted API key; None accepts any non-empty Bearer key."""
    credits: int = 1000
    """Credits each API key starts with."""
    credits_per_task: int = 10
    """Credits charged by each accepted create."""
    processing_delay: float = 4.0
    """Minimum seconds (on the clock) a task stays GENERATING."""
    failure_rate: float = 0.0
    """Probability that a created task ends GENERATE_FAILED (errorCode 501)."""
    create_failure_rate: float = 0.0
    """Probability that a created task ends CREATE_TASK_FAILED at once (not charged)."""
    error_style: str = "body"
    """"body": errors arrive as HTTP 200 with the code in the body; "http": HTTP status = code too."""
    latency: float = 0.0
    """Seconds added to every request (files and uploads included)."""
    rate_429: float = 0.0
    """Probability that a read (record-info, credit, download-url) answers 429."""
    rate_500: float = 0.0
    """Probability that a read answers 500."""
    rate_timeout: float = 0.0
    """Probability that a read never answers (held for ``timeout_seconds``, then dropped)."""
    rate_malformed: float = 0.0
    """Probability that a read answers HTTP 200 with a truncated, unparseable body."""
    fault_creates: bool = False
    """Apply the fault rates to creates too. A create timeout or malformed answer still creates the
    task (the dangerous realistic kind); a create 429 or 500 does not."""
    timeout_seconds: float = 35.0
    """How long an injected timeout holds the request (in-process: capped by the request's own
    read timeout, then ``httpx.ReadTimeout``)."""
    retry_after: float | None = None
    """When set, 429 answers carry ``Retry-After`` with this many seconds (undocumented upstream)."""
    maintenance: bool = False
    """Every API call (not uploads or files) answers 455."""
    feature_disabled: bool = False
    """Creates answer 505."""
    reject_bare_user_agent: bool = False
    """Uploads without a real User-Agent (none, or a library default such as ``python-httpx/x``)
    answer HTTP 403 with an HTML page, as the upload host's bot filter is reported to do."""
    signing_key: str | None = None
    """Webhook HMAC key; callbacks are signed when set."""
    create_limit: int = CREATE_LIMIT
    """Creates allowed per key within ``create_window`` seconds; more answer 429."""
    create_window: float = CREATE_WINDOW
    """Sliding window of the create limit, in seconds."""
    seed: int | None = None
    """Seed for task ids, failures and faults (None: unpredictable)."""
    response_while_generating: str = "null"
    """"null": ``response: null`` while GENERATING; "absent": the key is left out."""
    error_code_type: str = "int"
    """"int": ``errorCode: 501``; "string": ``errorCode: "501"`` (both are seen in the wild)."""
    upload_shape: str = "auto"
    """Upload ``data`` shape: "A", "B", or "auto" (A for stream uploads, B for base64 and URL)."""
    callback_failure_code: int = 500
    """Body code of a failure callback (500 per the callbacks page, 501 per the quickstart)."""
    callback_retries: int = CALLBACK_RETRIES
    """Callback retries after the first attempt."""
    callback_backoff: float = CALLBACK_BACKOFF
    """First pause between callback attempts, doubled after each failure."""
    callback_timeout: float = CALLBACK_TIMEOUT
    """Per-attempt callback timeout in seconds."""
    allow_hosts: tuple[str, ...] = ()
    """Hosts (``name``, ``name:port`` or an IP) the emulator may fetch from and call back even when
    they are private or local, e.g. ``127.0.0.1`` for a test server. Fixed when the emulator
    starts (its guarded transports are built from it); never changeable over HTTP."""
    max_video_bytes: int = MAX_VIDEO_BYTES
    """Largest input video accepted by create."""
    max_video_seconds: float = MAX_VIDEO_SECONDS
    """Longest input video accepted by create."""
    workers: int = 2
    """Background render workers."""
    sample_width: int = 640
    """Width of generated sample clips."""
    sample_height: int = 360
    """Height of generated sample clips."""
    sample_seconds: float = 6.0
    """Length of generated sample clips."""

    def __post_init__(self) -> None:
        if isinstance(self.allow_hosts, str):
            self.allow_hosts = (self.allow_hosts,)
        self.allow_hosts = tuple(self.allow_hosts)  # a list from JSON or the command line
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first setting that cannot work."""
        if self.error_style not in _ERROR_STYLES:
            raise ValueError(f"error_style must be one of {_ERROR_STYLES}, not {self.error_style!r}")
        if self.response_while_generating not in _GENERATING_SHAPES:
            raise ValueError(f"response_while_generating must be one of {_GENERATING_SHAPES}")
        if self.error_code_type not in _ERROR_CODE_TYPES:
            raise ValueError(f"error_code_type must be one of {_ERROR_CODE_TYPES}")
        if self.upload_shape not in _UPLOAD_SHAPES:
            raise ValueError(f"upload_shape must be one of {_UPLOAD_SHAPES}")
        rates = ("failure_rate", "create_failure_rate", "rate_429", "rate_500", "rate_timeout", "rate_malformed")
        for name in rates:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value!r}")
        if self.rate_429 + self.rate_500 + self.rate_timeout + self.rate_malformed > 1.0 + 1e-9:
            raise ValueError("rate_429 + rate_500 + rate_timeout + rate_malformed must not exceed 1")
        if self.failure_rate + self.create_failure_rate > 1.0 + 1e-9:
            raise ValueError("failure_rate + create_failure_rate must not exceed 1")
        for name in ("processing_delay", "latency", "timeout_seconds", "create_window", "callback_backoff"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.credits < 0 or self.credits_per_task < 0:
            raise ValueError("credits and credits_per_task must not be negative")
        if self.create_limit < 1 or self.workers < 1 or self.callback_retries < 0:
            raise ValueError("create_limit and workers must be at least 1, callback_retries at least 0")
        if self.callback_failure_code == 200:
            raise ValueError("callback_failure_code must not be 200 (that code means success)")
        if self.required_key is not None and not self.required_key.strip():
            raise ValueError("required_key must not be empty (use None to accept any key)")
        parts = urlsplit(self.public_base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"public_base must be an http(s) origin, not {self.public_base!r}")
        if not all(isinstance(h, str) and h.strip() for h in self.allow_hosts):
            raise ValueError("allow_hosts must be host names (or host:port), not empty")
        self.egress()  # refuses entries that are not a host or host:port

    def egress(self) -> EgressPolicy:
        """The policy of the emulator's fetches and callbacks: public addresses and ``allow_hosts``."""
        return EgressPolicy(allow_hosts=frozenset(self.allow_hosts))

    def __repr__(self) -> str:
        # The keys are secrets: say whether they are set, never what they are.
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("required_key", "signing_key"):
                value = "<set>" if value else None
            shown.append(f"{f.name}={value!r}")
        return f"EmulatorConfig({', '.join(shown)})"


@dataclass(frozen=True)
class SampleClip:
    """A demo input clip the emulator generates and serves."""

    slug: str
    """Short identifier, also the file name (``<slug>.mp4``)."""
    title: str
    """Human title for pickers."""
    description: str
    """One sentence on what the clip shows."""
    url: str
    """Public URL of the clip (``public_base/files/samples/<slug>.mp4``); usable as ``videoUrl``."""


# --- the transport-neutral request and response ---------------------------------------------------


@dataclass(frozen=True)
class EmulatorRequest:
    """One HTTP request, as both adapters hand it to :meth:`Emulator.handle`."""

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
    """What :meth:`Emulator.handle` answers; the adapters turn it into HTTP."""

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


class _Reject(Exception):
    """An early exit from a route: the answer to send instead."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --- state records ---------------------------------------------------------------------------------


@dataclass
class _Task:
    task_id: str
    owner: str
    prompt: str
    video_url: str
    callback_url: str | None
    watermark: str | None
    created: float
    plan: str  # "success" | "fail" | "create_fail"
    status: TaskStatus = TaskStatus.GENERATING
    origin_rel: str | None = None
    result_rel: str | None = None
    render_done: float | None = None
    render_error: str | None = None
    completed: float | None = None
    error_code: int | None = None
    error_message: str | None = None
    delivering: bool = False
    callback_outcome: str | None = None

    @property
    def param_json(self) -> str:
        return json.dumps(
            {
                "callBackUrl": self.callback_url or "",
                "prompt": self.prompt,
                "videoUrl": self.video_url,
                "waterMark": self.watermark or "",
            },
            separators=(",", ":"),
        )


@dataclass
class _Upload:
    rel: str
    upload_path: str
    file_name: str
    original_name: str
    size: int
    mime_type: str
    uploaded: float
    file_id: str

    @property
    def expires(self) -> float:
        return self.uploaded + UPLOAD_LIFETIME_SECONDS


@dataclass
class _Link:
    rel: str
    expires: float


# --- the emulator --------------------------------------------------------------------------------


def _media() -> ModuleType:
    # Imported on first use: PyAV is heavy, and most requests (reads, uploads) never need it.
    from . import media

    return media


def _now_iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _content_type(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext in VIDEO_TYPES:
        return VIDEO_TYPES[ext]
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


class Emulator:
    """An offline stand-in for kie.ai's Luma modify-video API, its upload host and its file host."""

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        fetch_transport: httpx.BaseTransport | None = None,
        callback_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.config = config if config is not None else EmulatorConfig()
        self.config.validate()
        self._clock = clock
        self._sleep = sleep
        self._stop = threading.Event()
        # A default sleep is replaced by a wait on the stop event so close() is never held up.
        self._wait = self._stop.wait if sleep is time.sleep else sleep
        if self.config.data_dir is None:
            self._own_dir = True
            self.data_dir = Path(tempfile.mkdtemp(prefix="luma-emulator-")).resolve()
        else:
            self._own_dir = False
            self.data_dir = Path(self.config.data_dir).resolve()
            self.data_dir.mkdir(parents=True, exist_ok=True)
        for sub in ("origin", "results", "uploads", "samples", "tmp"):
            (self.data_dir / sub).mkdir(exist_ok=True)
        self._creates_log = self.data_dir / "creates.jsonl"

        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._closed = False
        seed = self.config.seed
        self._id_rng = random.Random(seed) if seed is not None else None
        self._plan_rng = random.Random(None if seed is None else seed + 1)
        self._fault_rng = random.Random(None if seed is None else seed + 2)
        self._tasks: dict[str, _Task] = {}
        self._credits: dict[str, int] = {}
        self._windows: dict[str, collections.deque[float]] = {}
        self._uploads: dict[str, _Upload] = {}
        self._links: dict[str, _Link] = {}
        self._create_count = 0
        self._sample_locks: dict[str, threading.Lock] = {}

        self._egress = self.config.egress()
        self._fetch = httpx.Client(
            # The guard checks every connection, redirect hops included, where the socket is made.
            transport=fetch_transport if fetch_transport is not None else guarded_transport(self._egress),
            timeout=httpx.Timeout(FETCH_TIMEOUT, connect=5.0),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=True,
            # Each hop's host, when an IP literal, is judged before the transport sees it, so an
            # injected transport cannot be steered at a private address by a redirect either.
            event_hooks={"request": [self._check_hop]},
        )
        self._sender = CallbackSender(
            callback_transport,
            egress=self._egress,
            signing_key=lambda: self.config.signing_key,
            timeout=self.config.callback_timeout,
            retries=self.config.callback_retries,
            backoff=self.config.callback_backoff,
            clock=clock,
            sleep=self._wait,
            cancelled=self._stop.is_set,
        )
        self._renderers = ThreadPoolExecutor(self.config.workers, thread_name_prefix="luma-emulator-render")
        self._deliverers = ThreadPoolExecutor(4, thread_name_prefix="luma-emulator-callback")
        self._ticker: threading.Thread | None = None

    # -- public API ------------------------------------------------------------------------------

    def transport(self, *, network: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None) -> EmulatorTransport:
        """An httpx transport (sync and async) answering from this emulator.

        It answers the API and upload paths for any host (it is the provider) and ``/files/`` on
        the emulator's own ``public_base``; any other request goes to ``network`` (give a
        :func:`luma.egress.guarded_transport`), and without one fails as an unreachable host.
        """
        from .transport import EmulatorTransport

        return EmulatorTransport(self, network=network)

    def configure(self, **changes: Any) -> EmulatorConfig:
        """Change settings on the running emulator (all or nothing); returns the new config."""
        for fixed in ("data_dir", "allow_hosts"):
            if fixed in changes:
                raise ValueError(f"{fixed} cannot change on a running emulator")
        with self._lock:
            updated = dataclasses.replace(self.config, **changes)  # validates via __post_init__
            self.config = updated
            return updated

    def samples(self, *, prepare: bool = False) -> list[SampleClip]:
        """The demo clips. Files are generated on first use, or now with ``prepare=True``
        (see also :meth:`prepare_samples`, which does it in the background)."""
        media = _media()
        clips = [
            SampleClip(spec.slug, spec.title, spec.description, self._file_url(f"samples/{spec.slug}.mp4"))
            for spec in media.SAMPLES
        ]
        if prepare:
            self.prepare_samples(wait=True)
        return clips

    def prepare_samples(self, *, wait: bool = False) -> None:
        """Generate every missing sample clip now, in the background unless ``wait``.

        Call once at start-up (demo mode) so the first create or preview does not wait seconds
        for its clip; :meth:`wait_idle` also waits for this work.
        """
        slugs = [spec.slug for spec in _media().SAMPLES]
        if wait:
            for slug in slugs:
                self.sample_path(slug)
            return

        def make(slug: str) -> None:
            try:
                self.sample_path(slug)
            except Exception:  # served on demand later, which reports the problem to the caller
                log.exception("emulator: could not pre-generate sample %s", slug)

        with self._lock:
            for slug in slugs:
                if not (self.data_dir / "samples" / f"{slug}.mp4").exists():
                    self._submit(self._renderers, make, slug)

    def sample_path(self, slug: str) -> Path:
        """The sample clip's file, generated (once, then cached on disk) if missing."""
        media = _media()
        if slug not in {spec.slug for spec in media.SAMPLES}:
            raise KeyError(f"unknown sample {slug!r}")
        path = self.data_dir / "samples" / f"{slug}.mp4"
        with self._lock:
            lock = self._sample_locks.setdefault(slug, threading.Lock())
        with lock:
            if not path.exists():
                tmp = self.data_dir / "tmp" / f"sample-{slug}-{secrets.token_hex(4)}.mp4"
                try:
                    media.make_sample(
                        slug,
                        tmp,
                        width=self.config.sample_width,
                        height=self.config.sample_height,
                        seconds=self.config.sample_seconds,
                    )
                    os.replace(tmp, path)
                finally:
                    tmp.unlink(missing_ok=True)
        return path

    def create_count(self) -> int:
        """Creates accepted since this emulator started (each also a line in ``creates.jsonl``)."""
        with self._lock:
            return self._create_count

    @property
    def creates_log(self) -> Path:
        """``data_dir/creates.jsonl``: one JSON line per accepted create (time, taskId, prompt, videoUrl)."""
        return self._creates_log

    def stats(self) -> dict[str, Any]:
        """``{"creates": n, "tasks": {status name: count}}`` (also ``GET /_emulator/stats``)."""
        with self._lock:
            self._advance()
            counts = {status.name: 0 for status in TaskStatus}
            for task in self._tasks.values():
                counts[task.status.name] += 1
            return {"creates": self._create_count, "tasks": counts}

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no rendering or callback delivery is in progress; False on timeout.

        Tasks whose ``processing_delay`` has not yet passed on the clock stay GENERATING; with a
        fake clock, advance it first, then call this.
        """
        deadline = time.monotonic() + timeout
        with self._idle:
            while True:
                self._advance()
                if self._pending == 0:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._idle.wait(min(remaining, 0.05))

    def close(self) -> None:
        """Stop background work and, if the data dir was a temp dir, delete it."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        self._renderers.shutdown(wait=True, cancel_futures=True)
        self._deliverers.shutdown(wait=True, cancel_futures=True)
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        self._fetch.close()
        self._sender.close()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Emulator(data_dir={str(self.data_dir)!r}, public_base={self.config.public_base!r})"

    # -- the one handler -------------------------------------------------------------------------

    def handle(self, request: EmulatorRequest) -> EmulatorResponse:
        """Answer one request. Thread-safe; never raises for anything a client can send."""
        answer = self._handle(request)
        if request.method == "HEAD":
            answer.send_body = False
        return answer

    def _handle(self, request: EmulatorRequest) -> EmulatorResponse:
        path = request.path
        if path.startswith("/_emulator/"):
            return self._admin(request)
        if self.config.latency > 0:
            self._sleep(self.config.latency)
        if path.startswith("/files/"):
            return self._serve_file(request)
        route = _ROUTES.get(path.rstrip("/") or "/")
        if route is None:
            return self._envelope(404, {"code": 404, "msg": "Not Found"}, http_status=404)
        methods, is_upload, handler = route
        try:
            owner = self._authenticate(request)
            if request.method not in methods:
                raise _Reject(405, f"Method {request.method} not allowed; use {'/'.join(methods)}")
            if is_upload and self.config.reject_bare_user_agent and _bare_user_agent(request):
                return _plain(403, "error code: 1010", content_type="text/html; charset=utf-8")
            if self.config.maintenance and not is_upload:
                raise _Reject(455, "The service is under maintenance, please try again later")
            return handler(self, request, owner)
        except _Reject as reject:
            return self._error(reject.code, reject.message, upload=is_upload)
        except Exception:  # a bug or a disk problem: answer like a provider would, keep serving
            log.exception("emulator: unexpected error answering %s %s", request.method, path)
            return self._error(500, "Internal server error", upload=is_upload)

    # -- answers ---------------------------------------------------------------------------------

    def _envelope(self, code: int, body: dict[str, Any], *, http_status: int | None = None) -> EmulatorResponse:
        if http_status is None:
            http_status = code if (self.config.error_style == "http" and code != 200) else 200
        headers = [("Content-Type", "application/json")]
        if code == 429 and self.config.retry_after is not None:
            headers.append(("Retry-After", f"{self.config.retry_after:g}"))
        payload = _json(body)
        headers.append(("Content-Length", str(len(payload))))
        return EmulatorResponse(http_status, headers, payload)

    def _ok(self, data: Any) -> EmulatorResponse:
        return self._envelope(200, {"code": 200, "msg": "success", "data": data})

    def _error(self, code: int, message: str, *, upload: bool = False) -> EmulatorResponse:
        body: dict[str, Any] = {"code": code, "msg": message}
        if upload:
            body = {"success": False, **body}
        return self._envelope(code, body)

    def _malformed(self) -> EmulatorResponse:
        payload = b'{"code":200,"msg":"success","data":{"taskI'
        return EmulatorResponse(
            200, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))], payload
        )

    def _hang(self) -> EmulatorResponse:
        return EmulatorResponse(0, hang=max(self.config.timeout_seconds, 0.001))

    def _draw_fault(self, *, create: bool) -> str | None:
        cfg = self.config
        if create and not cfg.fault_creates:
            return None
        rates = (("429", cfg.rate_429), ("500", cfg.rate_500), ("timeout", cfg.rate_timeout),
                 ("malformed", cfg.rate_malformed))
        if not any(rate for _, rate in rates):
            return None
        with self._lock:
            draw = self._fault_rng.random()
        for kind, rate in rates:
            if draw < rate:
                return kind
            draw -= rate
        return None

    def _read_fault(self) -> EmulatorResponse | None:
        """Injected faults of a read, answered before the read does anything."""
        fault = self._draw_fault(create=False)
        if fault == "429":
            return self._error(429, "Too many requests, please slow down")
        if fault == "500":
            return self._error(500, "Server error, please try again later")
        if fault == "timeout":
            return self._hang()
        if fault == "malformed":
            return self._malformed()
        return None

    # -- auth, credits, limits -------------------------------------------------------------------

    def _authenticate(self, request: EmulatorRequest) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise _Reject(401, UNAUTHORIZED_MESSAGE)
        required = self.config.required_key
        if required is not None and not hmac.compare_digest(key.encode(), required.encode()):
            raise _Reject(401, UNAUTHORIZED_MESSAGE)
        # Only a hash is kept: enough to keep accounts apart, useless to anyone reading memory dumps.
        return hashlib.sha256(key.encode()).hexdigest()[:24]

    def _credits_of(self, owner: str) -> int:
        return self._credits.setdefault(owner, self.config.credits)

    def credits_left(self, api_key: str) -> int:
        """Credits left for ``api_key`` (for tests and the dashboard's demo banner)."""
        owner = hashlib.sha256(api_key.encode()).hexdigest()[:24]
        with self._lock:
            return self._credits_of(owner)

    # -- routes: API -----------------------------------------------------------------------------

    def _route_credits(self, request: EmulatorRequest, owner: str) -> EmulatorResponse:
        fault = self._read_fault()
        if fault is not None:
            return fault
        with self._lock:
            return self._ok(self._credits_of(owner))

    def _route_record(self, request: EmulatorRequest, owner: str) -> EmulatorResponse:
        fault = self._read_fault()
        if fault is not None:
            return fault
        task_id = request.query.get("taskId", "").strip()
        if not task_id:
            raise _Reject(404, "taskId is required")
        with self._lock:
            self._advance()
            task = self._tasks.get(task_id)
            if task is None or task.owner != owner:
                raise _Reject(404, "Task not found")
            return self._ok(self._record(task))

    def _record(self, task: _Task) -> dict[str, Any]:
        cfg = self.config
        data: dict[str, Any] = {
            "taskId": task.task_id,
            "paramJson": task.param_json,
            "completeTime": int(task.completed * 1000) if task.completed is not None else None,
        }
        if task.status is TaskStatus.GENERATING:
            if cfg.response_while_generating == "null":
                data["response"] = None
        elif task.status is TaskStatus.CREATE_TASK_FAILED:
            data["response"] = None
        else:
            data["response"] = {
                "taskId": task.task_id,
                "originUrls": [self._file_url(task.origin_rel)] if task.origin_rel else [],
                "resultUrls": [self._file_url(task.result_rel)] if task.status.succeeded and task.result_rel else [],
            }
        data["successFlag"] = int(task.status)
        data["createTime"] = int(task.created * 1000)
        code: int | str | None = task.error_code
        if code is not None and cfg.error_code_type == "string":
            code = str(code)
        data["errorCode"] = code
        data["errorMessage"] = task.error_message
        return data

    def _route_download_url(self, request: EmulatorRequest, owner: str) -> EmulatorResponse:
        fault = self._read_fault()
        if fault is not None:
            return fault
        body = self._json_body(request, code=422)
        url = body.get("url")
        if not isinstance(url, str) or not url.strip():
            raise _Reject(422, "url is required")
        rel = self._local_rel(url.strip())
        with self._lock:
            target = self._generated_rel(rel) if rel is not None else None
            if target is None:
                raise _Reject(422, "The url was not generated by this service")
            token = secrets.token_urlsafe(18)
            self._links[token] = _Link(target, self._clock() + DOWNLOAD_LINK_LIFETIME_SECONDS)
        return self._ok(self._file_url(f"dl/{token}/{os.path.basename(target)}"))

    def _generated_rel(self, rel: str) -> str | None:
        """The origin/result file a URL of ours names (directly or via a live link), if it exists."""
        if rel.startswith("dl/"):
            parts = rel.split("/")
            link = self._links.get(parts[1]) if len(parts) >= 2 else None
            if link is None or self._clock() >= link.expires:
                return None
            rel = link.rel
        kind, _, name = rel.partition("/")
        if kind not in ("origin", "results"):
            return None
        task = self._tasks.get(os.path.splitext(name)[0])
        if task is None or rel not in (task.origin_rel, task.result_rel):
            return None
        if rel == task.result_rel and not task.status.succeeded:
            return None
        return rel

    def _route_create(self, request: EmulatorRequest, owner: str) -> EmulatorResponse:
        cfg = self.config
        fault = self._draw_fault(create=True)
        if fault == "429":
            return self._error(429, "Too many requests, please slow down")
        if fault == "500":
            return self._error(500, "Server error, please try again later")
        if cfg.feature_disabled:
            raise _Reject(505, "This feature is currently disabled")
        now = self._clock()
        with self._lock:
            window = self._windows.setdefault(owner, collections.deque())
            while window and window[0] <= now - cfg.create_window:
                window.popleft()
            if len(window) >= cfg.create_limit:
                raise _Reject(429, "Too many requests: the limit is "
                              f"{cfg.create_limit} new tasks per {cfg.create_window:g} seconds")
            window.append(now)

        body = self._json_body(request, code=422)
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise _Reject(422, "prompt is required")
        video_url = body.get("videoUrl")
        if not isinstance(video_url, str) or not video_url.strip():
            raise _Reject(422, "videoUrl is required")
        video_url = video_url.strip()
        if urlsplit(video_url).scheme not in ("http", "https") or not urlsplit(video_url).netloc:
            raise _Reject(422, "videoUrl must be an http or https URL")
        callback_url = body.get("callBackUrl")
        if callback_url is not None and not isinstance(callback_url, str):
            raise _Reject(422, "callBackUrl must be a string")
        callback_url = callback_url.strip() if callback_url else None
        if callback_url and urlsplit(callback_url).scheme not in ("http", "https"):
            raise _Reject(422, "callBackUrl must be an http or https URL")
        watermark = body.get("watermark")
        if watermark is not None and not isinstance(watermark, str):
            raise _Reject(422, "watermark must be a string")
        watermark = watermark or None

        with self._lock:
            if self._credits_of(owner) < cfg.credits_per_task:
                raise _Reject(402, "Insufficient credits")

        staged, container = self._stage_video(video_url)
        try:
            with self._lock:
                if self._closed:
                    raise _Reject(500, "The service is shutting down")
                draw = self._plan_rng.random()
                if draw < cfg.create_failure_rate:
                    plan = "create_fail"
                elif draw < cfg.create_failure_rate + cfg.failure_rate:
                    plan = "fail"
                else:
                    plan = "success"
                if plan != "create_fail":
                    if self._credits_of(owner) < cfg.credits_per_task:
                        raise _Reject(402, "Insufficient credits")
                    self._credits[owner] -= cfg.credits_per_task
                task_id = self._new_task_id()
                task = _Task(task_id, owner, prompt, video_url, callback_url, watermark, self._clock(), plan)
                self._tasks[task_id] = task
                if plan == "create_fail":
                    task.status = TaskStatus.CREATE_TASK_FAILED
                    task.completed = task.created
                    task.error_code = 500
                    task.error_message = "The task could not be started (emulated creation failure)"
                    self._deliver(task, success=False)
                else:
                    task.origin_rel = f"origin/{task_id}{_EXT_FOR_CONTAINER[container]}"
                    os.replace(staged, self.data_dir / task.origin_rel)
                    task.result_rel = f"results/{task_id}.mp4"
                    self._submit(self._renderers, self._render, task)
                    self._start_ticker()
                self._create_count += 1
                line = {"time": task.created, "taskId": task_id, "prompt": prompt, "videoUrl": video_url}
                with open(self._creates_log, "a", encoding="utf-8") as log:
                    log.write(json.dumps(line) + "\n")
        finally:
            staged.unlink(missing_ok=True)

        if fault == "timeout":
            return self._hang()
        if fault == "malformed":
            return self._malformed()
        return self._ok({"taskId": task_id})

    def _new_task_id(self) -> str:
        while True:
            if self._id_rng is not None:
                task_id = f"{self._id_rng.getrandbits(128):032x}"
            else:
                task_id = secrets.token_hex(16)
            if task_id not in self._tasks:
                return task_id

    # -- fetching and checking input videos ------------------------------------------------------

    def _stage_video(self, url: str) -> tuple[Path, str]:
        """Fetch ``url`` into a temp file and check it is an acceptable video; (path, container)."""
        cfg = self.config
        staged = self.data_dir / "tmp" / f"input-{secrets.token_hex(8)}"
        try:
            rel = self._local_rel(url)
            if rel is not None:
                source = self._resolve_rel(rel)
                if isinstance(source, tuple):
                    raise _Reject(422, f"videoUrl is unreachable (HTTP {source[0]})")
                if source.stat().st_size > cfg.max_video_bytes:
                    raise _Reject(422, self._too_big_message())
                shutil.copyfile(source, staged)
            else:
                self._download(url, staged, timeout=FETCH_TIMEOUT, code=422, what="videoUrl")
            try:
                info = _media().probe(staged)
            except _media().MediaError as exc:
                raise _Reject(422, f"videoUrl does not point to a readable video: {exc}") from None
            if info.container not in VIDEO_CONTAINERS:
                raise _Reject(422, f"The video container '{info.container}' is not supported; use MP4, MOV or AVI")
            if info.duration > cfg.max_video_seconds + 0.05:
                raise _Reject(
                    422, f"The video is {info.duration:.1f} seconds long; the limit is {cfg.max_video_seconds:g} seconds"
                )
            return staged, info.container
        except BaseException:
            staged.unlink(missing_ok=True)
            raise

    def _too_big_message(self) -> str:
        limit = self.config.max_video_bytes
        size = f"{limit // (1024 * 1024)} MB" if limit >= 1024 * 1024 else f"{limit} bytes"
        return f"The video is larger than {size}"

    def _check_hop(self, request: httpx.Request) -> None:
        self._egress.check_literal(request.url.host, request.url.port)

    def _download(
        self, url: str, dst: Path, *, timeout: float, code: int, what: str, video: bool = True
    ) -> str | None:
        """Stream a remote URL to ``dst`` within the size limit; returns its Content-Type."""
        limit = self.config.max_video_bytes
        # Worded the same whether refused up front, at the first connect or at a redirect hop,
        # so the answer never tells whether some host answered first.
        refused = f"{what} points to a private or local network address; the service only fetches public addresses"
        try:
            parts = urlsplit(url)
            # Before httpx parses it: some private spellings (0177.0.0.1) are not URLs to httpx.
            self._egress.check_literal(parts.hostname or "", parts.port)
        except AddressRefused:
            raise _Reject(code, refused) from None
        except ValueError:  # a port that is not a number
            raise _Reject(code, f"{what} is not a valid URL") from None
        try:
            with self._fetch.stream("GET", url, timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0))) as response:
                if response.status_code != 200:
                    raise _Reject(code, f"{what} is unreachable (HTTP {response.status_code})")
                content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                not_video = content_type.startswith("text/") or content_type in ("application/json", "application/xml")
                if video and not_video:
                    raise _Reject(code, f"{what} does not point to a video (content type {content_type})")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > limit:
                    raise _Reject(code, self._too_big_message())
                received = 0
                with open(dst, "wb") as out:
                    for chunk in response.iter_bytes():
                        received += len(chunk)
                        if received > limit:
                            raise _Reject(code, self._too_big_message())
                        out.write(chunk)
                return content_type or None
        except AddressRefused:  # raised by the redirect hook
            raise _Reject(code, refused) from None
        except httpx.TimeoutException:
            raise _Reject(code, f"{what} is unreachable (timed out)") from None
        except httpx.HTTPError as exc:
            if refusal_of(exc) is not None:  # raised by the guarded transport at connect time
                raise _Reject(code, refused) from None
            raise _Reject(code, f"{what} is unreachable ({type(exc).__name__})") from None
        except httpx.InvalidURL:
            raise _Reject(code, f"{what} is not a valid URL") from None

    # -- background work -------------------------------------------------------------------------

    def _submit(self, pool: ThreadPoolExecutor, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn`` in ``pool``, counted for :meth:`wait_idle`. Call with the lock held."""
        self._pending += 1

        def run() -> None:
            try:
                fn(*args)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

        try:
            pool.submit(run)
        except RuntimeError:  # the pool is shut down: the emulator is closing
            self._pending -= 1

    def _render(self, task: _Task) -> None:
        error: str | None = None
        if task.plan == "success":
            media = _media()
            result = self.data_dir / task.result_rel  # type: ignore[operator]
            tmp = self.data_dir / "tmp" / f"render-{task.task_id}.mp4"
            try:
                media.render_result(self.data_dir / task.origin_rel, tmp,  # type: ignore[operator]
                                    prompt=task.prompt, watermark=task.watermark)
                os.replace(tmp, result)
            except Exception as exc:  # any failure of the renderer is the task's failure, not ours
                error = f"The video could not be rendered: {exc}"
            finally:
                tmp.unlink(missing_ok=True)
        with self._lock:
            task.render_error = error
            task.render_done = self._clock()
            self._advance()

    def _advance(self) -> None:
        """Finish every task that is due. Call with the lock held."""
        now = self._clock()
        delay = self.config.processing_delay
        for task in self._tasks.values():
            if task.status is not TaskStatus.GENERATING or task.delivering or task.render_done is None:
                continue
            due = task.created + delay
            if now < due:
                continue
            task.completed = max(due, task.render_done)
            if task.plan == "fail" or task.render_error:
                task.status = TaskStatus.GENERATE_FAILED
                task.error_code = 501
                task.error_message = task.render_error or "Video generation failed (emulated failure)"
                task.result_rel = None
                self._deliver(task, success=False)
            elif task.callback_url:
                # Stays GENERATING until the callback settles: SUCCESS or CALLBACK_FAILED are final,
                # so the emulator never reports one and then the other.
                task.delivering = True
                self._deliver(task, success=True)
            else:
                task.status = TaskStatus.SUCCESS

    def _deliver(self, task: _Task, *, success: bool) -> None:
        """Queue the callback of a finished task, if it has a callback URL. Lock held."""
        if not task.callback_url:
            return
        if success:
            body = success_body(task.task_id, task.param_json, [self._file_url(task.result_rel)])  # type: ignore[arg-type]
        else:
            body = failure_body(task.task_id, task.param_json, self.config.callback_failure_code)
        self._submit(self._deliverers, self._send_callback, task, task.callback_url, body, success)

    def _send_callback(self, task: _Task, url: str, body: dict[str, Any], success: bool) -> None:
        cfg = self.config
        outcome = self._sender.send(
            url, body, retries=cfg.callback_retries, backoff=cfg.callback_backoff, timeout=cfg.callback_timeout
        )
        with self._lock:
            task.callback_outcome = f"{outcome.detail} after {outcome.attempts} attempt(s)"
            if success:
                task.status = TaskStatus.SUCCESS if outcome.delivered else TaskStatus.CALLBACK_FAILED
                task.delivering = False

    def _start_ticker(self) -> None:
        """A light thread that finishes due tasks even when nobody polls (callbacks must fire)."""
        if self._ticker is not None:
            return

        def tick() -> None:
            while not self._stop.wait(0.1):
                with self._lock:
                    self._advance()

        self._ticker = threading.Thread(target=tick, name="luma-emulator-ticker", daemon=True)
        self._ticker.start()

    # -- uploads ---------------------------------------------------------------------------------

    def _route_upload_stream(self, request: EmulatorRequest, owner: str) -> EmulatorResponse:
        content_type = request.headers.get("content-type", "")
        if not content_type.lower().startswith("multipart/form-data"):
            raise _Reject(400, "The request must be multipart/form-data with file and uploadPath")
        try:
            fields, files = parse_multipart(request.body, content_type)
        except ValueError as exc:
            raise _Reject(400, f"The multipart body could not be read: {exc}") from None
        if "file" not in files:
            raise _Reject(400, "file is required")
        upload_path = self._upload_path(fields.get("uploadPath"))
        original, part_type, data = files["file"]
        name = self._file_name(fields.get("fileName") or original, default_type=part_type)
        record = self._store_upload(upload_path, name, original or name, data, part_type)
        return self._upload_answer(record, stream=True)

    def _route_upload_base64(self, request: EmulatorRequest, owner: str) -> EmulatorResponse:
        body = self._json_body(request, code=400)
        raw = body.get("base64Data")
        if not isinstance(raw, str) or not raw.strip():
            raise _Reject(400, "base64Data is required")
        upload_path = self._upload_path(body.get("uploadPath"))
        declared_type: str | None = None
        raw = raw.strip()
        if raw.startswith("data:"):
            header, sep, raw = raw.partition(",")
            if not sep or ";base64" not in header:
                raise _Reject(400, "base64Data is a data URL without base64 content")
            declared_type = header[5:].split(";")[0] or None
        try:
            data = base64.b64decode("".join(raw.split()), validate=True)
        except (binascii.Error, ValueError):
            raise _Reject(400, "base64Data is not valid base64") from None
        if not data:
            raise _Reject(400, "base64Data is empty")
        name = self._file_name(body.get("fileName"), default_type=declared_type)
        record = self._store_upload(upload_path, name, name, data, declared_type)
        return self._upload_answer(record, stream=False)

    def _route_upload_url(self, request: EmulatorRequest, owner: str) -> EmulatorResponse:
        body = self._json_body(request, code=400)
        url = body.get("fileUrl")
        if not isinstance(url, str) or not url.strip():
            raise _Reject(400, "fileUrl is required")
        url = url.strip()
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise _Reject(400, "fileUrl must be an http or https URL")
        upload_path = self._upload_path(body.get("uploadPath"))
        original = unquote(os.path.basename(urlsplit(url).path)) or None
        staged = self.data_dir / "tmp" / f"fetch-{secrets.token_hex(8)}"
        try:
            rel = self._local_rel(url)
            content_type: str | None = None
            if rel is not None:
                source = self._resolve_rel(rel)
                if isinstance(source, tuple):
                    raise _Reject(400, f"fileUrl could not be downloaded (HTTP {source[0]})")
                shutil.copyfile(source, staged)
                content_type = _content_type(str(source))
            else:
                content_type = self._download(
                    url, staged, timeout=URL_UPLOAD_TIMEOUT, code=400, what="fileUrl", video=False
                )
            name = self._file_name(body.get("fileName") or original, default_type=content_type)
            record = self._store_upload(upload_path, name, original or name, staged, content_type)
        finally:
            staged.unlink(missing_ok=True)
        return self._upload_answer(record, stream=False)

    def _upload_path(self, value: Any) -> str:
        if not isinstance(value, str) or not value.strip("/ "):
            raise _Reject(400, "uploadPath is required")
        segments = value.strip("/ ").split("/")
        if any(s in (".", "..") or not _SEGMENT.fullmatch(s) for s in segments):
            raise _Reject(400, "uploadPath may only contain letters, digits, '.', '_', '-' and '/'")
        return "/".join(segments)

    def _file_name(self, value: Any, *, default_type: str | None) -> str:
        if isinstance(value, str) and value.strip():
            name = value.strip().replace("\\", "/").rsplit("/", 1)[-1]
            if name in (".", "..") or any(ord(c) < 32 for c in name) or not name:
                raise _Reject(400, "fileName is not a usable file name")
            return name
        ext = _EXT_FOR_TYPE.get(default_type or "", "") or mimetypes.guess_extension(default_type or "") or ".bin"
        return f"upload-{secrets.token_hex(6)}{ext}"

    def _store_upload(
        self, upload_path: str, name: str, original: str, data: bytes | Path, part_type: str | None
    ) -> _Upload:
        rel = f"uploads/{upload_path}/{name}"
        target = self.data_dir / rel
        if not target.resolve().is_relative_to(self.data_dir / "uploads"):
            raise _Reject(400, "fileName is not a usable file name")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.data_dir / "tmp" / f"upload-{secrets.token_hex(8)}"
        if isinstance(data, Path):
            os.replace(data, tmp)
        else:
            tmp.write_bytes(data)
        size = tmp.stat().st_size
        guessed = _content_type(name)
        mime = guessed if guessed != "application/octet-stream" else (part_type or guessed)
        with self._lock:
            os.replace(tmp, target)  # reusing a name overwrites, as documented
            record = _Upload(rel, upload_path, name, original, size, mime, self._clock(), secrets.token_hex(12))
            self._uploads[rel] = record
        return record

    def _upload_answer(self, record: _Upload, *, stream: bool) -> EmulatorResponse:
        shape = self.config.upload_shape
        if shape == "auto":
            shape = "A" if stream else "B"
        url = self._file_url(record.rel)
        if shape == "A":
            data: dict[str, Any] = {
                "fileName": record.file_name,
                "filePath": f"{record.upload_path}/{record.file_name}",
                "downloadUrl": url,
                "fileSize": record.size,
                "mimeType": record.mime_type,
                "uploadedAt": _now_iso(record.uploaded),
            }
        else:
            data = {
                "fileId": record.file_id,
                "fileName": record.file_name,
                "originalName": record.original_name,
                "fileSize": record.size,
                "mimeType": record.mime_type,
                "uploadPath": record.upload_path,
                "fileUrl": url,
                "downloadUrl": url,
                "uploadTime": _now_iso(record.uploaded),
                "expiresAt": _now_iso(record.expires),
            }
        return self._envelope(200, {"success": True, "code": 200, "msg": "File uploaded successfully", "data": data})

    def _json_body(self, request: EmulatorRequest, *, code: int) -> dict[str, Any]:
        try:
            body = json.loads(request.body or b"null")
        except ValueError:
            raise _Reject(code, "The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise _Reject(code, "The request body must be a JSON object")
        return body

    # -- files -----------------------------------------------------------------------------------

    def _file_url(self, rel: str) -> str:
        return f"{self.config.public_base.rstrip('/')}/files/{quote(rel)}"

    def _local_rel(self, url: str) -> str | None:
        """The ``/files/`` path a URL of ours names, or None for any other URL."""
        try:
            ours, theirs = urlsplit(self.config.public_base), urlsplit(url)
            same = (ours.scheme.lower(), ours.netloc.lower()) == (theirs.scheme.lower(), theirs.netloc.lower())
        except ValueError:
            return None
        if not same or not theirs.path.startswith("/files/"):
            return None
        return unquote(theirs.path[len("/files/"):])

    def _resolve_rel(self, rel: str) -> Path | tuple[int, str]:
        """The file behind a ``/files/`` path, or (HTTP status, reason) when there is none."""
        parts = rel.split("/")
        if any(p in ("", ".", "..") for p in parts):
            return 404, "Not Found"
        kind = parts[0]
        if kind == "samples" and len(parts) == 2 and parts[1].endswith(".mp4"):
            try:
                return self.sample_path(parts[1][:-4])
            except KeyError:
                return 404, "Not Found"
            except Exception as exc:  # the generator failed: a server-side problem, said plainly
                return 500, f"The sample clip could not be generated: {exc}"
        with self._lock:
            now = self._clock()
            if kind == "dl" and len(parts) == 3:
                link = self._links.get(parts[1])
                if link is None or os.path.basename(link.rel) != parts[2]:
                    return 404, "Not Found"
                if now >= link.expires:
                    return 410, "This download link has expired; request a new one"
                rel = link.rel
                kind = rel.split("/")[0]
            if kind in ("origin", "results") and rel.count("/") == 1:
                task = self._tasks.get(os.path.splitext(rel.split("/")[1])[0])
                if task is None or rel not in (task.origin_rel, task.result_rel):
                    return 404, "Not Found"
                if now >= task.created + RESULT_LIFETIME_SECONDS:
                    return 410, "This file has expired"
            elif kind == "uploads":
                record = self._uploads.get(rel)
                if record is None:
                    return 404, "Not Found"
                if now >= record.expires:
                    # The upload host deletes files after three days.
                    del self._uploads[rel]
                    (self.data_dir / rel).unlink(missing_ok=True)
                    return 404, "Not Found"
            else:
                return 404, "Not Found"
            path = self.data_dir / rel
            if not path.is_file():
                return 404, "Not Found"
            return path

    def _serve_file(self, request: EmulatorRequest) -> EmulatorResponse:
        if request.method not in ("GET", "HEAD"):
            return _plain(405, "Method Not Allowed", [("Allow", "GET, HEAD")])
        resolved = self._resolve_rel(unquote(request.path[len("/files/"):]))
        if isinstance(resolved, tuple):
            return _plain(*resolved)
        size = resolved.stat().st_size
        headers = [("Content-Type", _content_type(resolved.name)), ("Accept-Ranges", "bytes"),
                   ("Cache-Control", "public, max-age=3600")]
        head = request.method == "HEAD"
        wanted = request.headers.get("range")
        span = _parse_range(wanted, size) if wanted else None
        if span == "unsatisfiable":
            return EmulatorResponse(416, [*headers[:2], ("Content-Range", f"bytes */{size}"), ("Content-Length", "0")])
        if span is None:
            headers.append(("Content-Length", str(size)))
            return EmulatorResponse(200, headers, file=resolved, length=size, send_body=not head)
        start, end = span  # type: ignore[misc]
        headers += [("Content-Range", f"bytes {start}-{end}/{size}"), ("Content-Length", str(end - start + 1))]
        return EmulatorResponse(206, headers, file=resolved, offset=start, length=end - start + 1, send_body=not head)

    # -- admin -----------------------------------------------------------------------------------

    def _admin(self, request: EmulatorRequest) -> EmulatorResponse:
        path = request.path.rstrip("/")
        if path == "/_emulator/stats" and request.method == "GET":
            return _plain_json(200, self.stats())
        if path == "/_emulator/config" and request.method in ("GET", "POST"):
            if request.method == "POST":
                try:
                    changes = json.loads(request.body or b"{}")
                    if not isinstance(changes, dict):
                        raise ValueError("the body must be a JSON object")
                    # allow_hosts over HTTP would let any caller open the private network.
                    blocked = {"data_dir", "required_key", "signing_key", "allow_hosts"} & changes.keys()
                    if blocked:
                        raise ValueError(f"{', '.join(sorted(blocked))} cannot be changed over HTTP")
                    self.configure(**changes)
                except (TypeError, ValueError) as exc:
                    return _plain_json(400, {"error": str(exc)})
            return _plain_json(200, self._public_config())
        return _plain(404, "Not Found")

    def _public_config(self) -> dict[str, Any]:
        shown: dict[str, Any] = {}
        for f in dataclasses.fields(self.config):
            value = getattr(self.config, f.name)
            if f.name in ("required_key", "signing_key"):
                value = bool(value)
            elif isinstance(value, Path):
                value = str(value)
            shown[f.name] = value
        shown["data_dir"] = str(self.data_dir)
        return shown


def _bare_user_agent(request: EmulatorRequest) -> bool:
    agent = request.headers.get("user-agent", "").strip().lower()
    return not agent or agent.startswith(_LIBRARY_AGENTS)


def _plain(status: int, reason: str, extra: list[tuple[str, str]] | None = None, *,
           content_type: str = "text/plain; charset=utf-8") -> EmulatorResponse:
    payload = (reason + "\n").encode()
    headers = [("Content-Type", content_type), ("Content-Length", str(len(payload)))]
    return EmulatorResponse(status, headers + (extra or []), payload)


def _plain_json(status: int, value: Any) -> EmulatorResponse:
    payload = _json(value)
    return EmulatorResponse(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))], payload)


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
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


_Route = tuple[tuple[str, ...], bool, Callable[[Emulator, EmulatorRequest, str], EmulatorResponse]]
_ROUTES: dict[str, _Route] = {
    PATH_CREATE: (("POST",), False, Emulator._route_create),
    PATH_RECORD: (("GET",), False, Emulator._route_record),
    PATH_CREDITS: (("GET",), False, Emulator._route_credits),
    PATH_DOWNLOAD_URL: (("POST",), False, Emulator._route_download_url),
    PATH_UPLOAD_STREAM: (("POST",), True, Emulator._route_upload_stream),
    PATH_UPLOAD_BASE64: (("POST",), True, Emulator._route_upload_base64),
    PATH_UPLOAD_URL: (("POST",), True, Emulator._route_upload_url),
}
