"""Variant sets in a real browser: a 3 x 2 crossed set started with a double click in a tab closed
at once is sent whole, once, by the server; its grid plays six results; the compare player keeps
input and result together on the real Sets page.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import VIEWPORT, Dashboard
from .test_components import MAX_DRIFT_JS
from .test_demo_flow import full_page_screenshot, settle

pytestmark = pytest.mark.e2e

PROMPTS = ["make it a snowy winter evening", "turn it into a neon-lit night", "restyle as a watercolour painting"]
SAMPLES = ["Rolling hills", "City lights"]
SYNC_S = 0.1

GRID_VIDEOS_READY_JS = """n => {
  const videos = [...document.querySelectorAll('[class*="st-key-take-"] video')];
  return videos.length === n && videos.every(v => v.readyState >= 2 && v.duration > 0);
}"""


def set_lines(dashboard: Dashboard, since: int) -> list[dict[str, Any]]:
    """The creates for this set's prompts after the first `since` lines: the dashboard is shared by
    the whole session, and other tests send the same prompts."""
    lines = [json.loads(line) for line in dashboard.create_lines()[since:]]
    return [line for line in lines if line["prompt"] in PROMPTS]


def test_a_crossed_set_is_sent_once_with_its_tab_closed_and_reviewed_in_a_grid(
    browser: Any, dashboard: Dashboard, screenshots: Path
) -> None:
    context = browser.new_context(viewport=dict(VIEWPORT))
    context.route(lambda url: not url.startswith(("http://127.0.0.1", "data:", "blob:", "about:")),
                  lambda route: route.abort("blockedbyclient"))
    page = context.new_page()
    page.set_default_timeout(30_000)
    since = dashboard.creates()
    page.goto(dashboard.url)
    page.locator(".st-key-submit_prompt textarea").wait_for(timeout=60_000)
    settle(page)
    page.locator(".st-key-submit_mode").get_by_text("Variant set").click()
    settle(page)
    prompts = page.locator(".st-key-set_prompts textarea")
    prompts.fill("\n".join(PROMPTS))
    prompts.press("Tab")
    settle(page)
    # The multiselect's code loads when the form first shows it: click once it is drawn.
    expect(page.locator(".st-key-set_samples").get_by_role("combobox")).to_be_visible()
    for title in SAMPLES:
        page.locator(".st-key-set_samples").click()
        page.get_by_role("option", name=title).click()
        settle(page)
    page.keyboard.press("Escape")
    expect(page.get_by_text("6 task(s)", exact=False).first).to_be_visible(timeout=60_000)
    button = page.locator(".st-key-set_start_button").get_by_role("button")
    expect(button).to_be_enabled(timeout=60_000)
    # A double click, then the tab is closed right away (a person's "right away": a quarter of a
    # second): the set is the server's to send. Closing the tab stops the click's run at its next
    # Streamlit call, so the set is written by the click's callback, before any.
    button.dblclick()
    page.wait_for_timeout(250)
    context.close()

    deadline = time.monotonic() + 60
    while len(set_lines(dashboard, since)) < 6 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)  # a duplicate would have been sent by now
    sent = set_lines(dashboard, since)
    assert len(sent) == 6, f"{len(sent)} creates for a 3 x 2 set"
    assert len({(s["prompt"], s["videoUrl"]) for s in sent}) == 6, "each prompt on each input, once"

    # A teammate opens the Sets page and sees the set's six results, each playable.
    context = browser.new_context(viewport=dict(VIEWPORT))
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{dashboard.url}/sets")
        page.locator(".st-key-sets_everyone").wait_for(timeout=60_000)
        settle(page)
        page.locator(".st-key-sets_everyone label").click()
        settle(page)
        page.wait_for_function(GRID_VIDEOS_READY_JS, arg=6, timeout=60_000)
        expect(page.locator('[data-testid="stMetric"]').filter(has_text="Succeeded")).to_contain_text("6")
        # Keep the first take: a star that survives into the ledger.
        first = page.locator('[class*="st-key-take-"]').first
        first.get_by_text("Keep").click()
        settle(page)
        full_page_screenshot(page, screenshots / "sets.png")

        # Compare: the input and the result play together, in the custom component.
        first.get_by_role("button", name="Compare").click()
        player = page.get_by_test_id("luma-compare")
        expect(player).to_have_attribute("data-ready", "true", timeout=60_000)
        handle = player.element_handle()
        page.get_by_test_id("luma-compare-play").click()
        page.wait_for_timeout(700)
        assert page.evaluate(MAX_DRIFT_JS, handle) <= SYNC_S
        page.get_by_test_id("luma-compare-seek").fill("0.5")
        page.wait_for_timeout(300)
        assert page.evaluate(MAX_DRIFT_JS, handle) <= SYNC_S
        page.get_by_test_id("luma-compare-play").click()
        page.wait_for_timeout(300)
        assert page.evaluate(MAX_DRIFT_JS, handle) <= SYNC_S
        assert not errors, errors
    finally:
        context.close()

