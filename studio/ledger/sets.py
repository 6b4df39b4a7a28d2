"""The ledger's variant sets, spending, review marks and archive bookkeeping (revision 0003).

A *set* is several takes submitted together: one input and several prompts, several inputs and
one prompt, or both crossed. All its tasks are written to the ledger at once, *queued*, before any
create is sent; a dispatcher on the server then moves each queued row to "creating" (only if it is
still queued, so a cancelled take is never sent), sends it and settles it like any other create.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from luma.models import TaskStatus

from .records import TaskRow
from .schema import Mode, sets, tasks

__all__ = ["Admit", "OverBudget", "SetItem", "SetRow", "SetsMixin", "SpentSince"]

SpentSince = Callable[[datetime, "str | None"], int]
"""Credits spent (or committed) since a time, by one owner or (None) by everyone."""
Admit = Callable[[SpentSince], list[str]]
"""Given the ledger's spending, why a new spend is refused (empty: admitted)."""

# Spending checks and the writes they admit are serialised across processes by this lock (a
# transaction-scoped advisory lock on Postgres; SQLite's write lock serialises them already), so
# two people starting sets at once cannot both fit under a cap only one of them fits under.
_SPEND_LOCK = 0x4C554D4153504E44  # "LUMASPND"


class OverBudget(Exception):
    """A spend was refused by a budget or the balance; nothing was written."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class SetItem:
    """One planned take of a set."""

    prompt: str
    """The prompt of this take."""
    video_url: str
    """Its input video."""
    prompt_index: int
    """Which of the set's prompts."""
    input_index: int
    """Which of the set's inputs."""
    source: str | None = None
    """How the input was chosen ("url", "upload", "sample")."""
    source_name: str | None = None
    """The input's human name."""


@dataclass(frozen=True)
class SetRow:
    """One variant set."""

    id: str
    """The set's id (32 hex)."""
    name: str | None
    """The name the user gave it ("experiment"), if any."""
    mode: str
    """"live" or "demo"."""
    owner: str | None
    """Who made it."""
    owner_name: str | None
    """Their display name."""
    created_at: datetime
    """When it was written (UTC)."""
    prompts: tuple[str, ...]
    """The prompts, in order (the grid's rows)."""
    inputs: tuple[dict[str, Any], ...]
    """The inputs ({"url", "name", "source"}), in order (the grid's columns)."""
    crossed: bool
    """True when every prompt met every input."""
    cost_per_task: int
    """The credits each take was priced at."""

    @property
    def title(self) -> str:
        """The name, else a description of the grid."""
        if self.name:
            return self.name
        return f"{len(self.prompts)} prompt(s) x {len(self.inputs)} input(s)"


_FINAL = [int(s) for s in TaskStatus if s.is_final]


