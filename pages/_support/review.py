"""Reviewing takes: one take's card in a set's grid and "use it as the next input" (Streamlit glue).

Videos come through :mod:`.results` (the provider while it keeps them, then the archive).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import streamlit as st

from luma.errors import LumaError
from studio.archive import describe, expiry_text
from studio.ledger import TaskRow
from studio.text import plain

from . import runtime
from .feedback import show_error
from .results import shown_result
from .task_views import badge_color

__all__ = ["next_input", "take_card"]


def _toggle_kept(task_id: str) -> None:
    kept = bool(st.session_state.get(f"take-kept-{task_id}"))
    runtime.ledger().set_kept(task_id, kept)


def _save_labels(task_id: str) -> None:
    runtime.ledger().set_labels(task_id, st.session_state.get(f"take-labels-{task_id}") or [])


def _compare(task_id: str) -> None:
    st.session_state["sets_compare"] = task_id


def take_card(settings: runtime.Settings, service: Any, row: TaskRow) -> None:
    """One take: its status, result (playable), star, labels, and actions."""
    with st.container(border=True, key=f"take-{row.request_key.replace(':', '-')}"):
        st.badge(row.status_label, color=badge_color(row))
        if row.state == "failed":
            st.caption(f"Refused: {plain(row.create_error or 'not created')}")
        if not row.result_url or not row.task_id:
            return
        shown = shown_result(settings, row)
        if shown is not None:
            st.video(shown, alt=f"Result of take {(row.set_index or 0) + 1}")
        elif settings.demo:
            st.caption("The result could not be loaded.")
        else:
            st.caption("The provider no longer keeps this result and no archived copy exists "
                       "(set [archive] to keep copies of results).")
        kept_key, labels_key = f"take-kept-{row.task_id}", f"take-labels-{row.task_id}"
        st.session_state.setdefault(kept_key, row.kept)
        st.session_state.setdefault(labels_key, list(row.label_list))
        st.toggle(":material/star: Keep", key=kept_key, on_change=_toggle_kept, args=(row.task_id,))
        options = sorted(set(row.label_list) | {"favourite", "client", "retry"})
        st.multiselect("Labels", options, key=labels_key, accept_new_options=True, on_change=_save_labels,
                       args=(row.task_id,), placeholder="Add a label")
        with st.container(horizontal=True):
            st.button("Compare", key=f"take-compare-{row.task_id}", on_click=_compare, args=(row.task_id,),
                      icon=":material/compare:")
        when = expiry_text(row, datetime.now(UTC))
        where = f" · archived: {plain(describe(row.archived_path))}" if row.archived_path else ""
        st.caption(f"{when}{where}")


def next_input(settings: runtime.Settings, row: TaskRow) -> None:
    """Pre-fill Submit with this take's result as the video (a fresh download link in live mode)."""
    url = row.result_url
    if not url:
        return
    if not settings.demo:
        try:
            url = runtime.client().get_download_url(url)
        except LumaError as err:
            show_error(err, context="No fresh link to the result could be made.")
            return
    st.session_state[runtime.SUBMIT_PREFILL] = {
        "submit_mode": "One task",
        "submit_source": "url",
        "submit_video_url": url,
        "submit_prompt": "",
        "submit_watermark": row.watermark or "",
        "submit_callback_url": "",
    }
    st.switch_page("pages/submit.py")
