"""LumaClient, method by method, against a scripted provider (httpx.MockTransport, fake clock)."""

from __future__ import annotations

import asyncio
import base64
import email.parser
import email.policy
import io
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from luma import (
    AsyncLumaClient,
    CreateLimiter,
    LumaClient,
    RetryPolicy,
    Task,
    TaskStatus,
    UploadedFile,
)
from luma._constants import (
    DEFAULT_UPLOAD_PATH,
    PATH_CREATE,
    PATH_CREDITS,
    PATH_DOWNLOAD_URL,
    PATH_RECORD,
    PATH_UPLOAD_BASE64,
    PATH_UPLOAD_STREAM,
    PATH_UPLOAD_URL,
    UPLOAD_CHUNK_BYTES,
    USER_AGENT,
)
from luma.errors import (
    AddressRefusedError,
    ConfigurationError,
    ConnectError,
    InvalidInputError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
    RequestTimeout,
    ServerError,
    TransportError,
    ValidationError,
)

from .conftest import PUBLIC_IP, RECORD_SUCCESS, SECRET_KEY, TASK_ID, FakeClock, FakeNet, MockApi, Page

VIDEO = "https://example.com/video.mp4"
UPLOADED = {
    "fileName": "clip.mp4",
    "filePath": "luma-dashboard/clip.mp4",
    "downloadUrl": "https://tempfile.redpandaai.co/kieai/luma-dashboard/clip.mp4",
    "fileSize": 11,
    "mimeType": "video/mp4",
    "uploadedAt": "2025-01-01T12:00:00.000Z",
}


def upload_ok(data: dict[str, Any] | None = None) -> Callable[[httpx.Request], httpx.Response]:
    return MockApi.reply(200, {"success": True, "code": 200, "msg": "File uploaded successfully", "data": data or UPLOADED})


def parse_multipart(request: httpx.Request, body: bytes) -> dict[str, tuple[dict[str, str], bytes]]:
    """Field name -> (part headers and params, payload), parsed by the standard library."""
    head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    assert message.is_multipart()
    fields: dict[str, tuple[dict[str, str], bytes]] = {}
    for part in message.iter_parts():
        info = {"content-type": part.get_content_type(), "filename": part.get_filename() or ""}
        name = part.get_param("name", header="content-disposition")
        fields[str(name)] = (info, part.get_payload(decode=True))
    return fields


# --- construction --------------------------------------------------------------------------------


def test_defaults_and_repr(mock_api: MockApi) -> None:
    client = LumaClient(SECRET_KEY)
    assert client.api_base == "https://api.kie.ai"
    assert client.upload_base == "https://kieai.redpandaai.co"
    assert client.transport is None and client.has_api_key
    assert SECRET_KEY not in repr(client)
    client.close()


def test_bases_are_configurable_and_normalised(make_client: Callable[..., LumaClient], mock_api: MockApi) -> None:
    client = make_client(api_base=" https://proxy.example/kie/ ", upload_base="http://127.0.0.1:8123/")
    mock_api.on("/kie" + PATH_CREDITS, MockApi.ok(7))
    mock_api.on(PATH_UPLOAD_URL, upload_ok())
    assert client.get_credits() == 7
    client.upload_url(VIDEO)
    assert str(mock_api.requests[0].url) == "https://proxy.example/kie/api/v1/chat/credit"
    assert str(mock_api.requests[1].url) == "http://127.0.0.1:8123/api/file-url-upload"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"api_base": ""},
        {"api_base": "api.kie.ai"},
        {"api_base": "ftp://api.kie.ai"},
        {"upload_base": "https://"},
        {"api_base": "https://api.kie.ai/?x=1"},
        {"timeout": 0},
        {"timeout": "fast"},
        {"user_agent": ""},
        {"user_agent": "bad\nagent"},
        {"retry": 3},
        {"api_key": 12345},
        {"api_key": "two words"},
        {"transport": object()},
    ],
    ids=repr,
)
def test_bad_setup_is_a_configuration_error(kwargs: dict[str, Any], make_client: Callable[..., LumaClient]) -> None:
    with pytest.raises(ConfigurationError):
        make_client(**kwargs)


def test_async_only_transport_is_refused_by_the_sync_client() -> None:
    class AsyncOnly(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200)

    with pytest.raises(ConfigurationError, match="sync"):
        LumaClient(transport=AsyncOnly())  # type: ignore[arg-type]


def test_transport_attribute_is_the_injected_one(client: LumaClient) -> None:
    assert isinstance(client.transport, httpx.MockTransport)


def test_closing_leaves_the_injected_transport_open(mock_api: MockApi) -> None:
    class Counting(httpx.MockTransport):
        closed = 0

        def close(self) -> None:
            Counting.closed += 1

    transport = Counting(mock_api.handler)
    with LumaClient(SECRET_KEY, transport=transport, create_limiter=CreateLimiter()) as client:
        mock_api.on(PATH_CREDITS, MockApi.ok(1))
        assert client.get_credits() == 1
    assert Counting.closed == 0
    # The shared transport still works for the next client.
    with LumaClient(SECRET_KEY, transport=transport) as again:
        assert again.get_credits() == 1


