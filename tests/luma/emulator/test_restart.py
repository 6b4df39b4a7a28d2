"""The emulator keeps its state in its data dir: a new emulator on the same dir answers for
everything the last one knew, and finishes the work a close or a crash cut off.

Crashes are real: a child process runs an emulator whose render or callback never returns, and
is killed with SIGKILL (no ``close``, no ``finally``) before a new emulator opens its dir.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from luma import CreateLimiter, LumaClient, NotFoundError, TaskStatus
from luma._constants import PATH_RECORD
from luma.emulator import DataDirInUse, Emulator, EmulatorConfig
from luma.emulator import media as media_module
from luma.emulator.media import SAMPLES
from luma.emulator.wire import EmulatorRequest

from .conftest import refuse_network

HOOK = "https://hooks.example.com/luma"
REPO = Path(__file__).resolve().parents[3]
TASK_ID = re.compile(r"^[0-9a-f]{32}$")


class Receiver:
    """A callback endpoint behind an httpx MockTransport that records what it is sent."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(json.loads(request.content))
        return httpx.Response(self.status)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)


def client_of(emulator: Emulator) -> LumaClient:
    return LumaClient("demo", transport=emulator.transport(), create_limiter=CreateLimiter(1000, 1.0))


def raw_record(emulator: Emulator, task_id: str) -> bytes:
    """record-info's exact answer, byte for byte."""
    request = EmulatorRequest.build("GET", f"{PATH_RECORD}?taskId={task_id}", [("Authorization", "Bearer demo")])
    return b"".join(emulator.handle(request).chunks())


def stored_task(data_dir: Path, task_id: str) -> dict[str, Any]:
    record: dict[str, Any] = json.loads((data_dir / "state" / "tasks" / f"{task_id}.json").read_text())["data"]
    return record


@pytest.fixture
def reopen(fake_clock: Any) -> Iterator[Callable[..., Emulator]]:
    """Open a new emulator on an existing data dir (fake clock, no network unless given)."""
    made: list[Emulator] = []

    def make(data_dir: Path, **overrides: Any) -> Emulator:
        kwargs = {k: overrides.pop(k) for k in ("clock", "callback_transport") if k in overrides}
        kwargs.setdefault("clock", fake_clock)
        kwargs.setdefault("callback_transport", httpx.MockTransport(refuse_network))
        overrides.setdefault("processing_delay", 2.0)
        emulator = Emulator(EmulatorConfig(data_dir=data_dir, **overrides),
                            fetch_transport=httpx.MockTransport(refuse_network), **kwargs)
        made.append(emulator)
        return emulator

    yield make
    for emulator in made:
        emulator.close()


# --- a clean restart -------------------------------------------------------------------------------


