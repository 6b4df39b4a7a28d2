"""The emulator's settings and the constants its routes share.

:class:`EmulatorConfig` is plain data (every field has a default that makes a pleasant, fault-free
demo); :class:`SampleClip` describes one of the demo clips the emulator serves. Nothing here
runs anything: the adapters may import it as freely as the backend does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .._constants import CREATE_LIMIT, CREATE_WINDOW, MAX_VIDEO_BYTES, MAX_VIDEO_SECONDS
from ..egress import EgressPolicy
from .delivery import CALLBACK_BACKOFF, CALLBACK_RETRIES, CALLBACK_TIMEOUT

__all__ = [
    "DEFAULT_PUBLIC_BASE",
    "FETCH_TIMEOUT",
    "SAMPLE_WAIT_SECONDS",
    "URL_UPLOAD_TIMEOUT",
    "VIDEO_TYPES",
    "EmulatorConfig",
    "SampleClip",
]

#: Origin of the file URLs an in-process emulator hands out (never resolved: the transport
#: answers it). The loopback server replaces it with its own ``http://HOST:PORT``.
DEFAULT_PUBLIC_BASE = "http://luma-emulator.local"
#: Seconds the emulator waits for a remote ``videoUrl`` (a provider would not wait long either).
FETCH_TIMEOUT = 10.0
#: The upload host's documented timeout for ``fileUrl``.
URL_UPLOAD_TIMEOUT = 30.0
#: Default longest wait of a request for a sample clip that is not rendered yet (then: 503).
#: A 640x360, 6 s clip renders in 2-3 s on two shared cores, and a request may first wait for the
#: clip being rendered ahead of it: a minute leaves room for a slow machine without hanging a
#: page for ever.
SAMPLE_WAIT_SECONDS = 60.0
#: Content types served for the containers the provider accepts.
VIDEO_TYPES = {".mp4": "video/mp4", ".mov": "video/quicktime", ".avi": "video/x-msvideo"}
_ERROR_STYLES = ("body", "http")
_GENERATING_SHAPES = ("null", "absent")
_ERROR_CODE_TYPES = ("int", "string")
_UPLOAD_SHAPES = ("auto", "A", "B")


@dataclass
class EmulatorConfig:
    """How the emulator behaves; every default makes a pleasant, fault-free demo.

    Fields may be changed on a running emulator with :meth:`Emulator.configure` (except
    ``data_dir``, which is fixed when the emulator starts).
    """

    data_dir: Path | None = None
    """Where uploads, origins, results, samples, ``creates.jsonl`` and the state a restart reloads
    live (a temp dir, deleted on close, if None); one live emulator per dir."""
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
    answer_delay: float = 0.0
    """Seconds an accepted create's answer is held back after the task is created, charged, logged
    and stored: the provider charged for a task whose answer may never reach the caller. Only the
    caller waits (in-process, it gets ``httpx.ReadTimeout`` if its read timeout is shorter)."""
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
    """Background render workers for tasks (sample clips have one thread of their own)."""
    sample_width: int = 640
    """Width of generated sample clips."""
    sample_height: int = 360
    """Height of generated sample clips."""
    sample_seconds: float = 6.0
    """Length of generated sample clips."""
    sample_wait: float = SAMPLE_WAIT_SECONDS
    """Longest a request for a sample clip not yet on disk waits for it; then the file host answers
    503 (with ``Retry-After``) and a create from that URL 422."""

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
        for name in ("processing_delay", "latency", "answer_delay", "timeout_seconds", "create_window",
                     "callback_backoff", "sample_wait"):
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

