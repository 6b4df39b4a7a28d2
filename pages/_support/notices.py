"""What the frame shows on every page: spending in the sidebar, and news of my tasks.

``notifier`` is a small fragment that re-reads the ledger every few seconds: a toast when one of
my tasks finishes, on whatever page I am on, and the browser tab's title showing how many of my
tasks are still running. ``show_spending`` puts credits spent today and this month (mine and
everyone's) in the sidebar, with the budgets when the deployment sets them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from studio.ledger import LedgerUnavailable, TaskQuery
from studio.text import plain

from . import runtime
from .components import tab_title

__all__ = ["notifier", "show_spending"]

SEEN = "notices_seen_until"
TITLE = "Luma video studio"
RUNNING = ("Queued", "Creating", "Not read yet", "Generating")


def show_spending(settings: runtime.Settings) -> None:
    """Credits spent today and this month, for me and for everyone (with the caps, when set)."""
    who, _ = runtime.owner()
    try:
        spent = runtime.spent(settings, who)
    except LedgerUnavailable:
        return
    budget = runtime.budget()

    def of(value: int, cap: int | None) -> str:
        return f"{value:,}" + (f" of {cap:,}" if cap is not None else "")

    st.caption(
        f":material/payments: **Spent today** {of(spent.today_mine, budget.daily_per_person)} (you) · "
        f"{of(spent.today_all, budget.daily)} (everyone)  \n"
        f"**This month** {of(spent.month_mine, budget.monthly_per_person)} (you) · "
        f"{of(spent.month_all, budget.monthly)} (everyone) credits"
        + ("" if not settings.demo else " (demo credits cost nothing)")
    )


@st.fragment(run_every=3.0)
def notifier() -> None:
    """Toasts for my tasks that finished since the last look; the tab title counts my running ones."""
    settings = runtime.settings()
    who, _ = runtime.owner()
    now = datetime.now(UTC)
    seen = st.session_state.get(SEEN)
    try:
        ledger = runtime.studio(settings).ledger
        running = sum(ledger.counts(TaskQuery(mode=settings.mode, owner=who)).get(label, 0) for label in RUNNING)
        finished = [] if seen is None else [
            row for row in ledger.query(TaskQuery(mode=settings.mode, owner=who, sort="completed", limit=20)).rows
            if row.completed_at is not None and row.checked_at is not None and row.checked_at > seen
        ]
    except LedgerUnavailable:
        return
    st.session_state[SEEN] = now
    for row in finished[:3]:
        ok = row.status is not None and row.status.succeeded
        st.toast(
            f"{'Finished' if ok else 'Failed'}: {plain(row.prompt or row.task_id or 'a task', limit=60)}",
            icon=":material/check_circle:" if ok else ":material/error:",
        )
    if len(finished) > 3:
        st.toast(f"{len(finished) - 3} more of your tasks finished.", icon=":material/done_all:")
    if running:
        # Mounted only while something runs: unmounted, the tab shows the page's own title, and a
        # first page (nothing running) loads no component code at all.
        tab_title(f"({running} running) {TITLE}", key="notices_title")
