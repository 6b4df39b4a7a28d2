"""Callbacks from the emulator: documented bodies, signatures the client's verifier accepts, retries."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from luma import CreateLimiter, LumaClient, SignatureError, TaskStatus, verify_callback
from luma.emulator import Emulator
from luma.emulator.delivery import CallbackSender, failure_body, success_body

HOOK = "https://hooks.example.com/luma"
KEY = "whsec-test-key"


class Receiver:
    """A callback endpoint behind an httpx MockTransport: records requests, answers per script."""

    def __init__(self, *answers: int | type[Exception]) -> None:
        self.answers = list(answers) or [200]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, type):
            raise answer("scripted failure", request=request)  # type: ignore[call-arg]
        return httpx.Response(answer)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def body(self, index: int = -1) -> dict[str, Any]:
        return json.loads(self.requests[index].content)


def _client(emulator: Emulator) -> LumaClient:
    return LumaClient("demo", transport=emulator.transport(), create_limiter=CreateLimiter(1000, 1.0))


def _run(emulator: Emulator, clock: Any, **create: Any) -> tuple[LumaClient, str]:
    client = _client(emulator)
    task_id = client.create_task("Turn it into a watercolour", emulator.samples()[0].url,
                                 callback_url=HOOK, **create)
    clock.advance(2.0)
    assert emulator.wait_idle(30)
    return client, task_id


def test_signed_success_callback(make_emulator: Callable[..., Emulator], fake_clock: Any) -> None:
    receiver = Receiver(200)
    emulator = make_emulator(signing_key=KEY, callback_transport=receiver.transport())
    client, task_id = _run(emulator, fake_clock, watermark="wm")

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.method == "POST" and str(request.url) == HOOK
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-webhook-timestamp"] == str(int(fake_clock.now))
    event = verify_callback(request.headers, request.content, KEY, now=fake_clock.now)
    task = client.get_task(task_id)
    assert event.task_id == task_id and event.succeeded and event.code == 200
    assert event.message == "Modify record generated successfully."
    assert event.result_urls == task.result_urls and task.result_urls
    assert event.request is not None and event.request.prompt == "Turn it into a watercolour"
    assert event.request.watermark == "wm"
    body = receiver.body()
    assert set(body) == {"code", "msg", "data"}
    assert set(body["data"]) == {"taskId", "promptJson", "resultUrls"}
    assert isinstance(body["data"]["promptJson"], str)
    assert task.status is TaskStatus.SUCCESS

    with pytest.raises(SignatureError):
        verify_callback(request.headers, request.content, "some-other-key", now=fake_clock.now)


@pytest.mark.parametrize("code", [500, 501])
def test_signed_failure_callback(make_emulator: Callable[..., Emulator], fake_clock: Any, code: int) -> None:
    receiver = Receiver(200)
    emulator = make_emulator(signing_key=KEY, failure_rate=1.0, callback_failure_code=code,
                             callback_transport=receiver.transport())
    client, task_id = _run(emulator, fake_clock)

    assert len(receiver.requests) == 1
    event = verify_callback(receiver.requests[0].headers, receiver.requests[0].content, KEY, now=fake_clock.now)
    assert event.task_id == task_id and not event.succeeded and event.code == code
    assert event.message == "Modify record generation failed."
    body = receiver.body()
    assert body["code"] == code and set(body["data"]) == {"taskId", "promptJson"}
    assert client.get_task(task_id).status is TaskStatus.GENERATE_FAILED


def test_create_task_failure_is_called_back_too(make_emulator: Callable[..., Emulator], fake_clock: Any) -> None:
    receiver = Receiver(200)
    emulator = make_emulator(create_failure_rate=1.0, callback_transport=receiver.transport())
    client, task_id = _run(emulator, fake_clock)
    assert receiver.body()["code"] == 500 and receiver.body()["data"]["taskId"] == task_id
    assert client.get_task(task_id).status is TaskStatus.CREATE_TASK_FAILED


def test_unsigned_without_a_key(make_emulator: Callable[..., Emulator], fake_clock: Any) -> None:
    receiver = Receiver(200)
    emulator = make_emulator(callback_transport=receiver.transport())
    _run(emulator, fake_clock)
    headers = receiver.requests[0].headers
    assert "x-webhook-signature" not in headers and "x-webhook-timestamp" not in headers
    assert receiver.body()["code"] == 200


def test_three_retries_with_backoff_then_callback_failed(make_emulator: Callable[..., Emulator],
                                                         fake_clock: Any) -> None:
    pauses: list[float] = []
    receiver = Receiver(500, httpx.ConnectError, httpx.ReadTimeout, 404)
    emulator = make_emulator(callback_transport=receiver.transport(), sleep=pauses.append)
    client, task_id = _run(emulator, fake_clock)
    assert len(receiver.requests) == 4
    assert pauses == [0.5, 1.0, 2.0]
    task = client.get_task(task_id)
    assert task.status is TaskStatus.CALLBACK_FAILED
    assert task.result_url and client.fetch(task.result_url)[4:8] == b"ftyp"


def test_delivery_that_recovers_ends_success(make_emulator: Callable[..., Emulator], fake_clock: Any) -> None:
    receiver = Receiver(502, 503, 200)
    emulator = make_emulator(callback_transport=receiver.transport(), sleep=lambda s: None)
    client, task_id = _run(emulator, fake_clock)
    assert len(receiver.requests) == 3
    assert client.get_task(task_id).status is TaskStatus.SUCCESS
    # Every attempt carries the same body: receivers must be idempotent, and can be.
    assert receiver.body(0) == receiver.body(2)


def test_task_stays_generating_until_delivery_settles(make_emulator: Callable[..., Emulator],
                                                      fake_clock: Any) -> None:
    # SUCCESS and CALLBACK_FAILED are both final, so the emulator must not show one and then the other.
    release = threading.Event()
    arrived = threading.Event()

    def slow(request: httpx.Request) -> httpx.Response:
        arrived.set()
        release.wait(10)
        return httpx.Response(200)

    emulator = make_emulator(callback_transport=httpx.MockTransport(slow))
    client = _client(emulator)
    task_id = client.create_task("x", emulator.samples()[0].url, callback_url=HOOK)
    fake_clock.advance(2.0)
    assert arrived.wait(30)
    assert client.get_task(task_id).status is TaskStatus.GENERATING
    release.set()
    assert emulator.wait_idle(30)
    assert client.get_task(task_id).status is TaskStatus.SUCCESS


def test_sender_uses_the_documented_timeout_and_signs_each_attempt() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500 if len(seen) == 1 else 204)

    times = iter([1000.0, 1007.0])
    sender = CallbackSender(httpx.MockTransport(handler), signing_key=KEY, clock=lambda: next(times),
                            sleep=lambda s: None)
    outcome = sender.send(HOOK, success_body("a" * 32, "{}", ["https://x/r.mp4"]))
    sender.close()
    assert outcome.delivered and outcome.attempts == 2 and outcome.detail == "HTTP 204"
    assert [r.extensions["timeout"]["read"] for r in seen] == [15.0, 15.0]
    assert [r.headers["x-webhook-timestamp"] for r in seen] == ["1000", "1007"]
    for request in seen:
        verify_callback(request.headers, request.content, KEY, now=1007.0)


def test_failure_body_shape() -> None:
    assert failure_body("b" * 32, '{"prompt":"p"}', 501) == {
        "code": 501, "msg": "Modify record generation failed.",
        "data": {"taskId": "b" * 32, "promptJson": '{"prompt":"p"}'},
    }
