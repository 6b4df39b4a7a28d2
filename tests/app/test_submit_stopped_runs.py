"""A click's run stopped at any yield point still ends in exactly one create, listed and shown.

Under ``runner.fastReruns`` (our config) a second click does not wait for the first click's run:
Streamlit starts a new run at once and the old one stops at its next *yield point*, which is
every ``st.*`` call and every session-state read or write. CI caught the result in a browser: a
run stopped between the create's answer and the line recording it left the request "sending"
forever, with a disabled button and (had the create gone out) a charged task on no list.

These tests stop the click's run at its n-th yield point, for every n, then do what the browser
does next (the second click's run, then an ordinary rerun) and check the user ends up with one
task, created once, on the list and on the page; and that an upload goes on when the run showing
its progress is stopped. The runs of one session that overlap in time are covered by the thread
tests of the ledger and the uploads in ``test_support_logic.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.runtime.scriptrunner_utils.exceptions import StopException
from streamlit.testing.v1.local_script_runner import LocalScriptRunner

from luma import CreateLimiter
from luma.emulator import media
from pages._support import runtime
from pages._support.submission import SubmitInputs, SubmitRequest

from .conftest import alerts, creates, make_app, shown

PROMPT = "make it a snowy night"


class Stopper:
    """Counts the script's yield points and raises ``StopException`` at the chosen one."""

    def __init__(self) -> None:
        self.at: int | None = None
        self.count = 0
        self.stopped = False

    def arm(self, at: int | None) -> None:
        self.at, self.count, self.stopped = at, 0, False


@pytest.fixture
def stopper(monkeypatch: pytest.MonkeyPatch) -> Iterator[Stopper]:
    stop = Stopper()
    original = LocalScriptRunner._maybe_handle_execution_control_request

    def yield_point(self: Any) -> None:
        if self._execing and threading.current_thread() is self._script_thread:
            stop.count += 1
            if stop.at is not None and stop.count == stop.at and not stop.stopped:
                stop.stopped = True
                raise StopException()
        original(self)

    monkeypatch.setattr(LocalScriptRunner, "_maybe_handle_execution_control_request", yield_point)
    # Nor does the client wait for create slots.
    monkeypatch.setattr(CreateLimiter, "shared", classmethod(lambda cls, api_key: CreateLimiter(limit=1_000_000)))
    yield stop


def ready_app() -> Any:
    # The sweep creates far more than the provider's 20 tasks per 10 s; the emulator allows it here.
    at = make_app(demo={"create_limit": 1_000_000}).run()
    at.text_area(key="submit_prompt").set_value(PROMPT).run()
    return at


def click(at: Any) -> Any:
    return at.button(key="submit_button").click().run()


