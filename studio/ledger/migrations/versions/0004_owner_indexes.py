"""Indexes for what every page asks of one person's tasks: the newest finished, and the counts.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

With 10,000 tasks of one person, every page sorted them by completion time for the notices
(46 ms of the Jobs page's 340 ms, ``python -m bench --only jobs``), and counted them by status
and summed their cost from the table rows (15 ms each). Now the newest twenty are read off
the first index, and counts and cost totals off the second alone (it holds every column they read).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_tasks_mode_owner_completed_at", "tasks", ["mode", "owner", "completed_at"])
    op.create_index("ix_tasks_mode_owner_state_status_cost", "tasks", ["mode", "owner", "state", "status", "cost"])


def downgrade() -> None:
    op.drop_index("ix_tasks_mode_owner_state_status_cost", table_name="tasks")
    op.drop_index("ix_tasks_mode_owner_completed_at", table_name="tasks")