class SetsMixin:
    """Set, spending, review and archive operations of :class:`~studio.ledger.store.Ledger`."""

    # Provided by the Ledger class.
    _postgres: bool
    transaction: Any
    _clock: Any
    _lease: Any

    def create_set(
        self,
        set_id: str,
        items: Sequence[SetItem],
        *,
        mode: Mode,
        name: str | None,
        owner: str | None,
        owner_name: str | None,
        key_ref: str | None,
        api_base: str | None,
        prompts: Sequence[str],
        inputs: Sequence[dict[str, Any]],
        crossed: bool,
        cost_per_task: int,
        watermark: str | None = None,
        admit: Admit | None = None,
    ) -> int:
        """Write a set and all its takes, queued, in one transaction; returns how many were written.

        Each take's request key is ``set:<set_id>:<index>``: writing the same set twice (a double
        click, a rerun) writes nothing the second time. ``admit`` checks the spending in the same
        transaction, under a lock: raises :class:`OverBudget` (nothing written) when it refuses.
        """
        now = self._clock()
        with self.transaction(write=True) as conn:
            if conn.execute(sa.select(sets.c.id).where(sets.c.id == set_id)).first() is not None:
                return 0
            self.admit_spend(conn, mode, admit)
            conn.execute(
                sa.insert(sets).values(
                    id=set_id, name=name, mode=mode, owner=owner, owner_name=owner_name, created_at=now,
                    prompts=json.dumps(list(prompts)), inputs=json.dumps(list(inputs)), crossed=crossed,
                    cost_per_task=cost_per_task,
                )
            )
            conn.execute(
                sa.insert(tasks),
                [
                    {
                        "request_key": f"set:{set_id}:{index}",
                        "mode": mode,
                        "origin": "submitted",
                        "state": "queued",
                        "prompt": item.prompt,
                        "video_url": item.video_url,
                        "watermark": watermark,
                        "source": item.source,
                        "source_name": item.source_name,
                        "owner": owner,
                        "owner_name": owner_name,
                        "key_ref": key_ref,
                        "api_base": api_base,
                        "created_at": now,
                        "failures": 0,
                        "set_id": set_id,
                        "set_index": index,
                        "prompt_index": item.prompt_index,
                        "input_index": item.input_index,
                        "cost": cost_per_task,
                        "kept": False,
                    }
                    for index, item in enumerate(items)
                ],
            )
        return len(items)

    def claim_queued(self, *, now: datetime, limit: int, lease_owner: str, lease_seconds: float) -> list[TaskRow]:
        """Lease up to ``limit`` queued takes (oldest first) that no other dispatcher holds."""
        c = tasks.c
        free = [c.state == "queued", sa.or_(c.lease_until.is_(None), c.lease_until <= now)]
        pick = sa.select(c.id).where(*free).order_by(c.created_at, c.set_index, c.id).limit(limit)
        rows = self._lease(pick, now=now, lease_owner=lease_owner, lease_seconds=lease_seconds)
        rows.sort(key=lambda r: (r.created_at, r.set_index or 0, r.id))
        return rows

    def start_queued(self, request_key: str, *, sender: str) -> bool:
        """Move a queued take to "creating" just before its create is sent; False when it is no
        longer queued (cancelled meanwhile, or another dispatcher took it): then nothing is sent."""
        with self.transaction(write=True) as conn:
            moved = conn.execute(
                sa.update(tasks)
                .where(tasks.c.request_key == request_key, tasks.c.state == "queued")
                .values(state="creating", lease_owner=sender, lease_until=None, created_at=self._clock())
            ).rowcount
        return bool(moved)

    def release_queued(self, request_key: str) -> None:
        """Give a leased queued take back (its key was not available, say) for a later try."""
        with self.transaction(write=True) as conn:
            conn.execute(
                sa.update(tasks)
                .where(tasks.c.request_key == request_key, tasks.c.state == "queued")
                .values(lease_owner=None, lease_until=None)
            )

    def cancel_queued(self, *, set_id: str | None = None, request_key: str | None = None) -> int:
        """Cancel takes not yet sent (of a set, or one); returns how many. Sent ones cannot be."""
        if set_id is None and request_key is None:
            raise ValueError("cancel_queued needs a set id or a request key.")
        condition = tasks.c.set_id == set_id if set_id is not None else tasks.c.request_key == request_key
        with self.transaction(write=True) as conn:
            return int(
                conn.execute(
                    sa.update(tasks).where(condition, tasks.c.state == "queued").values(state="cancelled")
                ).rowcount
            )

    def sets(self, mode: Mode, *, owner: str | None = None, limit: int = 100) -> list[SetRow]:
        """Sets of this mode, newest first (of one owner, or everyone's)."""
        statement = sa.select(sets).where(sets.c.mode == mode)
        if owner is not None:
            statement = statement.where(sets.c.owner == owner)
        statement = statement.order_by(sets.c.created_at.desc()).limit(limit)
        with self.transaction() as conn:
            return [_set(r) for r in conn.execute(statement).all()]

    def get_set(self, set_id: str) -> SetRow | None:
        """One set."""
        with self.transaction() as conn:
            found = conn.execute(sa.select(sets).where(sets.c.id == set_id)).first()
        return _set(found) if found is not None else None

    def set_rows(self, set_id: str) -> list[TaskRow]:
        """A set's takes, in plan order."""
        from .store import _row

        with self.transaction() as conn:
            found = conn.execute(sa.select(tasks).where(tasks.c.set_id == set_id).order_by(tasks.c.set_index)).all()
        return [_row(r) for r in found]

    # -- review marks ----------------------------------------------------------------------------

    def set_kept(self, task_id: str, kept: bool) -> None:
        """Star (or unstar) a take."""
        with self.transaction(write=True) as conn:
            conn.execute(sa.update(tasks).where(tasks.c.task_id == task_id).values(kept=kept))

    def set_labels(self, task_id: str, labels: Sequence[str]) -> None:
        """Replace a take's labels (trimmed, de-duplicated, at most 10 of 40 characters)."""
        clean: list[str] = []
        for label in labels:
            text = " ".join(str(label).split())[:40]
            if text and text not in clean:
                clean.append(text)
        with self.transaction(write=True) as conn:
            conn.execute(
                sa.update(tasks).where(tasks.c.task_id == task_id).values(labels=json.dumps(clean[:10]) if clean else None)
            )

    def creating(self, key_ref: str | None) -> int:
        """Creates of this key being sent right now (to tell whether one create is in flight alone)."""
        c = tasks.c
        condition = c.key_ref.is_(None) if key_ref is None else c.key_ref == key_ref
        with self.transaction() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(c.state == "creating", condition)).scalar_one())

    def set_callback_token(self, request_key: str, token_hash: str) -> None:
        """A queued take about to be sent gets its callback secret (the hash; see studio.web)."""
        with self.transaction(write=True) as conn:
            conn.execute(sa.update(tasks).where(tasks.c.request_key == request_key).values(callback_token=token_hash))

    def set_cost(self, request_key: str, cost: int) -> None:
        """Record what a create cost (the balance's change, when one create was in flight alone)."""
        with self.transaction(write=True) as conn:
            conn.execute(sa.update(tasks).where(tasks.c.request_key == request_key).values(cost=cost))

    # -- spending --------------------------------------------------------------------------------

    def spent(self, mode: Mode, *, since: datetime, owner: str | None = None) -> int:
        """Credits spent since ``since``: created tasks (the provider charges on create), less
        those it reports as not started (status 2, not charged); queued takes count as committed."""
        with self.transaction() as conn:
            return self._spent(conn, mode, since, owner)

    def spent_by_window(self, mode: Mode, *, day: datetime, month: datetime, owner: str) -> tuple[int, int, int, int]:
        """:meth:`spent` since ``day`` by ``owner``, since ``month`` by ``owner``, since ``day`` by
        everyone and since ``month`` by everyone, in one read (every page's sidebar shows all four)."""
        c = tasks.c
        start = min(day, month)

        def total(since: datetime, mine: bool) -> Any:
            window = c.created_at >= since if since > start else sa.true()
            picked = sa.and_(window, c.owner == owner) if mine else window
            return sa.func.coalesce(sa.func.sum(sa.case((picked, c.cost), else_=0)), 0)

        statement = sa.select(total(day, True), total(month, True), total(day, False), total(month, False)).where(
            c.mode == mode, c.created_at >= start, self._charged()
        )
        with self.transaction() as conn:
            row = conn.execute(statement).one()
        return int(row[0]), int(row[1]), int(row[2]), int(row[3])

    def admit_spend(self, conn: Any, mode: Mode, admit: Admit | None) -> None:
        """Run ``admit`` against the spending as of now, inside the caller's write transaction,
        after taking the spending lock; raises :class:`OverBudget` when it refuses."""
        if admit is None:
            return
        if self._postgres:
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SPEND_LOCK})
        problems = admit(lambda since, owner: self._spent(conn, mode, since, owner))
        if problems:
            raise OverBudget(problems)

    @staticmethod
    def _charged() -> Any:
        # Created (the provider charges on create) unless it reported "not started" (status 2,
        # not charged); queued takes count as committed.
        c = tasks.c
        return sa.or_(
            sa.and_(c.state.in_(("created", "creating")), sa.or_(c.status.is_(None), c.status != 2)),
            c.state == "queued",
        )

    @classmethod
    def _spent(cls, conn: Any, mode: Mode, since: datetime, owner: str | None) -> int:
        c = tasks.c
        statement = sa.select(sa.func.coalesce(sa.func.sum(c.cost), 0)).where(
            c.mode == mode, c.created_at >= since, cls._charged()
        )
        if owner is not None:
            statement = statement.where(c.owner == owner)
        return int(conn.execute(statement).scalar_one())

    def history(self, mode: Mode, *, since: datetime, until: datetime) -> list[TaskRow]:
        """Every task written in [since, until), for the overview's charts (bounded by the range)."""
        from .store import _row

        c = tasks.c
        statement = sa.select(tasks).where(c.mode == mode, c.created_at >= since, c.created_at < until).order_by(c.created_at)
        with self.transaction() as conn:
            return [_row(r) for r in conn.execute(statement).all()]

    # -- archive ---------------------------------------------------------------------------------

    def unarchived(self, limit: int) -> list[TaskRow]:
        """Finished, successful tasks whose result has no archived copy yet (oldest first)."""
        from .store import _row

        c = tasks.c
        statement = (
            sa.select(tasks)
            .where(c.status.in_((int(TaskStatus.SUCCESS), int(TaskStatus.CALLBACK_FAILED))), c.archived_path.is_(None),
                   c.result_urls.is_not(None))
            .order_by(c.completed_at, c.id)
            .limit(limit)
        )
        with self.transaction() as conn:
            return [_row(r) for r in conn.execute(statement).all()]

    def mark_archived(self, task_id: str, location: str, now: datetime) -> None:
        """Record where a result's archived copy lives."""
        with self.transaction(write=True) as conn:
            conn.execute(sa.update(tasks).where(tasks.c.task_id == task_id).values(archived_path=location, archived_at=now))


def _set(row: Any) -> SetRow:
    m = row._mapping
    return SetRow(
        id=m["id"], name=m["name"], mode=m["mode"], owner=m["owner"], owner_name=m["owner_name"],
        created_at=m["created_at"], prompts=tuple(json.loads(m["prompts"])), inputs=tuple(json.loads(m["inputs"])),
        crossed=bool(m["crossed"]), cost_per_task=int(m["cost_per_task"]),
    )