def test_every_request_carries_a_real_user_agent(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREDITS, MockApi.ok(1)).on(PATH_UPLOAD_URL, upload_ok())
    mock_api.on("/files/r.mp4", MockApi.reply(200, text=b"video"))
    client.get_credits()
    client.upload_url(VIDEO)
    client.fetch("https://cdn.example/files/r.mp4")
    assert [r.headers["User-Agent"] for r in mock_api.requests] == [USER_AGENT] * 3
    assert USER_AGENT.startswith("luma-dashboard/")


def test_custom_user_agent(make_client: Callable[..., LumaClient], mock_api: MockApi) -> None:
    mock_api.on(PATH_CREDITS, MockApi.ok(1))
    make_client(user_agent="my-app/2.0").get_credits()
    assert mock_api.requests[0].headers["User-Agent"] == "my-app/2.0"


@pytest.mark.parametrize("key", [None, "", "   "])
def test_no_key_sends_no_authorization(key: str | None, make_client: Callable[..., LumaClient], mock_api: MockApi) -> None:
    mock_api.on(PATH_CREDITS, MockApi.error(401, style="body"))
    client = make_client(api_key=key)
    assert not client.has_api_key
    with pytest.raises(Exception) as caught:
        client.get_credits()
    assert type(caught.value).__name__ == "AuthenticationError"
    assert "Authorization" not in mock_api.requests[0].headers


def test_key_is_stripped_before_sending(make_client: Callable[..., LumaClient], mock_api: MockApi) -> None:
    mock_api.on(PATH_CREDITS, MockApi.ok(1))
    make_client(api_key=f"  {SECRET_KEY}\n").get_credits()
    assert mock_api.requests[0].headers["Authorization"] == f"Bearer {SECRET_KEY}"


def test_default_and_upload_timeouts(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREDITS, MockApi.ok(1)).on(PATH_UPLOAD_STREAM, upload_ok())
    client.get_credits()
    client.upload_file(b"abc", file_name="a.mp4")
    read, upload = (r.extensions["timeout"] for r in mock_api.requests)
    assert read == {"connect": 10.0, "read": 30.0, "write": 30.0, "pool": 30.0}
    assert upload["connect"] == 10.0 and upload["write"] == 600.0 and upload["read"] == 600.0


def test_float_timeout(make_client: Callable[..., LumaClient], mock_api: MockApi) -> None:
    mock_api.on(PATH_CREDITS, MockApi.ok(1))
    make_client(timeout=5).get_credits()
    assert mock_api.requests[0].extensions["timeout"]["read"] == 5.0
    assert mock_api.requests[0].extensions["timeout"]["connect"] == 5.0


# --- create_task ---------------------------------------------------------------------------------


def test_create_sends_the_documented_body(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREATE, MockApi.ok({"taskId": TASK_ID}))
    task_id = client.create_task(
        "A futuristic cityscape", f" {VIDEO} ", callback_url="https://example.com/callback", watermark="brand"
    )
    assert task_id == TASK_ID
    request = mock_api.requests[0]
    assert request.method == "POST" and str(request.url) == "https://api.kie.ai/api/v1/modify/generate"
    assert request.headers["Authorization"] == f"Bearer {SECRET_KEY}"
    assert request.headers["Content-Type"] == "application/json"
    assert mock_api.json() == {
        "prompt": "A futuristic cityscape",
        "videoUrl": VIDEO,
        "callBackUrl": "https://example.com/callback",
        "watermark": "brand",
    }


def test_create_omits_unset_optional_fields(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREATE, MockApi.ok({"taskId": TASK_ID}))
    client.create_task("p", VIDEO, callback_url="", watermark="  ")
    assert mock_api.json() == {"prompt": "p", "videoUrl": VIDEO}


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        (("", VIDEO), {}, "prompt"),
        (("   \n", VIDEO), {}, "prompt"),
        ((None, VIDEO), {}, "prompt"),
        (("p", ""), {}, "video_url"),
        (("p", "ftp://example.com/v.mp4"), {}, "video_url"),
        (("p", "example.com/v.mp4"), {}, "video_url"),
        (("p", "file:///tmp/v.mp4"), {}, "video_url"),
        (("p", "https://"), {}, "video_url"),
        (("p", VIDEO), {"callback_url": "javascript:alert(1)"}, "callback_url"),
        (("p", VIDEO), {"watermark": 5}, "watermark"),
    ],
    ids=repr,
)
def test_create_refuses_bad_input_before_sending(
    args: tuple[Any, ...], kwargs: dict[str, Any], field: str, client: LumaClient, mock_api: MockApi
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        client.create_task(*args, **kwargs)
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)
    assert caught.value.message and caught.value.next_step
    assert mock_api.requests == []


def test_create_is_sent_exactly_once_on_read_timeout(client: LumaClient, mock_api: MockApi, fake_clock: FakeClock) -> None:
    mock_api.on(PATH_CREATE, MockApi.raises(httpx.ReadTimeout))
    with pytest.raises(RequestTimeout) as caught:
        client.create_task("p", VIDEO)
    assert mock_api.count(PATH_CREATE) == 1
    assert "may exist" in str(caught.value) and "jobs list" in str(caught.value)
    assert caught.value.request_sent and fake_clock.sleeps == []


