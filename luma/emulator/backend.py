"""The emulator's backend: its state, its routes and its one request handler.

:class:`EmulatorBackend` answers every path of the provider's API (create, record-info, credits,
download-url), of its upload host (stream, base64 and URL uploads) and the public file URLs it
hands out, through one function, :meth:`EmulatorBackend.handle`. Two thin adapters feed it: the
httpx transport (``transport.py``, in-process demo mode and tests) and the loopback HTTP server
(``server.py``, ``python -m luma.emulator``), so both behave identically. This module never
imports them: they speak :mod:`luma.emulator.wire`, and :class:`luma.emulator.core.Emulator` is
where the backend meets its in-process transport.

Faithfulness comes from the spec in ``docs/kie-luma-api.md``: the envelopes and field
names, each documented variant on demand (``response`` null or absent while generating,
``errorCode`` as int or string, both upload shapes, errors in the body or in the HTTP status), the
limits (20 creates per 10 s, 500 MB, 10 s, MP4/MOV/AVI), the lifetimes (uploads 3 days, download
links 20 minutes, results 14 days) and signed, retried callbacks.

Tasks are real work: on create the input video is fetched (the emulator's own file URLs resolve
locally, anything else goes through ``fetch_transport``), probed, copied to an "origin" file, and
rendered by :func:`luma.emulator.media.render_result` in a small worker pool. A task stays
GENERATING until rendering is done *and* ``processing_delay`` seconds have passed on the injected
clock, so tests can move time by hand.

The demo's sample clips are rendered by one dedicated thread, one clip at a time, never by the
task workers: a demo task never queues behind a sample, and samples never take more than one
render's worth of CPU. A request for a clip that is not on disk yet moves it to the front of that
thread's queue and waits for it (see :meth:`EmulatorBackend.sample_path`). Each clip is written
under a temporary name and renamed into place, so a file at its final path is always complete,
and one left by an earlier run in the same data dir is served as it is.

Like the provider, the emulator fetches and calls back only public addresses: its default fetch
and callback transports are :func:`luma.egress.guarded_transport` s, which check every connection
(redirect hops included) at connect time, and a URL whose host is a private IP literal is refused
before any request. ``EmulatorConfig.allow_hosts`` names the exceptions (a test server on
127.0.0.1, an internal file host).

State survives a restart, as the provider's does: every task, credit balance, upload and download
link is written to ``data_dir/state`` when it changes (see :mod:`luma.emulator.store`), and a new
emulator on the same data dir loads it and picks up the work the previous one left unfinished: a
render cut off is rendered again from its origin file, a callback cut off is delivered again (the
spec allows a task to be delivered more than once). Only the create rate window starts afresh.
One live emulator per data dir: one in another process raises
:class:`~luma.emulator.store.DataDirInUse` (one in the same process is let through, see
:class:`EmulatorBackend`).

The API key is only ever hashed (to keep each key's credits, rate window and tasks apart); it is
never stored, logged or written to ``creates.jsonl`` or the state files.
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, Self
from urllib.parse import quote, unquote, urlsplit

import httpx

from .._constants import (
    DOWNLOAD_LINK_LIFETIME_SECONDS,
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
from ..egress import AddressRefused, guarded_transport, refusal_of
from ..models import TaskStatus
from .catalog import SAMPLES, shipped_sample
from .config import FETCH_TIMEOUT, URL_UPLOAD_TIMEOUT, VIDEO_TYPES, EmulatorConfig, SampleClip
from .delivery import CallbackSender, failure_body, success_body
from .store import StateStore, count_lines
from .wire import EmulatorRequest, EmulatorResponse, json_response, parse_multipart, parse_range, text_response

log = logging.getLogger(__name__)

__all__ = ["EmulatorBackend"]

UNAUTHORIZED_MESSAGE = "You do not have access permissions"
_EXT_FOR_CONTAINER = {"mp4": ".mp4", "mov": ".mov", "avi": ".avi"}
_EXT_FOR_TYPE = {v: k for k, v in VIDEO_TYPES.items()}
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_TASK_ID = re.compile(r"[0-9a-f]{32}")  # every id _new_task_id makes; checked before naming a file
_SAMPLE_PENDING = "The sample clip is still being generated; try again in a few seconds"
_LIBRARY_AGENTS = ("python-httpx/", "python-requests/", "python-urllib/", "curl/", "wget/", "go-http-client/")


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
    def callback_pending(self) -> bool:
        """A callback was due and has not settled (a run that stopped meanwhile sends it again)."""
        if not self.callback_url or self.callback_outcome is not None:
            return False
        return self.delivering or self.status in (TaskStatus.GENERATE_FAILED, TaskStatus.CREATE_TASK_FAILED)

    def to_record(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "status": int(self.status)}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> _Task:
        known = {f.name for f in dataclasses.fields(cls)}
        task = cls(**{k: v for k, v in record.items() if k in known})
        task.status = TaskStatus(int(record["status"]))
        return task

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

    def to_record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> _Upload:
        return cls(**{f.name: record[f.name] for f in dataclasses.fields(cls)})


@dataclass
class _Link:
    rel: str
    expires: float

    def to_record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> _Link:
        return cls(str(record["rel"]), float(record["expires"]))


#: Request counters of :meth:`EmulatorBackend.stats`, by operation.
_OPERATIONS = ("creates", "credits", "download_urls", "files", "other", "reads", "uploads")


# --- the emulator --------------------------------------------------------------------------------


def _media() -> ModuleType:
    # Imported on first use: PyAV is heavy, and most requests (reads, uploads) never need it.
    from . import media

    return media


def _now_iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _content_type(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext in VIDEO_TYPES:
        return VIDEO_TYPES[ext]
    return mimetypes.guess_type(path)[0] or "application/octet-stream"


class EmulatorBackend:
    """An offline stand-in for kie.ai's Luma modify-video API, its upload host and its file host.

    Use :class:`luma.emulator.Emulator`, which adds the in-process transport; this class is what
    the adapters serve (a :class:`~luma.emulator.wire.Service`).

    Its state lives in ``config.data_dir`` and outlives it: a new emulator on the same dir answers
    for every task the last one knew and finishes its cut-off work. Several emulators on one data
    dir at the same time are not supported: one in another process raises
    :class:`~luma.emulator.store.DataDirInUse`; a second one in the same process is let through
    (the dashboard may make one) but leaves unfinished work to the first (see
    :mod:`luma.emulator.store`).
    """

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
        self._wait: Callable[[float], object] = self._stop.wait if sleep is time.sleep else sleep
        if self.config.data_dir is None:
            self._own_dir = True
            self.data_dir = Path(tempfile.mkdtemp(prefix="luma-emulator-")).resolve()
        else:
            self._own_dir = False
            self.data_dir = Path(self.config.data_dir).resolve()
            self.data_dir.mkdir(parents=True, exist_ok=True)
        # First: an emulator of another process on this dir must be refused before anything is touched.
        self._store = StateStore(self.data_dir)
        for sub in ("origin", "results", "uploads", "samples", "tmp"):
            (self.data_dir / sub).mkdir(exist_ok=True)
        if not self._store.shared:
            # Half-written inputs, renders, uploads and state of a run that died: nobody else uses the dir.
            self._store.remove_stale()
            for stale in (self.data_dir / "tmp").iterdir():
                if stale.is_file():
                    stale.unlink(missing_ok=True)
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
        # The GENERATING ones, which :meth:`_advance` looks at on every read: the stored tasks of
        # earlier runs pile up in a long-lived data dir, and finished ones never change again.
        self._unsettled: dict[str, _Task] = {}
        # Unfinished tasks another emulator of this process runs in the same data dir (an
        # unsupported setup the dashboard can still make): read from disk, never advanced here.
        self._foreign: set[str] = set()
        self._credits: dict[str, int] = {}
        self._windows: dict[str, collections.deque[float]] = {}
        self._uploads: dict[str, _Upload] = {}
        self._links: dict[str, _Link] = {}
        self._create_count = 0
        # Requests per operation since this emulator started, answered or not (not persisted).
        self._requests = dict.fromkeys(_OPERATIONS, 0)
        self._count_lock = threading.Lock()
        # The sample thread's work: clips to render in order, the one being rendered, and why
        # a clip last failed (for the requests waiting on it). All guarded by ``_lock``.
        self._sample_queue: list[str] = []
        self._sample_rendering: str | None = None
        self._sample_failures: dict[str, Exception] = {}
        self._sampler: threading.Thread | None = None

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
        with self._lock:
            self._recover()

    # -- public API ------------------------------------------------------------------------------

    @property
    def public_base(self) -> str:
        """Origin of the file URLs handed out (``config.public_base``)."""
        return self.config.public_base

    def configure(self, **changes: Any) -> EmulatorConfig:
        """Change settings on the running emulator (all or nothing); returns the new config."""
        for fixed in ("data_dir", "allow_hosts"):
            if fixed in changes:
                raise ValueError(f"{fixed} cannot change on a running emulator")
        with self._lock:
            updated = dataclasses.replace(self.config, **changes)  # validates via __post_init__
            self.config = updated
            return updated

    def hold(self, seconds: float) -> None:
        """Wait out an injected timeout on the injected ``sleep`` (a test's returns at once)."""
        self._sleep(seconds)

    def samples(self, *, prepare: bool = False) -> list[SampleClip]:
        """The demo clips; listing them renders nothing.

        With ``prepare=True``, also render the missing ones and return once all are on disk (see
        :meth:`prepare_samples`).
        """
        clips = [
            SampleClip(spec.slug, spec.title, spec.description, self._file_url(f"samples/{spec.slug}.mp4"))
            for spec in SAMPLES
        ]
        if prepare:
            self.prepare_samples(wait=True)
        return clips

    def sample_ready(self, slug: str) -> bool:
        """Whether the clip ``slug`` is on disk, complete, so serving it will not wait.

        Raises ``KeyError`` for a slug that is not one of :meth:`samples`.
        """
        return self._sample_file(slug).exists()

    def prepare_samples(self, *, first: str | None = None, wait: bool = False) -> None:
        """Render the missing sample clips in the background, one at a time, ``first`` first.

        Clips that ship with the package at the configured size are copied at once instead.

        Clips render on the emulator's one sample thread, never on the task workers, so a demo
        task created meanwhile does not wait for them. Clips already on disk (from an earlier run
        in the same data dir) are kept as they are. Returns at once unless ``wait``; then returns
        once every clip is on disk, or raises ``RuntimeError`` naming the first that could not be
        rendered. :meth:`wait_idle` also waits for this work. ``KeyError`` for an unknown ``first``.
        """
        slugs = [spec.slug for spec in SAMPLES]
        if first is not None:
            self._sample_file(first)  # refuses an unknown slug before anything is queued
        order = ([first] if first is not None else []) + [slug for slug in slugs if slug != first]
        for slug in order:
            if self._shipped_sample(slug) is not None:
                self._render_sample(slug)  # a copy of a shipped clip: on disk before this returns
        with self._lock:
            # Only ``first`` jumps the queue: a clip a request is already waiting for stays ahead
            # of the rest.
            self._queue_samples(order[:1], front=first is not None)
            self._queue_samples(order[1:], front=False)
        if wait:
            for slug in order:
                self._await_sample(slug, timeout=None)

    def sample_path(self, slug: str) -> Path:
        """The sample clip's file, rendered first if it is not on disk yet.

        A missing clip moves to the front of the sample thread's queue and is waited for, at most
        ``config.sample_wait`` seconds. It is never rendered on the calling thread, so it is
        rendered once however many requests want it, and never beside another clip.

        Raises:
            KeyError: ``slug`` is not one of the samples.
            TimeoutError: the clip was not on disk within ``config.sample_wait``.
            RuntimeError: the clip could not be rendered, or the emulator is closing.
        """
        path = self._sample_file(slug)
        if path.exists():
            return path
        with self._lock:
            self._queue_samples([slug], front=True)
        return self._await_sample(slug, self.config.sample_wait)

    def create_count(self) -> int:
        """Creates accepted in this data dir: the lines of ``creates.jsonl``, so a restart continues the count."""
        with self._lock:
            return self._create_count

    @property
    def creates_log(self) -> Path:
        """``data_dir/creates.jsonl``: one JSON line per accepted create (time, taskId, prompt, videoUrl)."""
        return self._creates_log

    def stats(self) -> dict[str, Any]:
        """Counts, also ``GET /_emulator/stats``: ``{"creates": n, "tasks": {...}, "requests": {...}}``.

        ``creates`` is :meth:`create_count`; ``tasks`` counts the tasks by status name;
        ``requests`` counts the requests this emulator received since it started, answered or
        not, by operation: ``reads`` (record-info), ``creates``, ``credits``, ``download_urls``,
        ``uploads`` (all three kinds), ``files`` (``/files/``) and ``other`` (unknown paths).
        """
        with self._lock:
            self._advance()
            counts = {status.name: 0 for status in TaskStatus}
            for task in self._tasks.values():
                counts[task.status.name] += 1
            with self._count_lock:
                requests = dict(self._requests)
            return {"creates": self._create_count, "tasks": counts, "requests": requests}

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no rendering (of tasks or samples) or callback delivery is in progress; False on timeout.

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
        with self._idle:
            if self._closed:
                return
            self._closed = True
            self._sample_queue.clear()
            sampler = self._sampler
            self._idle.notify_all()  # requests waiting for a sample give up now
        self._stop.set()
        self._renderers.shutdown(wait=True, cancel_futures=True)
        self._deliverers.shutdown(wait=True, cancel_futures=True)
        if sampler is not None:
            sampler.join()  # a clip being rendered is finished, so nothing writes to a deleted dir
        if self._ticker is not None:
            self._ticker.join(timeout=5)
        self._fetch.close()
        self._sender.close()
        with self._lock:
            self._store.close()  # a request still running cannot write after the next emulator starts
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(data_dir={str(self.data_dir)!r}, public_base={self.config.public_base!r})"

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
        files = path.startswith("/files/")
        route = None if files else _ROUTES.get(path.rstrip("/") or "/")
        operation = "files" if files else "other" if route is None else route[3]
        with self._count_lock:
            self._requests[operation] += 1
        if self.config.latency > 0:
            self._sleep(self.config.latency)
        if files:
            return self._serve_file(request)
        if route is None:
            return self._envelope(404, {"code": 404, "msg": "Not Found"}, http_status=404)
        methods, is_upload, handler, _ = route
        try:
            owner = self._authenticate(request)
            if request.method not in methods:
                raise _Reject(405, f"Method {request.method} not allowed; use {'/'.join(methods)}")
            if is_upload and self.config.reject_bare_user_agent and _bare_user_agent(request):
                return text_response(403, "error code: 1010", content_type="text/html; charset=utf-8")
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
        extra: list[tuple[str, str]] = []
        if code == 429 and self.config.retry_after is not None:
            extra.append(("Retry-After", f"{self.config.retry_after:g}"))
        return json_response(http_status, body, extra)

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
            task = self._task(task_id)
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
            link = _Link(target, self._clock() + DOWNLOAD_LINK_LIFETIME_SECONDS)
            self._links[token] = link
            self._store.add_link(token, link.to_record())
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
        task = self._task(os.path.splitext(name)[0])
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
                    self._save(task)
                    self._deliver(task, success=False)
                else:
                    task.origin_rel = f"origin/{task_id}{_EXT_FOR_CONTAINER[container]}"
                    os.replace(staged, self.data_dir / task.origin_rel)
                    task.result_rel = f"results/{task_id}.mp4"
                    self._unsettled[task_id] = task
                    # Stored before it is rendered or logged: whatever creates.jsonl names, a
                    # restarted emulator can answer for.
                    self._save(task)
                    self._store.save_credits(self._credits)
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
        delay = cfg.answer_delay
        if delay > 0:
            if request.read_timeout is not None and delay >= request.read_timeout:
                # In-process, the caller would give up before the answer: let the transport
                # fail the way its socket read would, after the caller's own timeout.
                return EmulatorResponse(0, hang=delay)
            self._sleep(delay)  # this caller's thread only: the lock is not held
        if fault == "malformed":
            return self._malformed()
        return self._ok({"taskId": task_id})

    def _new_task_id(self) -> str:
        while True:
            if self._id_rng is not None:
                task_id = f"{self._id_rng.getrandbits(128):032x}"
            else:
                task_id = secrets.token_hex(16)
            if task_id in self._tasks:
                continue
            if self._store.crowded() and self._store.load_task(task_id) is not None:
                continue  # made meanwhile by the other emulator sharing the dir (same seed)
            return task_id

    # -- state on disk ---------------------------------------------------------------------------

    def _task(self, task_id: str) -> _Task | None:
        """The task ``task_id``, or None. Lock held.

        A task another emulator of this process runs in the same data dir is read from disk, as
        that emulator last stored it; so is an unknown id while another emulator shares the dir.
        """
        task = self._tasks.get(task_id)
        if task is not None and task_id not in self._foreign:
            return task
        if task is None and not (_TASK_ID.fullmatch(task_id) and self._store.crowded()):
            return None
        stored = self._store.load_task(task_id)
        if stored is None:
            return task
        try:
            task = _Task.from_record(stored)
        except (KeyError, TypeError, ValueError):
            return task
        self._tasks[task_id] = task
        if task.status is TaskStatus.GENERATING:
            self._foreign.add(task_id)
        else:
            self._foreign.discard(task_id)
        return task

    def _save(self, task: _Task) -> None:
        """Store one task as it is now. Lock held."""
        self._store.save_task(task.task_id, task.to_record())

    def _save_uploads(self) -> None:
        """Store every upload record. Lock held."""
        self._store.save_uploads({rel: record.to_record() for rel, record in self._uploads.items()})

    def _recover(self) -> None:
        """Load what earlier runs in this data dir stored and resume their unfinished work. Lock held."""
        self._create_count = count_lines(self._creates_log)
        self._credits.update(self._store.load_credits())
        for token, stored in self._store.load_links().items():
            try:
                self._links[token] = _Link.from_record(stored)
            except (KeyError, TypeError, ValueError):
                log.warning("emulator: ignoring a stored download link that cannot be read")
        for rel, stored in self._store.load_uploads().items():
            try:
                self._uploads[rel] = _Upload.from_record(stored)
            except (KeyError, TypeError):
                log.warning("emulator: ignoring the stored upload %s, which cannot be read", rel)
        tasks = []
        for stored in self._store.load_tasks():
            try:
                tasks.append(_Task.from_record(stored))
            except (KeyError, TypeError, ValueError):
                log.warning("emulator: ignoring the stored task %s, which cannot be read", stored.get("task_id"))
        resume = not self._store.shared
        if not resume:
            log.warning("emulator: another emulator of this process uses %s; this one answers for its "
                        "stored tasks but leaves their unfinished work to it (one emulator per data dir "
                        "is the supported setup)", self.data_dir)
        for task in sorted(tasks, key=lambda t: t.created):
            self._tasks[task.task_id] = task
            if not resume:
                if task.status is TaskStatus.GENERATING:
                    self._foreign.add(task.task_id)
                continue
            if task.callback_pending:
                # Cut off mid-delivery (or before it began): the spec lets a task be delivered twice.
                self._deliver(task, success=task.delivering)
            if task.status is not TaskStatus.GENERATING:
                continue
            self._unsettled[task.task_id] = task
            if task.render_done is None:
                result = self.data_dir / task.result_rel if task.result_rel else None
                if task.plan == "success" and result is not None and result.is_file():
                    # Renamed into place only when complete, so this render finished; the run
                    # died before recording it. It becomes due on the clock as usual.
                    task.render_done = min(self._clock(), result.stat().st_mtime)
                    self._save(task)
                else:
                    self._submit(self._renderers, self._render, task)
        if self._unsettled:
            self._start_ticker()
        if tasks:
            log.info("emulator: loaded %d task(s) from %s (%d unfinished)", len(tasks), self._store.root,
                     len(self._unsettled))

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
        # Both are set for every task that reaches a render worker (create_fail never does).
        origin_rel, result_rel = task.origin_rel, task.result_rel
        if task.plan == "success" and origin_rel is not None and result_rel is not None:
            media = _media()
            tmp = self.data_dir / "tmp" / f"render-{task.task_id}.mp4"
            try:
                media.render_result(self.data_dir / origin_rel, tmp, prompt=task.prompt, watermark=task.watermark)
                os.replace(tmp, self.data_dir / result_rel)
            except Exception as exc:  # noqa: BLE001 - any renderer failure is the task's failure, not ours
                error = f"The video could not be rendered: {exc}"
            finally:
                tmp.unlink(missing_ok=True)
        with self._lock:
            task.render_error = error
            task.render_done = self._clock()
            self._save(task)
            self._advance()

    def _sample_file(self, slug: str) -> Path:
        if slug not in {spec.slug for spec in SAMPLES}:
            raise KeyError(f"unknown sample {slug!r}")
        return self.data_dir / "samples" / f"{slug}.mp4"

    def _queue_samples(self, slugs: list[str], *, front: bool) -> None:
        """Ask the sample thread for the clips of ``slugs`` not on disk, in order. Lock held.

        ``front`` puts them before everything already queued; otherwise a clip already queued
        keeps its place. Starts the thread when it is not running.
        """
        if self._closed:
            return
        wanted = [slug for slug in slugs if slug != self._sample_rendering and not self._sample_file(slug).exists()]
        for slug in wanted:
            self._sample_failures.pop(slug, None)  # asked again: it gets a new attempt
        if front:
            self._sample_queue = wanted + [slug for slug in self._sample_queue if slug not in wanted]
        else:
            self._sample_queue += [slug for slug in wanted if slug not in self._sample_queue]
        if self._sample_queue and self._sampler is None:
            self._pending += 1  # counted for wait_idle until the thread ends
            self._sampler = threading.Thread(target=self._run_sampler, name="luma-emulator-samples", daemon=True)
            self._sampler.start()

    def _run_sampler(self) -> None:
        """The sample thread: render queued clips one at a time, then end when none are left."""
        while True:
            with self._idle:
                if self._closed or not self._sample_queue:
                    self._sample_queue.clear()
                    self._sampler = None
                    self._pending -= 1
                    self._idle.notify_all()
                    return
                slug = self._sample_queue.pop(0)
                self._sample_rendering = slug
            failure: Exception | None = None
            try:
                self._render_sample(slug)
            except Exception as exc:  # handed to the requests waiting for this clip; the thread goes on
                log.exception("emulator: could not render sample %s", slug)
                failure = exc
            with self._idle:
                self._sample_rendering = None
                if failure is not None:
                    self._sample_failures[slug] = failure
                self._idle.notify_all()

    def _render_sample(self, slug: str) -> None:
        path = self._sample_file(slug)
        if path.exists():
            return  # asked for twice while queued, or left by an earlier run in this data dir
        tmp = self.data_dir / "tmp" / f"sample-{slug}-{secrets.token_hex(4)}.mp4"
        shipped = self._shipped_sample(slug)
        try:
            if shipped is not None:
                shutil.copyfile(shipped, tmp)
            else:
                _media().make_sample(
                    slug,
                    tmp,
                    width=self.config.sample_width,
                    height=self.config.sample_height,
                    seconds=self.config.sample_seconds,
                )
            # Renamed into place only when complete: a file at ``path`` is never half written,
            # which is what lets a later run in the same data dir serve it as it is.
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def _shipped_sample(self, slug: str) -> Path | None:
        config = self.config
        return shipped_sample(slug, width=config.sample_width, height=config.sample_height,
                              seconds=config.sample_seconds)

    def _await_sample(self, slug: str, timeout: float | None) -> Path:
        """Wait for the sample thread to put ``slug`` on disk (see :meth:`sample_path`)."""
        path = self._sample_file(slug)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while not path.exists():
                failure = self._sample_failures.get(slug)
                if failure is not None:
                    raise RuntimeError(str(failure)) from failure
                if self._closed:
                    raise RuntimeError("the emulator is closing")
                if slug not in self._sample_queue and slug != self._sample_rendering:
                    # Rendered, then deleted behind our back: ask again rather than wait for nothing.
                    self._queue_samples([slug], front=True)
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"the sample clip {slug!r} is still being rendered")
                self._idle.wait(remaining)
        return path

    def _advance(self) -> None:
        """Finish every task that is due. Call with the lock held."""
        now = self._clock()
        delay = self.config.processing_delay
        for task in list(self._unsettled.values()):
            if task.delivering or task.render_done is None:
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
                del self._unsettled[task.task_id]
                self._save(task)
                self._deliver(task, success=False)
            elif task.callback_url:
                # Stays GENERATING until the callback settles: SUCCESS or CALLBACK_FAILED are final,
                # so the emulator never reports one and then the other.
                task.delivering = True
                self._save(task)
                self._deliver(task, success=True)
            else:
                task.status = TaskStatus.SUCCESS
                del self._unsettled[task.task_id]
                self._save(task)

    def _deliver(self, task: _Task, *, success: bool) -> None:
        """Queue the callback of a finished task, if it has a callback URL. Lock held."""
        if not task.callback_url:
            return
        if success:
            # A task that succeeds always has its result path (set at create, kept on success).
            urls = [self._file_url(task.result_rel)] if task.result_rel is not None else []
            body = success_body(task.task_id, task.param_json, urls)
        else:
            body = failure_body(task.task_id, task.param_json, self.config.callback_failure_code)
        self._submit(self._deliverers, self._send_callback, task, task.callback_url, body, success)

    def _send_callback(self, task: _Task, url: str, body: dict[str, Any], success: bool) -> None:
        cfg = self.config
        outcome = self._sender.send(
            url, body, retries=cfg.callback_retries, backoff=cfg.callback_backoff, timeout=cfg.callback_timeout
        )
        with self._lock:
            if not outcome.delivered and self._stop.is_set():
                return  # cut off by close(), not failed: still due, so the next run delivers it
            task.callback_outcome = f"{outcome.detail} after {outcome.attempts} attempt(s)"
            if success:
                task.status = TaskStatus.SUCCESS if outcome.delivered else TaskStatus.CALLBACK_FAILED
                task.delivering = False
                self._unsettled.pop(task.task_id, None)
            self._save(task)

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
            self._save_uploads()
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
            except TimeoutError:
                return 503, _SAMPLE_PENDING
            except RuntimeError as exc:  # the renderer failed: a server-side problem, said plainly
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
                task = self._task(os.path.splitext(rel.split("/")[1])[0])
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
                    self._save_uploads()
                    return 404, "Not Found"
            else:
                return 404, "Not Found"
            path = self.data_dir / rel
            if not path.is_file():
                return 404, "Not Found"
            return path

    def _serve_file(self, request: EmulatorRequest) -> EmulatorResponse:
        if request.method not in ("GET", "HEAD"):
            return text_response(405, "Method Not Allowed", [("Allow", "GET, HEAD")])
        resolved = self._resolve_rel(unquote(request.path[len("/files/"):]))
        if isinstance(resolved, tuple):
            status, reason = resolved
            # A sample still rendering: worth asking again soon, unlike every other failure here.
            extra = [("Retry-After", "5")] if status == 503 else []
            return text_response(status, reason, extra)
        size = resolved.stat().st_size
        headers = [("Content-Type", _content_type(resolved.name)), ("Accept-Ranges", "bytes"),
                   ("Cache-Control", "public, max-age=3600")]
        head = request.method == "HEAD"
        wanted = request.headers.get("range")
        span = parse_range(wanted, size) if wanted else None
        if isinstance(span, str):  # "unsatisfiable"
            return EmulatorResponse(416, [*headers[:2], ("Content-Range", f"bytes */{size}"), ("Content-Length", "0")])
        if span is None:
            headers.append(("Content-Length", str(size)))
            return EmulatorResponse(200, headers, file=resolved, length=size, send_body=not head)
        start, end = span
        headers += [("Content-Range", f"bytes {start}-{end}/{size}"), ("Content-Length", str(end - start + 1))]
        return EmulatorResponse(206, headers, file=resolved, offset=start, length=end - start + 1, send_body=not head)

    # -- admin -----------------------------------------------------------------------------------

    def _admin(self, request: EmulatorRequest) -> EmulatorResponse:
        path = request.path.rstrip("/")
        if path == "/_emulator/stats" and request.method == "GET":
            return json_response(200, self.stats())
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
                    return json_response(400, {"error": str(exc)})
            return json_response(200, self._public_config())
        return text_response(404, "Not Found")

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



# path -> (methods, on the upload host, handler, the operation counted in stats()["requests"])
_Route = tuple[tuple[str, ...], bool, Callable[[EmulatorBackend, EmulatorRequest, str], EmulatorResponse], str]
_ROUTES: dict[str, _Route] = {
    PATH_CREATE: (("POST",), False, EmulatorBackend._route_create, "creates"),
    PATH_RECORD: (("GET",), False, EmulatorBackend._route_record, "reads"),
    PATH_CREDITS: (("GET",), False, EmulatorBackend._route_credits, "credits"),
    PATH_DOWNLOAD_URL: (("POST",), False, EmulatorBackend._route_download_url, "download_urls"),
    PATH_UPLOAD_STREAM: (("POST",), True, EmulatorBackend._route_upload_stream, "uploads"),
    PATH_UPLOAD_BASE64: (("POST",), True, EmulatorBackend._route_upload_base64, "uploads"),
    PATH_UPLOAD_URL: (("POST",), True, EmulatorBackend._route_upload_url, "uploads"),
}
