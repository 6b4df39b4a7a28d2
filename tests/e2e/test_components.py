"""The custom components of ``pages/_support/components.py`` in real Chromium.

A bare Streamlit page (``harness_components.py``) shows the compare player with two generated
clips and the tab-title element; the tests play, seek, pause and wipe through the component's own
controls and read the two ``<video>`` elements' clocks. The page must raise no JavaScript error,
hit no content security policy, and request nothing from another machine.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from .conftest import CHROMIUM, CHROMIUM_ARGS, free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).with_name("harness_components.py").relative_to(ROOT)
STARTUP_SECONDS = 60
# The two clocks may differ by this much while playing (the player corrects above 0.05 s).
SYNC_S = 0.1
TITLE = "(2 running) Test"

# Both videos' clocks, input first (DOM order), read in one go so they are read at one instant.
CLOCKS_JS = """root => [...root.querySelectorAll('video')].map(v => ({
  role: v.dataset.role, time: v.currentTime, paused: v.paused, seeking: v.seeking,
  ready: v.readyState, duration: v.duration,
}))"""
LOADED_JS = f"root => ({CLOCKS_JS})(root).every(v => v.ready >= 2 && v.duration > 0)"
# The largest gap between the two clocks over ten samples, one per 50 ms: sync that holds, not a lucky read.
MAX_DRIFT_JS = """async root => {
  let worst = 0
  for (let i = 0; i < 10; i++) {
    const [a, b] = root.querySelectorAll('video')
    worst = Math.max(worst, Math.abs(a.currentTime - b.currentTime))
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  return worst
}"""
SETTLED_SEEK_JS = f"""root => {{
  const [a, b] = root.querySelectorAll('video')
  return !a.seeking && !b.seeking && Math.abs(a.currentTime - b.currentTime) <= {SYNC_S}
}}"""


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and whatever it started: it leads its own process group."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``streamlit run`` of the harness on a free loopback port; yields its URL."""
    log = tmp_path_factory.mktemp("components") / "streamlit.log"
    port = free_port()
    command = [
        sys.executable, "-m", "streamlit", "run", str(HARNESS),
        "--server.headless", "true",
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"streamlit exited early:\n{log.read_text(errors='replace')}")
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit was not healthy after {STARTUP_SECONDS} s:\n{log.read_text(errors='replace')}")
            time.sleep(0.2)
        yield url
    finally:
        _stop(process)
    logged = log.read_text(errors="replace")
    assert "Traceback" not in logged, f"the harness server logged a traceback:\n{logged}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium for this module (module scope: Playwright's sync API holds an event loop)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium")
    # The edge-policy test serves the page through Playwright, which makes Chromium take the page
    # for a public one and refuse its loopback websocket; every request here is loopback anyway.
    args = [*CHROMIUM_ARGS, "--disable-features=LocalNetworkAccessChecks"]
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield chromium
        finally:
            chromium.close()


def _local(url: str) -> bool:
    return re.match(r"^(data:|blob:|about:|https?://(127\.0\.0\.1|localhost|\[::1\])[:/])", url) is not None


def _open(browser: Any, problems: list[str], off_machine: list[str]) -> tuple[Any, Any]:
    """A fresh context and page (a fresh Streamlit session) that records what must not happen."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})

    def refuse(route: Any) -> None:
        off_machine.append(route.request.url)
        route.abort("blockedbyclient")

    context.route(lambda url: not _local(url), refuse)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))

    def console(msg: Any) -> None:
        # A component whose module failed to load reports it as "BidiComponent Error".
        if "Content Security Policy" in msg.text or "BidiComponent" in msg.text:
            problems.append(f"console: {msg.text}")

    page.on("console", console)
    return context, page


@pytest.fixture
def page(browser: Any, harness: str) -> Iterator[Any]:
    """The harness page, with the compare player's videos loaded."""
    problems: list[str] = []
    off_machine: list[str] = []
    context, page = _open(browser, problems, off_machine)
    try:
        page.goto(harness)
        root = page.get_by_test_id("luma-compare")
        expect(root).to_have_attribute("data-ready", "true")
        page.wait_for_function(LOADED_JS, arg=root.element_handle())
        yield page
    finally:
        context.close()
    assert not problems, f"the page had errors: {problems}"
    assert not off_machine, f"the page tried to reach other machines: {sorted(set(off_machine))}"


