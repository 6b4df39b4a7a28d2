"""The tracker's side: leases on due rows, guarded reads, failures, parking and nudges.

The lease test runs two real tracker processes against one database (Postgres and SQLite).
"""

from __future__ import annotations

import multiprocessing
import time
from datetime import UTC, datetime, timedelta

import pytest

from luma.models import Task, TaskRequest, TaskStatus
from studio.ledger import Ledger

INTERVAL = timedelta(seconds=30)


def task_id(n: int) -> str:
    return f"{n:032x}"


def _task(n: int, status: TaskStatus = TaskStatus.GENERATING, **fields) -> Task:
    return Task(task_id=task_id(n), status=status, **fields)


def _claim(ledger, clock, limit=10, owner="tracker-a", lease=60.0, mode=None):
    return ledger.claim_due(now=clock.now, limit=limit, lease_owner=owner, lease_seconds=lease, mode=mode)


# --- claiming ------------------------------------------------------------------------------------


def test_claims_take_due_rows_oldest_first_and_lease_them(ledger, clock, make_task):
    for n in range(5):
        make_task(n)
        clock.advance(1)
    claimed = _claim(ledger, clock, limit=3)
    assert [r.task_id for r in claimed] == [task_id(0), task_id(1), task_id(2)]
    assert all(r.lease_owner == "tracker-a" and r.lease_until == clock.now + timedelta(seconds=60) for r in claimed)
    # Leased rows are not handed to another tracker; the rest are.
    assert [r.task_id for r in _claim(ledger, clock, owner="tracker-b")] == [task_id(3), task_id(4)]
    assert _claim(ledger, clock, owner="tracker-c") == []


def test_a_lapsed_lease_is_claimable_again(ledger, clock, make_task):
    make_task(1)
    assert _claim(ledger, clock, lease=60)
    clock.advance(59)
    assert _claim(ledger, clock, owner="tracker-b") == []
    clock.advance(1)
    assert [r.lease_owner for r in _claim(ledger, clock, owner="tracker-b")] == ["tracker-b"]


def test_only_due_rows_of_the_requested_mode_are_claimed(ledger, clock, make_task):
    make_task(1, mode="live")
    make_task(2, mode="demo")
    ledger.record_read(task_id(1), _task(1), now=clock.now, next_check_at=clock.now + INTERVAL)
    assert [r.task_id for r in _claim(ledger, clock, mode="live")] == []
    assert [r.task_id for r in _claim(ledger, clock, mode="demo")] == [task_id(2)]
    clock.advance(30)
    assert [r.task_id for r in _claim(ledger, clock)] == [task_id(1)]
    assert _claim(ledger, clock, limit=0) == []


# --- reads ---------------------------------------------------------------------------------------


def test_a_read_records_status_results_and_times_and_ends_the_lease(ledger, clock, make_task):
    make_task(1)
    _claim(ledger, clock)
    created, done = clock.now - timedelta(minutes=5), clock.now - timedelta(seconds=5)
    task = _task(
        1,
        TaskStatus.SUCCESS,
        created_at=created,
        completed_at=done,
        result_urls=("https://cdn.example/out.mp4", "https://cdn.example/out2.mp4"),
        origin_urls=("https://cdn.example/in.mp4",),
    )
    assert ledger.record_read(task_id(1), task, now=clock.now, next_check_at=clock.now + INTERVAL)
    row = ledger.get(task_id=task_id(1))
    assert row.status is TaskStatus.SUCCESS and row.is_final and row.status_label == "Succeeded"
    assert row.result_urls == task.result_urls and row.result_url == task.result_urls[0]
    assert row.origin_url == "https://cdn.example/in.mp4"
    assert (row.provider_created_at, row.completed_at, row.checked_at) == (created, done, clock.now)
    assert row.submitted_at_best == created
    assert row.next_check_at is None  # a final task has nothing left to read
    assert row.lease_owner is None and row.lease_until is None


