"""Typed rows: labels, finality, best times, and aware UTC times on both backends."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from luma.models import TaskStatus
from studio.ledger import CREATING, NOT_CREATED, NOT_READ, OUTCOME_UNKNOWN, STATUS_LABELS, Ledger, TaskRow, status_label

CREATED = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _row(**changes) -> TaskRow:
    fields = {f.name: None for f in dataclasses.fields(TaskRow)}
    fields.update(
        id=1,
        request_key="k",
        mode="live",
        origin="submitted",
        state="created",
        created_at=CREATED,
        failures=0,
        result_urls=(),
    )
    return TaskRow(**(fields | changes))


@pytest.mark.parametrize(
    ("state", "status", "label", "final"),
    [
        ("creating", None, CREATING, False),
        ("unknown", None, OUTCOME_UNKNOWN, False),
        ("failed", None, NOT_CREATED, True),
        ("created", None, NOT_READ, False),
        ("created", TaskStatus.GENERATING, "Generating", False),
        ("created", TaskStatus.SUCCESS, "Succeeded", True),
        ("created", TaskStatus.CALLBACK_FAILED, "Succeeded (callback failed)", True),
        ("created", TaskStatus.GENERATE_FAILED, "Generation failed", True),
        ("created", TaskStatus.CREATE_TASK_FAILED, "Creation failed", True),
    ],
)
def test_labels_and_finality(state, status, label, final):
    row = _row(state=state, status=status)
    assert row.status_label == label == status_label(state, status) and label in STATUS_LABELS
    assert row.is_final is final


def test_the_best_submission_time_prefers_the_provider():
    row = _row()
    assert row.submitted_at_best == CREATED
    row = dataclasses.replace(row, submitted_at=CREATED + timedelta(seconds=2))
    assert row.submitted_at_best == CREATED + timedelta(seconds=2)
    row = dataclasses.replace(row, provider_created_at=CREATED + timedelta(seconds=1))
    assert row.submitted_at_best == CREATED + timedelta(seconds=1)


def test_result_url_is_the_first_result():
    assert _row().result_url is None
    assert _row(result_urls=("a", "b")).result_url == "a"


def test_times_in_other_zones_come_back_as_the_same_instant_in_utc(ledger_url):
    paris = timezone(timedelta(hours=2))
    with Ledger(ledger_url, clock=lambda: datetime(2026, 6, 1, 14, 30, 0, 250, tzinfo=paris)) as ledger:
        ledger.add_existing(["a" * 32], mode="live")
        row = ledger.get(task_id="a" * 32)
    assert row.created_at == datetime(2026, 6, 1, 12, 30, 0, 250, tzinfo=UTC) and row.created_at.tzinfo is UTC


def test_a_naive_time_is_refused_not_guessed(ledger_url):
    with Ledger(ledger_url, clock=lambda: datetime(2026, 6, 1, 12, 0)) as ledger, pytest.raises(sa.exc.StatementError):
        ledger.add_existing(["a" * 32], mode="live")
