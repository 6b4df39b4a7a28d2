"""Figure 4, cold start: ``streamlit run app.py`` to healthy, and to a first rendered page.

Method. Each start is a fresh ``python -m streamlit run`` process on a free loopback port
(headless, usage statistics off, no LUMA_* variables, so the dashboard starts in demo mode
with a new temporary emulator: nothing is warm but the OS file cache). Timed from spawn:

* healthy: the first ``GET /_stcore/health`` answering 200 (polled every 50 ms);
* rendered: headless Chromium (Playwright, /usr/bin/chromium, launched once before any timing)
  opens the page as soon as it is healthy, until a known element of the first page is visible:
  the Submit page's "Modify a video" heading for the dashboard, the text "Hello, world" for a
  one-line ``st.write`` app started the same way in the same run;
* for the dashboard also: the sample preview ``<video>`` visible (the demo generates its sample
  clips on first use, so this is the first page complete).

Starts alternate hello/dashboard; each figure is the fastest of the repeats.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from .common import LOOPBACK, REPO, Options, Result

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
START_TIMEOUT = 90.0
HELLO = 'import streamlit as st\n\nst.write("Hello, world")\n'


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _spawn(script: Path, port: int, cwd: Path, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUMA_")}
    env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] = "false"
    command = [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.headless", "true", "--server.address", LOOPBACK, "--server.port", str(port),
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
    ]
    with open(log, "wb") as out:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def one_start(browser, script: Path, cwd: Path, wait_for, log: Path, extra=None) -> dict[str, float]:
    """Spawn, wait for health, open the page, wait for ``wait_for(page)``; seconds from spawn."""
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    started = time.perf_counter()
    proc = _spawn(script, port, cwd, log)
    out: dict[str, float] = {}
    try:
        deadline = started + START_TIMEOUT
        with httpx.Client(timeout=2.0) as http:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"streamlit exited early: {log.read_text(errors='replace')[-800:]}")
                if time.perf_counter() > deadline:
                    raise TimeoutError("streamlit never became healthy")
                try:
                    if http.get(f"{url}/_stcore/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        out["healthy_s"] = time.perf_counter() - started
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(url, wait_until="commit", timeout=START_TIMEOUT * 1000)
            wait_for(page)
            out["rendered_s"] = time.perf_counter() - started
            if extra is not None:
                extra(page)
                out["complete_s"] = time.perf_counter() - started
        finally:
            context.close()
    finally:
        _stop(proc)
    return out


def run(options: Options) -> Result:
    from playwright.sync_api import sync_playwright

    result = Result("cold_start", "Cold start: streamlit run to healthy and to a first rendered page")
    repeats = 1 if options.quick or options.tiny else 2
    timeout_ms = START_TIMEOUT * 1000

    def hello_ready(page) -> None:
        page.get_by_text("Hello, world").wait_for(state="visible", timeout=timeout_ms)

    def dashboard_ready(page) -> None:
        page.get_by_role("heading", name="Modify a video").wait_for(state="visible", timeout=timeout_ms)

    def dashboard_complete(page) -> None:
        page.locator("video").first.wait_for(state="visible", timeout=timeout_ms)

    runs: dict[str, list[dict[str, float]]] = {"hello": [], "dashboard": []}
    with tempfile.TemporaryDirectory(prefix="luma-bench-cold-") as tmp, sync_playwright() as pw:
        tmp_dir = Path(tmp)
        hello = tmp_dir / "hello.py"
        hello.write_text(HELLO)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            for i in range(repeats):
                runs["hello"].append(one_start(browser, hello, tmp_dir, hello_ready, tmp_dir / f"hello-{i}.log"))
                runs["dashboard"].append(
                    one_start(browser, REPO / "app.py", REPO, dashboard_ready, tmp_dir / f"dash-{i}.log",
                              extra=dashboard_complete)
                )
        finally:
            browser.close()
    result.raw = runs
    best = {name: {k: min(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    h, d = best["hello"], best["dashboard"]
    result.notes.append(
        f"Fresh `python -m streamlit run` per start on 127.0.0.1 (headless, demo mode); fastest of {repeats}; "
        "rendered = 'Modify a video' heading visible in headless Chromium (hello: 'Hello, world')."
    )
    result.add("healthy: dashboard / hello world", d["healthy_s"] / h["healthy_s"], "x",
               f"{d['healthy_s']:.2f} s vs {h['healthy_s']:.2f} s")
    result.add("first page rendered: dashboard / hello world", d["rendered_s"] / h["rendered_s"], "x",
               f"{d['rendered_s']:.2f} s vs {h['rendered_s']:.2f} s")
    result.add("first page complete (sample video shown): dashboard / hello rendered",
               d["complete_s"] / h["rendered_s"], "x", f"{d['complete_s']:.2f} s from spawn")
    return result
