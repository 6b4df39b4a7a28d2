"""AsyncLumaClient: every method, its retries on fake time, and the semaphore-bounded batch read."""

from __future__ import annotations

import base64
import inspect
import io
from collections.abc import Callable

import anyio
import httpx
import pytest

from luma import AsyncLumaClient, LumaClient, TaskStatus
from luma._constants import (
    PATH_CREATE,
    PATH_CREDITS,
    PATH_DOWNLOAD_URL,
    PATH_RECORD,
    PATH_UPLOAD_BASE64,
    PATH_UPLOAD_STREAM,
    PATH_UPLOAD_URL,
)
from luma.errors import (
    ConfigurationError,
    ConnectError,
    InsufficientCreditsError,
    InvalidInputError,
    NotFoundError,
    RequestTimeout,
    ServerError,
)

from .conftest import RECORD_SUCCESS, SECRET_KEY, TASK_ID, FakeClock, MockApi

pytestmark = pytest.mark.anyio

VIDEO = "https://example.com/video.mp4"
UPLOADED = {"fileName": "clip.mp4", "downloadUrl": "https://h/d/clip.mp4", "uploadedAt": "2025-01-01T12:00:00Z"}
MakeAsync = Callable[..., AsyncLumaClient]


def upload_ok() -> Callable[[httpx.Request], httpx.Response]:
    return MockApi.reply(200, {"success": True, "code": 200, "msg": "ok", "data": UPLOADED})


def record_for(request: httpx.Request) -> httpx.Response:
    tid = request.url.params["taskId"]
    if tid.startswith("missing"):
        return httpx.Response(404, json={"code": 404, "msg": "not found"})
    return httpx.Response(200, json={"code": 200, "msg": "success", "data": {**RECORD_SUCCESS, "taskId": tid}})


async def test_create_task(make_async_client: MakeAsync, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREATE, MockApi.ok({"taskId": TASK_ID}))
    async with make_async_client() as client:
        assert await client.create_task("make it rain", VIDEO, watermark="w") == TASK_ID
    assert mock_api.json() == {"prompt": "make it rain", "videoUrl": VIDEO, "watermark": "w"}
    assert mock_api.requests[0].headers["Authorization"] == f"Bearer {SECRET_KEY}"


async def test_create_refuses_bad_input(make_async_client: MakeAsync, mock_api: MockApi) -> None:
    async with make_async_client() as client:
        with pytest.raises(InvalidInputError):
            await client.create_task(" ", VIDEO)
        with pytest.raises(InvalidInputError):
            await client.create_task("p", "rtmp://stream")
    assert mock_api.requests == []


async def test_create_sent_exactly_once_on_timeout(make_async_client: MakeAsync, mock_api: MockApi, fake_clock: FakeClock) -> None:
    mock_api.on(PATH_CREATE, MockApi.raises(httpx.ReadTimeout))
    async with make_async_client() as client:
        with pytest.raises(RequestTimeout, match="jobs list"):
            await client.create_task("p", VIDEO)
    assert mock_api.count(PATH_CREATE) == 1 and fake_clock.sleeps == []


async def test_create_sent_exactly_once_on_500(make_async_client: MakeAsync, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREATE, MockApi.error(500, style="http"))
    async with make_async_client() as client:
        with pytest.raises(ServerError):
            await client.create_task("p", VIDEO)
    assert mock_api.count(PATH_CREATE) == 1


async def test_create_resent_after_connect_error(make_async_client: MakeAsync, mock_api: MockApi, fake_clock: FakeClock) -> None:
    mock_api.on(PATH_CREATE, MockApi.raises(httpx.ConnectError), MockApi.ok({"taskId": TASK_ID}))
    async with make_async_client() as client:
        assert await client.create_task("p", VIDEO) == TASK_ID
    assert mock_api.count(PATH_CREATE) == 2 and len(fake_clock.sleeps) == 1


async def test_twenty_first_create_awaits_the_window(make_async_client: MakeAsync, mock_api: MockApi, fake_clock: FakeClock) -> None:
    mock_api.on(PATH_CREATE, MockApi.ok({"taskId": TASK_ID}))
    start = fake_clock.now
    async with make_async_client() as client:
        for _ in range(21):
            await client.create_task("p", VIDEO)
    assert mock_api.times[19] == start
    assert mock_api.times[20] == pytest.approx(start + 10.0)