def clocks(page: Any) -> dict[str, dict[str, Any]]:
    """Each video's state by role ("source" is the input, "result" the result)."""
    states = page.get_by_test_id("luma-compare").evaluate(CLOCKS_JS)
    return {state["role"]: state for state in states}


def test_videos_load_and_the_tab_title_follows_reruns_without_taking_space(page: Any) -> None:
    videos = clocks(page)
    assert set(videos) == {"source", "result"}
    assert all(v["ready"] >= 2 and v["duration"] > 0 for v in videos.values()), videos
    # The harness's input is one frame longer: the seek bar follows the result, the clock.
    assert videos["source"]["duration"] > videos["result"]["duration"]
    expect(page.get_by_test_id("luma-compare-seek")).to_have_attribute("max", str(videos["result"]["duration"]))
    expect(page).to_have_title(TITLE)
    # The title element sits between the first two captions: both gaps must be the same.
    tops = [box["y"] for box in (c.bounding_box() for c in page.get_by_test_id("stCaptionContainer").all())]
    assert len(tops) == 3
    assert abs((tops[1] - tops[0]) - (tops[2] - tops[1])) <= 1, f"the title element left a gap: {tops}"
    expect(page.locator(".st-key-title")).to_be_hidden()

    # A rerun that changes the title's text: the title follows, the player plays on untouched.
    root = page.get_by_test_id("luma-compare")
    handle = root.element_handle()
    # A mark on the element: a player rebuilt by the rerun would not carry it.
    root.evaluate("root => { root.lumaMark = 1 }")
    page.get_by_test_id("luma-compare-play").click()
    page.wait_for_function("root => root.dataset.playing === 'true'", arg=handle)

    # Streamlit draws the checkbox over its input: click the label, as a user does.
    finished = page.get_by_text("One task finished")
    finished.click()
    expect(page).to_have_title("(1 running) Test")
    finished.click()
    expect(page).to_have_title(TITLE)

    assert root.evaluate("root => root.lumaMark") == 1, "the rerun rebuilt the player"
    # Waited for, not read once: at the loop point the input may hold for a moment.
    page.wait_for_function("root => [...root.querySelectorAll('video')].every(v => !v.paused)", arg=handle)
    assert root.evaluate(MAX_DRIFT_JS) <= SYNC_S


def test_play_seek_and_pause_keep_the_two_videos_together(page: Any) -> None:
    root = page.get_by_test_id("luma-compare")
    handle = root.element_handle()
    play = page.get_by_test_id("luma-compare-play")
    seek = page.get_by_test_id("luma-compare-seek")
    expect(play).to_have_accessible_name("Play both videos")

    play.click()
    # About 1.5 s of playback (the clock is the result video, so wait on it, not on a timer).
    page.wait_for_function(
        "root => { const v = root.querySelector('video[data-role=result]'); return !v.paused && v.currentTime >= 1.5 }",
        arg=handle,
    )
    videos = clocks(page)
    assert not videos["source"]["paused"] and not videos["result"]["paused"], videos
    assert abs(videos["source"]["time"] - videos["result"]["time"]) <= SYNC_S, videos
    assert root.evaluate(MAX_DRIFT_JS) <= SYNC_S
    expect(play).to_have_accessible_name("Pause both videos")

    # Seek to the middle while playing: both land there together and keep playing.
    middle = round(videos["result"]["duration"] / 2, 2)
    started = page.evaluate("() => performance.now()")
    seek.fill(str(middle))
    page.wait_for_function(SETTLED_SEEK_JS, arg=handle)
    videos = clocks(page)
    elapsed = (page.evaluate("() => performance.now()") - started) / 1000
    assert abs(videos["source"]["time"] - videos["result"]["time"]) <= SYNC_S, videos
    assert middle - SYNC_S <= videos["result"]["time"] <= middle + elapsed + SYNC_S, (videos, elapsed)
    assert not videos["result"]["paused"], "seeking must not stop playback"

    # Pause from the keyboard: both stop on the same frame.
    play.press("Space")
    page.wait_for_function("root => [...root.querySelectorAll('video')].every(v => v.paused)", arg=handle)
    page.wait_for_function(SETTLED_SEEK_JS, arg=handle)
    videos = clocks(page)
    assert abs(videos["source"]["time"] - videos["result"]["time"]) <= SYNC_S, videos
    expect(play).to_have_accessible_name("Play both videos")

    # Paused, the seek bar puts both exactly where it says.
    target = round(middle / 2, 2)
    seek.fill(str(target))
    page.wait_for_function(SETTLED_SEEK_JS, arg=handle)
    videos = clocks(page)
    for video in videos.values():
        assert abs(video["time"] - target) <= SYNC_S, videos
        assert video["paused"], videos
    # The arrow keys move both a second.
    seek.press("ArrowRight")
    page.wait_for_function(SETTLED_SEEK_JS, arg=handle)
    videos = clocks(page)
    for video in videos.values():
        assert abs(video["time"] - (target + 1)) <= SYNC_S, videos


