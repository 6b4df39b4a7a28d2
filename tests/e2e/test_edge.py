"""The web edge of a real `streamlit run app.py`: media only for the browser that owns it, forged
websocket messages refused without a traceback, and outside text never turned into a link."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from .conftest import SETTLED_JS, Dashboard

pytestmark = pytest.mark.e2e


def settle(page: Any) -> None:
    page.wait_for_function(SETTLED_JS, timeout=60_000)


def test_media_files_are_served_only_to_the_browser_whose_session_shows_them(page: Any, dashboard: Dashboard) -> None:
    page.goto(dashboard.url)
    settle(page)
    # The demo's sample preview is handed over as bytes, so Streamlit serves it under /media/.
    page.wait_for_function("() => [...document.querySelectorAll('video')].some(v => v.currentSrc)", timeout=60_000)
    source = page.eval_on_selector("video", "v => v.currentSrc")
    assert "/media/" in source
    assert page.request.get(source).status == 200, "the page's own browser gets its file"
    # The same URL from anywhere else: no cookie, or a cookie of a browser with no session.
    assert httpx.get(source, timeout=10).status_code == 403
    with httpx.Client(timeout=10) as stranger:
        assert "luma_browser" in stranger.get(dashboard.url).cookies, "the page hands out an id"
        assert stranger.get(source).status_code == 403
    cookie = next(c for c in page.context.cookies() if c["name"] == "luma_browser")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    # Once this browser's last session ends, the file is no longer served, even with the cookie.
    page.goto("about:blank")
    jar = {cookie["name"]: cookie["value"]}
    deadline = time.monotonic() + 30
    while httpx.get(source, cookies=jar, timeout=10).status_code != 403:
        assert time.monotonic() < deadline, "the file outlived the session that showed it"
        time.sleep(0.5)


async def _send_forged(url: str) -> None:
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg

    def rerun(widgets: list[tuple[str, str, Any]] = ()) -> bytes:  # type: ignore[assignment]
        message = BackMsg()
        for widget_id, field, value in widgets:
            state = message.rerun_script.widget_states.widgets.add()
            state.id = widget_id
            setattr(state, field, value)
        message.rerun_script.query_string = ""
        return message.SerializeToString()

    clear = BackMsg()
    clear.clear_cache = True
    stream = url.replace("http://", "ws://") + "/_stcore/stream"
    forged = [
        [rerun(), clear.SerializeToString()],
        [rerun(), rerun([("submit_source", "int_value", 7), ("jobs_table", "json_value", "{not json")])],
        [b"\x00\x01 not a protobuf"],
    ]
    for messages in forged:
        async with websockets.connect(stream, subprotocols=["streamlit"]) as ws:
            for raw in messages:
                await ws.send(raw)
                try:
                    while True:
                        await asyncio.wait_for(ws.recv(), 2.0)
                except Exception:  # noqa: BLE001 - timeout or the server closing: both fine here
                    pass


def test_forged_websocket_messages_log_no_traceback_and_clear_nothing_shared(dashboard: Dashboard) -> None:
    dashboard.new_log()
    before = httpx.get(f"{dashboard.url}/_stcore/health", timeout=10).status_code
    # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _send_forged(dashboard.url)).result(timeout=120)
    logged = dashboard.new_log()
    assert before == 200
    assert "Traceback" not in logged, logged
    assert "Ignored" in logged, "the forged widget values were noticed and dropped"


def test_pasted_links_and_formatting_are_shown_as_text(page: Any, dashboard: Dashboard) -> None:
    page.goto(f"{dashboard.url}/jobs")
    settle(page)
    page.get_by_test_id("stExpander").get_by_text("Add existing task ids").click()
    box = page.locator(".st-key-jobs_import_text textarea")
    box.fill("[click](https://evil.example/x) :red[FAKE] www.evil.example")
    page.locator(".st-key-jobs_import_button button").click()
    settle(page)
    alert = page.locator('[data-testid="stAlert"]').filter(has_text="Not task ids")
    expect(alert).to_be_visible()
    assert alert.locator("a").count() == 0, "no link may come from pasted text"
    # Shown as typed (the word joiners that break autolinking are invisible).
    assert "[click](https://evil.example/x)" in alert.inner_text().replace("\u2060", "")
