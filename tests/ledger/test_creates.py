"""Write-ahead creates: one sender per request key, answers recorded once, interrupted creates
turned to "unknown" and never sent again, and ids found in the provider's logs adopted."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime, timedelta

import pytest

from studio.ledger import (
    INTERRUPTED_CREATE,
    NOT_CREATED,
    NOT_READ,
    OUTCOME_UNKNOWN,
    Ledger,
    LedgerConflict,
    LedgerError,
)


def task_id(n: int) -> str:
    return f"{n:032x}"


def _begin(ledger: Ledger, key: str, **changes):
    fields = {
        "mode": "live",
        "prompt": "make it snow",
        "video_url": "https://example.com/a.mp4",
        "owner": "alice",
        "key_ref": "key-1",
    }
    return ledger.begin_create(key, **(fields | changes))


def test_the_first_claim_is_mine_and_every_later_one_sees_the_same_row(ledger, clock):
    first = _begin(ledger, "click-1")
    assert first.mine and first.row.state == "creating" and first.row.status_label == "Creating"
    assert first.row.created_at == clock.now and first.row.created_at.tzinfo is UTC
    again = _begin(ledger, "click-1", prompt="something else", owner="mallory")
    assert not again.mine
    assert again.row == first.row  # the later call changed nothing


def test_threads_racing_on_one_key_get_exactly_one_sender(ledger):
    barrier, claims = threading.Barrier(8), []

    def claim() -> None:
        barrier.wait()
        claims.append(_begin(ledger, "click-race"))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(c.mine for c in claims) == 1
    assert len({c.row.id for c in claims}) == 1


def _claim_keys(url: str, keys: list[str], start, results) -> None:
    start.wait(10)
    with Ledger(url) as ledger:
        results.put([(key, _begin(ledger, key).mine) for key in keys])


def test_processes_racing_on_the_same_keys_get_exactly_one_sender_per_key(ledger_url):
    keys = [f"click-{n}" for n in range(40)]
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    children = [context.Process(target=_claim_keys, args=(ledger_url, keys, start, results)) for _ in range(2)]
    for child in children:
        child.start()
    start.set()
    outcomes = [pair for _ in children for pair in results.get(timeout=60)]
    for child in children:
        child.join(30)
    mine = {key: 0 for key in keys}
    for key, was_mine in outcomes:
        mine[key] += was_mine
    assert mine == dict.fromkeys(keys, 1)


def test_a_created_answer_schedules_the_first_read(ledger, clock):
    _begin(ledger, "click-1")
    clock.advance(3)
    assert ledger.settle_create("click-1", state="created", task_id=task_id(1))
    row = ledger.get(task_id=task_id(1))
    assert row.state == "created" and row.status_label == NOT_READ and not row.is_final
    assert row.submitted_at == clock.now and row.next_check_at == clock.now
    assert row.submitted_at_best == clock.now
    # The answer is recorded once: a second settle changes nothing.
    assert not ledger.settle_create("click-1", state="failed", create_error="late")
    assert ledger.get(request_key="click-1") == row


def test_a_failed_create_is_final_and_never_read(ledger):
    _begin(ledger, "click-1")
    assert ledger.settle_create("click-1", state="failed", create_error="The provider refused the video URL.")
    row = ledger.get(request_key="click-1")
    assert row.status_label == NOT_CREATED and row.is_final
    assert row.next_check_at is None and row.task_id is None
    assert row.create_error == "The provider refused the video URL."


def test_an_unknown_outcome_is_kept_with_its_reason(ledger):
    _begin(ledger, "click-1")
    assert ledger.settle_create("click-1", state="unknown", create_error="No answer within 30 s.")
    row = ledger.get(request_key="click-1")
    assert row.status_label == OUTCOME_UNKNOWN and not row.is_final and row.next_check_at is None


def test_settle_refuses_what_it_cannot_record(ledger):
    _begin(ledger, "click-1")
    with pytest.raises(ValueError):
        ledger.settle_create("click-1", state="created")
    with pytest.raises(ValueError):
        ledger.settle_create("click-1", state="creating")
    assert not ledger.settle_create("no-such-key", state="failed")


def test_an_answer_naming_an_id_already_listed_leaves_that_row_in_charge(ledger):
    ledger.add_existing([task_id(7)], mode="live")
    _begin(ledger, "click-1")
    assert ledger.settle_create("click-1", state="created", task_id=task_id(7))
    row = ledger.get(request_key="click-1")
    assert row.state == "unknown" and row.task_id is None and task_id(7) in row.create_error
    assert ledger.get(task_id=task_id(7)).request_key == f"import:{task_id(7)}"


def test_interrupted_creates_become_unknown_and_only_old_ones(ledger, clock):
    _begin(ledger, "old")
    _begin(ledger, "old-but-answered")
    ledger.settle_create("old-but-answered", state="created", task_id=task_id(1))
    clock.advance(600)
    _begin(ledger, "young")
    clock.advance(30)
    assert ledger.mark_interrupted_creates(timedelta(minutes=2)) == 1
    old = ledger.get(request_key="old")
    assert old.state == "unknown" and old.create_error == INTERRUPTED_CREATE and old.next_check_at is None
    assert ledger.get(request_key="young").state == "creating"
    assert ledger.get(request_key="old-but-answered").state == "created"
    # Nothing else is ever done to them: no due read, no new claim for the same key.
    assert ledger.claim_due(now=clock.now, limit=10, lease_owner="t", lease_seconds=30) == [
        ledger.get(task_id=task_id(1))
    ]
    assert not _begin(ledger, "old").mine
    # A cut-off time works the same as an age.
    assert ledger.mark_interrupted_creates(datetime.max.replace(tzinfo=UTC)) == 1


def test_a_late_answer_still_resolves_an_interrupted_create(ledger, clock):
    _begin(ledger, "slow")
    clock.advance(600)
    ledger.mark_interrupted_creates(timedelta(minutes=2))
    assert ledger.settle_create("slow", state="created", task_id=task_id(2))
    assert ledger.get(request_key="slow").state == "created"


def test_adopt_attaches_an_id_found_in_the_provider_logs(ledger, clock):
    _begin(ledger, "lost")
    ledger.settle_create("lost", state="unknown", create_error="No answer.")
    clock.advance(60)
    row = ledger.adopt("lost", f"  {task_id(3)} ")
    assert row.task_id == task_id(3) and row.state == "created" and row.next_check_at == clock.now
    assert row.create_error is None and row.status_label == NOT_READ
    assert ledger.adopt("lost", task_id(3)) == row  # the same id again: nothing to do


def test_adopt_refuses_an_id_on_another_row_or_a_second_id(ledger, make_task):
    make_task(1)
    _begin(ledger, "lost")
    ledger.settle_create("lost", state="unknown")
    with pytest.raises(LedgerConflict):
        ledger.adopt("lost", task_id(1))
    ledger.adopt("lost", task_id(2))
    with pytest.raises(LedgerConflict):
        ledger.adopt("lost", task_id(3))
    with pytest.raises(LedgerError):
        ledger.adopt("no-such-key", task_id(4))
    with pytest.raises(ValueError):
        ledger.adopt("lost", "not an id!")


def test_begin_create_refuses_an_unknown_mode(ledger):
    with pytest.raises(ValueError):
        _begin(ledger, "click-1", mode="staging")