@pytest.mark.parametrize(
    "answer",
    [
        MockApi.error(500, style="http"),
        MockApi.error(500, style="body"),
        MockApi.reply(503, text="<html>unavailable</html>"),
        MockApi.error(429, style="http"),
        MockApi.error(455, style="body"),
        MockApi.reply(200, text="not json"),
        MockApi.raises(httpx.WriteTimeout),
        MockApi.raises(httpx.RemoteProtocolError),
        MockApi.raises(httpx.ReadError),
    ],
    ids=["500-http", "500-body", "503-html", "429", "455", "malformed", "write-timeout", "disconnect", "read-error"],
)
def test_create_is_sent_exactly_once_on_any_failure_after_sending(
    answer: Callable[[httpx.Request], httpx.Response], client: LumaClient, mock_api: MockApi
) -> None:
    mock_api.on(PATH_CREATE, answer)
    with pytest.raises(Exception) as caught:
        client.create_task("p", VIDEO)
    assert mock_api.count(PATH_CREATE) == 1
    assert not isinstance(caught.value, ConnectError)


def test_create_transport_failure_after_sending_warns_about_duplicates(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREATE, MockApi.raises(httpx.RemoteProtocolError))
    with pytest.raises(TransportError, match="may exist"):
        client.create_task("p", VIDEO)


