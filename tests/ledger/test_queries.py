"""Pages of the task list: filters, order, paging, counts and people, all done by the database."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
import sqlalchemy as sa

from luma.models import Task, TaskStatus
from studio.ledger import (
    CREATING,
    NOT_CREATED,
    NOT_READ,
    OUTCOME_UNKNOWN,
    STATUS_LABELS,
    TaskQuery,
)
from studio.ledger.filters import escape_like


def task_id(n: int) -> str:
    return f"{n:032x}"


@pytest.fixture
def mixed(ledger, clock, make_task):
    """Nine live rows, one per label, a minute apart, of three people, and two demo rows."""
    prompts = {
        0: "Make it SNOW",
        1: "100% more rain",
        2: "snow_day in town",
        3: "sunset",
        4: "Night",
        5: "fog",
        6: "a\\b backslash",
        7: None,
        8: "rain again",
    }
    people = ["alice", "bob", "carol"]
    for n in range(9):
        owner = people[n % 3]
        key = f"req-{n}"
        ledger.begin_create(
            key,
            mode="live",
            prompt=prompts[n] or "",
            video_url="https://example.com/v.mp4",
            owner=owner,
            owner_name=owner.title(),
        )
        clock.advance(60)
    # Labels: 0 creating, 1 unknown, 2 not created, 3 not read, 4..8 provider statuses.
    ledger.settle_create("req-1", state="unknown")
    ledger.settle_create("req-2", state="failed")
    for n in range(3, 9):
        ledger.settle_create(f"req-{n}", state="created", task_id=task_id(n))
    statuses = {
        4: TaskStatus.GENERATING,
        5: TaskStatus.SUCCESS,
        6: TaskStatus.GENERATE_FAILED,
        7: TaskStatus.CREATE_TASK_FAILED,
        8: TaskStatus.CALLBACK_FAILED,
    }
    for n, status in statuses.items():
        done = clock.now - timedelta(seconds=100 - n) if status.is_final else None
        ledger.record_read(
            task_id(n), Task(task_id=task_id(n), status=status, completed_at=done), now=clock.now, next_check_at=None
        )
    with ledger.transaction(write=True) as conn:  # a row without a prompt (an import not yet read)
        conn.exec_driver_sql("UPDATE tasks SET prompt = NULL WHERE request_key = 'req-7'")
    make_task(100, mode="demo", prompt="Make it SNOW", owner="dave")
    make_task(101, mode="demo", prompt="demo only", owner="alice", owner_name="Alice D.")
    return ledger


def _keys(page) -> list[str]:
    return [row.request_key for row in page.rows]


def test_a_live_query_never_shows_demo_rows(mixed):
    page = mixed.query(TaskQuery(mode="live", limit=100))
    assert page.total == 9 and all(row.mode == "live" for row in page.rows)
    demo = mixed.query(TaskQuery(mode="demo", limit=100))
    assert demo.total == 2 and {r.task_id for r in demo.rows} == {task_id(100), task_id(101)}


def test_newest_first_by_default_and_paged(mixed):
    first = mixed.query(TaskQuery(mode="live", limit=4))
    assert first.total == 9 and _keys(first) == ["req-8", "req-7", "req-6", "req-5"]
    last = mixed.query(TaskQuery(mode="live", offset=8, limit=4))
    assert _keys(last) == ["req-0"] and last.total == 9
    assert _keys(mixed.query(TaskQuery(mode="live", descending=False, limit=2))) == ["req-0", "req-1"]


def test_owner_scope_and_people_filter(mixed):
    assert _keys(mixed.query(TaskQuery(mode="live", owner="bob"))) == ["req-7", "req-4", "req-1"]
    assert mixed.query(TaskQuery(mode="live", owners=("alice", "carol"))).total == 6
    assert mixed.query(TaskQuery(mode="live", owner="alice", owners=("bob",))).total == 0


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ((CREATING,), ["req-0"]),
        ((OUTCOME_UNKNOWN,), ["req-1"]),
        ((NOT_CREATED,), ["req-2"]),
        ((NOT_READ,), ["req-3"]),
        ((TaskStatus.GENERATING.label,), ["req-4"]),
        ((TaskStatus.SUCCESS.label, TaskStatus.CALLBACK_FAILED.label), ["req-8", "req-5"]),
        ((TaskStatus.GENERATE_FAILED.label, TaskStatus.CREATE_TASK_FAILED.label), ["req-7", "req-6"]),
    ],
)
def test_status_filter_by_label(mixed, labels, expected):
    page = mixed.query(TaskQuery(mode="live", statuses=labels))
    assert _keys(page) == expected
    assert all(row.status_label in labels for row in page.rows)


def test_created_date_range(mixed, clock):
    before_all = clock.now - timedelta(hours=1)  # the rows were written over the last nine minutes
    rows = mixed.query(TaskQuery(mode="live", limit=100)).rows
    by_key = {r.request_key: r.created_at for r in rows}
    page = mixed.query(TaskQuery(mode="live", created_from=by_key["req-2"], created_before=by_key["req-5"]))
    assert _keys(page) == ["req-4", "req-3", "req-2"]
    assert mixed.query(TaskQuery(mode="live", created_before=before_all)).total == 0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("snow", ["req-2", "req-0"]),  # case-insensitive
        ("SNOW_", ["req-2"]),  # _ is a literal underscore, not "any character"
        ("100%", ["req-1"]),  # % is literal
        ("% more", ["req-1"]),
        ("a\\b", ["req-6"]),  # the escape character itself
        ("rain", ["req-8", "req-1"]),
        ("  rain  ", ["req-8", "req-1"]),
        ("hail", []),
    ],
)
def test_text_search_in_prompts(mixed, text, expected):
    assert _keys(mixed.query(TaskQuery(mode="live", text=text))) == expected


def test_escape_like():
    assert escape_like("50%_off\\") == "50\\%\\_off\\\\"


def test_sort_by_status_follows_the_display_order(mixed):
    # The fixture has no set, so the two labels only a set's takes carry are absent.
    present = [label for label in STATUS_LABELS if label not in ("Queued", "Cancelled")]
    rows = mixed.query(TaskQuery(mode="live", sort="status", descending=False, limit=100)).rows
    assert [r.status_label for r in rows] == present
    rows = mixed.query(TaskQuery(mode="live", sort="status", limit=100)).rows
    assert [r.status_label for r in rows] == list(reversed(present))


def test_sort_by_completion_and_prompt_put_blanks_last(mixed):
    completed = mixed.query(TaskQuery(mode="live", sort="completed", limit=100)).rows
    assert _keys(mixed.query(TaskQuery(mode="live", sort="completed", limit=4))) == ["req-8", "req-7", "req-6", "req-5"]
    assert all(r.completed_at is None for r in completed[4:])
    ascending = mixed.query(TaskQuery(mode="live", sort="completed", descending=False, limit=100)).rows
    assert [r.request_key for r in ascending[:4]] == ["req-5", "req-6", "req-7", "req-8"]
    by_prompt = mixed.query(TaskQuery(mode="live", sort="prompt", descending=False, limit=100)).rows
    assert by_prompt[-1].prompt is None
    prompts = [r.prompt for r in by_prompt[:-1]]
    assert prompts == sorted(prompts)


def test_counts_cover_every_label_and_ignore_the_status_filter(mixed):
    counts = mixed.counts(TaskQuery(mode="live", statuses=(CREATING,)))
    assert list(counts) == list(STATUS_LABELS)
    assert {label: n for label, n in counts.items() if label not in ("Queued", "Cancelled")} == dict.fromkeys(
        [label for label in STATUS_LABELS if label not in ("Queued", "Cancelled")], 1
    )
    assert counts["Queued"] == counts["Cancelled"] == 0
    assert mixed.counts(TaskQuery(mode="live", owner="alice")) == {
        **dict.fromkeys(STATUS_LABELS, 0),
        CREATING: 1,
        NOT_READ: 1,
        TaskStatus.GENERATE_FAILED.label: 1,
    }
    assert sum(mixed.counts(TaskQuery(mode="demo")).values()) == 2


def test_people_lists_each_owner_once_with_their_latest_name(mixed, make_task):
    assert mixed.people("live") == [("alice", "Alice"), ("bob", "Bob"), ("carol", "Carol")]
    make_task(200, mode="live", owner="bob", owner_name="Robert")
    assert ("bob", "Robert") in mixed.people("live")
    assert mixed.people("demo") == [("alice", "Alice D."), ("dave", "dave")]


def test_get_by_task_id_or_request_key(mixed):
    assert mixed.get(task_id=task_id(5)).request_key == "req-5"
    assert mixed.get(request_key="req-0").task_id is None
    assert mixed.get(task_id=task_id(999)) is None
    with pytest.raises(ValueError):
        mixed.get()
    with pytest.raises(ValueError):
        mixed.get(task_id=task_id(5), request_key="req-5")


def test_iter_rows_streams_every_match_in_order(mixed):
    streamed = list(mixed.iter_rows(TaskQuery(mode="live", sort="prompt", offset=5, limit=1), batch=2))
    paged = mixed.query(TaskQuery(mode="live", sort="prompt", limit=100)).rows
    assert tuple(streamed) == paged
    assert [r.task_id for r in mixed.iter_rows(TaskQuery(mode="demo", text="demo"))] == [task_id(101)]


def test_times_come_back_aware_utc(mixed):
    row = mixed.get(task_id=task_id(5))
    assert all(t.tzinfo is UTC for t in (row.created_at, row.submitted_at, row.completed_at, row.checked_at))


def test_a_query_rejects_unknown_labels_and_sorts():
    with pytest.raises(ValueError):
        TaskQuery(mode="live", statuses=("Done",))
    with pytest.raises(ValueError):
        TaskQuery(mode="live", sort="owner")  # type: ignore[arg-type]


# --- 10,000 rows ---------------------------------------------------------------------------------


def _plan(ledger, statement) -> str:
    compiled = statement.compile(dialect=ledger.engine.dialect, compile_kwargs={"literal_binds": True})
    prefix = "EXPLAIN QUERY PLAN " if ledger.engine.dialect.name == "sqlite" else "EXPLAIN "
    with ledger.transaction() as conn:
        if ledger.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE tasks")
        lines = conn.exec_driver_sql(prefix + str(compiled)).all()
    return "\n".join(" ".join(str(part) for part in line) for line in lines)


@pytest.mark.slow
def test_ten_thousand_rows_page_through_an_index(ledger, clock):
    for batch in range(100):
        ledger.add_existing([task_id(batch * 100 + n) for n in range(100)], mode="live", owner=f"user-{batch % 7}")
        clock.advance(60)
    statements: list[str] = []
    sa.event.listen(ledger.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    page = ledger.query(TaskQuery(mode="live", offset=9_950, limit=25))
    assert page.total == 10_000 and len(page.rows) == 25
    listing = next(s for s in statements if "ORDER BY" in s)
    assert "LIMIT" in listing and "OFFSET" in listing  # paged by the database, not in Python

    from studio.ledger import filters
    from studio.ledger.schema import tasks

    for query, index in (
        (TaskQuery(mode="live", limit=50), "ix_tasks_mode_created_at"),
        (TaskQuery(mode="live", owner="user-3", limit=50), "ix_tasks_mode_owner_created_at"),
    ):
        statement = (
            sa.select(tasks)
            .where(*filters.where(query))
            .order_by(*filters.order_by(query))
            .offset(0)
            .limit(query.limit)
        )
        assert index in _plan(ledger, statement)
