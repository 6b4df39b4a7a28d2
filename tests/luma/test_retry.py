"""Backoff, jitter, Retry-After, attempt and time bounds, and the create limiter, on fake time."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import TYPE_CHECKING

import httpx
import pytest

from luma._retry import CreateLimiter, RetryPolicy, is_retryable_read, is_unsent, parse_retry_after
from luma.errors import (
    AddressRefusedError,
    ConfigurationError,
    ConnectError,
    GenerationFailedError,
    LumaError,
    MalformedResponseError,
    RequestTimeout,
    TransportError,
    ValidationError,
    error_for_code,
)

if TYPE_CHECKING:
    from .conftest import FakeClock


def _policy(clock: FakeClock, **kw: object) -> RetryPolicy:
    kw.setdefault("random", lambda: 0.5)
    return RetryPolicy(clock=clock, sleep=clock.sleep, async_sleep=clock.async_sleep, **kw)  # type: ignore[arg-type]


class Flaky:
    """Fails with the given errors in turn, then returns "ok"."""

    def __init__(self, *errors: LumaError) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


# --- backoff and jitter ----------------------------------------------------------------------


def test_backoff_ceiling_doubles_then_caps() -> None:
    top = RetryPolicy(base_delay=0.5, max_delay=8.0, random=lambda: 1.0)
    assert [top.backoff(i) for i in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    bottom = RetryPolicy(base_delay=0.5, max_delay=8.0, random=lambda: 0.0)
    assert [bottom.backoff(i) for i in range(7)] == [0.0] * 7


def test_backoff_is_full_jitter_over_the_whole_interval() -> None:
    rng = random.Random(1234)
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0, random=rng.random)
    samples = [policy.backoff(2) for _ in range(2000)]  # ceiling 4.0
    assert all(0.0 <= s < 4.0 for s in samples)
    # Full jitter spreads over [0, ceiling): both ends are reached, the mean sits mid-way.
    assert min(samples) < 0.1 and max(samples) > 3.9
    assert 1.8 < sum(samples) / len(samples) < 2.2


def test_backoff_survives_huge_attempt_numbers() -> None:
    assert RetryPolicy(random=lambda: 1.0).backoff(10_000) == 8.0


# --- Retry-After -------------------------------------------------------------------------------

NOW = 1_769_670_760.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("3", 3.0),
        ("1.5", 1.5),
        (" 0 ", 0.0),
        ("-4", 0.0),
        ("100000", 60.0),
        (format_datetime(datetime.fromtimestamp(NOW + 30, tz=UTC), usegmt=True), 30.0),
        (format_datetime(datetime.fromtimestamp(NOW - 30, tz=UTC), usegmt=True), 0.0),
        (format_datetime(datetime.fromtimestamp(NOW + 9999, tz=UTC), usegmt=True), 60.0),
        ("Thu, 29 Jan 2026 07:12:50", 10.0),  # no zone given: read as UTC
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, now=NOW, cap=60.0) == expected


# --- the retry loop ----------------------------------------------------------------------------


def test_retries_transient_errors_until_success(fake_clock: FakeClock) -> None:
    policy = _policy(fake_clock)
    attempt = Flaky(error_for_code(500), RequestTimeout("slow"), MalformedResponseError("junk"))
    assert policy.run(attempt) == "ok"
    assert attempt.calls == 4
    # random() = 0.5: half of each ceiling 0.5, 1.0, 2.0.
    assert fake_clock.sleeps == [0.25, 0.5, 1.0]


def test_attempts_are_bounded(fake_clock: FakeClock) -> None:
    policy = _policy(fake_clock, max_attempts=4, max_total=1e9)
    attempt = Flaky(*[error_for_code(503) for _ in range(10)])
    with pytest.raises(LumaError) as caught:
        policy.run(attempt)
    assert attempt.calls == 4
    assert len(fake_clock.sleeps) == 3
    assert caught.value.attempts == 4


@pytest.mark.parametrize("code", [429, 455, 500, 502, 503, 504])
def test_retryable_codes(code: int, fake_clock: FakeClock) -> None:
    attempt = Flaky(error_for_code(code))
    assert _policy(fake_clock).run(attempt) == "ok"
    assert attempt.calls == 2


@pytest.mark.parametrize("code", [400, 401, 402, 404, 405, 422, 501, 505])
def test_definitive_codes_are_not_retried(code: int, fake_clock: FakeClock) -> None:
    attempt = Flaky(error_for_code(code))
    with pytest.raises(LumaError):
        _policy(fake_clock).run(attempt)
    assert attempt.calls == 1
    assert fake_clock.sleeps == []


def test_retry_after_is_honoured_and_capped(fake_clock: FakeClock) -> None:
    policy = _policy(fake_clock, retry_after_cap=10.0, max_total=100.0)
    attempt = Flaky(
        error_for_code(429, retry_after=7.0), error_for_code(503, retry_after=45.0), error_for_code(455, retry_after=0)
    )
    assert policy.run(attempt) == "ok"
    assert fake_clock.sleeps == [7.0, 10.0, 0.0]


def test_total_time_is_bounded(fake_clock: FakeClock) -> None:
    # Ceiling-high jitter: waits of 1, 2, 4 would reach 7 s; the budget of 5 s stops after 1 + 2.
    policy = _policy(fake_clock, base_delay=1.0, max_attempts=10, max_total=5.0, random=lambda: 1.0)
    attempt = Flaky(*[error_for_code(500) for _ in range(10)])
    with pytest.raises(LumaError):
        policy.run(attempt)
    assert fake_clock.sleeps == [1.0, 2.0]
    assert attempt.calls == 3
    assert sum(fake_clock.sleeps) <= 5.0


def test_time_spent_in_attempts_counts_against_the_budget(fake_clock: FakeClock) -> None:
    policy = _policy(fake_clock, max_total=10.0)

    def slow_failure() -> str:
        fake_clock.now += 9.9  # a request that hung almost the whole budget
        raise RequestTimeout("slow")

    with pytest.raises(RequestTimeout):
        policy.run(slow_failure)
    assert fake_clock.sleeps == []


def test_retry_after_beyond_budget_gives_up_at_once_and_keeps_the_hint(fake_clock: FakeClock) -> None:
    policy = _policy(fake_clock, max_total=30.0)
    attempt = Flaky(error_for_code(429, retry_after=45.0))
    with pytest.raises(LumaError) as caught:
        policy.run(attempt)
    assert attempt.calls == 1 and fake_clock.sleeps == []
    assert caught.value.retry_after == 45.0  # type: ignore[attr-defined]


def test_only_unsent_requests_are_retried_for_writes(fake_clock: FakeClock) -> None:
    policy = _policy(fake_clock)
    resent = Flaky(ConnectError("refused"))
    assert policy.run(resent, should_retry=is_unsent) == "ok"
    assert resent.calls == 2
    for error in (RequestTimeout("slow"), TransportError("dropped"), error_for_code(500), MalformedResponseError("x")):
        once = Flaky(error)
        with pytest.raises(LumaError):
            policy.run(once, should_retry=is_unsent)
        assert once.calls == 1


def test_predicates() -> None:
    assert is_retryable_read(ConnectError("x")) and is_retryable_read(MalformedResponseError("x"))
    assert not is_retryable_read(ValidationError()) and not is_retryable_read(GenerationFailedError())
    assert is_unsent(ConnectError("x")) and not is_unsent(RequestTimeout("x"))
    assert not is_unsent(error_for_code(500))


def test_a_refused_address_is_never_retried(fake_clock: FakeClock) -> None:
    # Unsent, but asking again cannot help: the address will not become public.
    refused = AddressRefusedError("internal.test resolves to a private network address")
    assert not refused.request_sent and not is_unsent(refused) and not is_retryable_read(refused)
    for predicate in (is_unsent, is_retryable_read):
        once = Flaky(refused)
        with pytest.raises(AddressRefusedError):
            _policy(fake_clock).run(once, should_retry=predicate)
        assert once.calls == 1 and fake_clock.sleeps == []


def test_never_policy_tries_once(fake_clock: FakeClock) -> None:
    attempt = Flaky(error_for_code(500))
    with pytest.raises(LumaError):
        RetryPolicy.never().run(attempt)
    assert attempt.calls == 1


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"max_attempts": 1.5}, {"base_delay": -1}, {"max_total": float("nan")}],
    ids=repr,
)
def test_policy_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_non_luma_errors_are_not_swallowed(fake_clock: FakeClock) -> None:
    def bug() -> str:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        _policy(fake_clock).run(bug)
    assert fake_clock.sleeps == []


@pytest.mark.anyio
async def test_async_loop_uses_the_async_sleep(fake_clock: FakeClock) -> None:
    policy = _policy(fake_clock)
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise error_for_code(429, retry_after=2.0)
        return "ok"

    assert await policy.run_async(attempt) == "ok"
    assert calls == 3 and fake_clock.sleeps == [2.0, 2.0]


@pytest.mark.anyio
async def test_async_loop_bounds_attempts(fake_clock: FakeClock) -> None:
    policy = _policy(fake_clock, max_attempts=3)
    calls = 0

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        raise error_for_code(500)

    with pytest.raises(LumaError):
        await policy.run_async(attempt)
    assert calls == 3 and len(fake_clock.sleeps) == 2


# --- the create limiter ------------------------------------------------------------------------


def _limiter(clock: FakeClock, **kw: object) -> CreateLimiter:
    return CreateLimiter(clock=clock, sleep=clock.sleep, async_sleep=clock.async_sleep, **kw)  # type: ignore[arg-type]


def test_twenty_first_create_waits_until_the_window_frees(fake_clock: FakeClock) -> None:
    limiter = _limiter(fake_clock)
    start = fake_clock.now
    for _ in range(20):
        assert limiter.acquire() == 0.0
    assert fake_clock.sleeps == []
    assert limiter.wait_time() == pytest.approx(10.0)
    assert limiter.acquire() == pytest.approx(10.0)
    assert fake_clock.now == pytest.approx(start + 10.0)


def test_window_slides(fake_clock: FakeClock) -> None:
    limiter = _limiter(fake_clock)
    start = fake_clock.now
    for _ in range(20):  # one every 0.1 s
        limiter.acquire()
        fake_clock.now += 0.1
    fake_clock.now = start + 5.0
    limiter.acquire()  # 21st: waits for the first slot (start + 10.0)
    assert fake_clock.now == pytest.approx(start + 10.0)
    limiter.acquire()  # 22nd: waits for the second slot (start + 10.1)
    assert fake_clock.now == pytest.approx(start + 10.1)
    fake_clock.now = start + 30.0
    sleeps_before = len(fake_clock.sleeps)
    for _ in range(20):  # all slots long free again
        limiter.acquire()
    assert len(fake_clock.sleeps) == sleeps_before


def test_custom_limit(fake_clock: FakeClock) -> None:
    limiter = _limiter(fake_clock, limit=2, window=1.0)
    limiter.acquire()
    limiter.acquire()
    assert limiter.acquire() == pytest.approx(1.0)


@pytest.mark.anyio
async def test_async_acquire_waits_on_the_async_sleep(fake_clock: FakeClock) -> None:
    limiter = _limiter(fake_clock)
    for _ in range(20):
        assert await limiter.acquire_async() == 0.0
    assert await limiter.acquire_async() == pytest.approx(10.0)
    assert fake_clock.sleeps == [pytest.approx(10.0)]


def test_limiter_is_thread_safe(fake_clock: FakeClock) -> None:
    limiter = _limiter(fake_clock)
    barrier = threading.Barrier(20)

    def take() -> None:
        barrier.wait(timeout=10)
        limiter.acquire()

    threads = [threading.Thread(target=take) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert fake_clock.sleeps == []  # exactly 20 slots, none double-counted
    assert limiter.wait_time() == pytest.approx(10.0)


def test_shared_limiter_is_one_per_key_and_never_holds_the_key() -> None:
    key = "sk-CANARY-limiter-55aa"
    first = CreateLimiter.shared(key)
    assert CreateLimiter.shared(key) is first
    assert CreateLimiter.shared(key + "x") is not first
    assert CreateLimiter.shared(None) is CreateLimiter.shared(None)
    assert key not in repr(first)
    assert all(key not in k for k in CreateLimiter._registry)
    assert all(key not in repr(v) for v in vars(first).values())


@pytest.mark.parametrize("kwargs", [{"limit": 0}, {"window": 0}, {"window": -1.0}], ids=repr)
def test_limiter_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        CreateLimiter(**kwargs)  # type: ignore[arg-type]


# --- held slots: a create's window starts when its answer is back ----------------------------------


def _held_limiter(clock: FakeClock, limit: int = 1) -> CreateLimiter:
    return CreateLimiter(limit, 10.0, clock=clock, sleep=clock.sleep, async_sleep=clock.async_sleep)


def test_held_slot_window_starts_when_the_answer_arrives(fake_clock: FakeClock) -> None:
    limiter = _held_limiter(fake_clock)
    slot = limiter.hold()
    fake_clock.now += 4.0  # the provider takes 4 s to answer; it counted the create on arrival
    slot.release()
    assert limiter.wait_time() == pytest.approx(10.0)  # not 6: the window runs from the answer
    fake_clock.now += 9.9
    assert limiter.wait_time() > 0
    fake_clock.now += 0.1
    assert limiter.wait_time() == 0.0


def test_in_flight_slot_blocks_the_next_create_until_released(fake_clock: FakeClock) -> None:
    limiter = _held_limiter(fake_clock)
    limiter.hold()
    # The in-flight create's window has not started, so the wait is bounded by a whole window.
    assert limiter.wait_time() == pytest.approx(10.0)


def test_unsent_slot_is_given_back(fake_clock: FakeClock) -> None:
    limiter = _held_limiter(fake_clock)
    slot = limiter.hold()
    slot.release(sent=False)
    assert limiter.wait_time() == 0.0
    slot.release(sent=False)  # twice changes nothing
    assert limiter.wait_time() == 0.0


def test_a_slow_create_pushes_the_next_one_a_full_window_past_its_answer(fake_clock: FakeClock) -> None:
    """The soak's bug: stamping at send let a create through that the provider refused with 429."""
    from luma import LumaClient
    from luma._constants import PATH_CREATE

    from .conftest import TASK_ID, MockApi

    api = MockApi(fake_clock)

    def slow_create(request: httpx.Request) -> httpx.Response:
        fake_clock.now += 3.0
        return MockApi.ok({"taskId": TASK_ID})(request)

    api.on(PATH_CREATE, slow_create)
    limiter = _held_limiter(fake_clock)
    with LumaClient("k", transport=api.transport(), create_limiter=limiter) as client:
        client.create_task("p", "https://example.com/video.mp4")
        client.create_task("p", "https://example.com/video.mp4")
    first_answer = api.times[0] + 3.0
    assert api.times[1] >= first_answer + 10.0
