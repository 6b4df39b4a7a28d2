"""The demo in a real browser: submit a sample clip, follow it on Jobs, watch both videos; one
task per click, counted at the emulator; and a local file uploaded once and used.

Each test opens its own browser context, so it is its own Streamlit session.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from .conftest import SETTLED_JS, VIEWPORT, Dashboard

pytestmark = pytest.mark.e2e

TASK_ID = re.compile(r"^[0-9a-f]{32}$")

# The grid draws on a canvas; glide-data-grid keeps an accessible copy of its cells in hidden
# <tr role=row>/<td role=gridcell> elements. Column order is the page's column_order.
GRID_ROWS_JS = """() => [...document.querySelectorAll('.st-key-jobs_table [role=row]')]
  .map(row => [...row.querySelectorAll('[role=gridcell]')].map(cell => cell.textContent))
  .filter(cells => cells.length > 0)"""

VIDEOS_PLAYABLE_JS = """() => {
  const videos = [...document.querySelectorAll('.st-key-jobs_details video')];
  return videos.length === 2 && videos.every(v => v.readyState >= 1 && v.duration > 0 && !!v.currentSrc);
}"""


def settle(page: Any, timeout: float = 60_000) -> None:
    """Wait until no script run is in progress and the page is connected."""
    page.wait_for_function(SETTLED_JS, timeout=timeout)


# Every video on the page shows a frame (readyState 2+), so no loading spinner is in a screenshot.
FRAMES_SHOWN_JS = """() => [...document.querySelectorAll('video')]
  .every(v => v.readyState >= 2 && !v.seeking)"""


def wait_for_still_videos(page: Any, timeout: float = 10.0) -> None:
    """Wait until every video looks the same in two shots in a row: Chromium draws a spinning
    loading arc over a video for a moment after it has loaded, which must not be in a screenshot."""
    videos = page.locator("video")
    previous: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shots = [videos.nth(i).screenshot(animations="disabled") for i in range(videos.count())]
        if shots == previous:
            return
        previous = shots
        page.wait_for_timeout(250)
    warnings.warn("the videos kept changing; the screenshot may show a loading spinner", stacklevel=2)


def full_page_screenshot(page: Any, path: Path) -> None:
    """A full-page shot at 1400 px wide. Streamlit scrolls inside its main section, not the
    document, so the window is made as tall as that content for the shot, then put back."""
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], int(height))})
    try:
        settle(page)
        page.wait_for_function(FRAMES_SHOWN_JS, timeout=30_000)
        wait_for_still_videos(page)
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(dict(VIEWPORT))


def open_submit_with_prompt(page: Any, dashboard: Dashboard, prompt: str) -> None:
    """Open Submit, keep the demo's sample-clip source, type a prompt and let the video check run."""
    page.goto(dashboard.url)
    page.wait_for_selector('[data-testid="stApp"]')
    box = page.locator(".st-key-submit_prompt textarea")
    box.wait_for()
    settle(page)
    sample = page.locator(".st-key-submit_source").get_by_role("radio", name="Sample clip")
    if sample.get_attribute("aria-checked") != "true":
        sample.click()
        settle(page)
    expect(page.locator(".st-key-submit_sample")).to_contain_text("Sample clip")
    box.fill(prompt)
    box.press("Tab")  # a text area sends its value when it loses focus
    # The video check runs on its own as soon as a video is chosen; nothing is sent before it passes.
    expect(page.get_by_text("The video passed every check.")).to_be_visible(timeout=60_000)
    settle(page)
    expect(page.get_by_text("Add a prompt to start a task.")).to_have_count(0)


def start_button(page: Any) -> Any:
    return page.locator(".st-key-submit_button").get_by_role("button", name="Start task")


def shown_task_id(page: Any) -> str:
    """The task id in the "Submitted" box of the Submit page."""
    result = page.locator(".st-key-submit_result")
    result.wait_for(timeout=60_000)
    return result.locator("code").first.inner_text().strip()


def metric(page: Any, label: str) -> Any:
    card = page.locator('[data-testid="stMetric"]').filter(has=page.get_by_text(label, exact=True))
    return card.locator('[data-testid="stMetricValue"]')