def test_a_late_generating_read_never_reopens_a_finished_task(ledger, clock, make_task):
    make_task(1)
    ledger.record_read(task_id(1), _task(1, TaskStatus.SUCCESS, result_urls=("u",)), now=clock.now, next_check_at=None)
    clock.advance(10)
    for late in (_task(1), _task(1, TaskStatus.GENERATE_FAILED, error_code=501, error_message="late")):
        assert not ledger.record_read(task_id(1), late, now=clock.now, next_check_at=clock.now + INTERVAL)
    row = ledger.get(task_id=task_id(1))
    assert row.status is TaskStatus.SUCCESS and row.result_urls == ("u",) and row.next_check_at is None


def test_a_read_older_than_the_last_one_is_ignored(ledger, clock, make_task):
    make_task(1)
    slow_started = clock.now
    clock.advance(5)
    ledger.record_read(task_id(1), _task(1), now=clock.now, next_check_at=clock.now + INTERVAL)
    clock.advance(5)
    stale = _task(1, TaskStatus.GENERATE_FAILED, error_code=501)
    assert not ledger.record_read(task_id(1), stale, now=clock.now, next_check_at=None, read_started=slow_started)
    assert ledger.get(task_id=task_id(1)).status is TaskStatus.GENERATING


def test_an_ignored_read_still_ends_its_own_lease(ledger, clock, make_task):
    make_task(1)
    ledger.record_read(task_id(1), _task(1, TaskStatus.SUCCESS), now=clock.now, next_check_at=None)
    with ledger.transaction(write=True) as conn:  # a lease left from before the callback's read
        conn.exec_driver_sql("UPDATE tasks SET lease_owner = 'tracker-a'")
    assert not ledger.record_read(task_id(1), _task(1), now=clock.now, next_check_at=None, lease_owner="tracker-b")
    assert ledger.get(task_id=task_id(1)).lease_owner == "tracker-a"
    ledger.record_read(task_id(1), _task(1), now=clock.now, next_check_at=None, lease_owner="tracker-a")
    assert ledger.get(task_id=task_id(1)).lease_owner is None


def test_a_nudge_during_a_read_keeps_the_earlier_check(ledger, clock, make_task):
    make_task(1)
    _claim(ledger, clock)
    started = clock.now
    clock.advance(2)
    assert ledger.nudge(task_id(1), clock.now)  # a callback came while the read was under way
    nudged = clock.now
    clock.advance(1)
    ledger.record_read(task_id(1), _task(1), now=clock.now, next_check_at=clock.now + INTERVAL, read_started=started)
    assert ledger.get(task_id=task_id(1)).next_check_at == nudged


def test_a_nudge_during_a_failed_read_keeps_the_earlier_check_too(ledger, clock, make_task):
    make_task(1)
    _claim(ledger, clock)
    started = clock.now
    clock.advance(2)
    ledger.nudge(task_id(1), clock.now)
    nudged = clock.now
    clock.advance(5)
    backoff = clock.now + timedelta(minutes=2)
    ledger.record_read_failure(
        task_id(1), message="Timed out.", retryable=True, now=clock.now, next_check_at=backoff, read_started=started
    )
    assert ledger.get(task_id=task_id(1)).next_check_at == nudged


def test_a_read_teaches_an_imported_task_its_request_but_never_overwrites_one(ledger, clock, make_task):
    make_task(1, prompt="mine")
    ledger.add_existing([task_id(2)], mode="live")
    echoed = TaskRequest(prompt="theirs", video_url="https://example.com/in.mp4", callback_url="https://cb.example/")
    for n in (1, 2):
        ledger.record_read(task_id(n), _task(n, request=echoed), now=clock.now, next_check_at=clock.now + INTERVAL)
    assert ledger.get(task_id=task_id(1)).prompt == "mine"
    imported = ledger.get(task_id=task_id(2))
    assert (imported.prompt, imported.video_url, imported.callback_url) == (
        "theirs",
        "https://example.com/in.mp4",
        "https://cb.example/",
    )


