"""The task ledger: tasks, the cross-process create limiter, and tracker health.

Revision ID: 0001
Revises:
Create Date: 2026-07-01

Types are spelled out here rather than imported from ``schema.py``: a migration must keep
creating the same tables after the code's idea of them has moved on.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_key", sa.String(200), nullable=False),
        sa.Column("task_id", sa.String(64), nullable=True),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("status", sa.SmallInteger, nullable=True),
        sa.Column("prompt", sa.Text, nullable=True),
        sa.Column("video_url", sa.Text, nullable=True),
        sa.Column("callback_url", sa.Text, nullable=True),
        sa.Column("watermark", sa.Text, nullable=True),
        sa.Column("source", sa.String(16), nullable=True),
        sa.Column("source_name", sa.Text, nullable=True),
        sa.Column("owner", sa.String(320), nullable=True),
        sa.Column("owner_name", sa.Text, nullable=True),
        sa.Column("key_ref", sa.String(128), nullable=True),
        sa.Column("api_base", sa.Text, nullable=True),
        _time("created_at", nullable=False),
        _time("submitted_at"),
        _time("provider_created_at"),
        _time("completed_at"),
        _time("checked_at"),
        _time("attempted_at"),
        _time("next_check_at"),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("result_urls", sa.Text, nullable=True),
        sa.Column("origin_url", sa.Text, nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("create_error", sa.Text, nullable=True),
        sa.Column("read_error", sa.Text, nullable=True),
        sa.Column("read_error_retryable", sa.Boolean, nullable=True),
        sa.Column("waiting", sa.String(32), nullable=True),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        _time("lease_until"),
        sa.UniqueConstraint("request_key", name="uq_tasks_request_key"),
        sa.UniqueConstraint("task_id", name="uq_tasks_task_id"),
    )
    op.create_index("ix_tasks_next_check_at", "tasks", ["next_check_at"])
    op.create_index("ix_tasks_mode_created_at", "tasks", ["mode", "created_at"])
    op.create_index("ix_tasks_mode_owner_created_at", "tasks", ["mode", "owner", "created_at"])
    op.create_index("ix_tasks_status", "tasks", ["status"])
    op.create_index("ix_tasks_key_ref", "tasks", ["key_ref"])

    op.create_table(
        "create_keys",
        sa.Column("key_ref", sa.String(128), primary_key=True),
        _time("touched_at", nullable=False),
    )
    op.create_table(
        "create_slots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "key_ref",
            sa.String(128),
            sa.ForeignKey("create_keys.key_ref", ondelete="CASCADE", name="fk_create_slots_key_ref"),
            nullable=False,
        ),
        _time("reserved_at", nullable=False),
        _time("settled_at"),
    )
    op.create_index("ix_create_slots_key_ref", "create_slots", ["key_ref"])

    op.create_table(
        "tracker_cycles",
        sa.Column("process", sa.String(128), primary_key=True),
        sa.Column("mode", sa.String(8), nullable=True),
        _time("started_at", nullable=False),
        _time("cycle_at", nullable=False),
        sa.Column("lag_seconds", sa.Float, nullable=False),
        sa.Column("claimed", sa.Integer, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("cycles", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tracker_cycles")
    op.drop_index("ix_create_slots_key_ref", table_name="create_slots")
    op.drop_table("create_slots")
    op.drop_table("create_keys")
    for name in (
        "ix_tasks_key_ref",
        "ix_tasks_status",
        "ix_tasks_mode_owner_created_at",
        "ix_tasks_mode_created_at",
        "ix_tasks_next_check_at",
    ):
        op.drop_index(name, table_name="tasks")
    op.drop_table("tasks")
