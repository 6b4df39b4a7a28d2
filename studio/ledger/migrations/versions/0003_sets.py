"""Variant sets, spending, review and archive: what issue 12 needs in the ledger.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

``sets``: one row per variant set (several takes submitted together). ``tasks`` gains the set
it belongs to and its place in the set's grid, its cost in credits, the reviewer's marks (kept,
labels) and where an archived copy of its result lives. Every new column is nullable or has a
default: rows from earlier revisions keep their meaning.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sets",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("owner", sa.String(320), nullable=True),
        sa.Column("owner_name", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prompts", sa.Text, nullable=False),
        sa.Column("inputs", sa.Text, nullable=False),
        sa.Column("crossed", sa.Boolean, nullable=False),
        sa.Column("cost_per_task", sa.Integer, nullable=False),
    )
    op.create_index("ix_sets_mode_created_at", "sets", ["mode", "created_at"])
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("set_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("set_index", sa.Integer, nullable=True))
        batch.add_column(sa.Column("prompt_index", sa.Integer, nullable=True))
        batch.add_column(sa.Column("input_index", sa.Integer, nullable=True))
        batch.add_column(sa.Column("cost", sa.Integer, nullable=True))
        batch.add_column(sa.Column("kept", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("labels", sa.Text, nullable=True))
        batch.add_column(sa.Column("archived_path", sa.Text, nullable=True))
        batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_tasks_set_id", ["set_id"])


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index("ix_tasks_set_id")
        for column in ("archived_at", "archived_path", "labels", "kept", "cost", "input_index", "prompt_index",
                       "set_index", "set_id"):
            batch.drop_column(column)
    op.drop_index("ix_sets_mode_created_at", table_name="sets")
    op.drop_table("sets")