def test_a_read_of_an_unknown_task_changes_nothing(ledger, clock):
    assert not ledger.record_read(task_id(9), _task(9), now=clock.now, next_check_at=None)


# --- failures, parking, nudges -------------------------------------------------------------------


def test_read_failures_count_up_and_a_success_resets_them(ledger, clock, make_task):
    make_task(1)
    _claim(ledger, clock)
    for _ in range(2):
        assert ledger.record_read_failure(
            task_id(1), message="Timed out.", retryable=True, now=clock.now, next_check_at=clock.now + INTERVAL
        )
    row = ledger.get(task_id=task_id(1))
    assert (row.failures, row.read_error, row.read_error_retryable) == (2, "Timed out.", True)
    assert row.attempted_at == clock.now and row.checked_at is None and row.lease_owner is None
    ledger.record_read(task_id(1), _task(1), now=clock.now, next_check_at=clock.now + INTERVAL)
    row = ledger.get(task_id=task_id(1))
    assert (row.failures, row.read_error, row.read_error_retryable) == (0, None, None)


def test_a_failure_after_a_final_status_changes_nothing(ledger, clock, make_task):
    make_task(1)
    ledger.record_read(task_id(1), _task(1, TaskStatus.SUCCESS), now=clock.now, next_check_at=None)
    before = ledger.get(task_id=task_id(1))
    assert not ledger.record_read_failure(
        task_id(1), message="x", retryable=True, now=clock.now, next_check_at=clock.now
    )
    assert ledger.get(task_id=task_id(1)) == before


def test_parked_tasks_wait_for_their_key(ledger, clock, make_task):
    make_task(1, key_ref="key-1")
    make_task(2, key_ref="key-2")
    make_task(3, key_ref="key-1")
    ledger.record_read(task_id(3), _task(3, TaskStatus.SUCCESS), now=clock.now, next_check_at=None)
    assert ledger.park(task_id(1), "key") and ledger.park(task_id(2), "key")
    assert not ledger.park(task_id(3), "key")  # finished: nothing to wait for
    assert ledger.get(task_id=task_id(1)).waiting == "key"
    assert _claim(ledger, clock) == []
    clock.advance(5)
    assert ledger.unpark("key-1") == 1
    row = ledger.get(task_id=task_id(1))
    assert row.waiting is None and row.next_check_at == clock.now
    assert [r.task_id for r in _claim(ledger, clock)] == [task_id(1)]
    assert ledger.get(task_id=task_id(2)).waiting == "key"


def test_a_nudge_only_brings_an_open_task_forward(ledger, clock, make_task):
    make_task(1)
    make_task(2)
    ledger.record_read(task_id(1), _task(1), now=clock.now, next_check_at=clock.now + INTERVAL)
    ledger.record_read(task_id(2), _task(2, TaskStatus.SUCCESS), now=clock.now, next_check_at=None)
    clock.advance(3)
    assert ledger.nudge(task_id(1), clock.now)
    assert ledger.get(task_id=task_id(1)).next_check_at == clock.now
    assert not ledger.nudge(task_id(1), clock.now + timedelta(seconds=10))  # never pushed back
    assert not ledger.nudge(task_id(2), clock.now)
    assert not ledger.nudge(task_id(9), clock.now)


def test_next_due_counts_leases_and_modes(ledger, clock, make_task):
    assert ledger.next_due_at() is None
    make_task(1, mode="live")
    make_task(2, mode="demo")
    ledger.record_read(task_id(2), _task(2), now=clock.now, next_check_at=clock.now + INTERVAL)
    assert ledger.next_due_at() == clock.now and ledger.next_due_at().tzinfo is UTC
    assert ledger.next_due_at("demo") == clock.now + INTERVAL
    _claim(ledger, clock, lease=45, mode="live")
    assert ledger.next_due_at("live") == clock.now + timedelta(seconds=45)


