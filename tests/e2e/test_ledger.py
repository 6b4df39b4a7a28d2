"""The ledger in a real browser: a server killed with ``kill -9`` and restarted loses nothing, and
open tabs do not add status calls.

These tests run the dashboard *live* against a standalone emulator process (``python -m
luma.emulator``), which outlives the dashboard the way the real provider would, and count what
reaches it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from bench.common import EmulatorProcess
from luma import CreateLimiter, LumaClient
from studio.ledger import Ledger, TaskQuery

from .conftest import SETTLED_JS, _stop, kill_hard, launch

pytestmark = pytest.mark.e2e

KEY = "sk-e2e-ledger-0123456789"
GRID_ROWS_JS = """() => [...document.querySelectorAll('.st-key-jobs_table [role=row]')]
  .map(row => [...row.querySelectorAll('[role=gridcell]')].map(cell => cell.textContent))
  .filter(cells => cells.length > 0)"""


def settle(page: Any) -> None:
    page.wait_for_function(SETTLED_JS, timeout=60_000)


def live_env(emulator: EmulatorProcess) -> dict[str, str]:
    # The deployment configured the emulator as its provider: its host is trusted, private or not.
    return {"LUMA_API_KEY": KEY, "LUMA_API_BASE": emulator.url, "LUMA_UPLOAD_BASE": emulator.url}


def submit(page: Any, url: str, video: str, prompt: str) -> None:
    """Submit one task from a public URL and wait for the page to say it was created."""
    page.goto(url)
    settle(page)
    page.locator(".st-key-submit_source").get_by_role("radio", name="Public URL").click()
    settle(page)
    field = page.locator(".st-key-submit_video_url input")
    field.fill(video)
    field.press("Enter")
    box = page.locator(".st-key-submit_prompt textarea")
    box.fill(prompt)
    box.press("Tab")
    expect(page.get_by_text("The video passed every check.")).to_be_visible(timeout=60_000)
    settle(page)
    page.locator(".st-key-submit_button").get_by_role("button", name="Start task").click()


def rows(page: Any) -> list[list[str]]:
    return page.evaluate(GRID_ROWS_JS)


def statuses_by_prompt(page: Any) -> dict[str, str]:
    return {row[1]: row[0] for row in rows(page) if len(row) > 1}


def test_kill_9_while_tasks_run_and_a_create_is_out_loses_nothing_and_sends_nothing_twice(
    browser: Any, tmp_path: Path
) -> None:
    emulator = EmulatorProcess("--processing-delay", "15", "--sample-size", "320x180", "--sample-seconds", "2",
                               data_dir=tmp_path / "provider")
    home = tmp_path / "dashboard"
    try:
        video = f"{emulator.url}/files/samples/rolling-hills.mp4"
        process, url, _log = launch(home, secrets="", env=live_env(emulator))
        context = browser.new_context()
        page = context.new_page()
        try:
            for prompt in ("make it a snowy night", "make it golden hour"):
                submit(page, url, video, prompt)
                expect(page.locator(".st-key-submit_result")).to_be_visible(timeout=60_000)
                page.locator(".st-key-submit_new button").click()
                settle(page)
            # The provider will now create the next task, charge for it, and hold its answer back.
            emulator.configure(answer_delay=60.0)
            submit(page, url, video, "make it a rainy morning")
            ledger = Ledger(f"sqlite:///{home / 'data' / 'ledger.sqlite'}")
            deadline = time.monotonic() + 60
            while emulator.stats()["creates"] < 3 or not [
                r for r in ledger.query(TaskQuery(mode="live", limit=100)).rows if r.state == "creating"
            ]:
                assert time.monotonic() < deadline, "the third create never reached the provider"
                time.sleep(0.2)
        finally:
            context.close()
        kill_hard(process)  # mid-create, with two tasks still generating: no shutdown code runs
        emulator.configure(answer_delay=0.0)

        process, url, _log = launch(home, secrets="", env=live_env(emulator))
        try:
            fresh = browser.new_context()  # a new browser: no cookie, no ?tasks=
            page = fresh.new_page()
            page.goto(f"{url}/jobs")
            settle(page)
            page.locator(".st-key-jobs_view").get_by_role("radio", name="Everyone").click()
            settle(page)
            deadline = time.monotonic() + 90
            wanted = {
                "make it a snowy night": "Succeeded",
                "make it golden hour": "Succeeded",
                "make it a rainy morning": "Outcome unknown",
            }
            while statuses_by_prompt(page) != wanted:
                assert time.monotonic() < deadline, f"after the restart the list shows {statuses_by_prompt(page)}"
                page.wait_for_timeout(500)
            expect(page.get_by_text("Outcome unknown", exact=True).first).to_be_visible()
            fresh.close()
            time.sleep(3)
            assert emulator.stats()["creates"] == 3, "the interrupted create was never sent again"
        finally:
            _stop(process)
    finally:
        emulator.close()


@pytest.mark.timeout(400)
def test_three_open_tabs_make_no_more_status_calls_than_one(browser: Any, tmp_path: Path) -> None:
    """Open tabs read the ledger, never the provider: tracking costs the same with 1 tab or 3."""
    counts = {}
    for tabs in (1, 3):
        emulator = EmulatorProcess("--processing-delay", "600", "--sample-size", "160x90", "--sample-seconds", "1",
                                   data_dir=tmp_path / f"provider-{tabs}")
        home = tmp_path / f"dashboard-{tabs}"
        try:
            with LumaClient(KEY, api_base=emulator.url, upload_base=emulator.url,
                            create_limiter=CreateLimiter(limit=100, window=1.0)) as client:
                video = f"{emulator.url}/files/samples/rolling-hills.mp4"
                ids = [client.create_task(f"task {n}", video) for n in range(5)]
            process, url, _log = launch(home, secrets="", env=live_env(emulator))
            context = browser.new_context()
            try:
                first = context.new_page()
                first.goto(f"{url}/jobs")
                settle(first)
                first.get_by_test_id("stExpander").get_by_text("Add existing task ids").click()
                first.locator(".st-key-jobs_import_text textarea").fill("\n".join(ids))
                first.locator(".st-key-jobs_import_button button").click()
                expect(first.get_by_text(re.compile(r"Added 5 task"))).to_be_visible(timeout=30_000)
                pages = [first] + [context.new_page() for _ in range(tabs - 1)]
                for page in pages[1:]:
                    page.goto(f"{url}/jobs")
                    settle(page)
                before = emulator.stats()["requests"]["reads"]
                time.sleep(60)
                counts[tabs] = emulator.stats()["requests"]["reads"] - before
                for page in pages:
                    assert len(rows(page)) == 5, "every tab shows the tasks"
            finally:
                context.close()
                _stop(process)
        finally:
            emulator.close()
    assert counts[1] > 0, "the tracker read the tasks"
    assert counts[3] <= counts[1] * 1.1, f"status calls with 1 tab: {counts[1]}, with 3 tabs: {counts[3]}"
