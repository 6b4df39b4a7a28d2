"""Fixtures for the client tests: a scripted provider behind ``httpx.MockTransport``, a fake clock,
and a fake internet for the egress guard.

Nothing here touches the network or really sleeps: retries and the create limiter run on
:class:`FakeClock`, whose ``sleep`` only moves time forward and records the wait. :class:`FakeNet`
resolves made-up names with a table and lands every connection the guard allows on one loopback
test server, recording the address the guard chose, so a test can show that a refused address
was never even dialled.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore
import httpx
import pytest

from luma import AsyncLumaClient, CreateLimiter, LumaClient, RetryPolicy
from luma.egress import EgressPolicy, guarded_async_transport, guarded_transport

# Distinctive enough that finding it anywhere in an error text can only mean a leak.
SECRET_KEY = "sk-CANARY-7f3a9c1e0b5d4f2a"
WALL_START = 1_769_670_760.0
TASK_ID = "774d9a7dd608a0e49293903095e45a4c"

Answer = Callable[[httpx.Request], httpx.Response]


class FakeClock:
    """Monotonic time that moves only when something sleeps."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


class MockApi:
    """A ``MockTransport`` handler: scripted answers per URL path; every request is recorded.

    ``on(path, a1, a2, ...)`` answers the first request with ``a1``, the next with ``a2``, and
    repeats the last answer from then on. Answers are built fresh per request by the helpers.
    """

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []
        self.times: list[float] = []
        self._routes: dict[str, list[Answer]] = {}

    def on(self, path: str, *answers: Answer) -> MockApi:
        assert answers
        self._routes[path] = list(answers)
        return self

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.bodies.append(request.content)
        self.times.append(self.clock.now)
        answers = self._routes.get(request.url.path)
        if not answers:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return answer(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def count(self, path: str) -> int:
        return sum(1 for r in self.requests if r.url.path == path)

    def json(self, index: int = -1) -> Any:
        return json.loads(self.bodies[index])

    # -- answer builders --

    @staticmethod
    def ok(data: Any, **extra: Any) -> Answer:
        """HTTP 200 with a success envelope around ``data``."""
        return MockApi.reply(200, {"code": 200, "msg": "success", "data": data, **extra})

    @staticmethod
    def reply(
        status: int,
        body: Any = None,
        *,
        text: str | bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        def answer(request: httpx.Request) -> httpx.Response:
            if body is not None:
                return httpx.Response(status, json=body, headers=headers)
            return httpx.Response(status, content=text or b"", headers=headers)

        return answer

    @staticmethod
    def error(code: int, *, style: str, msg: str = "provider says no", upload: bool = False) -> Answer:
        """An error ``code`` as the HTTP status (``style="http"``) or inside HTTP 200 (``"body"``)."""
        body: dict[str, Any] = {"code": code, "msg": msg, "data": None}
        if upload:
            body["success"] = False
        return MockApi.reply(code if style == "http" else 200, body)

    @staticmethod
    def raises(exc_type: type[httpx.RequestError], message: str = "boom") -> Answer:
        def answer(request: httpx.Request) -> httpx.Response:
            raise exc_type(message, request=request)

        return answer


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def retry_policy(fake_clock: FakeClock) -> RetryPolicy:
    """Real retry rules on fake time; jitter fixed at half the ceiling so delays are predictable."""
    return RetryPolicy(
        clock=fake_clock,
        wall_clock=lambda: WALL_START,
        sleep=fake_clock.sleep,
        async_sleep=fake_clock.async_sleep,
        random=lambda: 0.5,
    )


@pytest.fixture
def create_limiter(fake_clock: FakeClock) -> CreateLimiter:
    return CreateLimiter(clock=fake_clock, sleep=fake_clock.sleep, async_sleep=fake_clock.async_sleep)


@pytest.fixture
def mock_api(fake_clock: FakeClock) -> MockApi:
    return MockApi(fake_clock)


@pytest.fixture
def make_client(
    mock_api: MockApi, retry_policy: RetryPolicy, create_limiter: CreateLimiter
) -> Iterator[Callable[..., LumaClient]]:
    made: list[LumaClient] = []

    def make(**kwargs: Any) -> LumaClient:
        kwargs.setdefault("api_key", SECRET_KEY)
        kwargs.setdefault("transport", mock_api.transport())
        kwargs.setdefault("retry", retry_policy)
        kwargs.setdefault("create_limiter", create_limiter)
        client = LumaClient(**kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., LumaClient]) -> LumaClient:
    return make_client()


@pytest.fixture
def make_async_client(
    mock_api: MockApi, retry_policy: RetryPolicy, create_limiter: CreateLimiter
) -> Callable[..., AsyncLumaClient]:
    def make(**kwargs: Any) -> AsyncLumaClient:
        kwargs.setdefault("api_key", SECRET_KEY)
        kwargs.setdefault("transport", mock_api.transport())
        kwargs.setdefault("retry", retry_policy)
        kwargs.setdefault("create_limiter", create_limiter)
        return AsyncLumaClient(**kwargs)

    return make


# Spec examples, verbatim from docs/kie-luma-api.md, shared by several test files.
RECORD_SUCCESS: dict[str, Any] = {
    "taskId": "774d9a7dd608a0e49293903095e45a4c",
    "paramJson": (
        '{"callBackUrl":"https://example.com/callback","prompt":"A futuristic cityscape",'
        '"videoUrl":"https://example.com/video.mp4","waterMark":""}'
    ),
    "completeTime": 1755078480000,
    "response": {
        "taskId": "774d9a7dd608a0e49293903095e45a4c",
        "originUrls": [
            "https://tempfile.aiquickdraw.com/kieai/file/veo3-video/1755074605154fqb0m8ge.mp4"
        ],
        "resultUrls": ["https://tempfile.aiquickdraw.com/l/f782018c-6be4-4990-96ba-7231cd5a39e7.mp4"],
    },
    "successFlag": 1,
    "createTime": 1755078171000,
    "errorCode": None,
    "errorMessage": None,
}


@pytest.fixture
def record_success() -> dict[str, Any]:
    return json.loads(json.dumps(RECORD_SUCCESS))


@pytest.fixture
def secret_key() -> str:
    return SECRET_KEY


@pytest.fixture
def task_id() -> str:
    return TASK_ID


# --- a fake internet for the egress guard ---------------------------------------------------------

PUBLIC_IP = "93.184.216.34"
#: Made-up names and what the fake resolver answers for them.
TEST_NAMES: dict[str, list[str]] = {
    "internal.test": ["10.0.0.5"],
    "loop.test": ["127.0.0.1"],
    "meta.test": ["169.254.169.254"],
    "ula.test": ["fd00::1"],
    "mixed.test": [PUBLIC_IP, "10.0.0.1"],
    "public.test": [PUBLIC_IP],
    "cdn.public.test": [PUBLIC_IP],
}
#: Names that resolve to at least one refused address.
PRIVATE_NAMES = ["internal.test", "loop.test", "meta.test", "ula.test", "mixed.test"]
#: Hosts (as written in a URL) that name a refused address without any DNS.
PRIVATE_SPELLINGS = [
    "127.1", "0x7f.0.0.1", "2130706433", "10.1", "169.254.43518", "0.0.0.0", "[::]", "[::1]",
    "[::7f00:1]", "[::a9fe:a9fe]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[fc00::1]",
    "[fe80::1%25eth0]", "[2002:7f00:1::]", "[64:ff9b::7f00:1]", "224.0.0.1", "127.0.0.1.",
]
#: Spellings httpx will not even parse as a URL host, but inet_aton (and so a server) reads.
UNPARSEABLE_SPELLINGS = ["0177.0.0.1"]

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


@dataclass
class Page:
    """One answer of the test site."""

    body: bytes = b""
    content_type: str = "application/octet-stream"
    status: int = 200
    location: str | None = None


class FakeResolver:
    """A name table standing in for DNS; records every question."""

    def __init__(self, names: dict[str, list[str]] | None = None) -> None:
        self.names = dict(TEST_NAMES if names is None else names)
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        try:
            return list(self.names[host.lower().rstrip(".")])
        except KeyError:
            raise socket.gaierror(socket.EAI_NONAME, "no such test name") from None


@dataclass
class Recorder:
    """The guard's connector: records each (address, port) dialled, then connects to the test site."""

    site_port: int
    attempts: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, address: str, port: int, timeout: float | None) -> httpcore.NetworkStream:
        self.attempts.append((address, port))
        return httpcore.SyncBackend().connect_tcp("127.0.0.1", self.site_port, timeout=timeout)

    async def connect_async(self, address: str, port: int, timeout: float | None) -> httpcore.AsyncNetworkStream:
        self.attempts.append((address, port))
        return await httpcore.AnyIOBackend().connect_tcp("127.0.0.1", self.site_port, timeout=timeout)

    @property
    def addresses(self) -> list[str]:
        return [address for address, _ in self.attempts]


