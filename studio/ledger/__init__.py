"""The task ledger: one table of every task anyone submits or imports, shared by server processes.

It replaces per-browser session state as the record of tasks. One URL picks the database:
``sqlite:///path/ledger.sqlite`` (the embedded default) or ``postgresql+psycopg://...``
(hosted teams; Community Cloud's disk does not survive a reboot). No Streamlit here.

Modules: ``schema`` (tables), ``records`` (typed rows and queries), ``store`` (:class:`Ledger`),
``filters`` (a :class:`TaskQuery` as SQL), ``limiter`` (the cross-process create limiter),
``migrate`` + ``migrations/`` (Alembic, run by :meth:`Ledger.migrate`), ``engine`` (per-backend
settings, error translation), ``errors``.

================================================  =====================================================
``Ledger(url, clock=)``                           open (nothing connects until first use)
``migrate(revision="head")`` / ``revision()``     Alembic upgrade under a lock / current revision
``ping()`` / ``close()``                          does the database answer / drop pooled connections
``begin_create(request_key, ...)``                write-ahead row; ``CreateClaim.mine``: may send
``settle_create(request_key, state=, ...)``       the create's answer: created / failed / unknown
``mark_interrupted_creates(older_than)``          stuck "creating" rows become "unknown" (never resent)
``adopt(request_key, task_id)``                   attach an id found in the provider's logs
``add_existing(task_ids, ...)``                   import ids in one statement -> ``AddResult``
``claim_due(now=, limit=, lease_owner=, ...)``    lease due rows (SKIP LOCKED / one UPDATE)
``record_read(task_id, task, ...)``               guarded write of a read; ends the lease
``record_read_failure(task_id, ...)``             count a failed read; ends the lease
``park(task_id, waiting)`` / ``unpark(key_ref)``  stop / resume reading (e.g. key missing)
``nudge(task_id, now)`` / ``next_due_at()``       read sooner (callback) / when anything is due
``record_cycle(...)`` / ``cycles()``              tracker health per process
``query(TaskQuery)`` -> ``Page``                  one filtered, sorted page and the total
``counts(TaskQuery)`` / ``people(mode)``          rows per status label / owners with names
``get(task_id= | request_key=)``                  one row or None
``iter_rows(TaskQuery)``                          every matching row, streamed (exports)
``LedgerCreateLimiter(ledger, key_ref)``          the 20-per-10-s create window, across processes
================================================  =====================================================

A session::

    ledger = Ledger("sqlite:///data/ledger.sqlite")
    ledger.migrate()
    claim = ledger.begin_create(request_key, mode="live", prompt=..., video_url=..., ...)
    if claim.mine:  # only this caller may send the create
        ...
        ledger.settle_create(request_key, state="created", task_id=task_id)
"""

from __future__ import annotations

from .errors import LedgerConflict, LedgerError, LedgerUnavailable
from .limiter import IN_FLIGHT_BOUND, LedgerCreateLimiter
from .migrate import head_revision
from .records import (
    CANCELLED,
    CREATING,
    NOT_CREATED,
    NOT_READ,
    OUTCOME_UNKNOWN,
    QUEUED,
    SORT_FIELDS,
    STATUS_LABELS,
    AddResult,
    CreateClaim,
    Page,
    SortField,
    TaskQuery,
    TaskRow,
    TrackerCycle,
    status_label,
)
from .schema import CreateState, Mode, Origin
from .sets import Admit, OverBudget, SetItem, SetRow
from .store import DEFAULT_URL, INTERRUPTED_CREATE, Ledger

__all__ = [
    "Admit",
    "OverBudget",
    "AddResult",
    "CANCELLED",
    "CREATING",
    "CreateClaim",
    "CreateState",
    "DEFAULT_URL",
    "INTERRUPTED_CREATE",
    "IN_FLIGHT_BOUND",
    "Ledger",
    "LedgerConflict",
    "LedgerCreateLimiter",
    "LedgerError",
    "LedgerUnavailable",
    "Mode",
    "NOT_CREATED",
    "NOT_READ",
    "OUTCOME_UNKNOWN",
    "QUEUED",
    "Origin",
    "Page",
    "SetItem",
    "SetRow",
    "SORT_FIELDS",
    "STATUS_LABELS",
    "SortField",
    "TaskQuery",
    "TaskRow",
    "TrackerCycle",
    "head_revision",
    "status_label",
]
