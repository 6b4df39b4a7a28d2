"""Importing existing task ids: one transaction, a constant number of statements, duplicates reported."""

from __future__ import annotations

import pytest
import sqlalchemy as sa


def task_id(n: int) -> str:
    return f"{n:032x}"


def test_five_thousand_ids_take_a_constant_number_of_statements(ledger, clock):
    statements: list[str] = []
    sa.event.listen(ledger.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    ids = [task_id(n) for n in range(5000)]
    result = ledger.add_existing(
        ids, mode="live", owner="alice", owner_name="Alice", key_ref="key-1", api_base="https://api.kie.ai"
    )
    writes = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    assert len(writes) == 1 and len(statements) <= 3  # not one round trip per id
    assert result.added == tuple(ids) and result.already == ()
    row = ledger.get(task_id=ids[4321])
    assert row.request_key == f"import:{ids[4321]}" and row.origin == "imported" and row.state == "created"
    assert (row.mode, row.owner, row.owner_name, row.key_ref, row.api_base) == (
        "live",
        "alice",
        "Alice",
        "key-1",
        "https://api.kie.ai",
    )
    assert row.next_check_at == clock.now and row.created_at == clock.now and row.status is None


def test_ids_already_listed_are_reported_in_the_order_given(ledger, make_task):
    make_task(2)  # submitted here, so already listed
    ledger.add_existing([task_id(3)], mode="live")
    result = ledger.add_existing(
        [task_id(1), task_id(2), " ", task_id(3), task_id(4), task_id(1)], mode="live", origin="link"
    )
    assert result.added == (task_id(1), task_id(4))
    assert result.already == (task_id(2), task_id(3))
    assert ledger.get(task_id=task_id(1)).origin == "link"


def test_nothing_to_add_touches_nothing(ledger):
    assert ledger.add_existing(["", "  "], mode="demo").added == ()


def test_bad_ids_and_modes_are_refused_before_writing(ledger):
    with pytest.raises(ValueError):
        ledger.add_existing([task_id(1), "drop table tasks;"], mode="live")
    with pytest.raises(ValueError):
        ledger.add_existing([task_id(1)], mode="production")
    assert ledger.get(task_id=task_id(1)) is None