class _SiteHandler(BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so every request is a fresh connect (and DNS lookup).
    server: _SiteServer

    def do_GET(self) -> None:
        self.server.seen.append((self.command, self.headers.get("Host", ""), self.path))
        page = self.server.pages.get(self.path.split("?")[0])
        if page is None:
            page = Page(b"not here", "text/plain", 404)
        body, status = page.body, page.status
        headers = [("Content-Type", page.content_type), ("Accept-Ranges", "bytes")]
        if page.location:
            headers.append(("Location", page.location))
        match = _RANGE.match(self.headers.get("Range", ""))
        if match and status == 200 and body:
            first, last = match.groups()
            total = len(body)
            start, end = (int(first), min(int(last or total - 1), total - 1)) if first else (max(total - int(last), 0), total - 1)
            body, status = body[start : end + 1], 206
            headers.append(("Content-Range", f"bytes {start}-{end}/{total}"))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(page.body) if self.command == "HEAD" else len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_POST = do_GET  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:
        pass


class _SiteServer(ThreadingHTTPServer):
    daemon_threads = True
    pages: dict[str, Page]
    seen: list[tuple[str, str, str]]


class FakeNet:
    """A loopback site every allowed connection lands on, a fake resolver and a recording connector."""

    def __init__(self) -> None:
        self._server = _SiteServer(("127.0.0.1", 0), _SiteHandler)
        self._server.pages = {}
        self._server.seen = []
        self.port: int = self._server.server_address[1]
        self.resolver = FakeResolver()
        self.recorder = Recorder(self.port)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    @property
    def pages(self) -> dict[str, Page]:
        """Path -> answer, on whatever host the request was for."""
        return self._server.pages

    @property
    def seen(self) -> list[tuple[str, str, str]]:
        """(method, Host header, path) of every request the site received."""
        return self._server.seen

    def policy(self, *allow_hosts: str) -> EgressPolicy:
        return EgressPolicy(allow_hosts=frozenset(allow_hosts), resolver=self.resolver)

    def transport(self, *allow_hosts: str) -> httpx.HTTPTransport:
        return guarded_transport(self.policy(*allow_hosts), connect=self.recorder)

    def async_transport(self, *allow_hosts: str) -> httpx.AsyncHTTPTransport:
        return guarded_async_transport(self.policy(*allow_hosts), connect=self.recorder.connect_async)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def fake_net() -> Iterator[FakeNet]:
    net = FakeNet()
    yield net
    net.close()