@pytest.mark.parametrize("exc", [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_create_is_resent_after_a_connection_that_never_opened(
    exc: type[httpx.RequestError], client: LumaClient, mock_api: MockApi, fake_clock: FakeClock
) -> None:
    mock_api.on(PATH_CREATE, MockApi.raises(exc), MockApi.ok({"taskId": TASK_ID}))
    assert client.create_task("p", VIDEO) == TASK_ID
    assert mock_api.count(PATH_CREATE) == 2
    assert mock_api.bodies[0] == mock_api.bodies[1]
    assert len(fake_clock.sleeps) == 1


def test_create_gives_up_when_it_never_connects(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREATE, MockApi.raises(httpx.ConnectError, "[Errno 111] Connection refused"))
    with pytest.raises(ConnectError) as caught:
        client.create_task("p", VIDEO)
    assert mock_api.count(PATH_CREATE) == 5
    assert not caught.value.request_sent and caught.value.attempts == 5
    assert "Connection refused" in str(caught.value) and "api.kie.ai" in str(caught.value)


def test_twenty_first_create_waits_for_the_window(client: LumaClient, mock_api: MockApi, fake_clock: FakeClock) -> None:
    mock_api.on(PATH_CREATE, MockApi.ok({"taskId": TASK_ID}))
    start = fake_clock.now
    for _ in range(21):
        client.create_task("p", VIDEO)
    assert mock_api.times[:20] == [start] * 20
    assert mock_api.times[20] == pytest.approx(start + 10.0)
    assert fake_clock.sleeps == [pytest.approx(10.0)]


def test_default_limiter_is_the_shared_one_for_the_key(mock_api: MockApi) -> None:
    one = LumaClient("sk-shared-test-1", transport=mock_api.transport())
    two = LumaClient("sk-shared-test-1", transport=mock_api.transport())
    other = LumaClient("sk-shared-test-2", transport=mock_api.transport())
    assert one.create_limiter is two.create_limiter is CreateLimiter.shared("sk-shared-test-1")
    assert other.create_limiter is not one.create_limiter


def test_create_429_is_not_resent(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREATE, MockApi.reply(429, {"code": 429, "msg": "x"}, headers={"Retry-After": "2"}))
    with pytest.raises(RateLimitError):
        client.create_task("p", VIDEO)
    assert mock_api.count(PATH_CREATE) == 1


# --- get_task ------------------------------------------------------------------------------------


def test_get_task_reads_the_record(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_RECORD, MockApi.ok(RECORD_SUCCESS))
    task = client.get_task(f" {TASK_ID} ")
    assert isinstance(task, Task) and task.status is TaskStatus.SUCCESS
    assert task.result_url == RECORD_SUCCESS["response"]["resultUrls"][0]
    request = mock_api.requests[0]
    assert request.method == "GET" and request.url.params["taskId"] == TASK_ID
    assert request.headers["Authorization"] == f"Bearer {SECRET_KEY}"


def test_get_task_sends_any_nonempty_id(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_RECORD, MockApi.error(404, style="body"))
    with pytest.raises(NotFoundError):
        client.get_task("not-a-hex-id")
    assert mock_api.requests[0].url.params["taskId"] == "not-a-hex-id"
    assert mock_api.count(PATH_RECORD) == 1  # an unknown task is an answer, not an outage


@pytest.mark.parametrize("bad", ["", "   ", None, 123])
def test_get_task_refuses_empty_ids(bad: Any, client: LumaClient, mock_api: MockApi) -> None:
    with pytest.raises(InvalidInputError) as caught:
        client.get_task(bad)
    assert caught.value.field == "task_id" and mock_api.requests == []


def test_get_task_null_record_is_not_found(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_RECORD, MockApi.ok(None))
    with pytest.raises(NotFoundError):
        client.get_task(TASK_ID)


def test_get_task_record_without_id_uses_the_asked_id(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_RECORD, MockApi.ok({"successFlag": 0}))
    assert client.get_task(TASK_ID).task_id == TASK_ID


@pytest.mark.parametrize(
    "failure",
    [
        MockApi.error(500, style="http"),
        MockApi.error(500, style="body"),
        MockApi.error(429, style="body"),
        MockApi.error(455, style="http"),
        MockApi.reply(502, text="<html>bad gateway</html>"),
        MockApi.reply(200, text="<html>captive portal</html>"),
        MockApi.raises(httpx.ReadTimeout),
        MockApi.raises(httpx.ConnectError),
        MockApi.raises(httpx.RemoteProtocolError),
    ],
    ids=["500", "500-body", "429-body", "455", "502-html", "malformed", "timeout", "connect", "disconnect"],
)
def test_get_task_retries_transient_failures(
    failure: Callable[[httpx.Request], httpx.Response], client: LumaClient, mock_api: MockApi, fake_clock: FakeClock
) -> None:
    mock_api.on(PATH_RECORD, failure, failure, MockApi.ok(RECORD_SUCCESS))
    assert client.get_task(TASK_ID).status is TaskStatus.SUCCESS
    assert mock_api.count(PATH_RECORD) == 3
    assert fake_clock.sleeps == [0.25, 0.5]  # full jitter at random()=0.5 of ceilings 0.5 s, 1 s


def test_get_task_honours_retry_after(client: LumaClient, mock_api: MockApi, fake_clock: FakeClock) -> None:
    mock_api.on(
        PATH_RECORD,
        MockApi.reply(429, {"code": 429, "msg": "x"}, headers={"Retry-After": "3"}),
        MockApi.ok(RECORD_SUCCESS),
    )
    client.get_task(TASK_ID)
    assert fake_clock.sleeps == [3.0]


def test_get_task_gives_up_within_the_attempt_bound(client: LumaClient, mock_api: MockApi, fake_clock: FakeClock) -> None:
    mock_api.on(PATH_RECORD, MockApi.error(500, style="http"))
    with pytest.raises(ServerError) as caught:
        client.get_task(TASK_ID)
    assert mock_api.count(PATH_RECORD) == 5 and caught.value.attempts == 5
    assert fake_clock.sleeps == [0.25, 0.5, 1.0, 2.0]


def test_get_task_gives_up_within_the_time_budget(
    make_client: Callable[..., LumaClient], mock_api: MockApi, fake_clock: FakeClock
) -> None:
    policy = RetryPolicy(
        max_attempts=100, max_total=30.0, clock=fake_clock, sleep=fake_clock.sleep, random=lambda: 0.5
    )
    mock_api.on(PATH_RECORD, MockApi.reply(429, {"code": 429}, headers={"Retry-After": "10"}))
    with pytest.raises(RateLimitError):
        make_client(retry=policy).get_task(TASK_ID)
    assert fake_clock.sleeps == [10.0, 10.0, 10.0]
    assert mock_api.count(PATH_RECORD) == 4


# --- get_tasks -----------------------------------------------------------------------------------


def _record_for(request: httpx.Request) -> httpx.Response:
    tid = request.url.params["taskId"]
    if tid.startswith("missing"):
        return httpx.Response(200, json={"code": 404, "msg": "not found", "data": None})
    if tid.startswith("broken"):
        return httpx.Response(500, text="<html>oops</html>")
    return httpx.Response(200, json={"code": 200, "msg": "success", "data": {**RECORD_SUCCESS, "taskId": tid}})


def test_get_tasks_keeps_going_past_failures(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_RECORD, _record_for)
    batch = client.get_tasks(["a1", "missing-1", "a2", "broken-1", "a3"])
    assert list(batch.tasks) == ["a1", "a2", "a3"]
    assert all(t.task_id == tid for tid, t in batch.tasks.items())
    assert set(batch.errors) == {"missing-1", "broken-1"}
    assert isinstance(batch.errors["missing-1"], NotFoundError)
    assert isinstance(batch.errors["broken-1"], ServerError)
    assert mock_api.count(PATH_RECORD) == 3 + 1 + 5  # the broken one was retried, the rest were not


def test_get_tasks_dedupes_and_reports_blank_ids(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_RECORD, _record_for)
    batch = client.get_tasks(iter(["a1", " a1 ", "", "a2"]))
    assert list(batch.tasks) == ["a1", "a2"]
    assert isinstance(batch.errors[""], InvalidInputError)
    assert mock_api.count(PATH_RECORD) == 2


def test_get_tasks_empty(client: LumaClient, mock_api: MockApi) -> None:
    batch = client.get_tasks([])
    assert batch.tasks == {} and batch.errors == {} and mock_api.requests == []


@pytest.mark.parametrize(("ids", "kwargs"), [("abc", {}), (5, {}), (["a"], {"concurrency": 0}), (["a"], {"concurrency": True})])
def test_get_tasks_refuses_bad_arguments(ids: Any, kwargs: dict[str, Any], client: LumaClient) -> None:
    with pytest.raises(InvalidInputError):
        client.get_tasks(ids, **kwargs)


def test_get_tasks_runs_concurrently(client: LumaClient, mock_api: MockApi) -> None:
    # Three reads must be in flight together to pass the barrier; one-at-a-time would time out.
    barrier = threading.Barrier(3, timeout=10)

    def answer(request: httpx.Request) -> httpx.Response:
        barrier.wait()
        return _record_for(request)

    mock_api.on(PATH_RECORD, answer)
    batch = client.get_tasks(["a1", "a2", "a3"], concurrency=3)
    assert len(batch.tasks) == 3 and not batch.errors


def test_get_tasks_respects_the_concurrency_bound(client: LumaClient, mock_api: MockApi) -> None:
    lock = threading.Lock()
    in_flight = peak = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.02)  # hold the slot so overlapping reads can be seen
        with lock:
            in_flight -= 1
        return _record_for(request)

    mock_api.on(PATH_RECORD, answer)
    batch = client.get_tasks([f"a{i}" for i in range(8)], concurrency=2)
    assert len(batch.tasks) == 8
    assert peak == 2


def test_get_tasks_lets_bugs_surface(client: LumaClient, mock_api: MockApi) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("bug in a transport")

    mock_api.on(PATH_RECORD, answer)
    with pytest.raises(RuntimeError):
        client.get_tasks(["a1"])


# --- credits and download links ------------------------------------------------------------------


def test_get_credits_example(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREDITS, MockApi.reply(200, {"code": 200, "msg": "success", "data": 100}))
    assert client.get_credits() == 100
    request = mock_api.requests[0]
    assert request.method == "GET" and str(request.url) == "https://api.kie.ai/api/v1/chat/credit"


@pytest.mark.parametrize(("data", "value"), [(0, 0), ("250", 250), (12.0, 12), (-3, -3)])
def test_get_credits_variants(data: Any, value: int, client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREDITS, MockApi.ok(data))
    assert client.get_credits() == value


def test_get_credits_retries(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREDITS, MockApi.raises(httpx.ReadTimeout), MockApi.ok(5))
    assert client.get_credits() == 5 and mock_api.count(PATH_CREDITS) == 2


def test_get_download_url_example(client: LumaClient, mock_api: MockApi) -> None:
    fresh = "https://tempfile.aiquickdraw.com/d/fresh-link.mp4?sig=abc"
    mock_api.on(PATH_DOWNLOAD_URL, MockApi.reply(200, {"code": 200, "msg": "success", "data": fresh}))
    source = RECORD_SUCCESS["response"]["resultUrls"][0]
    assert client.get_download_url(source) == fresh
    request = mock_api.requests[0]
    assert request.method == "POST" and mock_api.json() == {"url": source}
    assert request.headers["Authorization"] == f"Bearer {SECRET_KEY}"


def test_get_download_url_is_a_retried_read(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_DOWNLOAD_URL, MockApi.error(500, style="body"), MockApi.ok("https://x/y.mp4"))
    assert client.get_download_url("https://tempfile.aiquickdraw.com/l/x.mp4") == "https://x/y.mp4"
    assert mock_api.count(PATH_DOWNLOAD_URL) == 2


def test_get_download_url_checks_its_input_and_answer(client: LumaClient, mock_api: MockApi) -> None:
    with pytest.raises(InvalidInputError):
        client.get_download_url("not a url")
    mock_api.on(PATH_DOWNLOAD_URL, MockApi.ok({"url": "https://x"}))
    with pytest.raises(MalformedResponseError):
        client.get_download_url("https://tempfile.aiquickdraw.com/l/x.mp4")
    mock_api.on(PATH_DOWNLOAD_URL, MockApi.error(422, style="http"))
    with pytest.raises(ValidationError):
        client.get_download_url("https://example.com/mine.mp4")


# --- uploads -------------------------------------------------------------------------------------


def test_upload_file_streams_multipart(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_UPLOAD_STREAM, upload_ok())
    payload = bytes(range(256)) * 5000  # 1.28 MB: several chunks
    progress: list[tuple[int, int]] = []
    uploaded = client.upload_file(payload, file_name="clip.mp4", upload_path="/videos/in/", progress=lambda s, t: progress.append((s, t)))
    assert isinstance(uploaded, UploadedFile) and uploaded.download_url == UPLOADED["downloadUrl"]

    request, body = mock_api.requests[0], mock_api.bodies[0]
    assert request.method == "POST" and str(request.url) == "https://kieai.redpandaai.co/api/file-stream-upload"
    assert request.headers["Authorization"] == f"Bearer {SECRET_KEY}"
    assert int(request.headers["Content-Length"]) == len(body)
    assert "Transfer-Encoding" not in request.headers
    fields = parse_multipart(request, body)
    assert fields["uploadPath"][1] == b"videos/in"
    assert fields["fileName"][1] == b"clip.mp4"
    info, content = fields["file"]
    assert content == payload
    assert info == {"content-type": "video/mp4", "filename": "clip.mp4"}

    total = len(payload)
    assert progress[0] == (0, total) and progress[-1] == (total, total)
    assert all(t == total for _, t in progress)
    sent = [s for s, _ in progress]
    assert sent == sorted(sent) and len(progress) == 2 + total // UPLOAD_CHUNK_BYTES


def test_upload_file_from_a_file_object_at_its_position(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_UPLOAD_STREAM, upload_ok())
    stream = io.BytesIO(b"HEADERvideo-bytes")
    stream.seek(6)
    progress: list[tuple[int, int]] = []
    client.upload_file(stream, file_name="x.mov", progress=lambda s, t: progress.append((s, t)))
    info, content = parse_multipart(mock_api.requests[0], mock_api.bodies[0])["file"]
    assert content == b"video-bytes" and info["content-type"] == "video/quicktime"
    assert progress[-1] == (11, 11)


def test_upload_file_from_a_non_seekable_stream(client: LumaClient, mock_api: MockApi) -> None:
    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self._src = io.BytesIO(b"piped-bytes")

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            data = self._src.read(len(buffer))
            buffer[: len(data)] = data
            return len(data)

    mock_api.on(PATH_UPLOAD_STREAM, upload_ok())
    client.upload_file(Pipe(), file_name="p.avi")
    assert parse_multipart(mock_api.requests[0], mock_api.bodies[0])["file"][1] == b"piped-bytes"


def test_upload_file_uses_the_default_folder_and_quotes_odd_names(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_UPLOAD_STREAM, upload_ok())
    client.upload_file(b"abc", file_name='my "best" clip é.mp4')
    fields = parse_multipart(mock_api.requests[0], mock_api.bodies[0])
    assert fields["uploadPath"][1] == DEFAULT_UPLOAD_PATH.encode()
    assert fields["fileName"][1] == 'my "best" clip é.mp4'.encode()
    assert fields["file"][0]["filename"] == "my %22best%22 clip é.mp4"


@pytest.mark.parametrize(
    ("file", "kwargs", "field"),
    [
        (b"", {"file_name": "a.mp4"}, "file"),
        (io.BytesIO(b""), {"file_name": "a.mp4"}, "file"),
        (io.StringIO("text"), {"file_name": "a.mp4"}, "file"),
        ("a string", {"file_name": "a.mp4"}, "file"),
        (b"abc", {"file_name": ""}, "file_name"),
        (b"abc", {"file_name": "dir/a.mp4"}, "file_name"),
        (b"abc", {"file_name": "a\r\nb.mp4"}, "file_name"),
        (b"abc", {"file_name": "a.mp4", "upload_path": "///"}, "upload_path"),
        (b"abc", {"file_name": "a.mp4", "progress": "yes"}, "progress"),
    ],
    ids=repr,
)
def test_upload_file_refuses_bad_input(
    file: Any, kwargs: dict[str, Any], field: str, client: LumaClient, mock_api: MockApi
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        client.upload_file(file, **kwargs)
    assert caught.value.field == field and mock_api.requests == []


def test_upload_file_is_not_resent_after_sending(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_UPLOAD_STREAM, MockApi.raises(httpx.ReadTimeout))
    with pytest.raises(RequestTimeout, match="upload"):
        client.upload_file(b"abc", file_name="a.mp4")
    assert mock_api.count(PATH_UPLOAD_STREAM) == 1


def test_upload_file_is_resent_whole_after_connect_error(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_UPLOAD_STREAM, MockApi.raises(httpx.ConnectError), upload_ok())
    stream = io.BytesIO(b"0123456789" * 100_000)
    progress: list[tuple[int, int]] = []
    client.upload_file(stream, file_name="a.mp4", progress=lambda s, t: progress.append((s, t)))
    assert mock_api.count(PATH_UPLOAD_STREAM) == 2
    assert parse_multipart(mock_api.requests[1], mock_api.bodies[1])["file"][1] == stream.getvalue()
    assert progress[-1] == (1_000_000, 1_000_000)


def test_upload_file_shape_b(client: LumaClient, mock_api: MockApi) -> None:
    shape_b = {
        "fileId": "f1", "fileName": "clip.mp4", "originalName": "clip.mp4", "fileSize": 3,
        "mimeType": "video/mp4", "uploadPath": "luma-dashboard", "fileUrl": "https://h/f/clip.mp4",
        "downloadUrl": "https://h/d/clip.mp4", "uploadTime": "2025-01-01T12:00:00Z", "expiresAt": "2025-01-04T12:00:00Z",
    }
    mock_api.on(PATH_UPLOAD_STREAM, upload_ok(shape_b))
    up = client.upload_file(b"abc", file_name="clip.mp4")
    assert up.download_url == "https://h/d/clip.mp4" and up.file_path == "luma-dashboard"


def test_upload_base64_from_bytes(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_UPLOAD_BASE64, upload_ok())
    up = client.upload_base64(b"\x00video", file_name="v.mp4", upload_path="in")
    assert up.download_url == UPLOADED["downloadUrl"]
    request = mock_api.requests[0]
    assert str(request.url) == "https://kieai.redpandaai.co/api/file-base64-upload"
    assert mock_api.json() == {
        "base64Data": "data:video/mp4;base64," + base64.b64encode(b"\x00video").decode(),
        "uploadPath": "in",
        "fileName": "v.mp4",
    }


@pytest.mark.parametrize(
    ("data", "sent"),
    [
        ("AAEC", "data:video/quicktime;base64,AAEC"),
        ("data:video/mp4;base64,AAEC", "data:video/mp4;base64,AAEC"),
        ("AA\nEC", "data:video/quicktime;base64,AAEC"),
    ],
)
def test_upload_base64_from_text(data: str, sent: str, client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_UPLOAD_BASE64, upload_ok())
    client.upload_base64(data, mime_type="video/quicktime")
    assert mock_api.json() == {"base64Data": sent, "uploadPath": DEFAULT_UPLOAD_PATH}


@pytest.mark.parametrize(
    ("data", "kwargs"),
    [(b"", {}), ("", {}), ("not base64!", {}), ("AAE", {}), ("data:video/mp4,AAEC", {}), ("data:;base64,", {}),
     (b"x", {"mime_type": "mp4"}), (3, {})],
    ids=repr,
)
def test_upload_base64_refuses_bad_data(data: Any, kwargs: dict[str, Any], client: LumaClient, mock_api: MockApi) -> None:
    with pytest.raises(InvalidInputError):
        client.upload_base64(data, **kwargs)
    assert mock_api.requests == []


def test_upload_url(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_UPLOAD_URL, upload_ok())
    up = client.upload_url(VIDEO, file_name="copy.mp4", upload_path="imports")
    assert up.file_name == "clip.mp4"
    assert mock_api.json() == {"fileUrl": VIDEO, "uploadPath": "imports", "fileName": "copy.mp4"}
    with pytest.raises(InvalidInputError):
        client.upload_url("s3://bucket/v.mp4")


def test_upload_url_is_not_resent_on_server_error(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_UPLOAD_URL, MockApi.error(500, style="body", upload=True))
    with pytest.raises(ServerError):
        client.upload_url(VIDEO)
    assert mock_api.count(PATH_UPLOAD_URL) == 1


# --- fetch ---------------------------------------------------------------------------------------


def test_fetch_returns_bytes_without_the_key_for_foreign_hosts(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on("/l/result.mp4", MockApi.reply(200, text=b"\x00\x00\x00\x18ftypmp42", headers={"Content-Type": "video/mp4"}))
    data = client.fetch("https://tempfile.aiquickdraw.com/l/result.mp4")
    assert data == b"\x00\x00\x00\x18ftypmp42"
    request = mock_api.requests[0]
    assert request.method == "GET" and "Authorization" not in request.headers
    assert request.headers["User-Agent"] == USER_AGENT


def test_key_goes_only_to_the_api_and_upload_origins(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on("/f", MockApi.reply(200, text=b"x"))
    for url in (
        "https://api.kie.ai/f",
        "https://kieai.redpandaai.co/f",
        "http://api.kie.ai/f",  # another scheme is another origin
        "https://api.kie.ai:8443/f",
        "https://evil.api.kie.ai/f",
        "https://api.kie.ai.evil.example/f",
    ):
        client.fetch(url)
    sent = ["Authorization" in r.headers for r in mock_api.requests]
    assert sent == [True, True, False, False, False, False]


def test_fetch_follows_redirects_and_strips_the_key_across_origins(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on("/start", MockApi.reply(302, headers={"Location": "https://cdn.example/final.mp4"}))
    mock_api.on("/final.mp4", MockApi.reply(200, text=b"video"))
    assert client.fetch("https://api.kie.ai/start") == b"video"
    assert "Authorization" in mock_api.requests[0].headers
    assert "Authorization" not in mock_api.requests[1].headers


def test_fetch_is_a_retried_read(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on("/r.mp4", MockApi.reply(503), MockApi.raises(httpx.ReadError), MockApi.reply(200, text=b"ok"))
    assert client.fetch("https://cdn.example/r.mp4") == b"ok"
    assert mock_api.count("/r.mp4") == 3


def test_fetch_expired_link(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on("/gone.mp4", MockApi.reply(404, text=b"<Error>NoSuchKey</Error>"))
    with pytest.raises(NotFoundError, match="fresh download link"):
        client.fetch("https://cdn.example/gone.mp4")
    assert mock_api.count("/gone.mp4") == 1


@pytest.mark.parametrize("url", ["", "ftp://x/y", "/relative/path.mp4", None])
def test_fetch_refuses_non_http_urls(url: Any, client: LumaClient, mock_api: MockApi) -> None:
    with pytest.raises(InvalidInputError):
        client.fetch(url)
    assert mock_api.requests == []


def test_api_calls_do_not_follow_redirects(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREATE, MockApi.reply(301, headers={"Location": "https://elsewhere.example/generate"}))
    with pytest.raises(Exception, match="redirect"):
        client.create_task("p", VIDEO)
    assert len(mock_api.requests) == 1


def test_json_answers_ignore_a_wrong_content_type(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREDITS, lambda r: httpx.Response(200, content=json.dumps({"code": 200, "data": 9}), headers={"Content-Type": "text/plain"}))
    assert client.get_credits() == 9


# --- the package's public surface ----------------------------------------------------------------

CONTRACT_NAMES = {
    "luma.errors": ["LumaError", "ConfigurationError", "TransportError", "ConnectError", "RequestTimeout",
                    "MalformedResponseError", "SignatureError", "APIError", "BadRequestError",
                    "AuthenticationError", "InsufficientCreditsError", "NotFoundError", "MethodNotAllowedError",
                    "ValidationError", "RateLimitError", "MaintenanceError", "ServerError",
                    "GenerationFailedError", "FeatureDisabledError", "error_for_code"],
    "luma.models": ["TaskStatus", "TaskRequest", "Task", "TaskBatch", "UploadedFile", "CallbackEvent",
                    "parse_task", "parse_request", "parse_upload", "parse_callback"],
    "luma.client": ["LumaClient", "AsyncLumaClient"],
    "luma._retry": ["RetryPolicy", "CreateLimiter"],
    "luma.callbacks": ["verify_signature", "verify_callback", "sign", "parse_callback"],
}


@pytest.mark.parametrize("module_name", ["luma", *CONTRACT_NAMES])
def test_public_names_are_sorted_exported_and_present(module_name: str) -> None:
    import importlib

    module = importlib.import_module(module_name)
    assert module.__all__ == sorted(module.__all__)
    assert all(hasattr(module, name) for name in module.__all__)
    assert set(CONTRACT_NAMES.get(module_name, [])) <= set(module.__all__)
    if module_name == "luma":
        # The package re-exports everything callers need from one import.
        for names in CONTRACT_NAMES.values():
            assert set(names) <= set(module.__all__)


def test_luma_never_imports_streamlit() -> None:
    import subprocess
    import sys
    from pathlib import Path

    import luma

    root = Path(luma.__file__).resolve().parents[1]
    code = "import sys, luma, luma.client, luma.callbacks; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "False"


# --- through a guarded transport: private addresses are refused, and never retried -----------------


def _guarded(fake_net: FakeNet, retry: RetryPolicy, **kwargs: Any) -> LumaClient:
    kwargs.setdefault("create_limiter", CreateLimiter())
    return LumaClient(SECRET_KEY, transport=fake_net.transport(), retry=retry, **kwargs)


def test_fetch_of_a_private_name_is_refused_without_a_connection(
    fake_net: FakeNet, retry_policy: RetryPolicy, fake_clock: FakeClock
) -> None:
    with _guarded(fake_net, retry_policy) as client, pytest.raises(AddressRefusedError) as caught:
        client.fetch("http://loop.test/x.mp4")
    error = caught.value
    assert isinstance(error, ConnectError) and not error.retryable and not error.request_sent
    assert error.attempts == 1 and fake_clock.sleeps == []
    assert (error.host, error.reason) == ("loop.test", "a loopback address (this machine)")
    text = str(error)
    assert "loop.test" in text and "loopback" in text and "not sent" in text
    assert "127.0.0.1" not in text and SECRET_KEY not in text + repr(error)
    assert error.__cause__ is None and error.__suppress_context__
    assert fake_net.recorder.attempts == []


def test_fetch_redirected_to_loopback_is_refused_at_the_hop(
    fake_net: FakeNet, retry_policy: RetryPolicy, fake_clock: FakeClock
) -> None:
    fake_net.pages["/result.mp4"] = Page(status=302, location="http://127.1/")
    with _guarded(fake_net, retry_policy) as client, pytest.raises(AddressRefusedError) as caught:
        client.fetch("http://public.test/result.mp4")
    assert caught.value.host == "127.1" and caught.value.attempts == 1 and fake_clock.sleeps == []
    assert fake_net.recorder.addresses == [PUBLIC_IP]
    assert [(method, host, path) for method, host, path in fake_net.seen] == [("GET", "public.test", "/result.mp4")]


def test_public_fetch_works_through_the_guard(fake_net: FakeNet, retry_policy: RetryPolicy) -> None:
    fake_net.pages["/result.mp4"] = Page(b"result bytes", "video/mp4")
    with _guarded(fake_net, retry_policy) as client:
        assert client.fetch("http://public.test/result.mp4") == b"result bytes"
    assert fake_net.recorder.addresses == [PUBLIC_IP]


def test_create_to_a_private_api_host_is_not_sent_again(
    fake_net: FakeNet, retry_policy: RetryPolicy, fake_clock: FakeClock
) -> None:
    limiter = CreateLimiter(limit=1, clock=fake_clock, sleep=fake_clock.sleep)
    with (
        _guarded(fake_net, retry_policy, api_base="http://internal.test", create_limiter=limiter) as client,
        pytest.raises(AddressRefusedError) as caught,
    ):
        client.create_task("make it snow", VIDEO)
    assert caught.value.attempts == 1 and fake_clock.sleeps == []
    assert limiter.wait_time() == 0.0  # never sent, so its rate-limit slot was given back
    assert fake_net.recorder.attempts == []


def test_async_client_refuses_the_same_way(fake_net: FakeNet, retry_policy: RetryPolicy) -> None:
    async def run() -> AddressRefusedError:
        async with AsyncLumaClient(
            SECRET_KEY, transport=fake_net.async_transport(), retry=retry_policy, create_limiter=CreateLimiter()
        ) as client:
            with pytest.raises(AddressRefusedError) as caught:
                await client.fetch("http://meta.test/latest/meta-data/")
            return caught.value

    error = asyncio.run(run())
    assert "link-local" in str(error) and error.attempts == 1
    assert fake_net.recorder.attempts == []
