"""Variant sets in the ledger, the dispatcher that sends them, and spending under a lock."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from luma.errors import ValidationError
from luma.models import Task, TaskStatus
from studio.dispatcher import CreateRoute, Dispatcher
from studio.ledger import Ledger, OverBudget
from studio.sets import Budget, SetInput, admit, plan
from studio.tracker import utcnow

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ["make it snow", "neon night", "watercolour"]
INPUTS = [SetInput(url="https://example.com/a.mp4", name="a"), SetInput(url="https://example.com/b.mp4", name="b")]


def write_set(ledger: Ledger, *, prompts: list[str] = PROMPTS, inputs: list[SetInput] = INPUTS, owner: str = "alice",
              set_id: str | None = None, price: int = 10, check: Any = None) -> str:
    set_id = set_id or uuid.uuid4().hex
    items = plan(prompts, inputs)
    ledger.create_set(
        set_id, items, mode="live", name=None, owner=owner, owner_name=owner.title(), key_ref="key-1",
        api_base=None, prompts=prompts, inputs=[{"url": i.url, "name": i.name} for i in inputs],
        crossed=len(prompts) > 1 and len(inputs) > 1, cost_per_task=price, admit=check,
    )
    return set_id


class Sender:
    """A create route that records each create it sends (thread-safe) and answers a fresh id."""

    def __init__(self, fail: set[str] | None = None) -> None:
        self.sent: list[str] = []
        self.fail = fail or set()
        self.lock = threading.Lock()

    def route(self, row: Any) -> CreateRoute:
        def create(take: Any) -> str:
            with self.lock:
                self.sent.append(take.request_key)
            if take.prompt in self.fail:
                raise ValidationError("The prompt was refused.", code=422)
            return uuid.uuid4().hex

        return CreateRoute(create=create, first_check=utcnow)


def test_a_set_is_written_whole_and_queued_once(ledger):
    set_id = write_set(ledger)
    again = ledger.create_set(set_id, plan(PROMPTS, INPUTS), mode="live", name=None, owner="alice", owner_name=None,
                              key_ref="key-1", api_base=None, prompts=PROMPTS, inputs=[], crossed=True, cost_per_task=10)
    assert again == 0, "the same click writes nothing the second time"
    rows = ledger.set_rows(set_id)
    assert [r.state for r in rows] == ["queued"] * 6 and [r.status_label for r in rows] == ["Queued"] * 6
    assert [(r.prompt_index, r.input_index) for r in rows] == [(p, i) for p in range(3) for i in range(2)]
    chosen = ledger.get_set(set_id)
    assert chosen is not None and chosen.prompts == tuple(PROMPTS) and chosen.crossed and chosen.title == "3 prompt(s) x 2 input(s)"
    assert [s.id for s in ledger.sets("live", owner="alice")] == [set_id] and ledger.sets("live", owner="bob") == []


def test_the_dispatcher_sends_each_take_once_and_settles_it(ledger):
    set_id = write_set(ledger)
    sender = Sender(fail={"neon night"})
    dispatcher = Dispatcher(ledger, sender.route, process_id="p1")
    assert dispatcher.run_once(limit=50) == 6
    assert dispatcher.run_once(limit=50) == 0
    assert sorted(sender.sent) == sorted(f"set:{set_id}:{n}" for n in range(6))
    rows = ledger.set_rows(set_id)
    assert [r.state for r in rows] == ["created", "created", "failed", "failed", "created", "created"]
    refused = rows[2]
    assert refused.status_label == "Not created" and "refused" in (refused.create_error or "")
    assert all(r.task_id for r in rows if r.state == "created")


def test_a_cancelled_take_is_never_sent(ledger):
    set_id = write_set(ledger)
    sender = Sender()
    dispatcher = Dispatcher(ledger, sender.route, process_id="p1")
    dispatcher.run_once(limit=2)
    assert ledger.cancel_queued(set_id=set_id) == 4
    assert ledger.cancel_queued(set_id=set_id) == 0
    assert dispatcher.run_once(limit=50) == 0
    assert len(sender.sent) == 2
    assert [r.status_label for r in ledger.set_rows(set_id)][2:] == ["Cancelled"] * 4


def test_a_take_cancelled_after_its_lease_is_not_sent(ledger):
    set_id = write_set(ledger, prompts=["one"], inputs=INPUTS[:1])
    claimed = ledger.claim_queued(now=utcnow(), limit=5, lease_owner="p1", lease_seconds=60)
    assert len(claimed) == 1
    ledger.cancel_queued(set_id=set_id)
    assert not ledger.start_queued(claimed[0].request_key, sender="p1")


def test_leases_split_the_queue_and_expire(ledger):
    write_set(ledger)
    now = utcnow()
    first = ledger.claim_queued(now=now, limit=4, lease_owner="p1", lease_seconds=60)
    second = ledger.claim_queued(now=now, limit=4, lease_owner="p2", lease_seconds=60)
    assert len(first) == 4 and len(second) == 2
    assert not {r.request_key for r in first} & {r.request_key for r in second}
    assert ledger.claim_queued(now=now, limit=4, lease_owner="p3", lease_seconds=60) == []
    # A process that died holding a lease: its takes go to another after the lease runs out.
    later = ledger.claim_queued(now=now + timedelta(seconds=61), limit=10, lease_owner="p3", lease_seconds=60)
    assert len(later) == 6
    ledger.release_queued(later[0].request_key)
    assert len(ledger.claim_queued(now=now + timedelta(seconds=62), limit=10, lease_owner="p4", lease_seconds=60)) == 1


def test_a_take_whose_key_is_elsewhere_is_given_back(ledger):
    set_id = write_set(ledger, prompts=["one"], inputs=INPUTS[:1])
    dispatcher = Dispatcher(ledger, lambda row: "key", process_id="p1")
    assert dispatcher.run_once() == 0
    assert ledger.set_rows(set_id)[0].state == "queued"
    assert len(ledger.claim_queued(now=utcnow(), limit=5, lease_owner="p2", lease_seconds=60)) == 1


def test_two_dispatcher_threads_send_each_take_once(ledger):
    set_id = write_set(ledger, prompts=[f"prompt {n}" for n in range(10)], inputs=INPUTS)
    sender = Sender()
    dispatchers = [Dispatcher(ledger, sender.route, process_id=f"p{n}") for n in range(2)]
    threads = [threading.Thread(target=lambda d=d: [d.run_once(limit=3) for _ in range(20)]) for d in dispatchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(sender.sent) == sorted(f"set:{set_id}:{n}" for n in range(20))
    assert all(r.state == "created" for r in ledger.set_rows(set_id))


WORKER = textwrap.dedent(
    """
    import sys, uuid
    from studio.dispatcher import CreateRoute, Dispatcher
    from studio.ledger import Ledger
    from studio.tracker import utcnow

    url, log, name = sys.argv[1:4]

    def route(row):
        def create(take):
            with open(log, "a") as out:
                out.write(take.request_key + "\\n")
            return uuid.uuid4().hex
        return CreateRoute(create=create, first_check=utcnow)

    with Ledger(url) as ledger:
        dispatcher = Dispatcher(ledger, route, process_id=name)
        idle = 0
        while idle < 3:
            idle = idle + 1 if dispatcher.run_once(limit=2) == 0 else 0
    """
)


def test_several_server_processes_send_each_take_once(ledger, ledger_url, tmp_path):
    set_id = write_set(ledger, prompts=[f"prompt {n}" for n in range(15)], inputs=INPUTS)
    script, log = tmp_path / "worker.py", tmp_path / "sent.log"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen([sys.executable, str(script), ledger_url, str(log), f"proc-{n}"], env=env) for n in range(3)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0]
    sent = log.read_text().split()
    assert sorted(sent) == sorted(f"set:{set_id}:{n}" for n in range(30)), "each take sent exactly once"
    assert all(r.state == "created" for r in ledger.set_rows(set_id))


def test_spent_counts_charged_and_queued_takes_only(ledger, clock):
    set_id = write_set(ledger)
    assert ledger.spent("live", since=clock.now - timedelta(days=1)) == 60, "queued takes are committed"
    rows = ledger.set_rows(set_id)
    ledger.cancel_queued(request_key=rows[0].request_key)
    assert ledger.spent("live", since=clock.now - timedelta(days=1)) == 50
    Dispatcher(ledger, Sender(fail={"neon night"}).route, process_id="p1").run_once(limit=50)
    assert ledger.spent("live", since=clock.now - timedelta(days=1)) == 30, "refused creates cost nothing"
    # A task the provider reports as never started (status 2) is not charged.
    created = [r for r in ledger.set_rows(set_id) if r.state == "created"]
    ledger.record_read(created[0].task_id, Task(task_id=created[0].task_id, status=TaskStatus.CREATE_TASK_FAILED),
                       now=clock.now, next_check_at=None)
    assert ledger.spent("live", since=clock.now - timedelta(days=1)) == 20
    assert ledger.spent("live", since=clock.now - timedelta(days=1), owner="bob") == 0


def test_a_set_over_budget_is_refused_whole(ledger, clock):
    budget = Budget(daily=100)
    write_set(ledger, check=admit(60, budget, "alice", None, clock.now))
    with pytest.raises(OverBudget) as refused:
        write_set(ledger, owner="bob", check=admit(60, budget, "bob", None, clock.now))
    assert refused.value.problems == [
        "It costs 60 credits and the team's daily budget of 100 has 40 left (60 spent)."
    ]
    assert len(ledger.sets("live")) == 1 and ledger.spent("live", since=clock.now - timedelta(days=1)) == 60


def test_a_single_create_over_budget_writes_nothing_but_its_retry_is_never_refused(ledger, clock):
    budget = Budget(daily_per_person=10)
    check = admit(10, budget, "alice", None, clock.now)
    ledger.begin_create("one", mode="live", prompt="p", video_url="https://e.com/v.mp4", owner="alice", cost=10, admit=check)
    again = ledger.begin_create("one", mode="live", prompt="p", video_url="https://e.com/v.mp4", owner="alice", cost=10,
                                admit=check)
    assert not again.mine, "the same click again: no new create, and no refusal"
    with pytest.raises(OverBudget, match="your daily budget of 10 has 0 left"):
        ledger.begin_create("two", mode="live", prompt="p", video_url="https://e.com/v.mp4", owner="alice", cost=10,
                            admit=check)
    assert ledger.get(request_key="two") is None


def test_concurrent_spends_cannot_both_slip_under_a_cap(ledger_url, clock):
    """Ten people start a 60-credit set at once under a 100-credit cap: exactly one fits."""
    budget = Budget(daily=100)
    outcomes: list[str] = []
    barrier = threading.Barrier(10)

    def start(n: int) -> None:
        with Ledger(ledger_url, clock=clock) as own:
            barrier.wait()
            try:
                write_set(own, owner=f"p{n}", check=admit(60, budget, f"p{n}", None, clock.now))
                outcomes.append("written")
            except OverBudget:
                outcomes.append("refused")

    threads = [threading.Thread(target=start, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused"] * 9 + ["written"]


def test_marks_cost_and_history(ledger, clock):
    set_id = write_set(ledger, prompts=["one"], inputs=INPUTS)
    Dispatcher(ledger, Sender().route, process_id="p1").run_once()
    first, second = ledger.set_rows(set_id)
    ledger.set_kept(first.task_id, True)
    ledger.set_labels(first.task_id, ["  client ", "client", "x" * 60, ""])
    ledger.set_cost(second.request_key, 12)
    first, second = ledger.set_rows(set_id)
    assert first.kept and first.label_list == ("client", "x" * 40)
    assert second.cost == 12
    day = clock.now - timedelta(hours=1)
    assert [r.request_key for r in ledger.history("live", since=day, until=utcnow() + timedelta(days=1))] == [
        first.request_key, second.request_key
    ]


def test_plan_refuses_what_cannot_be_a_set():
    assert len(plan(["a"], INPUTS)) == 2 and len(plan(PROMPTS, INPUTS[:1])) == 3
    for prompts, inputs, message in [
        ([], INPUTS, "at least one prompt"),
        (["a"], [], "at least one input"),
        (["a", "a"], INPUTS, "the same"),
        (["a"], [INPUTS[0], INPUTS[0]], "listed twice"),
        (["x" * 2001], INPUTS, "limit is 2,000"),
        ([f"p{n}" for n in range(26)], INPUTS, "52 tasks; a set has at most 50"),
    ]:
        with pytest.raises(ValueError, match=message):
            plan(prompts, inputs)


def test_budgets_and_prices_come_from_secrets_and_ignore_nonsense():
    from studio.sets import Pricing

    assert Budget.from_secrets({"budget": {"daily": "500", "monthly": -1, "daily_per_person": "x"}}) == Budget(daily=500)
    assert not Budget.from_secrets({}).any
    assert Pricing.from_secrets({}).credits_per_task == 10 and not Pricing.from_secrets({}).configured
    assert Pricing.from_secrets({"pricing": {"credits_per_task": 25}}).cost(4) == 100


def test_month_and_day_windows_are_utc():
    from studio.sets import month_start, today_start

    now = datetime(2026, 12, 1, 23, 59, tzinfo=UTC)
    assert today_start(now) == datetime(2026, 12, 1, tzinfo=UTC) and month_start(now) == datetime(2026, 12, 1, tzinfo=UTC)
