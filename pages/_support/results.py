"""Result videos for the pages: what plays, what downloads, what goes in a ZIP (Streamlit glue).

A result comes from the provider while it keeps it (14 days), then from the archive
(:mod:`studio.archive`), if the deployment keeps one. In live mode the browser plays the
provider's URL itself while it is valid (the server downloads nothing); after that, and always in
demo mode (the emulator lives inside the server), the page hands the video over as bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from luma.errors import LumaError
from studio.archive import expires_at, playable
from studio.ledger import TaskRow

from . import runtime
from .components import media_url

__all__ = ["bundle_fetcher", "result_bytes", "shown_result", "video_source"]


def bundle_fetcher(settings: runtime.Settings) -> Callable[[Any], bytes | None]:
    """A Streamlit-free function giving a row's result bytes (for a ZIP built when clicked)."""
    service = runtime.studio(settings)

    def fetch(row: Any) -> bytes | None:
        if service.archive is not None:
            return playable(row, service.fetch_result, service.archive)
        return service.fetch_result(row)

    return fetch


def result_bytes(settings: runtime.Settings, row: TaskRow) -> bytes | None:
    """The result's bytes: the provider's copy while it exists, else the archived one, else None."""
    if not row.result_url:
        return None
    try:
        return bundle_fetcher(settings)(row)
    except LumaError:
        return None


def shown_result(settings: runtime.Settings, row: TaskRow) -> str | bytes | None:
    """What ``st.video`` plays for a task's result (see the module docstring). Bytes are cached
    per task, so a page refreshing every 2 s reads nothing again."""
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
    """A URL the browser can play for the task's input or result (a media URL for bytes)."""
    url = row.result_url if which == "result" else (row.video_url or row.origin_url)
    if not url:
        return None
    if not settings.demo and which == "input":
        return url
    data = shown_result(settings, row) if which == "result" else _input_bytes(url)
    if isinstance(data, str) or data is None:
        return data
    return media_url(data, key=key)


def _input_bytes(url: str) -> bytes | None:
    try:
        return runtime.fetch_bytes(url)
    except LumaError:
        return None