def grid_row(page: Any, task_id: str) -> list[str] | None:
    """The table's row for this task (Status, Prompt, Submitted, ..., Task id), or None."""
    rows = page.evaluate(GRID_ROWS_JS)
    return next((row for row in rows if row and task_id in row), None)


def wait_for_status(page: Any, task_id: str, wanted: set[str], timeout: float) -> list[str]:
    """Poll the table (never touching the page) until the task's row shows one of these statuses."""
    deadline = time.monotonic() + timeout
    row = grid_row(page, task_id)
    while (row is None or row[0] not in wanted) and time.monotonic() < deadline:
        page.wait_for_timeout(200)
        row = grid_row(page, task_id)
    assert row is not None and row[0] in wanted, f"task {task_id}: expected {wanted}, table shows {row}"
    return row


def creates_after_settling(dashboard: Dashboard, expected: int, grace: float = 1.5) -> int:
    """The emulator's create count once it reaches ``expected`` (or 30 s pass), watched a little
    longer so that a late duplicate would be counted too."""
    deadline = time.monotonic() + 30
    while dashboard.creates() < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(grace)
    return dashboard.creates()


def test_sample_clip_is_followed_to_a_playable_result(page: Any, dashboard: Dashboard, screenshots: Path) -> None:
    prompt = "turn the scene into a neon night"
    open_submit_with_prompt(page, dashboard, prompt)
    # The sample's own preview plays on Submit too.
    page.wait_for_function("() => [...document.querySelectorAll('video')].some(v => v.readyState >= 1 && v.duration > 0)")
    full_page_screenshot(page, screenshots / "submit.png")
    before = dashboard.creates()

    start_button(page).click()
    task_id = shown_task_id(page)
    assert TASK_ID.match(task_id), task_id
    expect(page.locator('[data-testid="stToast"]')).to_contain_text(f"Task {task_id} created.")
    assert creates_after_settling(dashboard, before + 1, grace=0) == before + 1
    logged = json.loads(dashboard.create_lines()[-1])
    assert (logged["taskId"], logged["prompt"]) == (task_id, prompt)

    # From here on the page is never reloaded and nothing is clicked until the task is final:
    # a marker on the window would not survive a reload.
    page.evaluate("() => { window.__e2eNoReload = true; }")
    page.locator(".st-key-submit_result").get_by_role("link", name="Open the Jobs page").click()
    page.wait_for_url(re.compile(r"/jobs\?"))
    page.locator(".st-key-jobs_table [role=gridcell]").first.wait_for(state="attached")
    first = wait_for_status(page, task_id, {"Not read yet", "Generating"}, timeout=10)
    assert first[1] == prompt
    expect(metric(page, "Running")).to_have_text("1")

    # The server's tracker brings the success; the open page shows it without a reload.
    done = wait_for_status(page, task_id, {"Succeeded"}, timeout=60)
    assert f"{task_id}.mp4" in done, done  # the result column names the result file
    expect(metric(page, "Succeeded")).to_have_text("1")
    expect(metric(page, "Running")).to_have_text("0")
    assert page.evaluate("() => window.__e2eNoReload === true"), "the page was reloaded"
    assert task_id in page.url  # the list is mirrored into the address

    # Select the row: click its selection cell (first column) in the canvas, below the header.
    settle(page)
    grid = page.locator(".st-key-jobs_table [data-testid='stDataFrame']")
    box = grid.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 16, box["y"] + 35 + 18)
    details = page.locator(".st-key-jobs_details")
    expect(details).to_contain_text(task_id, timeout=30_000)
    expect(details.get_by_text("Succeeded", exact=True)).to_be_visible()

    page.wait_for_function(VIDEOS_PLAYABLE_JS, timeout=60_000)
    videos = page.eval_on_selector_all(
        ".st-key-jobs_details video", "vs => vs.map(v => ({src: v.currentSrc, duration: v.duration}))"
    )
    sources = [v["src"] for v in videos]
    assert len(set(sources)) == 2, f"the input and the result must be two different videos: {sources}"
    for src in sources:
        status = page.evaluate("async src => (await fetch(src, {headers: {Range: 'bytes=0-1023'}})).status", src)
        assert status in (200, 206), (src, status)
    durations = [v["duration"] for v in videos]
    assert all(1.5 <= d <= 2.5 for d in durations), durations  # the 2 s sample, and its result

    settle(page)
    page.wait_for_function(VIDEOS_PLAYABLE_JS)
    full_page_screenshot(page, screenshots / "jobs.png")
    expect(details.locator("video")).to_have_count(2)


