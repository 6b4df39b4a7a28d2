"""The cross-process create limiter: the in-process limiter's semantics, kept in the database."""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import random
import time

import httpx
import pytest
import sqlalchemy as sa

from luma import ConnectError, LumaClient, RetryPolicy
from studio.ledger import Ledger, LedgerCreateLimiter, LedgerUnavailable
from studio.ledger.schema import create_slots


class Seconds:
    """A fake wall clock (epoch seconds) whose sleep moves it forward."""

    def __init__(self, now: float = 1_780_000_000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _never_sleep(seconds: float) -> None:
    raise AssertionError(f"the limiter waited {seconds} s where a slot should have been free")


@pytest.fixture
def seconds() -> Seconds:
    return Seconds()


def _limiter(ledger, seconds, *, key="key-1", limit=3, window=10.0, sleep=None, **options) -> LedgerCreateLimiter:
    return LedgerCreateLimiter(ledger, key, limit, window, clock=seconds, sleep=sleep or seconds.sleep, **options)


def test_a_slot_is_busy_in_flight_and_its_window_starts_with_the_answer(ledger, seconds):
    limiter = _limiter(ledger, seconds)
    slots = [limiter.hold() for _ in range(3)]
    assert all(slot.at == math.inf for slot in slots)
    assert limiter.wait_time() == limiter.window  # unknown until an answer comes: the window bounds it
    delay, none = limiter._reserve(in_flight=True)
    assert none is None and 0 < delay < 1  # looks again shortly
    seconds.now += 4
    slots[0].release()
    assert slots[0].at == seconds.now
    seconds.now += 1
    assert limiter.wait_time() == pytest.approx(9.0)
    seconds.now += 9
    assert limiter.wait_time() == 0.0
    assert limiter.hold().at == math.inf


def test_hold_waits_until_the_oldest_slot_leaves_the_window(ledger, seconds):
    limiter = _limiter(ledger, seconds)
    started = seconds.now
    for _ in range(3):
        assert limiter.acquire() == 0.0  # stamped at once
    limiter.hold().release()
    assert seconds.now - started == pytest.approx(10.0)
    assert sum(seconds.slept) == pytest.approx(10.0)


def test_an_unsent_create_gives_its_slot_back(ledger, seconds):
    limiter = _limiter(ledger, seconds, limit=2, sleep=_never_sleep)
    first, _second = limiter.hold(), limiter.hold()
    assert limiter.wait_time() > 0
    first.release(sent=False)
    assert limiter.wait_time() == 0.0
    limiter.hold()  # would raise if it had to wait
    with ledger.transaction() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(create_slots)).scalar_one() == 2


def test_releasing_twice_changes_nothing(ledger, seconds):
    limiter = _limiter(ledger, seconds)
    slot = limiter.hold()
    slot.release()
    answered = slot.at
    seconds.now += 3
    slot.release()
    assert slot.at == answered
    with ledger.transaction() as conn:
        settled = conn.execute(sa.select(create_slots.c.settled_at)).scalar_one()
    assert settled.timestamp() == pytest.approx(answered)


def test_processes_share_one_window_per_key(ledger, seconds):
    # Two limiter objects stand for two server processes; another key has a window of its own.
    here, there = _limiter(ledger, seconds, limit=2), _limiter(ledger, seconds, limit=2, sleep=_never_sleep)
    here.hold().release()
    there.hold().release()
    assert here.wait_time() == pytest.approx(10.0) and there.wait_time() == pytest.approx(10.0)
    _limiter(ledger, seconds, key="key-2", limit=2, sleep=_never_sleep).hold()


def test_a_slot_left_in_flight_by_a_crashed_process_stops_blocking_after_the_bound(ledger, seconds):
    crashed = _limiter(ledger, seconds, limit=1, stale_after=120.0)
    reserved = seconds.now
    crashed.hold()  # never released: its process died mid-create
    survivor = _limiter(ledger, seconds, limit=1, stale_after=120.0)
    seconds.now = reserved + 60
    assert survivor.wait_time() == survivor.window
    seconds.now = reserved + 120  # taken as answered now, so its window runs 10 s more
    assert survivor.wait_time() == pytest.approx(10.0)
    seconds.now = reserved + 130
    assert survivor.wait_time() == 0.0
    survivor.hold()


