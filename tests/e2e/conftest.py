"""A real `streamlit run app.py` in demo mode, and real Chromium driving it through Playwright.

Playwright's own browser download does not work on our machines: Debian's /usr/bin/chromium is
used instead (CI installs it). The server runs with no API key, so the dashboard builds its
in-process emulator, whose data directory (and its creates.jsonl, one line per accepted create)
is a temporary directory the tests read to count creates at the emulator.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = os.environ.get("LUMA_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# A fast demo for tests, set the documented way (a [demo] secrets table): short processing,
# small sample clips, so a task finishes in a few seconds on two shared cores.
DEMO_SECRETS = """\
[demo]
processing_delay = 2.0
sample_width = 320
sample_height = 180
sample_seconds = 2.0
"""


@dataclass(frozen=True)
class Dashboard:
    url: str
    data_dir: Path
    log: Path

    def creates(self) -> int:
        """Creates the emulator accepted so far (one line each in creates.jsonl)."""
        log = self.data_dir / "creates.jsonl"
        if not log.exists():
            return 0
        return sum(1 for line in log.read_text().splitlines() if line.strip())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium (apt-get install -y chromium)")
    home = tmp_path_factory.mktemp("dashboard")
    data_dir = home / "emulator"
    secrets = home / "secrets.toml"
    secrets.write_text(DEMO_SECRETS)
    log = home / "streamlit.log"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LUMA_")}
    env["LUMA_EMULATOR_DIR"] = str(data_dir)
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--secrets.files", str(secrets),
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"streamlit exited early:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not become healthy in 90 s:\n{log.read_text()}")
            time.sleep(0.25)
        yield Dashboard(url=url, data_dir=data_dir, log=log)
    finally:
        # The whole process group: streamlit and anything it started.
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # Module scope, not session: Playwright's sync API keeps an asyncio loop running in this
    # thread while it is open, which would break every later test that calls asyncio.run().
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: object, dashboard: Dashboard) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