def test_a_restart_answers_for_everything_the_last_run_knew(
    make_emulator: Callable[..., Emulator], reopen: Callable[..., Emulator], fake_clock: Any, sample_mp4: Path
) -> None:
    hooks = Receiver()
    first = make_emulator(callback_transport=hooks.transport())
    client = client_of(first)
    url = first.samples()[0].url
    done = client.create_task("make it night", url, callback_url=HOOK, watermark="wm")
    first.configure(failure_rate=1.0)
    failed = client.create_task("this one fails", url, callback_url=HOOK)
    first.configure(failure_rate=0.0, create_failure_rate=1.0)
    refused = client.create_task("this one never starts", url, callback_url=HOOK)
    first.configure(create_failure_rate=0.0)
    upload = client.upload_file(sample_mp4.read_bytes(), file_name="mine.mp4", upload_path="keep")
    from_upload = client.create_task("from my upload", upload.download_url)
    fake_clock.advance(2.0)
    assert first.wait_idle(30)

    ids = [done, failed, refused, from_upload]
    tasks = {tid: client.get_task(tid) for tid in ids}
    assert [tasks[tid].status for tid in ids] == [
        TaskStatus.SUCCESS, TaskStatus.GENERATE_FAILED, TaskStatus.CREATE_TASK_FAILED, TaskStatus.SUCCESS]
    records = {tid: raw_record(first, tid) for tid in ids}
    result = tasks[done].result_url
    assert result is not None and tasks[done].origin_url is not None
    link = client.get_download_url(result)
    files = {u: client.fetch(u) for u in (link, upload.download_url, result, tasks[done].origin_url)}
    counts = first.stats()["tasks"]
    assert len(hooks.bodies) == 3 and first.credits_left("demo") == 1000 - 30
    first.close()

    later = Receiver()
    second = reopen(first.data_dir, callback_transport=later.transport())
    again = client_of(second)
    assert {tid: again.get_task(tid) for tid in ids} == tasks
    assert {tid: raw_record(second, tid) for tid in ids} == records  # every field, byte for byte
    assert second.stats()["tasks"] == counts
    assert second.credits_left("demo") == 970 and again.get_credits() == 970
    assert second.create_count() == 4
    for file_url, data in files.items():
        assert again.fetch(file_url) == data, file_url
    assert again.get_download_url(link).startswith(second.public_base + "/files/dl/")
    assert second.wait_idle(30) and later.bodies == []  # settled callbacks are not sent again

    # The books go on from where they were.
    fifth = again.create_task("and once more", upload.download_url)
    assert second.credits_left("demo") == 960 and second.create_count() == 5
    assert [json.loads(line)["taskId"] for line in second.creates_log.read_text().splitlines()] == [*ids, fifth]
    with pytest.raises(NotFoundError):
        client_of(second).get_task("0" * 32)

    # Lifetimes are kept too: the link dies 20 minutes after it was made, the upload after 3 days.
    fake_clock.advance(21 * 60)
    assert second.transport().handle_request(httpx.Request("GET", link)).status_code == 410
    fake_clock.advance(3 * 24 * 3600)
    assert second.transport().handle_request(httpx.Request("GET", upload.download_url)).status_code == 404


def test_reads_write_nothing(make_emulator: Callable[..., Emulator], fake_clock: Any) -> None:
    emulator = make_emulator()
    client = client_of(emulator)
    task_id = client.create_task("make it night", emulator.samples()[0].url)
    fake_clock.advance(2.0)
    assert emulator.wait_idle(30) and client.get_task(task_id).status is TaskStatus.SUCCESS
    state = emulator.data_dir / "state"
    before = {p: p.stat().st_mtime_ns for p in state.rglob("*") if p.is_file()}
    for _ in range(20):
        client.get_task(task_id)
        client.get_credits()
    emulator.stats()
    assert {p: p.stat().st_mtime_ns for p in state.rglob("*") if p.is_file()} == before