def test_a_database_failure_while_settling_never_hides_the_create_answer(ledger, seconds, monkeypatch):
    limiter = _limiter(ledger, seconds)
    slot = limiter.hold()

    def unavailable(**_):
        raise LedgerUnavailable("The task ledger could not be used.")

    monkeypatch.setattr(ledger, "transaction", unavailable)
    slot.release()  # logged, not raised: the caller's task id must reach the page
    assert slot.at == math.inf


def test_hold_async_takes_a_slot(ledger, seconds):
    limiter = _limiter(ledger, seconds)
    slot = asyncio.run(limiter.hold_async())
    assert slot.at == math.inf
    slot.release()
    assert slot.at == seconds.now


def test_the_limiter_never_stores_the_key_itself(ledger):
    with pytest.raises(ValueError):
        LedgerCreateLimiter(ledger, "")


def test_the_client_holds_a_ledger_slot_for_each_create(ledger, seconds):
    limiter = _limiter(ledger, seconds, limit=2, sleep=_never_sleep)
    answers = iter([httpx.Response(200, json={"code": 200, "msg": "success", "data": {"taskId": "a" * 32}})])

    def provider(request: httpx.Request) -> httpx.Response:
        with ledger.transaction() as conn:  # while the create is in flight its slot is taken
            assert conn.execute(sa.select(create_slots.c.settled_at)).scalars().all() == [None]
        answer = next(answers, None)
        if answer is None:
            raise httpx.ConnectError("refused", request=request)
        return answer

    with LumaClient(
        "k" * 32, transport=httpx.MockTransport(provider), create_limiter=limiter, retry=RetryPolicy.never()
    ) as client:
        assert client.create_task("make it snow", "https://example.com/in.mp4") == "a" * 32
        with ledger.transaction() as conn:
            settled = conn.execute(sa.select(create_slots.c.settled_at)).scalars().all()
        assert len(settled) == 1 and settled[0].timestamp() == pytest.approx(seconds.now)
        with ledger.transaction(write=True) as conn:
            conn.execute(sa.delete(create_slots))
        with pytest.raises(ConnectError):
            client.create_task("make it snow", "https://example.com/in.mp4")
    with ledger.transaction() as conn:  # never sent: the slot was given back
        assert conn.execute(sa.select(sa.func.count()).select_from(create_slots)).scalar_one() == 0


# --- three processes -----------------------------------------------------------------------------

LIMIT, WINDOW, HOLDS = 20, 2.0, 15


def _create_many(url: str, seed: int, start, results) -> None:
    rng = random.Random(seed)
    answered: list[float] = []
    start.wait(10)
    with Ledger(url) as ledger:
        limiter = LedgerCreateLimiter(ledger, "shared-key", LIMIT, WINDOW)
        for n in range(HOLDS):
            slot = limiter.hold()
            time.sleep(rng.uniform(0.0, 0.03))  # the create is in flight
            sent = n % 5 != 2  # some never left this machine: their slots are given back
            slot.release(sent=sent)
            if sent:
                answered.append(slot.at)
    results.put(answered)


@pytest.mark.slow
def test_three_processes_never_start_more_than_the_limit_in_any_window(ledger_url):
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    children = [context.Process(target=_create_many, args=(ledger_url, seed, start, results)) for seed in range(3)]
    for child in children:
        child.start()
    start.set()
    answered = sorted(at for _ in children for at in results.get(timeout=100))
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    assert len(answered) == 3 * 12
    # A slot's window starts at its answer: the 21st answer after any answer is a window later.
    # (The database keeps microseconds, hence the tolerance.)
    gaps = [answered[i + LIMIT] - answered[i] for i in range(len(answered) - LIMIT)]
    assert min(gaps) >= WINDOW - 1e-3