async def test_get_task_and_its_retries(make_async_client: MakeAsync, mock_api: MockApi, fake_clock: FakeClock) -> None:
    mock_api.on(
        PATH_RECORD,
        MockApi.reply(502, text="<html>bad gateway</html>"),
        MockApi.reply(429, {"code": 429}, headers={"Retry-After": "4"}),
        MockApi.ok(RECORD_SUCCESS),
    )
    async with make_async_client() as client:
        task = await client.get_task(TASK_ID)
    assert task.status is TaskStatus.SUCCESS and task.task_id == TASK_ID
    assert mock_api.count(PATH_RECORD) == 3
    assert fake_clock.sleeps == [0.25, 4.0]


async def test_get_task_errors(make_async_client: MakeAsync, mock_api: MockApi) -> None:
    mock_api.on(PATH_RECORD, MockApi.error(404, style="body"))
    async with make_async_client() as client:
        with pytest.raises(NotFoundError):
            await client.get_task("0" * 32)
        with pytest.raises(InvalidInputError):
            await client.get_task("")
    assert mock_api.count(PATH_RECORD) == 1


async def test_get_tasks_keeps_going_past_failures(make_async_client: MakeAsync, mock_api: MockApi) -> None:
    mock_api.on(PATH_RECORD, record_for)
    async with make_async_client() as client:
        batch = await client.get_tasks(["a1", "missing-1", "a2", "a1", " "])
    assert list(batch.tasks) == ["a1", "a2"]
    assert isinstance(batch.errors["missing-1"], NotFoundError)
    assert isinstance(batch.errors[" "], InvalidInputError)


async def test_get_tasks_is_bounded_by_a_semaphore(make_async_client: MakeAsync, mock_api: MockApi) -> None:
    in_flight = peak = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await anyio.sleep(0.01)  # yield so the other reads can start
        in_flight -= 1
        return record_for(request)

    mock_api.on(PATH_RECORD, answer)  # type: ignore[arg-type]
    async with make_async_client() as client:
        batch = await client.get_tasks([f"a{i}" for i in range(9)], concurrency=3)
    assert len(batch.tasks) == 9
    assert peak == 3


async def test_get_tasks_refuses_bad_arguments(make_async_client: MakeAsync) -> None:
    async with make_async_client() as client:
        with pytest.raises(InvalidInputError):
            await client.get_tasks("abc")
        with pytest.raises(InvalidInputError):
            await client.get_tasks(["a"], concurrency=0)


async def test_get_tasks_surfaces_bugs_after_the_others_finish(make_async_client: MakeAsync, mock_api: MockApi) -> None:
    finished: list[str] = []

    async def answer(request: httpx.Request) -> httpx.Response:
        tid = request.url.params["taskId"]
        if tid == "bug":
            raise RuntimeError("bug")
        await anyio.sleep(0.01)
        finished.append(tid)
        return record_for(request)

    mock_api.on(PATH_RECORD, answer)  # type: ignore[arg-type]
    async with make_async_client() as client:
        with pytest.raises(RuntimeError):
            await client.get_tasks(["bug", "a1", "a2"])
    assert sorted(finished) == ["a1", "a2"]


async def test_get_credits(make_async_client: MakeAsync, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREDITS, MockApi.raises(httpx.ConnectTimeout), MockApi.ok(100))
    async with make_async_client() as client:
        assert await client.get_credits() == 100
        mock_api.on(PATH_CREDITS, MockApi.error(402, style="http"))
        with pytest.raises(InsufficientCreditsError):
            await client.get_credits()


async def test_get_download_url(make_async_client: MakeAsync, mock_api: MockApi) -> None:
    mock_api.on(PATH_DOWNLOAD_URL, MockApi.ok("https://tempfile.aiquickdraw.com/fresh.mp4"))
    async with make_async_client() as client:
        link = await client.get_download_url("https://tempfile.aiquickdraw.com/l/x.mp4")
    assert link == "https://tempfile.aiquickdraw.com/fresh.mp4"
    assert mock_api.json() == {"url": "https://tempfile.aiquickdraw.com/l/x.mp4"}


