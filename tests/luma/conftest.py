"""Fixtures for the client tests: a scripted provider behind ``httpx.MockTransport`` and a fake clock.

Nothing here touches the network or really sleeps: retries and the create limiter run on
:class:`FakeClock`, whose ``sleep`` only moves time forward and records the wait.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from luma import AsyncLumaClient, CreateLimiter, LumaClient, RetryPolicy

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


# Spec examples, verbatim from /work/shared/spec/kie-luma-api.md, shared by several test files.
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