def measure_a_click_run(stopper: Stopper, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """(yield points in a click's run when nothing stops it, the yield point the create follows)."""
    at = ready_app()
    create_at: list[int] = []
    create_once = runtime.create_once

    def spy(*args: Any) -> Any:
        create_at.append(stopper.count)
        return create_once(*args)

    with monkeypatch.context() as patch:
        patch.setattr(runtime, "create_once", spy)
        stopper.arm(None)
        at.button(key="submit_button").click().run()
    assert creates(data_dir) == 1 and len(create_at) == 1
    return stopper.count, create_at[0]


def test_the_click_run_has_the_yield_points_these_tests_stop_at(stopper: Stopper, hermetic, monkeypatch) -> None:
    total, create_at = measure_a_click_run(stopper, hermetic, monkeypatch)
    # The create comes late in the first pass (the page reruns after it): a sweep of a run whose
    # yield points collapsed, or of one with none after the create, would prove little.
    assert total >= 40 and 10 < create_at < total - 10, (total, create_at)


def test_a_click_run_stopped_at_any_yield_point_ends_in_one_listed_task(stopper: Stopper, hermetic, monkeypatch) -> None:
    total, create_at = measure_a_click_run(stopper, hermetic, monkeypatch)
    # Every yield point around the create, where a stop used to lose the answer, and a sample of
    # the rest (the frame, the layout, the rerun after the create): about 60 runs, not 300.
    points = [n for n in range(1, total + 1) if abs(n - create_at) <= 20 or n % 10 == 0]
    for n in points:
        before = creates(hermetic)
        at = ready_app()  # a new browser session (caches and the emulator stay, as on a server)
        # The browser keeps showing this page while the stopped run's output is cut short.
        button = at.button(key="submit_button")
        stopper.arm(n)
        button.click().run()  # the first click's run, stopped at its n-th yield point
        assert stopper.stopped, n
        stopper.arm(None)
        button.click().run()  # the second click's run
        at.run()  # and whatever rerun comes next
        where = f"stopped at yield point {n} of {total} (the create follows {create_at})"
        assert not at.exception, where
        assert creates(hermetic) - before == 1, where
        request = at.session_state[runtime.SUBMIT_REQUEST]
        assert request is not None and request.state == "done", (where, request and request.state)
        assert list(at.session_state[runtime.SESSION_TASKS]) == [request.task_id], where
        assert runtime.ledger().get(task_id=request.task_id) is not None, where
        assert at.code[0].value == request.task_id, where
        assert not at.button(key="submit_button").disabled, where
        assert not [a for a in alerts(at) if "wait for the answer" in a], (where, alerts(at))


def test_a_run_that_finds_the_create_being_sent_waits_for_that_answer(hermetic) -> None:
    """Another run of this session is mid-create (fast reruns overlap runs): wait, do not send."""
    at = ready_app()
    clip = next(c for c in runtime.samples() if c.slug == at.session_state["submit_sample"])
    request = SubmitRequest(SubmitInputs(PROMPT, clip.url, source="sample", source_name=clip.title), state="sending")
    at.session_state[runtime.SUBMIT_REQUEST] = request
    key = (f"test session id:{at.session_state[runtime.SUBMIT_SESSION]}", 0, request.fingerprint)
    task_id = "f" * 32
    sending, answer = threading.Event(), threading.Event()

    def send() -> str:
        sending.set()
        assert answer.wait(10)
        return task_id

    other = threading.Thread(target=runtime.create_once, args=(key, request.id, send))
    other.start()
    assert sending.wait(5)
    threading.Timer(0.5, answer.set).start()
    at.run()
    other.join(10)
    assert not at.exception
    assert creates(hermetic) == 0, "the waiting run sent nothing itself"
    assert (request.state, request.task_id) == ("done", task_id)
    assert task_id in at.session_state[runtime.SESSION_TASKS]
    assert at.code[0].value == task_id


def test_an_upload_outlives_a_run_stopped_while_showing_its_progress(stopper: Stopper, seam, hermetic, tmp_path, monkeypatch) -> None:
    """Any click or edit during an upload stops the run showing its progress bar: not the upload."""
    path = tmp_path / "clip.mp4"
    media.make_sample(media.SAMPLES[0].slug, path, width=64, height=36, seconds=1, fps=4)
    traffic = seam()
    release = threading.Event()

    def slow_upload(request: Any) -> Any:
        assert release.wait(10)
        return traffic.inner.handle_request(request)

    traffic.routes[("POST", "/api/file-stream-upload")] = slow_upload
    start_upload = runtime.start_upload
    calls: list[int] = []

    def stop_at_the_first_progress_update(*args: Any) -> Any:
        found = start_upload(*args)
        calls.append(1)
        if len(calls) == 1:
            stopper.arm(2)  # 1: the bar appears; 2: its first update, while the upload is still out
        return found

    monkeypatch.setattr(runtime, "start_upload", stop_at_the_first_progress_update)
    at = make_app().run()
    at.segmented_control(key="submit_source").set_value("upload").run()
    at.file_uploader(key="submit_file").upload("clip.mp4", path.read_bytes(), "video/mp4").run()
    assert stopper.stopped, "the run showing the progress was stopped"
    assert traffic.paths("POST").count("/api/file-stream-upload") == 1
    assert not any("Uploaded" in c.value for c in at.caption)

    threading.Timer(0.3, release.set).start()
    at.run()  # the next run follows the same upload to its end
    assert not at.exception
    assert traffic.paths("POST").count("/api/file-stream-upload") == 1, "the file was sent once"
    assert any("Uploaded **clip.mp4**" in shown(c.value) for c in at.caption)
    assert len(calls) == 2, "the second run found the first run's upload"
    at.run()
    assert traffic.paths("POST").count("/api/file-stream-upload") == 1


def test_a_first_run_stopped_anywhere_never_loses_the_list_in_the_address(stopper: Stopper, hermetic) -> None:
    """Opening a bookmarked ?tasks= link and clicking at once: the list must survive."""
    ids = ["a" * 32, "b" * 32]

    def opened() -> Any:
        at = make_app()
        at.query_params["tasks"] = ",".join(ids)
        return at

    mirrored_at: list[int] = []
    mirror = runtime.mirror_to_url

    def spy() -> None:
        mirrored_at.append(stopper.count)
        mirror()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runtime, "mirror_to_url", spy)
        stopper.arm(None)
        opened().run()
    total = stopper.count
    # Every yield point up to and through the address update, then a sample of the page's own.
    points = [n for n in range(1, total + 1) if n <= mirrored_at[0] + 5 or n % 10 == 0]
    for n in points:
        at = opened()
        stopper.arm(n)
        at.run()  # the first run, stopped at its n-th yield point
        assert stopper.stopped, n
        stopper.arm(None)
        at.run()
        where = f"stopped at yield point {n} of {total}"
        assert not at.exception, where
        assert list(at.session_state[runtime.SESSION_TASKS]) == ids, where
        assert at.query_params["tasks"] in (",".join(ids), ids), where
