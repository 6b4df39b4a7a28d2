"""The :class:`Ledger`: every task anyone submitted or imported, in one table, shared by processes.

The rules that keep it honest, each enforced in the SQL itself rather than by the callers:

* **Write-ahead creates.** The row is inserted (state "creating") *before* the create is sent;
  only the caller whose insert wrote the row may send. A create is never sent twice: a row
  left "creating" by a dead server becomes "unknown", never "send again".
* **Guarded terminal updates.** A read or a failure never changes a task whose status is final,
  and a read that started before the row's last successful read is ignored, so a late poll or
  a slow tracker cannot reopen or roll back a task.
* **Leases.** A tracker claims due rows for a while (Postgres: ``FOR UPDATE SKIP LOCKED``;
  SQLite: one atomic UPDATE, writers being serialised), so two trackers never read one row at
  once. A lease ends with the read, or lapses if the tracker dies.

Each method is one short transaction. Connection failures raise :class:`LedgerUnavailable`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import URL, Connection, Engine

from luma.models import Task, TaskStatus

from . import filters
from .engine import BUSY_TIMEOUT, WRITE, make_engine, redacted, translate_errors, upsert
from .errors import LedgerConflict, LedgerError, LedgerUnavailable
from .migrate import current_revision, upgrade
from .records import STATUS_LABELS, AddResult, CreateClaim, Page, TaskQuery, TaskRow, TrackerCycle, status_label
from .schema import MODES, ORIGINS, Mode, Origin, UTCDateTime, tasks, tracker_cycles
from .sets import SetsMixin

__all__ = ["DEFAULT_URL", "INTERRUPTED_CREATE", "Ledger"]

# Relative to the working directory, like the emulator's .emulator-data/: an embedded file
# needs no server. Hosted teams set a Postgres URL instead (a cloud disk may be wiped).
DEFAULT_URL: Final = "sqlite:///.ledger-data/ledger.sqlite"

INTERRUPTED_CREATE: Final = (
    "The dashboard stopped while this task was being created, so it is not known whether the "
    "provider created it. Look for it in the provider's logs and add its task id here if it is "
    "there; submitting again may be charged twice."
)
_TASK_ID_TAKEN: Final = "The provider answered with task id {task_id}, which is already listed on another row."

# The provider's ids are 32 hex digits, but (as in the client) the provider decides what exists:
# any printable id without spaces fits, up to the column's width.
_TASK_ID = re.compile(r"[!-~]{1,64}")
_FINAL_STATUSES: Final = tuple(int(s) for s in TaskStatus if s.is_final)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _open_status() -> sa.ColumnElement[bool]:
    """Rows whose status may still change: never read, or last read as generating."""
    return sa.or_(tasks.c.status.is_(None), tasks.c.status.not_in(_FINAL_STATUSES))


def _next_check(started: datetime, planned: datetime | None) -> Any:
    """The next check after a read that started at ``started``: ``planned``, unless a nudge since
    then asked for an earlier one (the row's own ``next_check_at`` moved past ``started``)."""
    if planned is None:
        return None
    c = tasks.c
    nudged = sa.and_(c.next_check_at > started, c.next_check_at < planned)
    return sa.case((nudged, c.next_check_at), else_=sa.literal(planned, c.next_check_at.type))


def _check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)} (got {value!r}).")


def _clean_task_id(task_id: str) -> str:
    text = (task_id or "").strip()
    if not _TASK_ID.fullmatch(text):
        raise ValueError(f"{task_id!r} is not a task id (printable characters without spaces, at most 64).")
    return text


def _row(mapping: Any) -> TaskRow:
    return TaskRow.from_mapping(mapping._mapping)