def test_tracker_cycles_are_kept_per_process(ledger, clock):
    ledger.record_cycle("host:1", now=clock.now, lag_seconds=0.5, claimed=3)
    first = clock.now
    clock.advance(1)
    ledger.record_cycle("host:1", now=clock.now, lag_seconds=0.25, claimed=1, failed=1, mode="live")
    ledger.record_cycle("host:2", now=clock.now, lag_seconds=0.0, claimed=0)
    cycles = {c.process: c for c in ledger.cycles()}
    assert cycles["host:1"].started_at == first and cycles["host:1"].cycle_at == clock.now
    assert (cycles["host:1"].cycles, cycles["host:1"].claimed, cycles["host:1"].failed, cycles["host:1"].mode) == (
        2,
        1,
        1,
        "live",
    )
    assert cycles["host:2"].cycles == 1


# --- two tracker processes -----------------------------------------------------------------------

TASKS = 500
READ_INTERVAL = timedelta(minutes=10)  # far longer than the test: any second read is a double read


def _track(url: str, owner: str, start, results) -> None:
    claims: list[tuple[str, str | None]] = []
    reads: list[tuple[str, float]] = []
    start.wait(10)
    with Ledger(url) as ledger:
        while True:
            now = datetime.now(UTC)
            rows = ledger.claim_due(now=now, limit=10, lease_owner=owner, lease_seconds=60, mode="live")
            claims.extend((row.task_id, row.lease_owner) for row in rows)
            for row in rows:
                started = datetime.now(UTC)
                ledger.record_read(
                    row.task_id,
                    Task(task_id=row.task_id, status=TaskStatus.GENERATING),
                    now=datetime.now(UTC),
                    next_check_at=started + READ_INTERVAL,
                    read_started=started,
                    lease_owner=owner,
                )
                reads.append((row.task_id, time.time()))
            if not rows:
                due = ledger.next_due_at("live")
                if due is None or due > datetime.now(UTC) + timedelta(seconds=5):
                    break  # everything left is read (or leased by the other tracker)
                time.sleep(0.01)
    results.put((owner, claims, reads))


@pytest.mark.slow
def test_two_tracker_processes_read_every_task_once(ledger_url):
    with Ledger(ledger_url) as ledger:
        ledger.add_existing([task_id(n) for n in range(TASKS)], mode="live")
        ledger.add_existing([task_id(n) for n in range(TASKS, TASKS + 20)], mode="demo")
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    owners = ["tracker-a", "tracker-b"]
    children = [context.Process(target=_track, args=(ledger_url, owner, start, results)) for owner in owners]
    for child in children:
        child.start()
    start.set()
    outcomes = {owner: (claims, reads) for owner, claims, reads in (results.get(timeout=100) for _ in children)}
    for child in children:
        child.join(30)
        assert child.exitcode == 0

    claimed = {owner: [tid for tid, _ in claims] for owner, (claims, _) in outcomes.items()}
    # Every claim came back leased to the claimer, and no task was claimed by both.
    assert all(lease == owner for owner, (claims, _) in outcomes.items() for _, lease in claims)
    assert not set(claimed["tracker-a"]) & set(claimed["tracker-b"])
    assert all(claimed.values()), "both trackers should have taken part"
    # Every task read, none twice within one interval.
    read_ids = [tid for _, reads in outcomes.values() for tid, _ in reads]
    assert sorted(read_ids) == sorted(task_id(n) for n in range(TASKS))
    with Ledger(ledger_url) as ledger:
        rows = list(ledger.iter_rows(_live_query()))
        assert len(rows) == TASKS and all(r.checked_at is not None and r.lease_owner is None for r in rows)
        assert all(r.checked_at is None for r in ledger.iter_rows(_live_query(mode="demo")))


def _live_query(mode: str = "live"):
    from studio.ledger import TaskQuery

    return TaskQuery(mode=mode)
