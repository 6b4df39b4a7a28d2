"""The product on the ledger: the tracker reading through routes, write-ahead creates, sweeps.

Parametrized over SQLite and Postgres like the store tests. The provider is a scripted async
client (no network): each test says what every task reads as.
"""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from typing import Any

import pytest

from luma.errors import NotFoundError, RequestTimeout, ServerError, ValidationError
from luma.models import Task, TaskBatch, TaskStatus
from studio.creates import NotSent, SettleQueue, send_written
from studio.schedule import CALLBACK_FALLBACK, Schedule
from studio.tracker import Route, Tracker

from .conftest import task_id


class FakeProvider:
    """An async client stand-in: ``answers[task_id]`` is a TaskStatus or an error; reads are counted."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}
        self.reads: list[str] = []

    async def __aenter__(self) -> FakeProvider:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def get_tasks(self, ids: list[str]) -> TaskBatch:
        tasks, errors = {}, {}
        for tid in ids:
            self.reads.append(tid)
            answer = self.answers.get(tid, TaskStatus.GENERATING)
            if isinstance(answer, Exception):
                errors[tid] = answer
            else:
                tasks[tid] = Task(task_id=tid, status=answer, result_urls=("https://r/x.mp4",) if answer.succeeded else ())
        return TaskBatch(tasks=tasks, errors=errors)


def tracker_for(ledger, clock, provider, *, keys=("key-1",)) -> Tracker:
    schedule = Schedule(lo=10, hi=29)

    def route_for(row):
        if row.key_ref not in keys:
            return "key"
        return Route(key=("live", row.key_ref), client=lambda: provider, schedule=schedule)

    return Tracker(ledger, route_for, clock=lambda: clock.now, process_id="test-tracker")


def test_a_cycle_reads_what_is_due_writes_answers_and_schedules_the_next_read(ledger, clock, make_task):
    provider = FakeProvider()
    for n in range(3):
        make_task(n)
    provider.answers[task_id(1)] = TaskStatus.SUCCESS
    provider.answers[task_id(2)] = ServerError("down")
    tracker = tracker_for(ledger, clock, provider)
    report = tracker.cycle()
    assert (report.claimed, report.read, report.failed, report.finished) == (3, 2, 1, 1)
    rows = {r.task_id: r for r in (ledger.get(task_id=task_id(n)) for n in range(3))}
    assert rows[task_id(0)].status is TaskStatus.GENERATING and rows[task_id(0)].next_check_at > clock.now
    assert rows[task_id(1)].status is TaskStatus.SUCCESS and rows[task_id(1)].next_check_at is None
    assert rows[task_id(1)].result_url == "https://r/x.mp4"
    assert rows[task_id(2)].read_error and rows[task_id(2)].failures == 1 and rows[task_id(2)].next_check_at
    # Nothing is due right after: a second cycle reads nothing.
    assert tracker.cycle().claimed == 0
    assert len(provider.reads) == 3


def test_a_task_is_read_until_final_then_never_again(ledger, clock, make_task):
    provider = FakeProvider()
    make_task(0)
    tracker = tracker_for(ledger, clock, provider)
    for _ in range(4):
        tracker.cycle()
        clock.advance(30)
    provider.answers[task_id(0)] = TaskStatus.GENERATE_FAILED
    tracker.cycle()
    reads = len(provider.reads)
    for _ in range(5):
        clock.advance(60)
        tracker.cycle()
    assert len(provider.reads) == reads
    assert ledger.get(task_id=task_id(0)).status is TaskStatus.GENERATE_FAILED


def test_a_final_status_is_never_undone_by_a_later_answer(ledger, clock, make_task):
    provider = FakeProvider()
    make_task(0)
    provider.answers[task_id(0)] = TaskStatus.SUCCESS
    tracker = tracker_for(ledger, clock, provider)
    tracker.cycle()
    ledger.nudge(task_id(0), clock.now)  # a late callback brings it forward again
    provider.answers[task_id(0)] = TaskStatus.GENERATING
    tracker.cycle()
    assert ledger.get(task_id=task_id(0)).status is TaskStatus.SUCCESS


def test_a_callback_whose_read_still_says_generating_is_read_again_soon(ledger, clock, make_task):
    """The provider finalises a task only once its callback is answered: the read the callback
    triggers can still see "Generating". It must not then wait the 10-minute callback fallback."""
    provider = FakeProvider()
    make_task(0)
    with ledger.transaction(write=True) as conn:
        conn.exec_driver_sql("UPDATE tasks SET callback_token = 'hash'")
    tracker = tracker_for(ledger, clock, provider)
    tracker.cycle()
    waiting = ledger.get(task_id=task_id(0)).next_check_at - clock.now
    assert waiting >= timedelta(seconds=CALLBACK_FALLBACK), "a callback is coming: reads are a safety net"
    clock.advance(60)
    ledger.record_callback(task_id(0), clock.now)
    tracker.cycle()  # the callback's read, answered before the provider settled
    row = ledger.get(task_id=task_id(0))
    assert row.status is TaskStatus.GENERATING
    assert row.next_check_at - clock.now <= timedelta(seconds=10)
    clock.advance(10)
    provider.answers[task_id(0)] = TaskStatus.SUCCESS
    tracker.cycle()
    assert ledger.get(task_id=task_id(0)).status is TaskStatus.SUCCESS


def test_unfixable_read_errors_stop_reading_and_say_why(ledger, clock, make_task):
    provider = FakeProvider()
    make_task(0)
    provider.answers[task_id(0)] = NotFoundError("The provider does not know this task.")
    tracker = tracker_for(ledger, clock, provider)
    tracker.cycle()
    row = ledger.get(task_id=task_id(0))
    assert row.next_check_at is None and "does not know" in row.read_error and not row.read_error_retryable


def test_a_task_whose_key_is_not_here_is_parked_then_woken_by_the_key(ledger, clock, make_task):
    provider = FakeProvider()
    make_task(0, key_ref="session-key")
    tracker = tracker_for(ledger, clock, provider)
    assert tracker.cycle().parked == 1
    row = ledger.get(task_id=task_id(0))
    assert row.waiting == "key" and row.next_check_at is None
    assert ledger.unpark("session-key") == 1
    tracker = tracker_for(ledger, clock, provider, keys=("key-1", "session-key"))
    assert tracker.cycle().read == 1


def test_every_failed_read_on_the_providers_side_is_an_outage(ledger, clock, make_task):
    provider = FakeProvider()
    for n in range(2):
        make_task(n)
        provider.answers[task_id(n)] = ServerError("down")
    tracker = tracker_for(ledger, clock, provider)
    tracker.cycle()
    assert tracker.outage
    clock.advance(300)
    provider.answers = {}
    tracker.cycle()
    assert tracker.outage is None


FIELDS = {"mode": "live", "prompt": "make it snow", "video_url": "https://v/in.mp4", "key_ref": "key-1"}


def test_a_create_is_written_before_it_is_sent_and_settled_after(ledger, clock):
    seen: list[str] = []

    def create() -> str:
        row = ledger.get(request_key="click-1")
        seen.append(row.state)  # the row exists while the request is out
        return task_id(7)

    assert send_written(ledger, "click-1", dict(FIELDS), create) == task_id(7)
    assert seen == ["creating"]
    row = ledger.get(request_key="click-1")
    assert (row.state, row.task_id) == ("created", task_id(7)) and row.next_check_at is not None


@pytest.mark.parametrize(
    ("error", "state"),
    [(RequestTimeout("no answer"), "unknown"), (ValidationError("bad video"), "failed"), (KeyboardInterrupt(), "unknown")],
)
def test_a_failed_create_is_settled_failed_or_unknown(ledger, clock, error, state):
    def create() -> str:
        raise error

    with pytest.raises(type(error)):
        send_written(ledger, "click-1", dict(FIELDS), create)
    assert ledger.get(request_key="click-1").state == state


def test_one_request_key_is_sent_once_across_threads(ledger, clock):
    sends: list[int] = []
    gate = threading.Event()

    def create() -> str:
        sends.append(1)
        gate.wait(2)
        return task_id(9)

    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(send_written(ledger, "click-1", dict(FIELDS), create, poll=0.05)))
               for _ in range(4)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(10)
    assert sends == [1] and results == [task_id(9)] * 4


def test_nothing_is_sent_when_the_create_cannot_be_written(ledger, clock):
    ledger.close()
    broken = type("Broken", (), {"begin_create": lambda *a, **k: (_ for _ in ()).throw(RuntimeError("db down"))})()
    sent: list[int] = []
    with pytest.raises(NotSent):
        send_written(broken, "click-1", dict(FIELDS), lambda: sent.append(1) or task_id(1))
    assert sent == []


def test_an_answer_the_ledger_could_not_take_is_kept_and_written_later(ledger, clock, monkeypatch):
    queue = SettleQueue()
    real = ledger.settle_create
    failing = {"on": True}

    def flaky(*args: Any, **kwargs: Any) -> bool:
        if failing["on"]:
            raise RuntimeError("database hiccup")
        return real(*args, **kwargs)

    monkeypatch.setattr(ledger, "settle_create", flaky)
    monkeypatch.setattr("studio.creates.time.sleep", lambda s: None)
    assert send_written(ledger, "click-1", dict(FIELDS), lambda: task_id(3), queue=queue) == task_id(3)
    assert len(queue) == 1 and ledger.get(request_key="click-1").state == "creating"
    failing["on"] = False
    assert queue.flush(ledger) == 1 and len(queue) == 0
    assert ledger.get(request_key="click-1").task_id == task_id(3)


def test_a_create_left_by_a_dead_process_on_this_host_is_unknown_at_once(ledger, clock):
    ledger.begin_create("click-dead", sender="host-a:999999:abcd", **FIELDS)
    ledger.begin_create("click-live", sender=f"host-a:{os.getpid()}:abcd", **FIELDS)
    ledger.begin_create("click-far", sender="host-b:1:abcd", **FIELDS)
    swept = ledger.mark_orphaned_creates("host-a", lambda pid: pid == os.getpid())
    assert swept == 1
    states = {k: ledger.get(request_key=k).state for k in ("click-dead", "click-live", "click-far")}
    assert states == {"click-dead": "unknown", "click-live": "creating", "click-far": "creating"}
    # The age rule covers other hosts, and an unknown create is never sent again.
    clock.advance(91)
    assert ledger.mark_interrupted_creates(timedelta(seconds=90)) == 2
    assert ledger.get(request_key="click-dead").next_check_at is None




def test_the_cycles_bulk_write_keeps_a_nudge_made_during_the_read_and_ignores_older_reads(ledger, clock, make_task):
    make_task(0)
    make_task(1)
    first = Task(task_id=task_id(0), status=TaskStatus.GENERATING)
    ledger.record_reads([(first, clock.now, clock.now + timedelta(seconds=29))], now=clock.now)
    clock.advance(29)
    started = clock.now  # the next read goes out: the tracker holds the row while it reads
    assert task_id(0) in [r.task_id for r in ledger.claim_due(now=started, limit=2, lease_owner="t", lease_seconds=60)]
    clock.advance(1)
    ledger.nudge(task_id(0), clock.now)  # a callback arrived while the read was out
    later = clock.now + timedelta(seconds=29)
    generating = Task(task_id=task_id(0), status=TaskStatus.GENERATING)
    ledger.record_reads([(generating, started, later)], now=clock.now)
    assert ledger.get(task_id=task_id(0)).next_check_at == clock.now, "the nudge wins over the planned read"
    # A read of task 1 that started before its last successful read is not applied.
    ledger.record_reads([(Task(task_id=task_id(1), status=TaskStatus.SUCCESS), clock.now, None)], now=clock.now)
    old = Task(task_id=task_id(1), status=TaskStatus.GENERATING)
    ledger.record_reads([(old, started, later)], now=clock.now)
    assert ledger.get(task_id=task_id(1)).status is TaskStatus.SUCCESS