async def test_upload_file_with_progress(make_async_client: MakeAsync, mock_api: MockApi) -> None:
    mock_api.on(PATH_UPLOAD_STREAM, upload_ok())
    payload = b"v" * 700_000
    progress: list[tuple[int, int]] = []
    async with make_async_client() as client:
        up = await client.upload_file(io.BytesIO(payload), file_name="clip.mp4", progress=lambda s, t: progress.append((s, t)))
    assert up.download_url == "https://h/d/clip.mp4"
    body = mock_api.bodies[0]
    assert payload in body and b'name="uploadPath"' in body and b'filename="clip.mp4"' in body
    assert int(mock_api.requests[0].headers["Content-Length"]) == len(body)
    assert progress[0] == (0, 700_000) and progress[-1] == (700_000, 700_000)


async def test_upload_file_not_resent_after_sending(make_async_client: MakeAsync, mock_api: MockApi) -> None:
    mock_api.on(PATH_UPLOAD_STREAM, MockApi.error(500, style="http", upload=True))
    async with make_async_client() as client:
        with pytest.raises(ServerError):
            await client.upload_file(b"abc", file_name="a.mp4")
    assert mock_api.count(PATH_UPLOAD_STREAM) == 1


async def test_upload_base64_and_url(make_async_client: MakeAsync, mock_api: MockApi) -> None:
    mock_api.on(PATH_UPLOAD_BASE64, upload_ok()).on(PATH_UPLOAD_URL, upload_ok())
    async with make_async_client() as client:
        await client.upload_base64(b"abc", file_name="a.mp4")
        await client.upload_url(VIDEO)
    assert mock_api.json(0)["base64Data"] == "data:video/mp4;base64," + base64.b64encode(b"abc").decode()
    assert mock_api.json(1) == {"fileUrl": VIDEO, "uploadPath": "luma-dashboard"}


async def test_fetch(make_async_client: MakeAsync, mock_api: MockApi) -> None:
    mock_api.on("/r.mp4", MockApi.reply(500), MockApi.reply(200, text=b"video"))
    async with make_async_client() as client:
        assert await client.fetch("https://cdn.example/r.mp4") == b"video"
    assert all("Authorization" not in r.headers for r in mock_api.requests)
    assert mock_api.count("/r.mp4") == 2


async def test_connect_failures_exhaust_and_report(make_async_client: MakeAsync, mock_api: MockApi) -> None:
    mock_api.on(PATH_RECORD, MockApi.raises(httpx.ConnectError))
    async with make_async_client() as client:
        with pytest.raises(ConnectError) as caught:
            await client.get_task(TASK_ID)
    assert caught.value.attempts == 5 and caught.value.__suppress_context__


async def test_close_aliases_and_repr(make_async_client: MakeAsync) -> None:
    client = make_async_client()
    assert SECRET_KEY not in repr(client) and "AsyncLumaClient" in repr(client)
    assert isinstance(client.transport, httpx.MockTransport)
    await client.aclose()
    await client.close()  # closing twice is harmless


async def test_sync_only_transport_is_refused() -> None:
    class SyncOnly(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200)

    with pytest.raises(ConfigurationError, match="async"):
        AsyncLumaClient(transport=SyncOnly())  # type: ignore[arg-type]


def test_same_methods_and_signatures_as_the_sync_client() -> None:
    public = ["create_task", "get_task", "get_tasks", "get_credits", "get_download_url", "upload_file",
              "upload_base64", "upload_url", "fetch", "close"]
    for name in public:
        sync_method, async_method = getattr(LumaClient, name), getattr(AsyncLumaClient, name)
        assert inspect.iscoroutinefunction(async_method) and not inspect.iscoroutinefunction(sync_method)
        assert inspect.signature(sync_method).parameters.keys() == inspect.signature(async_method).parameters.keys()
    assert inspect.signature(LumaClient).parameters.keys() == inspect.signature(AsyncLumaClient).parameters.keys()
