"""The real client against the emulator, in-process (httpx transport) and over a loopback socket.

Every test runs four ways: {in-process, server} x {errors in the body, errors in the HTTP status}.
Inputs the client itself refuses (an empty prompt, ...) are sent raw through the same path.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from luma import (
    APIError,
    AsyncLumaClient,
    AuthenticationError,
    CreateLimiter,
    FeatureDisabledError,
    InsufficientCreditsError,
    LumaClient,
    MaintenanceError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
    RequestTimeout,
    RetryPolicy,
    ServerError,
    TaskRequest,
    TaskStatus,
    ValidationError,
)
from luma._constants import (
    DEFAULT_API_BASE,
    DEFAULT_UPLOAD_BASE,
    PATH_CREATE,
    PATH_CREDITS,
    PATH_RECORD,
    PATH_UPLOAD_BASE64,
    PATH_UPLOAD_STREAM,
    PATH_UPLOAD_URL,
)
from luma.emulator import Emulator
from luma.emulator.media import probe
from luma.emulator.server import EmulatorServer

MODES = [("inprocess", "body"), ("inprocess", "http"), ("server", "body"), ("server", "http")]
TASK_ID = re.compile(r"[0-9a-f]{32}")


async def _no_async_sleep(seconds: float) -> None:
    return None


def fast_retry(**overrides: Any) -> RetryPolicy:
    """Retries without real waiting; counts the pauses in ``overrides['sleep']`` if given."""
    overrides.setdefault("sleep", lambda seconds: None)
    return RetryPolicy(base_delay=0.0, max_delay=0.0, async_sleep=_no_async_sleep, **overrides)


@dataclass
class Stack:
    """One emulator, reachable in-process or through a loopback server, plus client factories."""

    emulator: Emulator
    clock: Any  # conftest.FakeClock
    mode: str
    style: str
    server: EmulatorServer | None = None
    _closers: list[Callable[[], Any]] = field(default_factory=list)

    @property
    def api_base(self) -> str:
        return self.server.url if self.server else DEFAULT_API_BASE

    @property
    def upload_base(self) -> str:
        return self.server.url if self.server else DEFAULT_UPLOAD_BASE

    def _kwargs(self, kw: dict[str, Any]) -> dict[str, Any]:
        kw.setdefault("retry", fast_retry())
        # A generous limiter of our own, so the emulator's 429 is what the tests see.
        kw.setdefault("create_limiter", CreateLimiter(limit=10_000, window=1.0))
        kw.setdefault("api_base", self.api_base)
        kw.setdefault("upload_base", self.upload_base)
        return kw

    def client(self, api_key: str | None = "demo", **kw: Any) -> LumaClient:
        kw = self._kwargs(kw)
        if self.server is None:
            kw["transport"] = self.emulator.transport()
        client = LumaClient(api_key, **kw)
        self._closers.append(client.close)
        return client

    def aclient(self, api_key: str | None = "demo", **kw: Any) -> AsyncLumaClient:
        kw = self._kwargs(kw)
        if self.server is None:
            kw["transport"] = self.emulator.transport()
        return AsyncLumaClient(api_key, **kw)

    def raw(self, method: str, path: str, *, key: str | None = "demo", upload: bool = False,
            **kw: Any) -> httpx.Response:
        """A plain httpx request (bypassing the client's own input checks)."""
        base = self.upload_base if upload else self.api_base
        headers = kw.pop("headers", {})
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        transport = self.emulator.transport() if self.server is None else None
        with httpx.Client(transport=transport, timeout=10.0) as http:
            return http.request(method, base + path, headers=headers, **kw)

    def get(self, url: str, **kw: Any) -> httpx.Response:
        """GET an absolute URL the way a browser would (no API key), in-process or over the socket."""
        transport = self.emulator.transport() if self.server is None else None
        with httpx.Client(transport=transport, timeout=10.0) as http:
            return http.get(url, **kw)

    def expect_error(self, response: httpx.Response, code: int, *, upload: bool = False) -> dict[str, Any]:
        """Assert the documented error envelope, with the HTTP status the error style calls for."""
        assert response.status_code == (code if self.style == "http" else 200)
        body = response.json()
        assert body["code"] == code
        assert isinstance(body["msg"], str) and body["msg"]
        if upload:
            assert body["success"] is False
        return body

    def finish(self, seconds: float = 2.0) -> None:
        """Let fake time pass and background work settle."""
        self.clock.advance(seconds)
        assert self.emulator.wait_idle(30)

    def close(self) -> None:
        for close in reversed(self._closers):
            close()
        if self.server is not None:
            self.server.close()


@pytest.fixture(params=MODES, ids=[f"{m}-{s}" for m, s in MODES])
def make_stack(request: pytest.FixtureRequest, make_emulator: Callable[..., Emulator],
               fake_clock: Any) -> Iterator[Callable[..., Stack]]:
    mode, style = request.param
    stacks: list[Stack] = []

    def make(**overrides: Any) -> Stack:
        overrides.setdefault("error_style", style)
        emulator = make_emulator(**overrides)
        server = EmulatorServer(emulator).start() if mode == "server" else None
        stack = Stack(emulator, fake_clock, mode, style, server)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.close()


def _mock_files(files: dict[str, tuple[bytes, str] | httpx.Response]) -> httpx.MockTransport:
    """A stand-in for the internet: serves the given paths, refuses every other URL."""

    def handler(request: httpx.Request) -> httpx.Response:
        entry = files.get(request.url.path)
        if entry is None:
            raise httpx.ConnectError("unreachable in tests", request=request)
        if isinstance(entry, httpx.Response):
            return entry
        data, content_type = entry
        return httpx.Response(200, headers={"Content-Type": content_type}, content=data)

    return httpx.MockTransport(handler)


class _ExplodingStream(httpx.SyncByteStream):
    """A body that fails the test if anyone reads it."""

    def __iter__(self) -> Iterator[bytes]:
        raise AssertionError("the emulator read a body it should have refused from its headers")


# --- create and poll ---------------------------------------------------------------------------------


def test_create_poll_until_success_and_fetch_the_result(make_stack: Callable[..., Stack], sample_mp4: Path,
                                                        tmp_path: Path) -> None:
    stack = make_stack()
    start = stack.clock.now
    client = stack.client()
    clip = stack.emulator.samples()[0]
    assert clip.url.startswith(stack.emulator.config.public_base + "/files/samples/")

    task_id = client.create_task("Make it a snowy night", clip.url, watermark="demo-mark")
    assert TASK_ID.fullmatch(task_id)
    task = client.get_task(task_id)
    assert task.status is TaskStatus.GENERATING
    assert task.result_urls == () and task.completed_at is None
    assert task.request == TaskRequest("Make it a snowy night", clip.url, None, "demo-mark")
    assert task.created_at == datetime.fromtimestamp(start, tz=UTC)

    assert stack.emulator.wait_idle(30)
    assert client.get_task(task_id).status is TaskStatus.GENERATING  # rendered, but the delay has not passed

    stack.finish(2.0)
    task = client.get_task(task_id)
    assert task.status is TaskStatus.SUCCESS
    assert task.completed_at == datetime.fromtimestamp(start + 2.0, tz=UTC)
    assert task.result_url and task.result_url.startswith(stack.emulator.config.public_base + "/files/")
    assert client.fetch(task.origin_url) == sample_mp4.read_bytes()  # type: ignore[arg-type]
    result = tmp_path / "result.mp4"
    result.write_bytes(client.fetch(task.result_url))
    info = probe(result)
    assert (info.container, info.codec, info.width, info.height) == ("mp4", "h264", 160, 90)
    assert info.duration == pytest.approx(probe(sample_mp4).duration, abs=0.15)
    assert client.get_credits() == 990
    assert stack.emulator.create_count() == 1


def test_record_info_raw_shape_and_variants(make_stack: Callable[..., Stack]) -> None:
    for variant in ("null", "absent"):
        stack = make_stack(response_while_generating=variant)
        clip = stack.emulator.samples()[1]
        created = stack.raw("POST", PATH_CREATE, json={"prompt": "warm sunset", "videoUrl": clip.url,
                                                        "callBackUrl": "https://hooks.example.com/x"})
        assert created.status_code == 200
        body = created.json()
        assert body["code"] == 200 and body["msg"] == "success"
        task_id = body["data"]["taskId"]

        data = stack.raw("GET", PATH_RECORD, params={"taskId": task_id}).json()["data"]
        assert data["taskId"] == task_id and data["successFlag"] == 0
        assert isinstance(data["paramJson"], str)
        assert json.loads(data["paramJson"]) == {
            "callBackUrl": "https://hooks.example.com/x", "prompt": "warm sunset",
            "videoUrl": clip.url, "waterMark": "",
        }
        assert data["createTime"] == int(stack.clock.now * 1000) and data["completeTime"] is None
        assert data["errorCode"] is None and data["errorMessage"] is None
        if variant == "null":
            assert "response" in data and data["response"] is None
        else:
            assert "response" not in data


def test_generation_failure_reports_501_as_int_or_string(make_stack: Callable[..., Stack]) -> None:
    for code_type, expected in (("int", 501), ("string", "501")):
        stack = make_stack(failure_rate=1.0, error_code_type=code_type)
        client = stack.client()
        task_id = client.create_task("anything", stack.emulator.samples()[0].url)
        stack.finish()
        task = client.get_task(task_id)
        assert task.status is TaskStatus.GENERATE_FAILED
        assert task.error_code == 501 and task.error_message
        assert task.result_urls == ()
        raw = stack.raw("GET", PATH_RECORD, params={"taskId": task_id}).json()["data"]
        assert raw["errorCode"] == expected and raw["successFlag"] == 3
        assert client.get_credits() == 990


def test_create_task_failed_is_final_at_once_and_not_charged(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(create_failure_rate=1.0)
    client = stack.client()
    task_id = client.create_task("anything", stack.emulator.samples()[0].url)
    task = client.get_task(task_id)
    assert task.status is TaskStatus.CREATE_TASK_FAILED and task.status.is_final
    assert task.error_message and task.result_urls == ()
    assert client.get_credits() == 1000


def test_callback_failure_leaves_results_and_status_4(make_stack: Callable[..., Stack]) -> None:
    attempts: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        return httpx.Response(503)

    stack = make_stack(callback_transport=httpx.MockTransport(refuse), sleep=lambda s: None)
    client = stack.client()
    task_id = client.create_task("cinematic", stack.emulator.samples()[0].url,
                                 callback_url="https://hooks.example.com/luma")
    stack.finish()
    task = client.get_task(task_id)
    assert task.status is TaskStatus.CALLBACK_FAILED and task.status.succeeded
    assert len(attempts) == 4  # the first attempt and three retries
    assert client.fetch(task.result_url)[4:8] == b"ftyp"  # type: ignore[arg-type]


# --- account: credits, limits, auth ----------------------------------------------------------------


def test_credits_go_down_then_402(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(credits=20, credits_per_task=10, failure_rate=1.0)
    client = stack.client()
    url = stack.emulator.samples()[0].url
    assert client.get_credits() == 20
    client.create_task("one", url)
    assert client.get_credits() == 10
    client.create_task("two", url)
    assert client.get_credits() == 0
    with pytest.raises(InsufficientCreditsError) as caught:
        client.create_task("three", url)
    assert caught.value.http_status == (402 if stack.style == "http" else 200)
    assert stack.emulator.create_count() == 2


def test_21st_create_in_the_window_gets_429(make_stack: Callable[..., Stack]) -> None:
    # failure_rate=1 skips rendering: this test is about counting, not video.
    stack = make_stack(failure_rate=1.0, retry_after=7)
    client = stack.client()
    url = stack.emulator.samples()[0].url
    for i in range(20):
        client.create_task(f"task {i}", url)
        stack.clock.advance(0.1)
    with pytest.raises(RateLimitError) as caught:
        client.create_task("one too many", url)
    assert caught.value.retry_after == 7
    assert stack.emulator.create_count() == 20
    stack.clock.advance(10.0)  # the window slides past the first creates
    client.create_task("after the window", url)
    assert stack.emulator.create_count() == 21


def test_missing_or_wrong_key_gets_401(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(required_key="sesame")
    with pytest.raises(AuthenticationError):
        stack.client("not-the-key").get_credits()
    assert stack.client("sesame").get_credits() == 1000
    body = stack.expect_error(stack.raw("GET", PATH_CREDITS, key=None), 401)
    assert body["msg"] == "You do not have access permissions"
    stack.expect_error(stack.raw("POST", PATH_CREATE, key=None, json={}), 401)
    stack.expect_error(stack.raw("POST", PATH_UPLOAD_BASE64, key="wrong", upload=True, json={}), 401, upload=True)


def test_unknown_task_and_other_accounts_tasks_are_404(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    client = stack.client()
    with pytest.raises(NotFoundError):
        client.get_task("0" * 32)
    stack.expect_error(stack.raw("GET", PATH_RECORD), 404)
    task_id = client.create_task("mine", stack.emulator.samples()[0].url)
    with pytest.raises(NotFoundError):
        stack.client("someone-else").get_task(task_id)


def test_wrong_path_is_plain_404_and_client_says_endpoint_moved(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    response = stack.raw("POST", "/api/v2/modify/generate", json={})
    assert response.status_code == 404
    client = stack.client(api_base=stack.api_base + "/moved")
    with pytest.raises(NotFoundError) as caught:
        client.create_task("x", stack.emulator.samples()[0].url)
    assert "moved" in str(caught.value)


# --- validation --------------------------------------------------------------------------------------

REMOTE = "https://videos.example.com"


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("missing prompt", "prompt"),
        ("blank prompt", "prompt"),
        ("missing videoUrl", "videoUrl"),
        ("unreachable", "unreachable"),
        ("html page", "not point to a video"),
        ("not a video", "readable video"),
        ("too long", "seconds"),
        ("too large", "500 MB"),
        ("mkv container", "MP4, MOV or AVI"),
    ],
)
def test_create_validation_422(make_stack: Callable[..., Stack], case: str, words: str, long_mp4: Path,
                               mkv_clip: Path) -> None:
    internet = _mock_files({
        "/page.mp4": (b"<html><body>Not a video</body></html>", "text/html"),
        "/noise.mp4": (bytes(range(256)) * 64, "application/octet-stream"),
        "/long.mp4": (long_mp4.read_bytes(), "video/mp4"),
        "/clip.mkv": (mkv_clip.read_bytes(), "video/x-matroska"),
        "/huge.mp4": httpx.Response(200, headers={"Content-Type": "video/mp4",
                                                  "Content-Length": str(600 * 1024 * 1024)},
                                    stream=_ExplodingStream()),
    })
    stack = make_stack(fetch_transport=internet)
    sample = stack.emulator.samples()[0].url
    bodies: dict[str, dict[str, Any]] = {
        "missing prompt": {"videoUrl": sample},
        "blank prompt": {"prompt": "   ", "videoUrl": sample},
        "missing videoUrl": {"prompt": "x"},
        "unreachable": {"prompt": "x", "videoUrl": f"{REMOTE}/gone.mp4"},
        "html page": {"prompt": "x", "videoUrl": f"{REMOTE}/page.mp4"},
        "not a video": {"prompt": "x", "videoUrl": f"{REMOTE}/noise.mp4"},
        "too long": {"prompt": "x", "videoUrl": f"{REMOTE}/long.mp4"},
        "too large": {"prompt": "x", "videoUrl": f"{REMOTE}/huge.mp4"},
        "mkv container": {"prompt": "x", "videoUrl": f"{REMOTE}/clip.mkv"},
    }
    body = stack.expect_error(stack.raw("POST", PATH_CREATE, json=bodies[case]), 422)
    assert words in body["msg"]
    assert stack.emulator.create_count() == 0
    assert stack.client().get_credits() == 1000


def test_client_sees_422_as_validation_error(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    with pytest.raises(ValidationError) as caught:
        stack.client().create_task("x", f"{REMOTE}/unreachable.mp4")
    assert caught.value.status_code == 422
    assert stack.emulator.create_count() == 0


# --- download links -----------------------------------------------------------------------------------


def test_download_url_is_fresh_and_expires_after_20_minutes(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    client = stack.client()
    task_id = client.create_task("noir", stack.emulator.samples()[0].url)
    stack.finish()
    result = client.get_task(task_id).result_url
    assert result
    link = client.get_download_url(result)
    assert link != result and link.startswith(stack.emulator.config.public_base + "/files/dl/")
    assert client.fetch(link) == client.fetch(result)

    stack.clock.advance(19 * 60)
    assert client.fetch(link) == client.fetch(result)
    stack.clock.advance(60 + 1)
    with pytest.raises(APIError) as caught:
        client.fetch(link)
    assert caught.value.status_code == 410
    assert client.fetch(client.get_download_url(result))  # a new link works again

    with pytest.raises(ValidationError):
        client.get_download_url("https://example.com/not-ours.mp4")
    with pytest.raises(ValidationError):
        client.get_download_url(stack.emulator.samples()[0].url)  # ours, but not generated


# --- uploads ---------------------------------------------------------------------------------------


def test_three_uploads_store_serve_and_expire(make_stack: Callable[..., Stack], sample_mp4: Path) -> None:
    data = sample_mp4.read_bytes()
    stack = make_stack(fetch_transport=_mock_files({"/v/clip.avi": (data, "video/x-msvideo")}))
    client = stack.client()

    streamed = client.upload_file(data, file_name="clip.mp4", upload_path="tests/a")
    assert streamed.file_size == len(data) and streamed.mime_type == "video/mp4"
    assert streamed.file_path == "tests/a/clip.mp4"
    assert client.fetch(streamed.download_url) == data

    encoded = client.upload_base64(data, file_name="b64.mov", mime_type="video/quicktime")
    assert encoded.mime_type == "video/quicktime" and encoded.file_size == len(data)
    assert encoded.expires_at is not None and encoded.uploaded_at is not None
    assert encoded.expires_at - encoded.uploaded_at == timedelta(days=3)
    assert client.fetch(encoded.download_url) == data

    fetched = client.upload_url(f"{REMOTE}/v/clip.avi")
    assert fetched.file_name == "clip.avi" and fetched.mime_type == "video/x-msvideo"
    served = stack.get(fetched.download_url)
    assert served.headers["content-type"] == "video/x-msvideo" and served.content == data

    # An uploaded file is a valid videoUrl for a create.
    task_id = client.create_task("grainy film", streamed.download_url)
    stack.finish()
    assert client.get_task(task_id).status is TaskStatus.SUCCESS

    stack.clock.advance(3 * 24 * 3600)
    with pytest.raises(NotFoundError):
        client.fetch(streamed.download_url)


def test_upload_data_shapes(make_stack: Callable[..., Stack], sample_mp4: Path) -> None:
    data = sample_mp4.read_bytes()
    shape_a = {"fileName", "filePath", "downloadUrl", "fileSize", "mimeType", "uploadedAt"}
    shape_b = {"fileId", "fileName", "originalName", "fileSize", "mimeType", "uploadPath", "fileUrl",
               "downloadUrl", "uploadTime", "expiresAt"}
    stack = make_stack()
    streamed = stack.raw("POST", PATH_UPLOAD_STREAM, upload=True, data={"uploadPath": "x", "fileName": "a.mp4"},
                         files={"file": ("a.mp4", data, "video/mp4")}).json()
    assert streamed["success"] is True and streamed["code"] == 200 and set(streamed["data"]) == shape_a
    encoded = stack.raw("POST", PATH_UPLOAD_BASE64, upload=True, json={
        "base64Data": "data:video/mp4;base64," + base64.b64encode(data).decode(), "uploadPath": "x"}).json()
    assert set(encoded["data"]) == shape_b and encoded["data"]["fileSize"] == len(data)

    forced = make_stack(upload_shape="B")
    streamed_b = forced.raw("POST", PATH_UPLOAD_STREAM, upload=True, data={"uploadPath": "x"},
                            files={"file": ("a.mp4", data, "video/mp4")}).json()
    assert set(streamed_b["data"]) == shape_b


def test_upload_errors_400_405(make_stack: Callable[..., Stack], sample_mp4: Path) -> None:
    stack = make_stack()
    no_file = stack.raw("POST", PATH_UPLOAD_STREAM, upload=True, data={"uploadPath": "x"},
                        files={"other": ("a.txt", b"hi", "text/plain")})
    assert "file" in stack.expect_error(no_file, 400, upload=True)["msg"]
    no_path = stack.raw("POST", PATH_UPLOAD_STREAM, upload=True,
                        files={"file": ("a.mp4", sample_mp4.read_bytes(), "video/mp4")})
    assert "uploadPath" in stack.expect_error(no_path, 400, upload=True)["msg"]
    stack.expect_error(stack.raw("POST", PATH_UPLOAD_BASE64, upload=True, json={"uploadPath": "x"}), 400,
                       upload=True)
    stack.expect_error(stack.raw("POST", PATH_UPLOAD_BASE64, upload=True,
                                 json={"uploadPath": "x", "base64Data": "***"}), 400, upload=True)
    stack.expect_error(stack.raw("POST", PATH_UPLOAD_URL, upload=True,
                                 json={"uploadPath": "x", "fileUrl": f"{REMOTE}/gone.mp4"}), 400, upload=True)
    stack.expect_error(stack.raw("POST", PATH_UPLOAD_URL, upload=True,
                                 json={"uploadPath": "../etc", "fileUrl": f"{REMOTE}/a.mp4"}), 400, upload=True)
    for path in (PATH_UPLOAD_STREAM, PATH_UPLOAD_BASE64, PATH_UPLOAD_URL):
        stack.expect_error(stack.raw("GET", path, upload=True), 405, upload=True)


def test_upload_host_can_refuse_clients_without_a_real_user_agent(make_stack: Callable[..., Stack],
                                                                  sample_mp4: Path) -> None:
    stack = make_stack(reject_bare_user_agent=True)
    refused = stack.raw("POST", PATH_UPLOAD_BASE64, upload=True,
                        json={"uploadPath": "x", "base64Data": base64.b64encode(b"data").decode()})
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("text/html")
    uploaded = stack.client().upload_file(sample_mp4.read_bytes(), file_name="ok.mp4")  # sends its own agent
    assert uploaded.file_size == sample_mp4.stat().st_size


# --- faults ----------------------------------------------------------------------------------------


def test_read_faults_become_typed_errors(make_stack: Callable[..., Stack]) -> None:
    for rates, error in (({"rate_500": 1.0}, ServerError), ({"rate_429": 1.0}, RateLimitError),
                         ({"rate_malformed": 1.0}, MalformedResponseError)):
        stack = make_stack(**rates)
        client = stack.client()
        with pytest.raises(error):
            client.get_credits()
        with pytest.raises(error):
            client.get_task("0" * 32)
        client.create_task("creates are not faulted by default", stack.emulator.samples()[0].url)
        assert stack.emulator.create_count() == 1


def test_flaky_reads_succeed_after_retries(make_stack: Callable[..., Stack]) -> None:
    pauses: list[float] = []
    stack = make_stack(rate_500=0.3, rate_429=0.2, seed=11)
    client = stack.client(retry=fast_retry(sleep=pauses.append, max_attempts=8))
    for _ in range(10):
        assert client.get_credits() == 1000
    assert pauses, "half the reads were faulted, so some must have been retried"


def test_injected_read_timeout(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(rate_timeout=1.0, timeout_seconds=1.0)
    client = stack.client(timeout=0.3, retry=RetryPolicy.never())
    started = time.monotonic()
    with pytest.raises(RequestTimeout):
        client.get_credits()
    assert 0.25 <= time.monotonic() - started < 1.0


def test_create_timeout_fault_creates_the_task_without_answering(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(fault_creates=True, rate_timeout=1.0, timeout_seconds=1.0)
    client = stack.client(timeout=0.3)
    with pytest.raises(RequestTimeout):
        client.create_task("the dangerous kind", stack.emulator.samples()[0].url)
    # Over the socket the emulator may still be finishing the create when the client gives up.
    deadline = time.monotonic() + 5
    while stack.emulator.create_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stack.emulator.create_count() == 1  # created once, and never re-sent by the client
    assert stack.emulator.stats()["tasks"]["GENERATING"] == 1


def test_create_500_fault_creates_nothing(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(fault_creates=True, rate_500=1.0)
    with pytest.raises(ServerError):
        stack.client().create_task("x", stack.emulator.samples()[0].url)
    assert stack.emulator.create_count() == 0


def test_maintenance_and_disabled_feature(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(maintenance=True)
    with pytest.raises(MaintenanceError):
        stack.client().get_credits()
    stack = make_stack(feature_disabled=True)
    with pytest.raises(FeatureDisabledError):
        stack.client().create_task("x", stack.emulator.samples()[0].url)
    assert stack.emulator.create_count() == 0


# --- async client ----------------------------------------------------------------------------------


def test_async_client_end_to_end_and_latency_does_not_serialise(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(latency=0.15)
    url = stack.emulator.samples()[0].url

    async def scenario() -> None:
        async with stack.aclient() as client:
            ids = await asyncio.gather(client.create_task("night", url), client.create_task("day", url))
            started = time.monotonic()
            balances = await asyncio.gather(*(client.get_credits() for _ in range(6)))
            elapsed = time.monotonic() - started
            assert balances == [980] * 6
            # One after another they would take 0.9 s.
            assert elapsed < 0.6, f"six reads with 0.15 s latency took {elapsed:.2f} s: not concurrent"
            await asyncio.to_thread(stack.finish)
            batch = await client.get_tasks(ids)
            assert not batch.errors
            assert {t.status for t in batch.tasks.values()} == {TaskStatus.SUCCESS}
            data = await client.fetch(batch.tasks[ids[0]].result_url)  # type: ignore[arg-type]
            assert data[4:8] == b"ftyp"

    asyncio.run(scenario())