def test_wipe_shows_one_frame_whose_divider_moves_the_clip(page: Any) -> None:
    root = page.get_by_test_id("luma-compare")
    source = page.get_by_test_id("luma-compare-source")
    result = page.get_by_test_id("luma-compare-result")
    divider = page.get_by_test_id("luma-compare-divider")
    wipe = page.get_by_test_id("luma-compare-wipe")
    expect(divider).to_be_hidden()
    assert result.evaluate("v => getComputedStyle(v).clipPath") == "none"

    page.get_by_role("radio", name="Wipe").check()
    expect(root).to_have_attribute("data-mode", "wipe")
    expect(divider).to_be_visible()
    # One frame: the two videos lie exactly on top of each other.
    assert source.bounding_box() == result.bounding_box()
    assert result.evaluate("v => getComputedStyle(v).clipPath") == "inset(0px 0px 0px 50%)"

    wipe.fill("20")
    assert result.evaluate("v => getComputedStyle(v).clipPath") == "inset(0px 0px 0px 20%)"
    frame, line = result.bounding_box(), divider.bounding_box()
    assert abs(line["x"] + line["width"] / 2 - (frame["x"] + 0.2 * frame["width"])) <= 2, (frame, line)
    wipe.press("ArrowLeft")
    assert result.evaluate("v => getComputedStyle(v).clipPath") == "inset(0px 0px 0px 19%)"

    page.get_by_role("radio", name="Side by side").check()
    expect(divider).to_be_hidden()
    assert result.evaluate("v => getComputedStyle(v).clipPath") == "none"
    left, right = source.bounding_box(), result.bounding_box()
    assert left["x"] + left["width"] <= right["x"], "side by side, the input is left of the result"


def test_the_components_run_under_the_dashboards_content_security_policy(browser: Any, harness: str) -> None:
    from studio.edge import CONTENT_SECURITY_POLICY

    problems: list[str] = []
    off_machine: list[str] = []
    context, page = _open(browser, problems, off_machine)

    def with_policy(route: Any) -> None:
        response = route.fetch()
        route.fulfill(
            response=response, headers={**response.headers, "content-security-policy": CONTENT_SECURITY_POLICY}
        )

    try:
        # The page itself gets the header, as the edge sends it on every response.
        page.route(f"{harness}/", with_policy)
        page.goto(harness)
        ready = page.get_by_test_id("luma-compare").and_(page.locator('[data-ready="true"]'))
        deadline = time.monotonic() + 20
        while not problems and ready.count() == 0 and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert not problems, f"the page had errors under the dashboard's policy: {problems}"
        expect(ready).to_have_count(1)
        expect(page).to_have_title(TITLE)
    finally:
        context.close()
