"""Figure 8, open tabs: status calls the provider sees with 1, 3 and 10 tabs open on the Jobs page.

Method. For each tab count, a fresh standalone emulator (``python -m luma.emulator``, tasks that
stay generating for 10 minutes) and a fresh live dashboard (``streamlit run app.py``) against it.
Five tasks are created at the emulator and added through one tab's "Add existing task ids"; then
N tabs of one headless Chromium stay open on /jobs for the measured window, and the emulator's own
count of record-info requests over that window is the figure. The tracker reads each task on its
schedule whatever the tabs do (they read the ledger), so the ratio to one tab should be about 1.
"""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

from luma import CreateLimiter, LumaClient

from .common import DashboardProcess, EmulatorProcess, Options, Result

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
KEY = "sk-bench-tabs-0123456789"


def one(tabs: int, window: float, tmp: Path, browser: object) -> int:
    """Status reads the emulator saw during ``window`` seconds with ``tabs`` tabs open."""
    with EmulatorProcess("--processing-delay", "600", "--sample-size", "160x90", "--sample-seconds", "1",
                         data_dir=tmp / f"provider-{tabs}") as emulator:
        with LumaClient(KEY, api_base=emulator.url, upload_base=emulator.url,
                        create_limiter=CreateLimiter(limit=100, window=1.0)) as client:
            video = f"{emulator.url}/files/samples/rolling-hills.mp4"
            ids = [client.create_task(f"task {n}", video) for n in range(5)]
        env = {"LUMA_API_KEY": KEY, "LUMA_API_BASE": emulator.url, "LUMA_UPLOAD_BASE": emulator.url}
        with DashboardProcess(tmp / f"dashboard-{tabs}", env=env) as dashboard:
            context = browser.new_context()  # type: ignore[attr-defined]
            try:
                first = context.new_page()
                first.goto(f"{dashboard.url}/jobs")
                first.get_by_test_id("stExpander").get_by_text("Add existing task ids").click()
                first.locator(".st-key-jobs_import_text textarea").fill("\n".join(ids))
                first.locator(".st-key-jobs_import_button button").click()
                first.get_by_text(re.compile(r"Added 5 task")).wait_for(timeout=60_000)
                for _ in range(tabs - 1):
                    page = context.new_page()
                    page.goto(f"{dashboard.url}/jobs")
                time.sleep(3)  # every tab connected and drawn
                before = emulator.stats()["requests"]["reads"]
                time.sleep(window)
                return int(emulator.stats()["requests"]["reads"] - before)
            finally:
                context.close()


def run(options: Options) -> Result:
    from playwright.sync_api import sync_playwright

    counts = (1, 3) if options.tiny else (1, 3, 10)
    window = 10.0 if options.tiny else 20.0 if options.quick else 60.0
    result = Result("tabs", f"Status calls with 1, 3 and 10 tabs open on Jobs, over {window:g} s")
    reads: dict[int, int] = {}
    with tempfile.TemporaryDirectory(prefix="luma-bench-tabs-") as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            for tabs in counts:
                reads[tabs] = one(tabs, window, Path(tmp), browser)
        finally:
            browser.close()
    result.raw = {"window_s": window, "reads": reads}
    result.notes.append(
        f"Live dashboard per tab count against a fresh standalone emulator; 5 tasks generating for 10 min; "
        f"N Chromium tabs on /jobs for {window:g} s; record-info requests counted by the emulator."
    )
    base = reads[1]
    result.add("1 tab: status calls", base, "calls", f"in {window:g} s for 5 running tasks")
    for tabs in counts[1:]:
        ratio = reads[tabs] / base if base else float(reads[tabs] > 0)
        result.add(f"{tabs} tabs: status calls / 1 tab", ratio, "x", f"{reads[tabs]} vs {base}",
                   ok=None if options.tiny else ratio <= 1.1)
    return result