class Ledger(SetsMixin):
    """The task ledger over one database URL (SQLite file, or Postgres via ``postgresql+psycopg``).

    ``clock`` gives the time of writes that take none explicitly (aware UTC). Thread-safe: every
    method takes a pooled connection for one transaction.
    """

    def __init__(
        self,
        url: str | URL = DEFAULT_URL,
        *,
        clock: Callable[[], datetime] = _utcnow,
        busy_timeout: float = BUSY_TIMEOUT,
    ) -> None:
        try:
            self.url: URL = sa.make_url(url)
        except exc.ArgumentError:
            raise LedgerUnavailable(
                "The ledger URL is not a database URL (expected sqlite:/// or postgresql+psycopg://)."
            ) from None
        if self.url.get_backend_name() not in ("sqlite", "postgresql"):
            raise LedgerUnavailable(f"The ledger supports SQLite and Postgres, not {self.url.get_backend_name()}.")
        self._engine: Engine = make_engine(self.url, busy_timeout=busy_timeout)
        self._local = threading.local()
        self._clock = clock
        self._postgres = self.url.get_backend_name() == "postgresql"

    def __repr__(self) -> str:
        return f"Ledger({redacted(self.url)!r})"

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for the create limiter and tests)."""
        return self._engine

    # --- plumbing --------------------------------------------------------------------------------

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[Connection]:
        """One short transaction on a pooled connection, committed on exit (for this package and tests).

        ``write=True`` when it will write: on SQLite it then takes the write lock at BEGIN. Inside
        :meth:`batch` (same thread), it joins the batch's transaction instead.
        """
        joined = getattr(self._local, "conn", None)
        if joined is not None:
            yield joined
            return
        with translate_errors(self.url), self._engine.connect() as conn:
            if write:
                conn.execution_options(**{WRITE: True})
            with conn.begin():
                yield conn

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Run this thread's ledger writes in one transaction (the tracker writes a cycle's answers
        at once: one commit instead of one per task). All or nothing; nests harmlessly."""
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        with self.transaction(write=True) as conn:
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    def _insert(self) -> Any:
        """An INSERT that understands ON CONFLICT on this backend (both spell it the same)."""
        return upsert(self.url.get_backend_name())(tasks)

    def now(self) -> datetime:
        """The ledger clock's current time."""
        return self._clock()

    # --- lifecycle -------------------------------------------------------------------------------

    def migrate(self, revision: str = "head") -> str | None:
        """Bring the schema to ``revision`` (safe from several processes at once); returns the revision."""
        with translate_errors(self.url):
            return upgrade(self._engine, revision)

    def revision(self) -> str | None:
        """The schema revision the database is at (None: never migrated)."""
        with self.transaction() as conn:
            return current_revision(conn)

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self.transaction() as conn:
                conn.execute(sa.text("SELECT 1"))
        except LedgerUnavailable:
            return False
        return True

    def close(self) -> None:
        """Close every pooled connection (the ledger reconnects if used again)."""
        self._engine.dispose()

    # --- creates ---------------------------------------------------------------------------------

    def begin_create(
        self,
        request_key: str,
        *,
        mode: Mode,
        prompt: str,
        video_url: str,
        owner: str | None = None,
        owner_name: str | None = None,
        key_ref: str | None = None,
        api_base: str | None = None,
        callback_url: str | None = None,
        watermark: str | None = None,
        source: str | None = None,
        source_name: str | None = None,
        sender: str | None = None,
        callback_token: str | None = None,
        cost: int | None = None,
        admit: Any = None,
    ) -> CreateClaim:
        """Write the create down before sending it; only the claim with ``mine=True`` may send.

        ``sender`` names the process sending it (``host:pid:...``), kept in ``lease_owner`` while
        the create is out, so a restart on the same host can tell at once that it was cut off.
        ``admit`` checks the spending first, in the same transaction (see :meth:`admit_spend`):
        a refused create raises :class:`~studio.ledger.sets.OverBudget` and writes nothing.
        """
        _check_choice("mode", mode, MODES)
        if not request_key:
            raise ValueError("begin_create needs a request key.")
        values = {
            "request_key": request_key,
            "mode": mode,
            "origin": "submitted",
            "state": "creating",
            "prompt": prompt,
            "video_url": video_url,
            "callback_url": callback_url,
            "watermark": watermark,
            "source": source,
            "source_name": source_name,
            "owner": owner,
            "owner_name": owner_name,
            "key_ref": key_ref,
            "api_base": api_base,
            "created_at": self._clock(),
            "failures": 0,
            "lease_owner": sender,
            "callback_token": callback_token,
            "cost": cost,
        }
        statement = (
            self._insert().values(**values).on_conflict_do_nothing(index_elements=["request_key"]).returning(*tasks.c)
        )
        with self.transaction(write=True) as conn:
            if admit is not None:
                # A retry of a create already written is never refused: it sends nothing new.
                existing = conn.execute(sa.select(tasks).where(tasks.c.request_key == request_key)).first()
                if existing is not None:
                    return CreateClaim(row=_row(existing), mine=False)
                self.admit_spend(conn, mode, admit)
            written = conn.execute(statement).first()
            if written is not None:
                return CreateClaim(row=_row(written), mine=True)
            # Postgres waited for the other insert to commit; SQLite serialised us behind it.
            existing = conn.execute(sa.select(tasks).where(tasks.c.request_key == request_key)).one()
            return CreateClaim(row=_row(existing), mine=False)

    def settle_create(
        self,
        request_key: str,
        *,
        state: Literal["created", "failed", "unknown"],
        task_id: str | None = None,
        create_error: str | None = None,
        first_check: datetime | None = None,
    ) -> bool:
        """Record the create's answer: "created" (with its task id), "failed" or "unknown".

        ``first_check``: when the tracker first reads a created task (default: at once).

        Applies to a row still "creating", or "unknown" because a sweep gave up on it before the
        answer came; a row that already has a task id is left alone. Returns whether it changed.
        """
        _check_choice("state", state, ("created", "failed", "unknown"))
        now = self._clock()
        values: dict[str, Any] = {"state": state, "submitted_at": now, "create_error": create_error, "lease_owner": None}
        if state == "created":
            if not task_id:
                raise ValueError("settle_create(state='created') needs the task id.")
            values.update(task_id=_clean_task_id(task_id), next_check_at=first_check or now, create_error=None)
        else:
            values["next_check_at"] = None
        guard = sa.and_(
            tasks.c.request_key == request_key,
            tasks.c.state.in_(("creating", "unknown")),
            tasks.c.task_id.is_(None),
        )
        try:
            with self.transaction(write=True) as conn:
                if state == "created":
                    taken = conn.execute(sa.select(tasks.c.id).where(tasks.c.task_id == values["task_id"])).first()
                    if taken is not None:
                        # Someone added the id by hand first: that row tracks it; this one says why not.
                        values = {
                            "state": "unknown",
                            "submitted_at": now,
                            "create_error": _TASK_ID_TAKEN.format(task_id=values["task_id"]),
                            "next_check_at": None,
                        }
                return conn.execute(sa.update(tasks).where(guard).values(**values)).rowcount > 0
        except exc.IntegrityError:
            raise LedgerConflict(_TASK_ID_TAKEN.format(task_id=task_id)) from None

    def mark_interrupted_creates(self, older_than: timedelta | datetime) -> int:
        """Rows still "creating" since before ``older_than`` (a time, or an age) become "unknown".

        Their server died mid-create. They are never sent again: only a task id the user finds
        in the provider's logs (:meth:`adopt`) or a late answer (:meth:`settle_create`) resolves them.
        """
        cutoff = older_than if isinstance(older_than, datetime) else self._clock() - older_than
        statement = (
            sa.update(tasks)
            .where(tasks.c.state == "creating", tasks.c.created_at < cutoff)
            .values(state="unknown", create_error=INTERRUPTED_CREATE, next_check_at=None)
        )
        with self.transaction(write=True) as conn:
            return conn.execute(statement).rowcount

    def mark_orphaned_creates(self, host: str, alive: Callable[[int], bool]) -> int:
        """Rows still "creating" that a dead process on ``host`` was sending become "unknown".

        ``alive(pid)`` says whether a process runs; senders on other hosts are left to the age
        rule of :meth:`mark_interrupted_creates`.
        """
        with self.transaction(write=True) as conn:
            rows = conn.execute(
                sa.select(tasks.c.id, tasks.c.lease_owner).where(
                    tasks.c.state == "creating", tasks.c.lease_owner.like(f"{host}:%")
                )
            ).all()
            dead = []
            for row_id, sender in rows:
                parts = str(sender).split(":")
                if len(parts) >= 2 and parts[1].isdigit() and not alive(int(parts[1])):
                    dead.append(row_id)
            if not dead:
                return 0
            statement = (
                sa.update(tasks)
                .where(tasks.c.id.in_(dead), tasks.c.state == "creating")
                .values(state="unknown", create_error=INTERRUPTED_CREATE, next_check_at=None, lease_owner=None)
            )
            return conn.execute(statement).rowcount

    def adopt(self, request_key: str, task_id: str) -> TaskRow:
        """Attach a task id the user found in the provider's logs, and schedule its first read."""
        task_id = _clean_task_id(task_id)
        now = self._clock()
        try:
            with self.transaction(write=True) as conn:
                found = conn.execute(sa.select(tasks).where(tasks.c.request_key == request_key)).first()
                if found is None:
                    raise LedgerError("That task is no longer in the ledger; add its id as an existing task instead.")
                row = _row(found)
                if row.task_id == task_id:
                    return row
                if row.task_id is not None:
                    raise LedgerConflict(f"This task already has the id {row.task_id}.")
                other = conn.execute(sa.select(tasks.c.id).where(tasks.c.task_id == task_id)).first()
                if other is not None:
                    raise LedgerConflict(f"The task id {task_id} is already listed on another row.")
                updated = conn.execute(
                    sa.update(tasks)
                    .where(tasks.c.id == row.id, tasks.c.task_id.is_(None))
                    .values(task_id=task_id, state="created", next_check_at=now, create_error=None)
                    .returning(*tasks.c)
                ).first()
                if updated is None:  # Postgres: the create's own answer landed since we looked
                    raise LedgerConflict("This task received its id from the provider meanwhile; reload the list.")
                return _row(updated)
        except exc.IntegrityError:
            raise LedgerConflict(f"The task id {task_id} is already listed on another row.") from None

    # --- imports ---------------------------------------------------------------------------------

    def add_existing(
        self,
        task_ids: Iterable[str],
        *,
        mode: Mode,
        owner: str | None = None,
        owner_name: str | None = None,
        key_ref: str | None = None,
        api_base: str | None = None,
        origin: Origin = "imported",
    ) -> AddResult:
        """Add tasks created elsewhere by id, in one transaction; ids already listed are reported, not changed."""
        _check_choice("mode", mode, MODES)
        _check_choice("origin", origin, ORIGINS)
        ids = list(dict.fromkeys(_clean_task_id(t) for t in task_ids if t and t.strip()))
        if not ids:
            return AddResult(added=(), already=())
        now = self._clock()
        constants: dict[str, Any] = {
            "mode": mode,
            "origin": origin,
            "state": "created",
            "owner": owner,
            "owner_name": owner_name,
            "key_ref": key_ref,
            "api_base": api_base,
            "created_at": now,
            "next_check_at": now,
            "failures": 0,
        }
        # One statement whatever the number of ids: the ids travel as one array (Postgres) or one
        # JSON text (SQLite), and INSERT ... SELECT turns them into rows inside the database. An
        # executemany spends most of its time binding 12 parameters per row (a second for 5,000
        # ids on Postgres). RETURNING names exactly the rows this call wrote, even when another
        # process adds some of the same ids at the same moment.
        # Sorted, so that two imports sharing ids insert them in the same order and one waits for
        # the other instead of deadlocking on each other's uncommitted rows.
        ordered = sorted(ids)
        if self._postgres:
            from sqlalchemy.dialects.postgresql import ARRAY

            source = (
                sa.func.unnest(sa.bindparam("ids", ordered, type_=ARRAY(sa.Text)))
                .table_valued("value")
                .render_derived()
            )
        else:
            source = sa.func.json_each(sa.bindparam("ids", json.dumps(ordered), type_=sa.Text)).table_valued("value")
        rows = sa.select(
            sa.literal("import:") + source.c.value,
            source.c.value,
            *(sa.literal(value, tasks.c[name].type) for name, value in constants.items()),
        ).where(sa.true())  # SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT
        statement = (
            self._insert()
            .from_select(["request_key", "task_id", *constants], rows)
            .on_conflict_do_nothing()
            .returning(tasks.c.task_id)
        )
        with self.transaction(write=True) as conn:
            written = set(conn.execute(statement).scalars())
        return AddResult(
            added=tuple(t for t in ids if t in written),
            already=tuple(t for t in ids if t not in written),
        )

    # --- the tracker -----------------------------------------------------------------------------

    def claim_due(
        self,
        *,
        now: datetime,
        limit: int,
        lease_owner: str,
        lease_seconds: float,
        mode: Mode | None = None,
    ) -> list[TaskRow]:
        """Lease up to ``limit`` due rows (oldest due first) that no other tracker holds."""
        if limit <= 0:
            return []
        c = tasks.c
        due = [c.next_check_at <= now, sa.or_(c.lease_until.is_(None), c.lease_until <= now)]
        if mode is not None:
            due.append(c.mode == mode)
        pick = sa.select(c.id).where(*due).order_by(c.next_check_at, c.id).limit(limit)
        rows = self._lease(pick, now=now, lease_owner=lease_owner, lease_seconds=lease_seconds)
        rows.sort(key=lambda r: (r.next_check_at or now, r.id))
        return rows

    def _lease(self, pick: Any, *, now: datetime, lease_owner: str, lease_seconds: float) -> list[TaskRow]:
        """Lease the rows ``pick`` (a select of ids) finds, in one write; the tracker's and the
        dispatcher's claims. A row another process is leasing right now is skipped."""
        c = tasks.c
        lease = {"lease_owner": lease_owner, "lease_until": now + timedelta(seconds=lease_seconds)}
        with self.transaction(write=True) as conn:
            if self._postgres:
                # Rows another process is claiming right now are skipped, not waited for.
                ids = list(conn.execute(pick.with_for_update(skip_locked=True)).scalars())
                if not ids:
                    return []
                chosen: Any = c.id.in_(ids)
            else:
                # BEGIN IMMEDIATE holds the only write lock: the pick and the lease are one step.
                chosen = c.id.in_(pick)
            claimed = conn.execute(sa.update(tasks).where(chosen).values(**lease).returning(*tasks.c)).all()
        return [_row(r) for r in claimed]

    def record_read(
        self,
        task_id: str,
        task: Task,
        *,
        now: datetime,
        next_check_at: datetime | None,
        read_started: datetime | None = None,
        lease_owner: str | None = None,
    ) -> bool:
        """Write what a read found and end the lease; returns whether the row changed.

        Never applied to a row whose status is final, nor when the read started (``read_started``,
        default ``now``) before the row's last successful read. A final status needs no next
        check. If the check was brought forward (:meth:`nudge`) while this read was under way,
        the earlier time is kept. ``lease_owner``: when the read is not applied, still end that
        tracker's lease.
        """
        started = read_started or now
        c = tasks.c
        values: dict[str, Any] = {
            "status": int(task.status),
            "result_urls": json.dumps(list(task.result_urls)),
            "origin_url": task.origin_url,
            "error_code": str(task.error_code) if task.error_code is not None else None,
            "error_message": task.error_message,
            "checked_at": now,
            "attempted_at": now,
            "failures": 0,
            "read_error": None,
            "read_error_retryable": None,
            "lease_owner": None,
            "lease_until": None,
        }
        values["next_check_at"] = None if task.status.is_final else _next_check(started, next_check_at)
        if task.created_at is not None:
            values["provider_created_at"] = task.created_at
        if task.completed_at is not None:
            values["completed_at"] = task.completed_at
        if task.request is not None:
            # An imported task learns what was asked from its first read; a submitted one keeps its own.
            for column, value in (
                ("prompt", task.request.prompt or None),
                ("video_url", task.request.video_url or None),
                ("callback_url", task.request.callback_url),
                ("watermark", task.request.watermark),
            ):
                if value is not None:
                    values[column] = sa.func.coalesce(c[column], sa.literal(value, c[column].type))
        fresh = sa.or_(c.checked_at.is_(None), c.checked_at <= started)
        with self.transaction(write=True) as conn:
            changed = (
                conn.execute(
                    sa.update(tasks).where(c.task_id == task_id, _open_status(), fresh).values(**values)
                ).rowcount
                > 0
            )
            if not changed and lease_owner is not None:
                self._end_lease(conn, task_id, lease_owner)
        return changed

    def record_reads(self, reads: Sequence[tuple[Task, datetime, datetime | None]], *, now: datetime) -> None:
        """Write many successful reads in one statement (the tracker's cycle): ``(task, read
        started, next check)`` each, with exactly :meth:`record_read`'s rules (a final status is
        never overwritten, an older read never applied, a nudge made meanwhile kept)."""
        if not reads:
            return
        c = tasks.c
        started = sa.bindparam("b_started", type_=c.checked_at.type)
        planned = sa.bindparam("b_next", type_=c.next_check_at.type)
        nudged = sa.and_(c.next_check_at > started, c.next_check_at < planned)

        def keep(column: str) -> Any:
            # A submitted task keeps its own request; an imported one learns it from the read.
            return sa.func.coalesce(c[column], sa.bindparam(f"b_{column}", type_=c[column].type))

        statement = (
            sa.update(tasks)
            .where(
                c.task_id == sa.bindparam("b_task_id"),
                # _open_status() spelled without IN (executemany takes no expanding parameters).
                sa.or_(c.status.is_(None), c.status == int(TaskStatus.GENERATING)),
                sa.or_(c.checked_at.is_(None), c.checked_at <= started),
            )
            .values(
                status=sa.bindparam("b_status"),
                result_urls=sa.bindparam("b_result_urls"),
                origin_url=sa.bindparam("b_origin_url"),
                error_code=sa.bindparam("b_error_code"),
                error_message=sa.bindparam("b_error_message"),
                checked_at=now,
                attempted_at=now,
                failures=0,
                read_error=None,
                read_error_retryable=None,
                lease_owner=None,
                lease_until=None,
                next_check_at=sa.case((planned.is_(None), None), (nudged, c.next_check_at), else_=planned),
                provider_created_at=sa.func.coalesce(sa.bindparam("b_created", type_=c.provider_created_at.type), c.provider_created_at),
                completed_at=sa.func.coalesce(sa.bindparam("b_completed", type_=c.completed_at.type), c.completed_at),
                prompt=keep("prompt"),
                video_url=keep("video_url"),
                callback_url=keep("callback_url"),
                watermark=keep("watermark"),
            )
        )
        params = []
        for task, read_started, next_check in reads:
            request = task.request
            params.append(
                {
                    "b_task_id": task.task_id,
                    "b_started": read_started,
                    "b_next": None if task.status.is_final else next_check,
                    "b_status": int(task.status),
                    "b_result_urls": json.dumps(list(task.result_urls)),
                    "b_origin_url": task.origin_url,
                    "b_error_code": str(task.error_code) if task.error_code is not None else None,
                    "b_error_message": task.error_message,
                    "b_created": task.created_at,
                    "b_completed": task.completed_at,
                    "b_prompt": (request.prompt or None) if request else None,
                    "b_video_url": (request.video_url or None) if request else None,
                    "b_callback_url": request.callback_url if request else None,
                    "b_watermark": request.watermark if request else None,
                }
            )
        with self.transaction(write=True) as conn:
            conn.execute(statement, params)

    def record_read_failure(
        self,
        task_id: str,
        *,
        message: str,
        retryable: bool,
        now: datetime,
        next_check_at: datetime | None,
        read_started: datetime | None = None,
        lease_owner: str | None = None,
    ) -> bool:
        """Count a failed read and end the lease; a row whose status is final is left untouched.

        As with :meth:`record_read`, a nudge that came while the read was under way is kept.
        """
        c = tasks.c
        values = {
            "failures": c.failures + 1,
            "read_error": message,
            "read_error_retryable": retryable,
            "attempted_at": now,
            "next_check_at": _next_check(read_started or now, next_check_at),
            "lease_owner": None,
            "lease_until": None,
        }
        with self.transaction(write=True) as conn:
            changed = (
                conn.execute(sa.update(tasks).where(c.task_id == task_id, _open_status()).values(**values)).rowcount > 0
            )
            if not changed and lease_owner is not None:
                self._end_lease(conn, task_id, lease_owner)
        return changed

    @staticmethod
    def _end_lease(conn: Connection, task_id: str, lease_owner: str) -> None:
        conn.execute(
            sa.update(tasks)
            .where(tasks.c.task_id == task_id, tasks.c.lease_owner == lease_owner)
            .values(lease_owner=None, lease_until=None)
        )

    def park(self, task_id: str, waiting: str) -> bool:
        """Stop reading a task until :meth:`unpark` (``waiting`` says why, e.g. "key")."""
        if not waiting:
            raise ValueError("park needs a reason (e.g. 'key').")
        statement = (
            sa.update(tasks)
            .where(tasks.c.task_id == task_id, _open_status())
            .values(waiting=waiting, next_check_at=None, lease_owner=None, lease_until=None)
        )
        with self.transaction(write=True) as conn:
            return conn.execute(statement).rowcount > 0

    def unpark(self, key_ref: str, *, waiting: str = "key") -> int:
        """Tasks of ``key_ref`` parked for ``waiting`` become due now; returns how many."""
        statement = (
            sa.update(tasks)
            .where(tasks.c.key_ref == key_ref, tasks.c.waiting == waiting, _open_status())
            .values(waiting=None, next_check_at=self._clock())
        )
        with self.transaction(write=True) as conn:
            return conn.execute(statement).rowcount

    def find_callback(self, token_hash: str) -> TaskRow | None:
        """The task whose callback secret hashes to ``token_hash`` (None when there is none)."""
        with self.transaction() as conn:
            found = conn.execute(sa.select(tasks).where(tasks.c.callback_token == token_hash)).first()
        return _row(found) if found is not None else None

    def record_callback(self, task_id: str, now: datetime) -> bool:
        """A valid callback for ``task_id`` arrived: note it, and bring its next read forward to now
        (a callback is a nudge, never the record: the read is). Returns whether a read was scheduled."""
        with self.transaction(write=True) as conn:
            conn.execute(sa.update(tasks).where(tasks.c.task_id == task_id).values(callback_at=now))
        return self.nudge(task_id, now)

    def nudge(self, task_id: str, now: datetime) -> bool:
        """Bring a task's next read forward to ``now`` (a callback arrived); returns whether it moved."""
        c = tasks.c
        statement = (
            sa.update(tasks)
            .where(
                c.task_id == task_id,
                c.state == "created",
                c.waiting.is_(None),
                _open_status(),
                # While a tracker holds the row, the nudge is still recorded: the read under way
                # may have started before the news, and record_read keeps this earlier time.
                sa.or_(c.next_check_at.is_(None), c.next_check_at > now, c.lease_until > now),
            )
            .values(next_check_at=now)
        )
        with self.transaction(write=True) as conn:
            return conn.execute(statement).rowcount > 0

    def next_due_at(self, mode: Mode | None = None) -> datetime | None:
        """When the next row becomes claimable (its check is due and no lease holds it); None: nothing to read."""
        c = tasks.c
        claimable = sa.case((c.lease_until > c.next_check_at, c.lease_until), else_=c.next_check_at)
        # type_coerce: min() over a CASE would lose the column type (SQLite would hand back text).
        statement = sa.select(sa.type_coerce(sa.func.min(claimable), UTCDateTime())).where(c.next_check_at.is_not(None))
        if mode is not None:
            statement = statement.where(c.mode == mode)
        with self.transaction() as conn:
            due: datetime | None = conn.execute(statement).scalar_one()
        return due

    def record_cycle(
        self,
        process: str,
        *,
        now: datetime,
        lag_seconds: float,
        claimed: int,
        failed: int = 0,
        mode: Mode | None = None,
    ) -> None:
        """A tracker process finished a cycle (kept per process, for a health check)."""
        insert = upsert(self.url.get_backend_name())(tracker_cycles)
        statement = insert.values(
            process=process,
            mode=mode,
            started_at=now,
            cycle_at=now,
            lag_seconds=lag_seconds,
            claimed=claimed,
            failed=failed,
            cycles=1,
        ).on_conflict_do_update(
            index_elements=["process"],
            set_={
                "mode": mode,
                "cycle_at": now,
                "lag_seconds": lag_seconds,
                "claimed": claimed,
                "failed": failed,
                "cycles": tracker_cycles.c.cycles + 1,
            },
        )
        with self.transaction(write=True) as conn:
            conn.execute(statement)

    def cycles(self) -> list[TrackerCycle]:
        """The last cycle of every tracker process that ever reported, latest first."""
        with self.transaction() as conn:
            found = conn.execute(sa.select(tracker_cycles).order_by(tracker_cycles.c.cycle_at.desc())).all()
        return [TrackerCycle(**r._mapping) for r in found]

    # --- pages -----------------------------------------------------------------------------------

    def get(self, *, task_id: str | None = None, request_key: str | None = None) -> TaskRow | None:
        """The row with this task id or request key (give exactly one), or None."""
        if (task_id is None) == (request_key is None):
            raise ValueError("get() takes exactly one of task_id and request_key.")
        condition = tasks.c.task_id == task_id if task_id is not None else tasks.c.request_key == request_key
        with self.transaction() as conn:
            found = conn.execute(sa.select(tasks).where(condition)).first()
        return _row(found) if found is not None else None

    def query(self, query: TaskQuery) -> Page:
        """One page of rows matching the query, and how many match in all."""
        conditions = filters.where(query)
        page = (
            sa.select(tasks)
            .where(*conditions)
            .order_by(*filters.order_by(query))
            .offset(query.offset)
            .limit(query.limit)
        )
        with self.transaction() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(tasks).where(*conditions)).scalar_one()
            rows = conn.execute(page).all()
        return Page(rows=tuple(_row(r) for r in rows), total=total)

    def counts(self, query: TaskQuery) -> dict[str, int]:
        """Rows per status label under the query's other filters (its own status filter, order and page ignored).

        Every label is present, in display order, zeros included.
        """
        statement = (
            sa.select(tasks.c.state, tasks.c.status, sa.func.count())
            .where(*filters.where(query, statuses=False))
            .group_by(tasks.c.state, tasks.c.status)
        )
        with self.transaction() as conn:
            groups = conn.execute(statement).all()
        counts = dict.fromkeys(STATUS_LABELS, 0)
        for state, status, count in groups:
            counts[status_label(state, status)] += count
        return counts

    def total_cost(self, query: TaskQuery) -> int:
        """Credits of the tasks the query matches (all pages): created or queued ones, not failed creates."""
        c = tasks.c
        statement = sa.select(sa.func.coalesce(sa.func.sum(c.cost), 0)).where(*filters.where(query), self._charged())
        with self.transaction() as conn:
            return int(conn.execute(statement).scalar_one())

    def people(self, mode: Mode) -> list[tuple[str, str | None]]:
        """Everyone with a task in ``mode``: (owner, the display name of their latest task), by name."""
        latest = (
            sa.select(sa.func.max(tasks.c.id))
            .where(tasks.c.mode == mode, tasks.c.owner.is_not(None))
            .group_by(tasks.c.owner)
        )
        statement = (
            sa.select(tasks.c.owner, tasks.c.owner_name)
            .where(tasks.c.id.in_(latest))
            .order_by(sa.func.lower(sa.func.coalesce(tasks.c.owner_name, tasks.c.owner)), tasks.c.owner)
        )
        with self.transaction() as conn:
            return [(owner, name) for owner, name in conn.execute(statement).all()]

    def iter_rows(self, query: TaskQuery, *, batch: int = 500) -> Iterator[TaskRow]:
        """Every row matching the query's filters, in its order, streamed (offset and limit ignored: exports)."""
        statement = sa.select(tasks).where(*filters.where(query)).order_by(*filters.order_by(query))
        with translate_errors(self.url), self._engine.connect() as conn:
            # A server-side cursor on Postgres; SQLite's cursor is lazy already.
            conn.execution_options(stream_results=True, yield_per=batch)
            with conn.begin():
                for found in conn.execute(statement):
                    yield _row(found)