def test_one_click_one_task_even_when_clicked_twice(page: Any, dashboard: Dashboard) -> None:
    open_submit_with_prompt(page, dashboard, "make it a snowy winter evening")
    before = dashboard.creates()

    # A double click on Start task: exactly one create reaches the emulator.
    start_button(page).dblclick()
    first = shown_task_id(page)
    settle(page)
    assert creates_after_settling(dashboard, before + 1) == before + 1
    assert json.loads(dashboard.create_lines()[-1])["taskId"] == first

    # New inputs, typed and not yet sent (the first click also commits the text), then two fast
    # clicks with no wait between them: again exactly one create.
    page.locator(".st-key-submit_prompt textarea").fill("restyle as a watercolour painting")
    button = start_button(page).bounding_box()
    assert button is not None
    x, y = button["x"] + button["width"] / 2, button["y"] + button["height"] / 2
    page.mouse.click(x, y)
    page.mouse.click(x, y)
    expect(page.locator(".st-key-submit_result code")).not_to_have_text(first, timeout=60_000)
    second = shown_task_id(page)
    settle(page)
    assert creates_after_settling(dashboard, before + 2) == before + 2
    assert TASK_ID.match(second) and second != first
    logged = json.loads(dashboard.create_lines()[-1])
    assert (logged["taskId"], logged["prompt"]) == (second, "restyle as a watercolour painting")

    # Clicking again with the same inputs says so and sends nothing.
    start_button(page).click()
    expect(page.get_by_text(f"Already submitted as task {second}")).to_be_visible(timeout=30_000)
    settle(page)
    assert creates_after_settling(dashboard, before + 2, grace=1.0) == before + 2
    # Both tasks, and only they, are on this session's list (mirrored into the address).
    def listed() -> list[str]:
        return sorted(",".join(parse_qs(urlsplit(page.url).query).get("tasks", [])).split(","))

    deadline = time.monotonic() + 10
    while listed() != sorted([first, second]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert listed() == sorted([first, second]), page.url


def test_a_local_file_is_uploaded_once_and_used(page: Any, dashboard: Dashboard, tmp_path: Path) -> None:
    """Pick a file, type the prompt right away and leave the box (a rerun that may land mid-upload;
    tests/app/test_submit_stopped_runs.py holds that case exactly), then start: the file reaches
    the provider's upload API once, and the task is made from the uploaded copy."""
    from luma.emulator import media

    clip = tmp_path / "my clip.mp4"
    media.make_sample(media.SAMPLES[1].slug, clip, width=160, height=90, seconds=2, fps=8)
    uploads = dashboard.data_dir / "uploads"
    before_uploads = len(list(uploads.rglob("*.mp4"))) if uploads.exists() else 0
    before = dashboard.creates()

    page.goto(dashboard.url)
    page.locator(".st-key-submit_prompt textarea").wait_for()
    settle(page)
    page.locator(".st-key-submit_source").get_by_role("radio", name="Upload a file").click()
    settle(page)
    page.locator(".st-key-submit_file input[type=file]").set_input_files(str(clip))
    box = page.locator(".st-key-submit_prompt textarea")
    box.fill("restyle as a vintage film")
    box.press("Tab")
    expect(page.get_by_text("Uploaded my clip.mp4", exact=False)).to_be_visible(timeout=60_000)
    expect(page.get_by_text("The video passed every check.")).to_be_visible(timeout=60_000)
    settle(page)
    start_button(page).click()
    task_id = shown_task_id(page)
    assert TASK_ID.match(task_id), task_id
    assert creates_after_settling(dashboard, before + 1) == before + 1
    logged = json.loads(dashboard.create_lines()[-1])
    assert logged["taskId"] == task_id and "/files/uploads/" in logged["videoUrl"], logged
    assert logged["videoUrl"].endswith("-my-clip.mp4"), logged
    assert len(list(uploads.rglob("*.mp4"))) - before_uploads == 1, "the file was uploaded once"