def test_a_task_cut_off_mid_render_by_close_is_rendered_after_the_restart(
    make_emulator: Callable[..., Emulator], reopen: Callable[..., Emulator], fake_clock: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = media_module.render_result
    release = threading.Event()
    rendered: list[str] = []

    def slow(source: Path, target: Path, **kwargs: Any) -> None:
        release.wait(30)
        rendered.append(target.name)
        real(source, target, **kwargs)

    monkeypatch.setattr(media_module, "render_result", slow)
    first = make_emulator(workers=1)
    client = client_of(first)
    url = first.samples()[0].url
    ids = [client.create_task("first", url), client.create_task("second, still queued", url)]
    closing = threading.Thread(target=first.close)
    closing.start()
    time.sleep(1.0)  # by then close() has cancelled the queued render and waits for the running one
    release.set()
    closing.join(30)
    assert len(rendered) == 1
    assert stored_task(first.data_dir, ids[1])["render_done"] is None

    second = reopen(first.data_dir)
    assert second.wait_idle(30) and len(rendered) == 2  # only the cut-off one is rendered again
    fake_clock.advance(2.0)
    again = client_of(second)
    for task_id in ids:
        task = again.get_task(task_id)
        assert task.status is TaskStatus.SUCCESS and task.result_url is not None
        assert again.fetch(task.result_url)[4:8] == b"ftyp"


def test_a_finished_render_the_crash_did_not_record_is_not_rendered_again(
    make_emulator: Callable[..., Emulator], reopen: Callable[..., Emulator], fake_clock: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = make_emulator(processing_delay=30.0)
    task_id = client_of(first).create_task("make it night", first.samples()[0].url)
    assert first.wait_idle(30)
    first.close()
    # As if the process died between renaming the result into place and storing the task.
    path = first.data_dir / "state" / "tasks" / f"{task_id}.json"
    stored = json.loads(path.read_text())
    stored["data"]["render_done"] = None
    path.write_text(json.dumps(stored))
    result = first.data_dir / "results" / f"{task_id}.mp4"
    stamp = result.stat().st_mtime_ns
    monkeypatch.setattr(media_module, "render_result", lambda *a, **k: pytest.fail("rendered again"))

    second = reopen(first.data_dir, processing_delay=30.0)
    client = client_of(second)
    fake_clock.advance(29.0)
    assert client.get_task(task_id).status is TaskStatus.GENERATING  # due on the clock as usual
    fake_clock.advance(1.0)
    task = client.get_task(task_id)
    assert task.status is TaskStatus.SUCCESS and result.stat().st_mtime_ns == stamp
    assert task.created_at is not None and task.completed_at is not None
    assert (task.completed_at - task.created_at).total_seconds() == 30.0


@pytest.mark.parametrize(("plan", "final", "code"), [
    ("success", TaskStatus.SUCCESS, 200), ("fail", TaskStatus.GENERATE_FAILED, 500),
])
def test_a_callback_cut_off_by_close_is_delivered_after_the_restart(
    make_emulator: Callable[..., Emulator], reopen: Callable[..., Emulator], fake_clock: Any,
    plan: str, final: TaskStatus, code: int,
) -> None:
    entered, release = threading.Event(), threading.Event()

    def stuck(request: httpx.Request) -> httpx.Response:
        entered.set()
        release.wait(30)
        return httpx.Response(503)

    first = make_emulator(callback_transport=httpx.MockTransport(stuck), failure_rate=1.0 if plan == "fail" else 0.0)
    task_id = client_of(first).create_task("call me back", first.samples()[0].url, callback_url=HOOK)
    fake_clock.advance(2.0)
    assert entered.wait(30)
    closing = threading.Thread(target=first.close)
    closing.start()
    time.sleep(0.2)
    release.set()  # the attempt fails, and close() stops the retries (whenever it gets there)
    closing.join(30)
    stored = stored_task(first.data_dir, task_id)
    assert stored["callback_outcome"] is None  # cut off, not failed: never CALLBACK_FAILED for it
    assert stored["status"] == (int(TaskStatus.GENERATING) if plan == "success" else int(final))

    hooks = Receiver()
    second = reopen(first.data_dir, callback_transport=hooks.transport())
    assert second.wait_idle(30)
    assert [(body["code"], body["data"]["taskId"]) for body in hooks.bodies] == [(code, task_id)]
    assert client_of(second).get_task(task_id).status is final


# --- a crash -------------------------------------------------------------------------------------

CRASHING = """
import sys, threading
from pathlib import Path

import httpx

from luma import LumaClient
from luma.emulator import Emulator, EmulatorConfig, media

data_dir, stage = Path(sys.argv[1]), sys.argv[2]


def stuck_render(*args, **kwargs):
    print("rendering", flush=True)
    threading.Event().wait()


def stuck_callback(request):
    print("calling back", flush=True)
    threading.Event().wait()


if stage == "rendering":
    media.render_result = stuck_render
emulator = Emulator(EmulatorConfig(data_dir=data_dir, processing_delay=0.0),
                    callback_transport=httpx.MockTransport(stuck_callback))
client = LumaClient("demo", transport=emulator.transport())
print(client.create_task("survive a crash", emulator.samples()[0].url, callback_url=sys.argv[3]), flush=True)
threading.Event().wait()
"""


def crash_while(stage: str, data_dir: Path, sample_mp4: Path) -> str:
    """Run an emulator in a child process until ``stage`` ("rendering", "calling back"), then SIGKILL it.

    Returns the id of the task it created. Before the kill, checks that the dir is refused to
    an emulator of this process.
    """
    (data_dir / "samples").mkdir(parents=True)
    for spec in SAMPLES:
        shutil.copyfile(sample_mp4, data_dir / "samples" / f"{spec.slug}.mp4")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen([sys.executable, "-c", CRASHING, str(data_dir), stage, HOOK], cwd=REPO, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    watchdog = threading.Timer(60, child.kill)  # a stuck child fails the test instead of hanging it
    watchdog.start()
    try:
        assert child.stdout is not None
        seen: list[str] = []
        while not (stage in seen and any(TASK_ID.match(line) for line in seen)):
            line = child.stdout.readline()
            assert line, f"the child ended early: {child.stderr.read() if child.stderr else ''}"
            seen.append(line.strip())
        with pytest.raises(DataDirInUse, match=f"process {child.pid}"):
            Emulator(EmulatorConfig(data_dir=data_dir))
        child.send_signal(signal.SIGKILL)
        assert child.wait(10) == -signal.SIGKILL
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
            child.wait(10)
    return next(line for line in seen if TASK_ID.match(line))


@pytest.mark.parametrize("stage", ["rendering", "calling back"])
def test_a_crash_mid_task_is_recovered_by_the_next_emulator(
    tmp_path: Path, sample_mp4: Path, reopen: Callable[..., Emulator], stage: str
) -> None:
    data_dir = tmp_path / "crashed"
    task_id = crash_while(stage, data_dir, sample_mp4)
    assert stored_task(data_dir, task_id)["status"] == int(TaskStatus.GENERATING)

    hooks = Receiver()
    emulator = reopen(data_dir, clock=time.time, processing_delay=0.0, callback_transport=hooks.transport())
    assert emulator.wait_idle(60)
    client = client_of(emulator)
    task = client.get_task(task_id)
    assert task.status is TaskStatus.SUCCESS and task.result_url is not None
    assert client.fetch(task.result_url)[4:8] == b"ftyp"
    assert [body["data"]["taskId"] for body in hooks.bodies] == [task_id]
    assert emulator.credits_left("demo") == 990 and emulator.create_count() == 1
    assert not list((data_dir / "tmp").iterdir())  # the dead run's half-written files are gone


# --- one emulator per data dir ---------------------------------------------------------------------


def test_a_second_emulator_of_this_process_shares_the_dir_without_taking_over(
    make_emulator: Callable[..., Emulator], reopen: Callable[..., Emulator], fake_clock: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The dashboard makes one emulator per configuration, and two may name the same dir.
    first = make_emulator(processing_delay=30.0)
    old = client_of(first).create_task("made by the first", first.samples()[0].url)
    assert first.wait_idle(30)
    monkeypatch.setattr(media_module, "render_result", lambda *a, **k: pytest.fail("the second rendered"))
    second = reopen(first.data_dir, processing_delay=30.0)
    assert second.wait_idle(5)
    fake_clock.advance(30.0)
    # The first runs its task; the second reads it from disk, as the first stored it.
    assert client_of(second).get_task(old).status is TaskStatus.GENERATING
    assert client_of(first).get_task(old).status is TaskStatus.SUCCESS
    assert client_of(second).get_task(old).status is TaskStatus.SUCCESS
    monkeypatch.undo()
    new = client_of(second).create_task("made by the second", second.samples()[0].url)
    assert client_of(first).get_task(new).status is TaskStatus.GENERATING
    second.close()
    first.close()
    with Emulator(EmulatorConfig(data_dir=first.data_dir)) as third:
        assert third.create_count() == 2  # the lock was released with the last of them
