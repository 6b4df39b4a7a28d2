"""``answer_delay``: the create is done (task, charge, log line, stored state) before its answer is
held back, and holding it holds up no other request, in-process or over the socket."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from luma import CreateLimiter, LumaClient, RequestTimeout, RetryPolicy, TaskStatus
from luma._constants import PATH_CREATE, PATH_CREDITS
from luma.emulator import Emulator
from luma.emulator.server import EmulatorServer


def client_of(emulator: Emulator, **kw: Any) -> LumaClient:
    return LumaClient("demo", transport=emulator.transport(), create_limiter=CreateLimiter(1000, 1.0), **kw)


def last_created(emulator: Emulator) -> str:
    return str(json.loads(emulator.creates_log.read_text().splitlines()[-1])["taskId"])


def test_the_answer_is_held_only_once_the_create_is_done(make_emulator: Callable[..., Emulator]) -> None:
    seen: list[tuple[float, int, int, bool]] = []

    def sleep(seconds: float) -> None:
        # The caller has no answer yet, but the provider has done (and charged) everything.
        stored = emulator.data_dir / "state" / "tasks" / f"{last_created(emulator)}.json"
        seen.append((seconds, emulator.create_count(), emulator.credits_left("demo"), stored.is_file()))

    emulator = make_emulator(answer_delay=5.0, sleep=sleep)
    client = client_of(emulator)
    task_id = client.create_task("make it night", emulator.samples()[0].url)
    assert seen == [(5.0, 1, 990, True)] and last_created(emulator) == task_id
    assert client.get_task(task_id).status is TaskStatus.GENERATING  # reads are not held
    with httpx.Client(transport=emulator.transport(), base_url="https://api.kie.ai") as http:
        refused = http.post(PATH_CREATE, json={"prompt": "no video"}, headers={"Authorization": "Bearer demo"})
    assert refused.json()["code"] == 422 and len(seen) == 1  # only an accepted create is held


def test_a_held_answer_holds_up_no_other_request(make_emulator: Callable[..., Emulator]) -> None:
    entered, release = threading.Event(), threading.Event()

    def sleep(seconds: float) -> None:
        entered.set()
        release.wait(30)

    emulator = make_emulator(answer_delay=5.0, sleep=sleep)
    answered: dict[str, str] = {}
    creating = threading.Thread(
        target=lambda: answered.update(id=client_of(emulator).create_task("held", emulator.samples()[0].url)))
    creating.start()
    try:
        assert entered.wait(30)
        task_id = last_created(emulator)
        client = client_of(emulator)
        started = time.monotonic()
        assert client.get_task(task_id).status is TaskStatus.GENERATING
        assert client.get_credits() == 990
        assert time.monotonic() - started < 5
        assert "id" not in answered
    finally:
        release.set()
        creating.join(30)
    assert answered == {"id": task_id}


def test_a_caller_that_gives_up_first_gets_its_own_timeout(make_emulator: Callable[..., Emulator]) -> None:
    waits: list[float] = []
    emulator = make_emulator(answer_delay=60.0, sleep=waits.append)
    client = client_of(emulator, timeout=2.0, retry=RetryPolicy.never())
    with pytest.raises(RequestTimeout):
        client.create_task("the answer never comes", emulator.samples()[0].url)
    assert waits == [2.0]  # the caller's read timeout, not the whole delay
    assert emulator.create_count() == 1 and emulator.credits_left("demo") == 990  # created and charged


@pytest.fixture
def server(make_emulator: Callable[..., Emulator]) -> Iterator[EmulatorServer]:
    with EmulatorServer(make_emulator(answer_delay=1.5)) as running:
        yield running


def test_over_the_socket_other_requests_are_answered_meanwhile(server: EmulatorServer) -> None:
    auth = {"Authorization": "Bearer demo"}
    body = {"prompt": "held over the socket", "videoUrl": server.emulator.samples()[0].url}
    answers: dict[str, Any] = {}

    def create() -> None:
        with httpx.Client(timeout=10.0) as http:
            answers["create"] = http.post(server.url + PATH_CREATE, json=body, headers=auth).json()
            answers["create_done"] = time.monotonic()

    started = time.monotonic()
    creating = threading.Thread(target=create)
    creating.start()
    with httpx.Client(timeout=10.0) as http:
        while "create" not in answers and server.emulator.stats()["creates"] == 0:
            time.sleep(0.02)
        balance = http.get(server.url + PATH_CREDITS, headers=auth).json()
        answered = time.monotonic()
    creating.join(10)
    assert balance["data"] == 990 and "create_done" in answers
    assert answered < answers["create_done"]  # answered while the create's answer was held
    assert answers["create_done"] - started >= 1.5 and answers["create"]["code"] == 200
