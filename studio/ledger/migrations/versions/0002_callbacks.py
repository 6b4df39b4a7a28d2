"""Callbacks: each task may carry a secret the provider's callback proves it knows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

``callback_token`` is the SHA-256 of the per-task secret in the callback URL this dashboard gave
the provider (the secret itself is never stored); ``callback_at`` is when a valid callback last
arrived. Both are nullable: rows written before this revision keep being polled as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("callback_token", sa.String(64), nullable=True))
        batch.add_column(sa.Column("callback_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_tasks_callback_token", ["callback_token"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_callback_token")
        batch.drop_column("callback_at")
        batch.drop_column("callback_token")
