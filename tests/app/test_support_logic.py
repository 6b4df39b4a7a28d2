"""Unit tests of the dashboard's pure helpers (pages/_support): schedule, table, exports, ids, submit rule."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from luma.errors import (
    AuthenticationError,
    ConnectError,
    LumaError,
    MaintenanceError,
    MalformedResponseError,
    NotFoundError,
    RateLimitError,
    RequestTimeout,
    ServerError,
    ValidationError,
)
from luma.models import Task, TaskBatch, TaskRequest, TaskStatus
from pages._support import tasks
from pages._support.feedback import describe_error
from pages._support.submission import (
    CreateLedger,
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


def tracked(task_id=ID_A, *, status=None, age=0.0, now=T0, **kw):
    added = now - timedelta(seconds=age)
    task = None
    if status is not None:
        task = Task(task_id=task_id, status=status, created_at=added)
    return tasks.TrackedTask(task_id=task_id, added_at=added, task=task, **kw)


# --- schedule ------------------------------------------------------------------------------------


def test_poll_interval_starts_fast_and_reaches_the_recommended_30s():
    assert tasks.poll_interval(0) == 2.0
    assert tasks.poll_interval(5) == 2.0
    assert tasks.poll_interval(40) == 10.0
    assert tasks.poll_interval(119) == 20.0
    assert tasks.poll_interval(600) == 30.0
    values = [tasks.poll_interval(age) for age in range(0, 400, 3)]
    assert values == sorted(values), "the interval never shrinks as a task ages"


def test_poll_interval_respects_configured_bounds():
    assert tasks.poll_interval(0, lo=5, hi=60) == 5
    assert tasks.poll_interval(10_000, lo=5, hi=60) == 60
    assert tasks.poll_interval(10_000, lo=1, hi=8) == 8
    # hi below lo is treated as lo
    assert tasks.poll_interval(10_000, lo=10, hi=3) == 10


def test_refresh_interval_is_the_fastest_unfinished_task_and_none_when_all_final():
    items = [tracked(ID_A, status=TaskStatus.GENERATING, age=200), tracked(ID_B, status=TaskStatus.GENERATING, age=1)]
    assert tasks.refresh_interval(items, T0) == 2.0
    items = [tracked(ID_A, status=TaskStatus.SUCCESS, age=1), tracked(ID_B, status=TaskStatus.GENERATE_FAILED)]
    assert tasks.refresh_interval(items, T0) is None
    assert tasks.refresh_interval([], T0) is None
    # A task never read yet needs reading.
    assert tasks.refresh_interval([tracked(ID_A, age=500)], T0) == 30.0


def test_failed_reads_back_off_and_unfixable_ones_stop_polling():
    base = tracked(ID_A, status=TaskStatus.GENERATING, age=0)
    assert tasks.task_interval(base, T0) == 2.0
    flaky = tasks.TrackedTask(**{**base.__dict__, "failures": 2, "refresh_error": ServerError()})
    assert tasks.task_interval(flaky, T0) == 5.0  # 2 * 2**2 = 8, snapped down to a step
    gone = tasks.TrackedTask(**{**base.__dict__, "failures": 1, "refresh_error": NotFoundError()})
    assert not gone.needs_polling
    assert tasks.refresh_interval([gone], T0) is None


def test_due_task_ids_respects_each_tasks_interval():
    fresh = tracked(ID_A, status=TaskStatus.GENERATING, age=4, attempted_at=T0 - timedelta(seconds=1))
    old = tracked(ID_B, status=TaskStatus.GENERATING, age=600, attempted_at=T0 - timedelta(seconds=10))
    never = tracked(ID_C, age=1)
    done = tracked("d" * 32, status=TaskStatus.SUCCESS, age=5)
    assert tasks.due_task_ids([fresh, old, never, done], T0) == [ID_C]
    later = T0 + timedelta(seconds=2)
    assert tasks.due_task_ids([fresh, old, done], later) == [ID_A]
    much_later = T0 + timedelta(seconds=25)
    assert set(tasks.due_task_ids([fresh, old, done], much_later)) == {ID_A, ID_B}


def test_a_task_is_due_when_the_timer_set_at_its_last_read_fires():
    """The page timer runs at the pace chosen at the last read; a wake must read the task even
    when the task's age has since moved it to a slower step (else every step-up wastes a wake and
    doubles the gap before the user learns the task finished)."""
    read_at = T0 - timedelta(seconds=2)
    item = tracked(ID_A, status=TaskStatus.GENERATING, age=13.5, attempted_at=read_at)
    pace_then = tasks.task_interval(item, read_at)
    assert pace_then < tasks.task_interval(item, T0)  # the schedule stepped up meanwhile
    assert (T0 - read_at).total_seconds() >= pace_then
    assert tasks.due_task_ids([item], T0) == [ID_A]


# --- applying reads --------------------------------------------------------------------------------


def test_apply_batch_updates_marks_and_never_drops():
    items = {i: tracked(i, status=TaskStatus.GENERATING, age=3) for i in (ID_A, ID_B, ID_C)}
    done = Task(task_id=ID_A, status=TaskStatus.SUCCESS, result_urls=("https://x/r.mp4",))
    batch = TaskBatch(tasks={ID_A: done}, errors={ID_B: ServerError()})
    out = tasks.apply_batch(items, batch, T0)
    assert list(out) == [ID_A, ID_B, ID_C]
    assert out[ID_A].status is TaskStatus.SUCCESS and out[ID_A].refresh_error is None
    assert out[ID_B].status is TaskStatus.GENERATING, "a failed read keeps the last known status"
    assert isinstance(out[ID_B].refresh_error, ServerError) and out[ID_B].failures == 1
    assert out[ID_C] is items[ID_C]


def test_outage_only_when_every_read_failed_transiently():
    assert tasks.is_outage(TaskBatch(errors={ID_A: ConnectError("x"), ID_B: MaintenanceError()}))
    assert tasks.is_outage(TaskBatch(errors={ID_A: RateLimitError(), ID_B: RequestTimeout("t")}))
    assert not tasks.is_outage(TaskBatch(errors={ID_A: NotFoundError()}))
    ok = Task(task_id=ID_B, status=TaskStatus.GENERATING)
    assert not tasks.is_outage(TaskBatch(tasks={ID_B: ok}, errors={ID_A: ServerError()}))
    assert not tasks.is_outage(TaskBatch())


# --- table ---------------------------------------------------------------------------------------


def test_tasks_frame_has_readable_columns():
    request = TaskRequest(prompt="make it night", video_url="https://h/in.mp4")
    ok = Task(
        task_id=ID_A,
        status=TaskStatus.SUCCESS,
        created_at=T0 - timedelta(seconds=30),
        completed_at=T0 - timedelta(seconds=10),
        result_urls=("https://h/out.mp4",),
    )
    failed = Task(task_id=ID_B, status=TaskStatus.GENERATE_FAILED, error_code=501, error_message="boom")
    items = [
        tasks.TrackedTask(ID_A, added_at=T0 - timedelta(seconds=31), request=request, task=ok),
        tasks.TrackedTask(ID_B, added_at=T0 - timedelta(seconds=5), task=failed),
        tasks.TrackedTask(ID_C, added_at=T0 - timedelta(seconds=5), refresh_error=RateLimitError()),
        tracked("d" * 32, status=TaskStatus.GENERATING, age=5.4),
    ]
    frame = tasks.tasks_frame(items, T0)
    assert list(frame.columns) == list(tasks.FRAME_COLUMNS)
    assert list(frame["status"]) == ["Succeeded", "Generation failed", tasks.NOT_READ_LABEL, "Generating"]
    assert frame.loc[0, "prompt"] == "make it night"
    assert frame.loc[0, "duration"].total_seconds() == pytest.approx(20.0)
    assert frame.loc[0, "result"] == "https://h/out.mp4"
    assert frame.loc[0, "source"] == "https://h/in.mp4"
    assert "501: boom" in frame.loc[1, "error"]
    assert "Last refresh failed" in frame.loc[2, "error"]
    assert frame.loc[0, "error"] == "", "a task without an error shows nothing, not None"
    assert pd.isna(frame.loc[2, "duration"]), "a task never read has no duration"
    assert frame.loc[3, "duration"].total_seconds() == 5.0, "running tasks show whole seconds so far"
    assert str(frame["submitted"].dtype).startswith("datetime64")


def test_tasks_frame_without_links_shows_file_names():
    """Demo file URLs are dead links in the browser: the table shows their names instead."""
    request = TaskRequest(prompt="p", video_url="http://luma-emulator.local/files/samples/rolling-hills.mp4")
    ok = Task(task_id=ID_A, status=TaskStatus.SUCCESS, result_urls=("http://luma-emulator.local/files/results/x.mp4?t=1",))
    frame = tasks.tasks_frame([tasks.TrackedTask(ID_A, added_at=T0, request=request, task=ok)], T0, links=False)
    assert frame.loc[0, "source"] == "rolling-hills.mp4"
    assert frame.loc[0, "result"] == "x.mp4"
    assert not frame.astype(str).apply(lambda col: col.str.contains("luma-emulator.local")).any().any()


def test_tasks_frame_empty_keeps_columns():
    frame = tasks.tasks_frame([], T0)
    assert list(frame.columns) == list(tasks.FRAME_COLUMNS) and frame.empty


def test_status_counts():
    items = [tracked(ID_A, status=TaskStatus.SUCCESS), tracked(ID_B, status=TaskStatus.SUCCESS), tracked(ID_C)]
    assert tasks.status_counts(items) == {"Succeeded": 2, tasks.NOT_READ_LABEL: 1}


# --- ids and query params ------------------------------------------------------------------------


def test_parse_task_ids_sorts_valid_invalid_duplicates():
    text = f"{ID_A}\n  {ID_B.upper()} \nnot-an-id\n{ID_A}\n\n{'f' * 31}\n{ID_C}"
    parsed = tasks.parse_task_ids(text, existing=[ID_C])
    assert parsed.valid == (ID_A, ID_B)
    assert parsed.invalid == ("not-an-id", "f" * 31)
    assert parsed.duplicates == (ID_A, ID_C)


def test_query_param_round_trip_ignores_garbage():
    assert tasks.decode_task_ids(tasks.encode_task_ids([ID_A, ID_B])) == [ID_A, ID_B]
    assert tasks.decode_task_ids(f"{ID_A},<script>,{ID_A}") == [ID_A]
    assert tasks.decode_task_ids(None) == []
    assert tasks.decode_task_ids([ID_A, ID_B]) == [ID_A, ID_B]


# --- exports -------------------------------------------------------------------------------------


def _export_items():
    request = TaskRequest(prompt='say "hi", twice', video_url="https://h/in.mp4", watermark="wm")
    ok = Task(task_id=ID_A, status=TaskStatus.SUCCESS, created_at=T0, result_urls=("https://h/out.mp4",))
    return [
        tasks.TrackedTask(ID_A, added_at=T0, request=request, task=ok, source="upload", source_name="clip.mp4"),
        tasks.TrackedTask(ID_B, added_at=T0, source="imported"),
    ]


def test_export_csv_round_trips():
    rows = list(csv.DictReader(io.StringIO(tasks.export_csv(_export_items()).decode("utf-8"))))
    assert [r["task_id"] for r in rows] == [ID_A, ID_B]
    assert rows[0]["prompt"] == 'say "hi", twice'
    assert rows[0]["status"] == "Succeeded" and rows[0]["result_url"] == "https://h/out.mp4"
    assert rows[1]["status"] == tasks.NOT_READ_LABEL and rows[1]["prompt"] == ""
    assert set(rows[0]) == set(tasks.EXPORT_FIELDS)


def test_export_json_round_trips():
    data = json.loads(tasks.export_json(_export_items()))
    assert [t["task_id"] for t in data["tasks"]] == [ID_A, ID_B]
    assert data["tasks"][0]["watermark"] == "wm"
    assert data["tasks"][0]["submitted_at"] == "2026-01-01T12:00:00+00:00"
    assert data["tasks"][1]["status_code"] is None


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
    ledger, send = CreateLedger(), _Sender(hold=True)
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
    ledger = CreateLedger()
    assert ledger.create_once(KEY, "click-1", _Sender(result=ID_A)).task_id == ID_A
    again = _Sender(result=ID_B)
    assert ledger.create_once(KEY, "click-2", again) == CreateOutcome(task_id=ID_A)
    assert again.calls == 0
    # Another submission (new inputs, or "Start a new submission") is another key.
    assert ledger.create_once(("session:token", 1, "fingerprint"), "click-3", again).task_id == ID_B


def test_a_create_that_never_left_is_reported_to_its_run_and_sendable_by_the_next_click():
    ledger = CreateLedger()
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
    ledger = CreateLedger()
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
    ledger, send = CreateLedger(wait=0.05), _Sender(hold=True)
    first, _ = _in_thread(ledger, KEY, "click-1", send)
    assert send.started.wait(5)
    assert ledger.create_once(KEY, "click-1", send) == CreateOutcome(maybe_created=True)
    send.release.set()
    first.join(5)
    assert send.calls == 1


def test_an_interrupted_create_call_counts_as_maybe_created():
    ledger = CreateLedger()
    with pytest.raises(KeyboardInterrupt):
        ledger.create_once(KEY, "click-1", _Sender(error=KeyboardInterrupt()))
    assert ledger.create_once(KEY, "click-2", _Sender()).state == "unknown"


def test_old_entries_are_forgotten():
    now = [0.0]
    ledger = CreateLedger(keep=60.0, clock=lambda: now[0])
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
