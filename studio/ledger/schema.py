"""The ledger's tables as the code reads and writes them (the shape at the newest migration).

The migrations in ``migrations/versions`` create this shape step by step; a test compares the
two, so a column added here without a revision (or the reverse) fails. Allowed values of the
text columns (``mode``, ``origin``, ``state``) are checked in Python, not by CHECK constraints:
SQLite can only change a constraint by rebuilding the table, and later issues will add values.

``tasks``
    One row per task anyone submitted, imported or linked, live and demo apart (``mode``).
``create_keys`` / ``create_slots``
    The cross-process create limiter: one row per API key (``key_ref``, a hash) to lock, and one
    per create slot of the current window.
``tracker_cycles``
    One row per tracker process: when it last finished a cycle and how late it was (for health).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

__all__ = [
    "CREATE_STATES",
    "CreateState",
    "MODES",
    "Mode",
    "ORIGINS",
    "Origin",
    "UTCDateTime",
    "create_keys",
    "create_slots",
    "metadata",
    "sets",
    "tasks",
    "tracker_cycles",
]

Mode = Literal["live", "demo"]
Origin = Literal["submitted", "imported", "link"]
CreateState = Literal["queued", "creating", "created", "failed", "unknown", "cancelled"]

MODES: Final[tuple[str, ...]] = ("live", "demo")
ORIGINS: Final[tuple[str, ...]] = ("submitted", "imported", "link")
CREATE_STATES: Final[tuple[str, ...]] = ("queued", "creating", "created", "failed", "unknown", "cancelled")


class UTCDateTime(sa.TypeDecorator[datetime]):
    """An aware UTC datetime on both backends.

    Postgres keeps ``timestamptz``. SQLite has no time type: SQLAlchemy stores fixed-width text
    (always with microseconds, so text order is time order), and drops the offset, so values go
    in converted to naive UTC and come back marked UTC. A naive value is refused rather than
    guessed at: local-time mistakes would silently shift schedules by hours.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("The ledger stores aware datetimes only (got a naive one).")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # a value written by hand or by another tool
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Constraint names spelled the way the migrations spell them, so the two compare equal.
metadata = sa.MetaData(
    naming_convention={
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
    }
)

# An email is at most 320 characters; opaque browser ids are far shorter.
_OWNER_LEN = 320
# Hex digests (sha256 = 64) with room for a scheme prefix.
_KEY_REF_LEN = 128

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_key", sa.String(200), nullable=False, unique=True),
    sa.Column("task_id", sa.String(64), nullable=True, unique=True),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("status", sa.SmallInteger, nullable=True),
    # What was asked for (an imported task learns these from its first read).
    sa.Column("prompt", sa.Text, nullable=True),
    sa.Column("video_url", sa.Text, nullable=True),
    sa.Column("callback_url", sa.Text, nullable=True),
    sa.Column("watermark", sa.Text, nullable=True),
    sa.Column("source", sa.String(16), nullable=True),
    sa.Column("source_name", sa.Text, nullable=True),
    # Who and which key.
    sa.Column("owner", sa.String(_OWNER_LEN), nullable=True),
    sa.Column("owner_name", sa.Text, nullable=True),
    sa.Column("key_ref", sa.String(_KEY_REF_LEN), nullable=True),
    sa.Column("api_base", sa.Text, nullable=True),
    # Times.
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("submitted_at", UTCDateTime, nullable=True),
    sa.Column("provider_created_at", UTCDateTime, nullable=True),
    sa.Column("completed_at", UTCDateTime, nullable=True),
    sa.Column("checked_at", UTCDateTime, nullable=True),
    sa.Column("attempted_at", UTCDateTime, nullable=True),
    sa.Column("next_check_at", UTCDateTime, nullable=True),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    # Results and errors.
    sa.Column("result_urls", sa.Text, nullable=True),
    sa.Column("origin_url", sa.Text, nullable=True),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("error_message", sa.Text, nullable=True),
    sa.Column("create_error", sa.Text, nullable=True),
    sa.Column("read_error", sa.Text, nullable=True),
    sa.Column("read_error_retryable", sa.Boolean, nullable=True),
    sa.Column("waiting", sa.String(32), nullable=True),
    # The tracker's lease.
    sa.Column("lease_owner", sa.String(128), nullable=True),
    sa.Column("lease_until", UTCDateTime, nullable=True),
    # Callbacks (revision 0002): the hash of the task's callback secret, and the last valid callback.
    sa.Column("callback_token", sa.String(64), nullable=True),
    sa.Column("callback_at", UTCDateTime, nullable=True),
    # Variant sets, spending, review and archive (revision 0003).
    sa.Column("set_id", sa.String(32), nullable=True),
    sa.Column("set_index", sa.Integer, nullable=True),
    sa.Column("prompt_index", sa.Integer, nullable=True),
    sa.Column("input_index", sa.Integer, nullable=True),
    sa.Column("cost", sa.Integer, nullable=True),
    sa.Column("kept", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("labels", sa.Text, nullable=True),
    sa.Column("archived_path", sa.Text, nullable=True),
    sa.Column("archived_at", UTCDateTime, nullable=True),
    sa.Index("ix_tasks_next_check_at", "next_check_at"),
    sa.Index("ix_tasks_mode_created_at", "mode", "created_at"),
    sa.Index("ix_tasks_mode_owner_created_at", "mode", "owner", "created_at"),
    sa.Index("ix_tasks_mode_owner_completed_at", "mode", "owner", "completed_at"),
    sa.Index("ix_tasks_mode_owner_state_status_cost", "mode", "owner", "state", "status", "cost"),
    sa.Index("ix_tasks_status", "status"),
    sa.Index("ix_tasks_key_ref", "key_ref"),
    sa.Index("ix_tasks_callback_token", "callback_token", unique=True),
    sa.Index("ix_tasks_set_id", "set_id"),
)

sets = sa.Table(
    "sets",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.Text, nullable=True),
    sa.Column("mode", sa.String(8), nullable=False),
    sa.Column("owner", sa.String(_OWNER_LEN), nullable=True),
    sa.Column("owner_name", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("prompts", sa.Text, nullable=False),
    sa.Column("inputs", sa.Text, nullable=False),
    sa.Column("crossed", sa.Boolean, nullable=False),
    sa.Column("cost_per_task", sa.Integer, nullable=False),
    sa.Index("ix_sets_mode_created_at", "mode", "created_at"),
)

create_keys = sa.Table(
    "create_keys",
    metadata,
    sa.Column("key_ref", sa.String(_KEY_REF_LEN), primary_key=True),
    sa.Column("touched_at", UTCDateTime, nullable=False),
)

create_slots = sa.Table(
    "create_slots",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "key_ref",
        sa.String(_KEY_REF_LEN),
        sa.ForeignKey("create_keys.key_ref", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("reserved_at", UTCDateTime, nullable=False),
    sa.Column("settled_at", UTCDateTime, nullable=True),
    sa.Index("ix_create_slots_key_ref", "key_ref"),
)

tracker_cycles = sa.Table(
    "tracker_cycles",
    metadata,
    sa.Column("process", sa.String(128), primary_key=True),
    sa.Column("mode", sa.String(8), nullable=True),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("cycle_at", UTCDateTime, nullable=False),
    sa.Column("lag_seconds", sa.Float, nullable=False),
    sa.Column("claimed", sa.Integer, nullable=False),
    sa.Column("failed", sa.Integer, nullable=False),
    sa.Column("cycles", sa.Integer, nullable=False),
)
