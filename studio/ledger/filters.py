"""A :class:`TaskQuery` as SQL: the WHERE conditions and ORDER BY of one page of the task list.

Everything is done by the database so that paging 10,000 rows costs what paging 10 does: the
mode (and owner) conditions and the default order match the ``(mode, created_at)`` and
``(mode, owner, created_at)`` indexes.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from luma.models import TaskStatus

from .records import CANCELLED, CREATING, NOT_CREATED, NOT_READ, OUTCOME_UNKNOWN, QUEUED, STATUS_LABELS, TaskQuery
from .schema import tasks

__all__ = ["escape_like", "label_condition", "order_by", "where"]

_LIKE_ESCAPE = "\\"
_BY_LABEL = {status.label: status for status in TaskStatus}


def escape_like(text: str) -> str:
    """``text`` as a LIKE pattern that matches it literally (``%``, ``_`` and the escape itself)."""
    for char in (_LIKE_ESCAPE, "%", "_"):
        text = text.replace(char, _LIKE_ESCAPE + char)
    return text


def label_condition(label: str) -> ColumnElement[bool]:
    """The rows whose :attr:`TaskRow.status_label` is ``label``."""
    c = tasks.c
    if label == QUEUED:
        return c.state == "queued"
    if label == CANCELLED:
        return c.state == "cancelled"
    if label == CREATING:
        return c.state == "creating"
    if label == OUTCOME_UNKNOWN:
        return c.state == "unknown"
    if label == NOT_CREATED:
        return c.state == "failed"
    if label == NOT_READ:
        return sa.and_(c.state == "created", c.status.is_(None))
    if label in _BY_LABEL:
        return sa.and_(c.state == "created", c.status == int(_BY_LABEL[label]))
    raise ValueError(f"Unknown status label {label!r}.")


def where(query: TaskQuery, *, statuses: bool = True) -> list[ColumnElement[bool]]:
    """The query's filters; ``statuses=False`` leaves out the status filter (for per-status counts)."""
    c = tasks.c
    conditions: list[ColumnElement[bool]] = [c.mode == query.mode]
    if query.owner is not None:
        conditions.append(c.owner == query.owner)
    if query.owners:
        conditions.append(c.owner.in_(query.owners))
    if statuses and query.statuses:
        conditions.append(sa.or_(*(label_condition(label) for label in query.statuses)))
    if query.created_from is not None:
        conditions.append(c.created_at >= query.created_from)
    if query.created_before is not None:
        conditions.append(c.created_at < query.created_before)
    if query.text.strip():
        # lower() on both sides: SQLite's LIKE ignores case for ASCII only, Postgres's not at all.
        pattern = f"%{escape_like(query.text.strip().lower())}%"
        conditions.append(sa.func.lower(c.prompt).like(pattern, escape=_LIKE_ESCAPE))
    return conditions


def _status_rank() -> ColumnElement[Any]:
    """The position of a row's label in :data:`STATUS_LABELS` (sort by status = by that order)."""
    return sa.case(
        *((label_condition(label), rank) for rank, label in enumerate(STATUS_LABELS)), else_=len(STATUS_LABELS)
    )


def order_by(query: TaskQuery) -> list[ColumnElement[Any]]:
    """ORDER BY for the query's sort field and direction, with the row id as the tie-breaker."""
    c = tasks.c
    key: ColumnElement[Any]
    if query.sort == "status":
        key = _status_rank()
    elif query.sort == "completed":
        key = c.completed_at
    elif query.sort == "prompt":
        key = c.prompt
    else:
        key = c.created_at
    ordered = key.desc() if query.descending else key.asc()
    if query.sort in ("completed", "prompt"):
        # Unfinished (no completion time) and prompt-less rows go last either way. Not for
        # created_at (never null): a NULLS clause would stop the indexes from giving the order.
        ordered = ordered.nulls_last()
    return [ordered, c.id.desc() if query.descending else c.id.asc()]
