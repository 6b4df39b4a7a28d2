"""The wrong-password throttle and the browser grants: plain Python, a fake clock."""

from __future__ import annotations

from studio.access import BrowserGrants, PasswordThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_wrong_password_doubles_this_clients_wait_up_to_the_cap():
    clock = Clock()
    throttle = PasswordThrottle(clock=clock, first_wait=1.0, max_wait=8.0)
    waits = []
    for _ in range(6):
        waits.append(throttle.failed("10.0.0.1"))
        clock.now += 100  # past the wait, but not long enough to be forgotten
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_a_client_must_sit_out_its_wait_and_others_are_not_held_up():
    clock = Clock()
    throttle = PasswordThrottle(clock=clock)
    throttle.failed("a")
    throttle.failed("a")
    assert throttle.wait_left("a") == 2.0
    assert throttle.wait_left("b") == 0.0
    clock.now += 1.5
    assert abs(throttle.wait_left("a") - 0.5) < 1e-9
    clock.now += 0.5
    assert throttle.wait_left("a") == 0.0


def test_success_starts_over_and_quiet_time_forgets():
    clock = Clock()
    throttle = PasswordThrottle(clock=clock, forget_after=900.0)
    for _ in range(3):
        throttle.failed("a")
    throttle.succeeded("a")
    assert throttle.failed("a") == 1.0
    clock.now += 901
    assert throttle.failed("a") == 1.0, "a quiet quarter hour forgets earlier failures"


def test_a_burst_from_many_addresses_slows_everyone():
    """Rotating addresses does not buy more guesses: past a burst, every address waits."""
    clock = Clock()
    throttle = PasswordThrottle(clock=clock, burst=5, burst_window=60.0, burst_wait=5.0)
    for n in range(5):
        throttle.failed(f"10.0.0.{n}")
        clock.now += 1
    assert throttle.wait_left("10.9.9.9") > 0, "a fresh address also waits in a burst"
    clock.now += 61
    assert throttle.wait_left("10.9.9.9") == 0.0


def test_grants_follow_live_sessions():
    live = {"s1", "s2"}
    grants = BrowserGrants(is_live=lambda sid: sid in live)
    assert not grants.allows("browser-a") and not grants.allows(None)
    grants.grant("browser-a", "s1")
    grants.grant("browser-a", "s2")
    assert grants.allows("browser-a") and not grants.allows("browser-b")
    live.discard("s1")
    assert grants.allows("browser-a"), "one live session is enough"
    live.discard("s2")
    assert not grants.allows("browser-a"), "no file outlives the browser's last session"
    grants.grant("browser-a", "s3")
    live.add("s3")
    grants.revoke("s3")
    assert not grants.allows("browser-a")
