"""Reviewing takes: one take's card in a set's grid, its videos, and "use it as the next input".

Streamlit glue. Videos come from the provider while it keeps them (14 days), else from the
archive (:mod:`studio.archive`); in demo mode from the in-process emulator as bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import streamlit as st

from luma import LumaClient
from luma.errors import LumaError
from studio.archive import describe, expires_at, expiry_text, playable
from studio.ledger import TaskRow
from studio.service import DEMO_KEY
from studio.text import plain

from . import runtime
from .feedback import show_error
from .task_views import badge_color

__all__ = ["next_input", "result_bytes", "shown_result", "take_card", "video_source"]


def _fetcher(settings: runtime.Settings) -> Any:
    """A function fetching a provider file URL's bytes (no Streamlit inside: exports run in threads)."""
    service = runtime.studio(settings)
    if settings.demo:
        client = LumaClient(DEMO_KEY, transport=service.demo_transport())

        def fetch_demo(url: str) -> bytes:
            return client.fetch(url)

        return fetch_demo
    live = LumaClient(settings.api_key, api_base=settings.api_base, upload_base=settings.upload_base,
                      transport=service.network, timeout=runtime.ACTION_TIMEOUT)

    def fetch_live(url: str) -> bytes:
        # Result URLs are the provider's; a fresh download link is what can be fetched.
        return live.fetch(live.get_download_url(url))

    return fetch_live


def result_bytes(settings: runtime.Settings, row: TaskRow) -> bytes | None:
    """The result's bytes: the provider's copy while it exists, else the archived one, else None."""
    if not row.result_url:
        return None
    service = runtime.studio(settings)
    fetch = _fetcher(settings)
    archive = service.archive
    try:
        return playable(row, lambda r: fetch(r.result_url), archive) if archive is not None else fetch(row.result_url)
    except LumaError:
        return None


def shown_result(settings: runtime.Settings, row: TaskRow) -> str | bytes | None:
    """What ``st.video`` plays for a take's result: in live mode the provider's URL while it keeps
    the file (the browser fetches it; the server downloads nothing), then the archived copy; in
    demo mode the emulator's bytes. Cached per task: a grid refreshing every 2 s re-reads nothing."""
    if not row.result_url or not row.task_id:
        return None
    if not settings.demo:
        until = expires_at(row)
        if until is None or until > datetime.now(UTC):
            return row.result_url
    try:
        return _cached_result(settings.fingerprint, row.task_id, row.result_url, row.archived_path or "")
    except _NotLoaded:
        return None


class _NotLoaded(Exception):
    """Raised instead of returning None, so a failed load is not cached (the next run tries again)."""


@st.cache_data(max_entries=64, ttl=3600, show_spinner=False)
def _cached_result(_fingerprint: str, task_id: str, result_url: str, archived: str) -> bytes:
    # Keyed by the settings, the task, its result and its archived copy: any change reads afresh.
    row = runtime.ledger().get(task_id=task_id)
    data = result_bytes(runtime.settings(), row) if row is not None else None
    if data is None:
        raise _NotLoaded(task_id)
    return data


def video_source(settings: runtime.Settings, row: TaskRow, which: str, *, key: str) -> str | None:
    """A URL the browser can play for the take's input or result (media URLs for bytes)."""
    from .components import media_url

    url = row.result_url if which == "result" else (row.video_url or row.origin_url)
    if not url:
        return None
    if not settings.demo and which == "input":
        return url
    data = shown_result(settings, row) if which == "result" else _input_bytes(settings, url)
    if isinstance(data, str) or data is None:
        return data
    return media_url(data, key=key)


def _input_bytes(settings: runtime.Settings, url: str) -> bytes | None:
    try:
        return runtime.fetch_bytes(url)
    except LumaError:
        return None


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
