"""Unit tests of the dashboard's pure helpers (pages/_support): the submit rule, one create per click, uploads."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest

from luma.errors import (
    AuthenticationError,
    ConnectError,
    LumaError,
    MalformedResponseError,
    RateLimitError,
    RequestTimeout,
    ServerError,
    ValidationError,
)
from pages._support.feedback import describe_error
from pages._support.submission import (
    CreateOnce,
    CreateOutcome,
    SubmitInputs,
    SubmitRequest,
    Uploads,
    decide_click,
    language_hint,
)

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
ID_A = "a" * 32
ID_B = "b" * 32
ID_C = "c" * 32


# --- submit rule ---------------------------------------------------------------------------------


def _inputs(prompt="make it night"):
    return SubmitInputs(prompt=prompt, video_url="https://h/in.mp4")


def test_first_click_records_and_in_flight_clicks_do_not():
    assert decide_click(None, _inputs()).record
    pending = SubmitRequest(_inputs())
    assert not decide_click(pending, _inputs()).record
    sending = SubmitRequest(_inputs(), state="sending")
    assert not decide_click(sending, _inputs()).record
    assert not decide_click(sending, _inputs("other")).record, "never while a create call is out"
    assert decide_click(pending, _inputs("other")).record, "an unsent pending request may be replaced"


def test_after_success_same_inputs_say_already_submitted():
    done = SubmitRequest(_inputs(), state="done", task_id=ID_A)
    decision = decide_click(done, _inputs())
    assert not decision.record and ID_A in (decision.notice or "")
    assert decide_click(done, _inputs("something else")).record


def test_after_timeout_same_inputs_need_confirmation():
    unknown = SubmitRequest(_inputs(), state="unknown")
    assert not decide_click(unknown, _inputs()).record
    assert decide_click(unknown, _inputs(), confirmed_resend=True).record
    assert decide_click(SubmitRequest(_inputs(), state="failed"), _inputs()).record
    assert decide_click(SubmitRequest(_inputs(), state="blocked"), _inputs()).record


# --- the create ledger: one create per submission, however many runs try ---------------------------

KEY = ("session:token", 0, "fingerprint")


class _Sender:
    """A create call that counts itself and, when told, holds until released."""

    def __init__(self, *, result="t" * 32, hold=False, error=None):
        self.calls = 0
        self.result, self.error = result, error
        self.started, self.release = threading.Event(), threading.Event()
        if not hold:
            self.release.set()

    def __call__(self):
        self.calls += 1
        self.started.set()
        assert self.release.wait(10)
        if self.error is not None:
            raise self.error
        return self.result


def _in_thread(ledger, key, request_id, send):
    box = {}
    thread = threading.Thread(target=lambda: box.setdefault("outcome", ledger.create_once(key, request_id, send)))
    thread.start()
    return thread, box


def test_two_runs_of_one_click_send_once_and_share_the_answer():
    ledger, send = CreateOnce(), _Sender(hold=True)
    first, box = _in_thread(ledger, KEY, "click-1", send)
    assert send.started.wait(5)
    second, box2 = _in_thread(ledger, KEY, "click-1", send)  # a newer run of the same click
    time.sleep(0.05)
    assert second.is_alive(), "the second run waits for the first run's answer"
    send.release.set()
    first.join(5), second.join(5)
    assert send.calls == 1
    assert box["outcome"] == box2["outcome"] == CreateOutcome(task_id="t" * 32)
    assert box["outcome"].state == "done"


def test_a_second_click_of_the_same_submission_gets_the_first_task():
    ledger = CreateOnce()
    assert ledger.create_once(KEY, "click-1", _Sender(result=ID_A)).task_id == ID_A
    again = _Sender(result=ID_B)
    assert ledger.create_once(KEY, "click-2", again) == CreateOutcome(task_id=ID_A)
    assert again.calls == 0
    # Another submission (new inputs, or "Start a new submission") is another key.
    assert ledger.create_once(("session:token", 1, "fingerprint"), "click-3", again).task_id == ID_B


def test_a_create_that_never_left_is_reported_to_its_run_and_sendable_by_the_next_click():
    ledger = CreateOnce()
    refused = _Sender(error=ConnectError("refused"))
    outcome = ledger.create_once(KEY, "click-1", refused)
    assert outcome.state == "failed" and isinstance(outcome.error, ConnectError)
    # A rerun of that click is told the same, not sent again behind the user's back.
    assert ledger.create_once(KEY, "click-1", refused) == outcome and refused.calls == 1
    # A new click is the user's decision to try again.
    assert ledger.create_once(KEY, "click-2", _Sender(result=ID_A)).task_id == ID_A


@pytest.mark.parametrize(
    "error",
    [RequestTimeout("slow"), MalformedResponseError("garbled"), ServerError(), ValueError("ours")],
    ids=["timeout", "malformed", "server-error", "unexpected"],
)
def test_a_create_that_may_exist_is_never_sent_again_by_another_click(error):
    ledger = CreateOnce()
    outcome = ledger.create_once(KEY, "click-1", _Sender(error=error))
    expected = "failed" if isinstance(error, ServerError) else "unknown"
    assert outcome.state == expected
    again = _Sender(result=ID_A)
    second = ledger.create_once(KEY, "click-2", again)
    if expected == "unknown":
        assert again.calls == 0 and second == outcome
    else:
        assert again.calls == 1 and second.task_id == ID_A, "the provider refused it: a new click may resend"


def test_outcomes_classify_errors_by_whether_the_request_left():
    assert CreateOutcome.of_error(ConnectError("x")).state == "failed"
    assert CreateOutcome.of_error(ValidationError()).state == "failed"
    assert CreateOutcome.of_error(RequestTimeout("x")).state == "unknown"
    assert CreateOutcome.of_error(MalformedResponseError("x")).state == "unknown"
    unexpected = CreateOutcome.of_error(KeyError("x"))
    assert unexpected.state == "unknown" and unexpected.error is None


def test_a_waiting_run_gives_up_with_unknown_not_a_resend():
    ledger, send = CreateOnce(wait=0.05), _Sender(hold=True)
    first, _ = _in_thread(ledger, KEY, "click-1", send)
    assert send.started.wait(5)
    assert ledger.create_once(KEY, "click-1", send) == CreateOutcome(maybe_created=True)
    send.release.set()
    first.join(5)
    assert send.calls == 1


def test_an_interrupted_create_call_counts_as_maybe_created():
    ledger = CreateOnce()
    with pytest.raises(KeyboardInterrupt):
        ledger.create_once(KEY, "click-1", _Sender(error=KeyboardInterrupt()))
    assert ledger.create_once(KEY, "click-2", _Sender()).state == "unknown"


def test_old_entries_are_forgotten():
    now = [0.0]
    ledger = CreateOnce(keep=60.0, clock=lambda: now[0])
    ledger.create_once(KEY, "click-1", _Sender(result=ID_A))
    now[0] = 61.0
    assert ledger.create_once(KEY, "click-2", _Sender(result=ID_B)).task_id == ID_B


def test_settle_records_the_outcome_on_the_request():
    request = SubmitRequest(_inputs(), state="sending")
    request.settle(CreateOutcome(task_id=ID_A))
    assert (request.state, request.task_id, request.in_flight) == ("done", ID_A, False)
    request.settle(CreateOutcome(error=RequestTimeout("x"), maybe_created=True))
    assert request.state == "unknown" and isinstance(request.error, RequestTimeout)


# --- uploads in the background --------------------------------------------------------------------


def _upload(release, *, error=None, calls=None):
    def send(progress):
        if calls is not None:
            calls.append(1)
        progress(50, 100)
        assert release.wait(10)
        progress(100, 100)
        if error is not None:
            raise error
        return "uploaded"

    return send


def test_an_upload_is_sent_once_per_key_and_followed_to_its_end():
    uploads, release, calls = Uploads(), threading.Event(), []
    upload = uploads.start(("s", "digest"), 100, _upload(release, calls=calls))
    assert uploads.start(("s", "digest"), 100, _upload(release, calls=calls)) is upload
    deadline = time.monotonic() + 5
    while upload.fraction < 0.5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert upload.fraction == 0.5 and not upload.done
    release.set()
    assert upload.wait(5) and upload.result == "uploaded" and upload.fraction == 1.0
    assert calls == [1]
    assert uploads.start(("s", "digest"), 100, _upload(release, calls=calls)) is upload, "finished: kept"
    assert uploads.start(("other session", "digest"), 100, _upload(release, calls=calls)).wait(5)
    assert calls == [1, 1]


def test_a_failed_upload_is_reported_once_then_may_be_tried_again():
    uploads, release = Uploads(), threading.Event()
    release.set()
    upload = uploads.start("k", 100, _upload(release, error=ConnectError("down")))
    assert upload.wait(5) and isinstance(upload.error, ConnectError) and upload.result is None
    assert uploads.start("k", 100, _upload(release)) is upload, "still there for the run that reports it"
    uploads.forget_failed("k", upload)
    retry = uploads.start("k", 100, _upload(release))
    assert retry is not upload and retry.wait(5) and retry.result == "uploaded"
    uploads.forget_failed("k", retry)
    assert uploads.start("k", 100, _upload(release)) is retry, "a success is never forgotten that way"


def test_an_unexpected_upload_failure_becomes_a_plain_error():
    uploads, release = Uploads(), threading.Event()
    release.set()
    upload = uploads.start("k", 100, _upload(release, error=KeyError("bug")))
    assert upload.wait(5) and isinstance(upload.error, LumaError) and "KeyError" in str(upload.error)


def test_finished_uploads_are_forgotten_after_a_while():
    now, release = [0.0], threading.Event()
    release.set()
    uploads = Uploads(keep=60.0, clock=lambda: now[0])
    upload = uploads.start("k", 100, _upload(release))
    assert upload.wait(5)
    now[0] = 61.0
    assert uploads.start("k", 100, _upload(release)) is not upload


@pytest.mark.parametrize(
    ("text", "english"),
    [
        ("Turn the street into a neon-lit night scene", True),
        ("", True),
        ("Make it snow, 4K, 24fps!!", True),
        ("Сделай ночь и добавь снег", False),
        ("把街道变成夜景", False),
        ("夜の街にしてください", False),
        ("Rends la scène très éclairée, à la façon d'un été", False),
        ("A café scene", True),
    ],
)
def test_language_hint(text, english):
    assert language_hint(text).looks_english is english


# --- error words ---------------------------------------------------------------------------------


def test_describe_error_titles_codes_and_hides_the_key():
    view = describe_error(AuthenticationError(provider_message="bad key sk-SECRET-123"), secret="sk-SECRET-123")
    assert view.title.endswith("(401)")
    assert "sk-SECRET-123" not in (view.detail or "") and "[hidden]" in (view.detail or "")
    assert view.next_step == AuthenticationError.next_step
    assert view.message and not view.message.endswith(view.next_step)
    assert describe_error(ValidationError()).title.endswith("(422)")
    assert "wait 7 s" in describe_error(RateLimitError(retry_after=7)).next_step
    plain = describe_error(KeyError("x"))
    assert plain.title == "Something went wrong" and "KeyError" not in plain.message
