"""A real `streamlit run app.py` in demo mode, and real Chromium driving it through Playwright.

Playwright's own browser download does not work on our machines: Debian's /usr/bin/chromium is
used instead (CI installs it). The server runs with no API key (every ``LUMA_*`` variable is
removed from its environment), so the dashboard builds its in-process emulator, whose data
directory (``LUMA_EMULATOR_DIR``, a temporary directory here) holds ``creates.jsonl``: one line
per create the emulator accepted, which the tests read to count creates where they happen.

The demo is made fast for tests only through documented settings: a ``[demo]`` secrets table in
a temporary secrets file passed with ``--secrets.files`` (which also keeps any developer's own
``.streamlit/secrets.toml``, and its API key, out of the run).

Every browser context refuses requests that leave this machine (the tests must never reach the
internet); a page that tries anyway is reported as a warning. A failed test leaves a screenshot
``artifacts/screenshots/failed-<test>.png``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
VIEWPORT = {"width": 1400, "height": 1000}
STARTUP_SECONDS = 90
# A fast demo for tests: small, short sample clips. Tasks stay 10 s in "Generating" (default 4),
# so the Jobs page is sure to show them unfinished before its own timer brings the success, even
# on a CI machine half as fast as ours (the create, the toast and the page switch take ~3 s here).
DEMO_SECRETS = """\
[demo]
processing_delay = 10.0
sample_width = 320
sample_height = 180
sample_seconds = 2.0
"""

SETTLED_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
               && app.getAttribute('data-test-connection-state') === 'CONNECTED';
}"""


@dataclass
class Dashboard:
    """The running server: its address, the emulator's data dir and the server's log."""

    url: str
    data_dir: Path
    log: Path
    _log_checked: int = field(default=0, repr=False)

    def create_lines(self) -> list[str]:
        """The emulator's creates.jsonl, one JSON line per accepted create."""
        path = self.data_dir / "creates.jsonl"
        if not path.exists():
            return []
        return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def creates(self) -> int:
        """How many creates the emulator accepted so far."""
        return len(self.create_lines())

    def new_log(self) -> str:
        """What the server logged since the last call."""
        data = self.log.read_bytes()
        new, self._log_checked = data[self._log_checked :], len(data)
        return new.decode("utf-8", "replace")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop streamlit and everything it started (its own process group)."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    # Whatever is left of the group after the leader exited (workers it forked).
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def launch(
    home: Path, *, secrets: str = DEMO_SECRETS, env: dict[str, str] | None = None, port: int | None = None
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """``streamlit run app.py`` on a free loopback port with its data under ``home``; waits until healthy.

    Returns (process, url, log). The process leads its own group (see :func:`_stop`); every
    ``LUMA_*`` variable of this environment is dropped, then ``env`` is added.
    """
    home.mkdir(parents=True, exist_ok=True)
    secrets_file = home / "secrets.toml"
    secrets_file.write_text(secrets, encoding="utf-8")
    log = home / f"streamlit-{int(time.time() * 1000)}.log"
    port = port or free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LUMA_")}
    environ["LUMA_EMULATOR_DIR"] = str(home / "emulator")
    environ["LUMA_DATA_DIR"] = str(home / "data")  # the ledger, never the repository's own data folder
    environ.update(env or {})
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--browser.gatherUsageStats", "false",
        "--secrets.files", str(secrets_file),
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, env=environ, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        if process.poll() is not None:
            pytest.fail(f"streamlit exited early:\n{log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=2).status_code == 200:
                return process, url, log
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            _stop(process)
            pytest.fail(f"streamlit was not healthy after {STARTUP_SECONDS} s:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)


def kill_hard(process: subprocess.Popen[bytes]) -> None:
    """``kill -9`` the server and everything it started: no shutdown code runs."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


@pytest.fixture(scope="session")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium (apt-get install -y chromium)")
    home = tmp_path_factory.mktemp("dashboard")
    process, url, log = launch(home)
    try:
        yield Dashboard(url=url, data_dir=home / "emulator", log=log)
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope, not session: Playwright's sync API keeps an asyncio loop running in this
    # thread while it is open, which would break every later test that calls asyncio.run().
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname in ("127.0.0.1", "localhost", "::1")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def page(browser: Any, dashboard: Dashboard, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context (so a fresh Streamlit session) at 1400x1000."""
    context = browser.new_context(viewport=dict(VIEWPORT))
    off_machine: list[str] = []

    def refuse(route: Any) -> None:
        off_machine.append(route.request.url)
        route.abort("blockedbyclient")

    context.route(lambda url: not _local(url), refuse)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    # The content security policy must let Streamlit's own page work: any violation fails the test.
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    dashboard.new_log()  # only what this test makes the server log is checked below
    try:
        yield page
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
            page.screenshot(path=str(SCREENSHOTS / f"failed-{name}.png"), full_page=True)
    finally:
        context.close()
    if off_machine:
        warnings.warn(
            f"the page tried to reach other machines (refused): {sorted(set(off_machine))}", stacklevel=1
        )
    assert not errors, f"JavaScript errors on the page: {errors}"
    logged = dashboard.new_log()
    assert "Traceback" not in logged, f"the server logged a traceback during the test:\n{logged}"


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
