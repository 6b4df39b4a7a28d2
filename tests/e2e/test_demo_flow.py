"""The demo in a real browser: submit a sample clip, follow it on Jobs, watch both videos.

Each test opens its own browser context, so it is its own Streamlit session.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import Dashboard

pytestmark = pytest.mark.e2e

TASK_ID = re.compile(r"^[0-9a-f]{32}$")

SETTLED = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return app && app.getAttribute('data-test-script-state') === 'notRunning'
             && app.getAttribute('data-test-connection-state') === 'CONNECTED';
}"""

VIDEOS_PLAYABLE = """() => {
  const videos = [...document.querySelectorAll('.st-key-jobs_details video')];
  return videos.length === 2 && videos.every(v => v.readyState >= 1 && v.duration > 0 && v.currentSrc);
}"""


def settle(page: Any, timeout: float = 60_000) -> None:
    """Wait until no script run is in progress (on top of waiting for what the test expects)."""
    page.wait_for_function(SETTLED, timeout=timeout)


def open_submit_with_prompt(page: Any, dashboard: Dashboard, prompt: str) -> None:
    page.goto(dashboard.url)
    box = page.locator(".st-key-submit_prompt textarea")
    box.wait_for()
    settle(page)
    box.fill(prompt)
    box.press("Tab")  # a text area sends its value when it loses focus
    # Demo mode starts on a sample clip; the video check runs as soon as there is a video.
    page.get_by_text("passed every check").wait_for(timeout=60_000)
    settle(page)


def metric(page: Any, label: str) -> Any:
    card = page.locator('[data-testid="stMetric"]').filter(has=page.get_by_text(label, exact=True))
    return card.locator('[data-testid="stMetricValue"]')


def wait_for_creates(dashboard: Dashboard, expected: int, grace: float = 3.0) -> int:
    """The emulator's create count once it reaches ``expected``, watched a little longer so that a
    late duplicate would be seen too."""
    deadline = time.monotonic() + 30
    while dashboard.creates() < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(grace)
    return dashboard.creates()


def test_sample_clip_becomes_a_watched_result(page: Any, dashboard: Dashboard, screenshots: Path) -> None:
    open_submit_with_prompt(page, dashboard, "turn the scene into a neon night")
    page.screenshot(path=str(screenshots / "submit.png"), full_page=True)
    before = dashboard.creates()

    page.get_by_role("button", name="Start task").click()
    result = page.locator(".st-key-submit_result")
    result.wait_for(timeout=60_000)
    task_id = result.locator("code").first.inner_text().strip()
    assert TASK_ID.match(task_id), task_id
    assert wait_for_creates(dashboard, before + 1, grace=0.5) == before + 1

    result.get_by_role("link", name="Open the Jobs page").click()
    page.locator(".st-key-jobs_table").wait_for()
    assert metric(page, "Tasks").inner_text() == "1"
    # No reload and no "Refresh now": the page's own timer must bring the success.
    page.get_by_text("automatic refresh has stopped").wait_for(timeout=90_000)
    assert metric(page, "Succeeded").inner_text() == "1"
    assert metric(page, "Generating").inner_text() == "0"
    assert task_id in page.url  # the list is mirrored into the address

    # Select the only row: the grid draws on a canvas, so click its selection cell.
    grid = page.locator(".st-key-jobs_table [data-testid='stDataFrame']")
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 16, box["y"] + 53)
    details = page.locator(".st-key-jobs_details")
    expect(details).to_contain_text(task_id, timeout=30_000)

    page.wait_for_function(VIDEOS_PLAYABLE, timeout=60_000)
    sources = page.eval_on_selector_all(".st-key-jobs_details video", "vs => vs.map(v => v.currentSrc)")
    assert len(set(sources)) == 2, "the source and the result must be different videos"
    for src in sources:
        status = page.evaluate(
            "async src => (await fetch(src, {headers: {Range: 'bytes=0-1023'}})).status", src
        )
        assert status in (200, 206), (src, status)
    durations = page.eval_on_selector_all(".st-key-jobs_details video", "vs => vs.map(v => v.duration)")
    assert all(1.0 <= d <= 3.0 for d in durations), durations  # the 2 s sample, and its result
    settle(page)
    # Streamlit scrolls inside its own container, so a full-page shot needs a tall window.
    page.set_viewport_size({"width": 1400, "height": 1900})
    page.wait_for_function(VIDEOS_PLAYABLE)
    settle(page)
    page.screenshot(path=str(screenshots / "jobs.png"), full_page=True)


def test_double_click_on_start_creates_exactly_one_task(page: Any, dashboard: Dashboard) -> None:
    open_submit_with_prompt(page, dashboard, "make it a snowy winter evening")
    before = dashboard.creates()

    page.get_by_role("button", name="Start task").dblclick()
    page.locator(".st-key-submit_result").wait_for(timeout=60_000)
    settle(page)
    assert wait_for_creates(dashboard, before + 1) == before + 1

    # Clicking again with the same inputs says so and sends nothing.
    page.get_by_role("button", name="Start task").click()
    page.get_by_text("Already submitted as task").wait_for(timeout=30_000)
    settle(page)
    assert wait_for_creates(dashboard, before + 1, grace=1.0) == before + 1
