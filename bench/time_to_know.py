"""Figure 9, time to know: how late the dashboard learns a task finished, and what it cost in reads.

Method (live). A standalone emulator (``python -m luma.emulator``) with a fixed processing time
D, and a live dashboard (``streamlit run app.py``) against it; three tasks are submitted through
the Submit page in headless Chromium, about 10 s apart (different phases of the schedule). Two
runs: *polling* (no callbacks) and *callbacks* (the dashboard's ``[callbacks] public_url`` is
itself; the emulator signs and delivers). For each task: delay = when the ledger recorded the
final status (``checked_at``) - when the provider finished it (its ``completeTime``), plus the
open Jobs page's own refresh (1 s) for "the page knows"; reads = the emulator's record-info count
per task over the run. Baseline: a fixed 10 s poll, ceil(D / 10) + 1 reads and up to 10 s late.
Simulated figures for longer tasks are in the ``polling`` figure (same schedule).
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import DashboardProcess, EmulatorProcess, Options, Result, browser_submit

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage"]
KEY = "sk-bench-ttk-0123456789"
HMAC = "whsec-bench-0123456789"
PAGE_REFRESH = 1.0
TASKS = 3


def scenario(callbacks: bool, duration: float, tmp: Path, browser: Any) -> dict[str, Any]:
    import socket

    from studio.ledger import Ledger, TaskQuery

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    args = ["--processing-delay", f"{duration:g}", "--sample-size", "160x90", "--sample-seconds", "1"]
    env: dict[str, str] = {}
    if callbacks:
        args += ["--sign-callbacks", "--allow-host", f"127.0.0.1:{port}"]
        env["LUMA_EMULATOR_SIGNING_KEY"] = HMAC
    name = "callbacks" if callbacks else "polling"
    with EmulatorProcess(*args, data_dir=tmp / f"provider-{name}", env=env) as emulator:
        secrets = f'[callbacks]\npublic_url = "http://127.0.0.1:{port}"\nhmac_key = "{HMAC}"\n' if callbacks else ""
        live = {"LUMA_API_KEY": KEY, "LUMA_API_BASE": emulator.url, "LUMA_UPLOAD_BASE": emulator.url}
        with DashboardProcess(tmp / f"dashboard-{name}", secrets=secrets, env=live, port=port) as dashboard:
            reads_before = emulator.stats()["requests"]["reads"]
            context = browser.new_context()
            try:
                page = context.new_page()
                for n in range(TASKS):
                    started = time.monotonic()
                    browser_submit(page, dashboard.url, f"{emulator.url}/files/samples/rolling-hills.mp4",
                                   f"take {n} of the {name} run")
                    time.sleep(max(0.0, 10.0 - (time.monotonic() - started)))
            finally:
                context.close()
            ledger = Ledger(dashboard.ledger_url)
            try:
                deadline = time.monotonic() + duration + 120
                while True:
                    rows = [r for r in ledger.query(TaskQuery(mode="live", limit=100)).rows if r.task_id]
                    if len(rows) == TASKS and all(r.status is not None and r.status.is_final for r in rows):
                        break
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"the tasks never all turned final: {[r.status_label for r in rows]}")
                    time.sleep(0.2)
                time.sleep(1.0)
                reads = emulator.stats()["requests"]["reads"] - reads_before
                delays = [(r.checked_at - r.completed_at).total_seconds() for r in rows if r.checked_at and r.completed_at]
            finally:
                ledger.close()
    return {"delays": delays, "reads_per_task": reads / TASKS}


def run(options: Options) -> Result:
    from playwright.sync_api import sync_playwright

    duration = 8.0 if options.tiny else 25.0 if options.quick else 75.0
    result = Result("know", f"Time to know a {duration:g} s task finished, live: polling vs callbacks")
    fixed_reads = math.ceil(duration / 10) + 1
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="luma-bench-know-") as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            for callbacks in (False, True):
                out["callbacks" if callbacks else "polling"] = scenario(callbacks, duration, Path(tmp), browser)
        finally:
            browser.close()
    result.raw = {"duration_s": duration, **out}
    result.notes.append(
        f"Live: standalone emulator (processing {duration:g} s) and a live dashboard against it; {TASKS} tasks "
        "submitted through Chromium ~10 s apart; delay = ledger checked_at - provider completeTime; "
        f"the page adds its own refresh ({PAGE_REFRESH:g} s)."
    )
    for name in ("polling", "callbacks"):
        data = out[name]
        delays: list[float] = data["delays"]
        worst = max(delays)
        reads = float(data["reads_per_task"])
        goal_delay = 2.0 if name == "callbacks" else 30.0
        result.add(f"{name}: worst delay, page knows", worst + PAGE_REFRESH, "s",
                   f"ledger {worst:.2f} s + page refresh; median {statistics.median(delays):.2f} s (goal <= {goal_delay:g} s)",
                   ok=None if options.tiny else worst + PAGE_REFRESH <= goal_delay)
        goal_reads = 2 if name == "callbacks" else fixed_reads
        result.add(f"{name}: status calls per task", reads, "calls",
                   f"fixed 10 s poll: {fixed_reads} (goal <= {goal_reads})",
                   ok=None if options.tiny else reads <= goal_reads)
    return result
