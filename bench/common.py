"""What every figure shares: result records, the options of a run, and the emulator as a process.

A figure is a ratio or a count measured inside one run, so a busy machine moves both sides of
a ratio together instead of moving the figure. Every loop that sends traffic is bounded in count
and in time, and the only address traffic ever goes to is 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Row:
    """One line of the figures table."""

    name: str
    """What was measured, in words (``"N=200 speed-up vs one at a time"``)."""
    value: float | int | None
    """The figure (None when it could not be measured; ``note`` says why)."""
    unit: str = ""
    """``x`` for ratios, ``s``, ``calls``, ``tasks``, ``KiB``..."""
    note: str = ""
    """What the figure is compared with, or how it was derived."""
    ok: bool | None = None
    """For figures with a required value (lost tasks = 0): whether it holds; None when none is required."""


@dataclass
class Result:
    """What one figure module reports: rows for the table, notes on method, raw numbers for JSON."""

    figure: str
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None

    def add(self, name: str, value: float | int | None, unit: str = "", note: str = "", ok: bool | None = None) -> Row:
        row = Row(name, value, unit, note, ok)
        self.rows.append(row)
        return row

    def row(self, name: str) -> Row:
        """The row called ``name`` (for tests)."""
        return next(r for r in self.rows if r.name == name)

    @property
    def failed_checks(self) -> list[Row]:
        return [r for r in self.rows if r.ok is False]

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "rows": [asdict(r) for r in self.rows],
            "notes": self.notes,
            "raw": self.raw,
        }


@dataclass(frozen=True)
class Options:
    """Sizes and switches of one run; ``quick`` shrinks every figure to finish in about a minute."""

    quick: bool = False
    tiny: bool = False
    """Smaller still than ``quick``: what the smoke test runs so the scripts cannot rot."""
    seed: int = 5
    """Seed for the emulator's faults and outcomes (a run is repeatable up to thread timing)."""
    soak_window: float | None = None
    """Create window of the soak in seconds (None: the soak's default; 10 is the provider's)."""


def fmt(value: float | int | None, unit: str = "") -> str:
    """A figure as the table shows it."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        text = f"{value:,}"
    elif abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 0.1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return f"{text} {unit}".rstrip() if unit not in ("x", "%") else f"{text}{unit}"


def machine() -> dict[str, Any]:
    """Where the figures were measured."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "nproc": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": sys.platform,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "loadavg_at_start": [round(x, 2) for x in load] if load else None,
    }


# --- the emulator as a separate process, over a real loopback socket ------------------------------


class EmulatorProcess:
    """``python -m luma.emulator`` on a free loopback port, with its admin paths at hand.

    A separate process keeps the emulator's request handling off the benchmark's own GIL, so
    client-side concurrency is measured, not contention between client and server threads.
    """

    def __init__(
        self, *args: str, data_dir: Path | None = None, start_timeout: float = 30.0, env: dict[str, str] | None = None
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="luma-bench-emulator-")
            data_dir = Path(self._tmp.name)
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self._log_path = data_dir / "emulator-stderr.log"
        self._log = open(self._log_path, "wb")  # noqa: SIM115 - closed in close()
        environ = {k: v for k, v in os.environ.items() if not k.startswith("LUMA_")}
        environ.update(env or {})
        command = [sys.executable, "-m", "luma.emulator", "--host", LOOPBACK, "--port", "0",
                   "--data-dir", str(data_dir), *args]
        self.proc = subprocess.Popen(
            command, cwd=REPO, env=environ, stdout=subprocess.PIPE, stderr=self._log, text=True
        )
        lines: queue.Queue[str] = queue.Queue()

        def pump() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                lines.put(line)

        threading.Thread(target=pump, name="bench-emulator-stdout", daemon=True).start()
        self.url = ""
        deadline = time.monotonic() + start_timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if "serving http://" in line:
                self.url = line.split("serving ", 1)[1].split()[0]
                break
        if not self.url:
            self.close()
            raise RuntimeError(f"the emulator did not start: {self.stderr_tail()}")
        if not self.url.startswith(f"http://{LOOPBACK}:"):
            self.close()
            raise RuntimeError(f"the emulator is not on loopback: {self.url}")
        self._admin = httpx.Client(base_url=self.url, timeout=30.0)

    def stderr_tail(self, chars: int = 2000) -> str:
        try:
            return self._log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change settings on the running emulator (``POST /_emulator/config``)."""
        response = self._admin.post("/_emulator/config", content=json.dumps(changes))
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict[str, Any]:
        """``GET /_emulator/stats``: creates accepted and tasks per status."""
        response = self._admin.get("/_emulator/stats")
        response.raise_for_status()
        return response.json()

    @property
    def creates_log(self) -> Path:
        return self.data_dir / "creates.jsonl"

    def close(self) -> None:
        admin = getattr(self, "_admin", None)
        if admin is not None:
            admin.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as t: ...`` then ``t[0]`` is the elapsed wall time in seconds."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


def tiny_clip(dst: Path, *, width: int = 64, height: int = 36, seconds: float = 0.5, fps: int = 12) -> Path:
    """A very small real H.264 clip (rendering hundreds of results from it stays cheap)."""
    from luma.emulator import media

    media.make_sample("bouncing-shapes", dst, width=width, height=height, seconds=seconds, fps=fps)
    return dst


# --- the dashboard as a separate process ------------------------------------------------------------


class DashboardProcess:
    """``streamlit run app.py`` on a free loopback port with its own data folder, until closed."""

    def __init__(self, home: Path, *, secrets: str = "", env: dict[str, str] | None = None,
                 port: int | None = None, start_timeout: float = 90.0) -> None:
        import socket

        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        secrets_file = home / "secrets.toml"
        secrets_file.write_text(secrets, encoding="utf-8")
        if port is None:
            with socket.socket() as s:
                s.bind((LOOPBACK, 0))
                port = int(s.getsockname()[1])
        self.url = f"http://{LOOPBACK}:{port}"
        environ = {k: v for k, v in os.environ.items() if not k.startswith("LUMA_")}
        environ.update({"LUMA_DATA_DIR": str(home / "data"), "LUMA_EMULATOR_DIR": str(home / "emulator")})
        environ.update(env or {})
        self._log = open(home / "streamlit.log", "wb")  # noqa: SIM115 - closed in close()
        command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                   "--server.address", LOOPBACK, "--server.port", str(port), "--server.fileWatcherType", "none",
                   "--browser.gatherUsageStats", "false", "--secrets.files", str(secrets_file)]
        self.proc = subprocess.Popen(command, cwd=REPO, env=environ, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + start_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the dashboard exited early: {(home / 'streamlit.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/_stcore/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise TimeoutError("the dashboard never became healthy")
            time.sleep(0.2)

    @property
    def ledger_url(self) -> str:
        return f"sqlite:///{self.home / 'data' / 'ledger.sqlite'}"

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._log.close()

    def __enter__(self) -> DashboardProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def browser_submit(page: Any, url: str, video: str, prompt: str) -> None:
    """Submit one task from a public URL on the dashboard's Submit page and wait for its answer."""
    settled = """() => { const a = document.querySelector('[data-testid="stApp"]');
        return !!a && a.getAttribute('data-test-script-state') === 'notRunning'
                   && a.getAttribute('data-test-connection-state') === 'CONNECTED'; }"""
    page.goto(url)
    page.wait_for_function(settled, timeout=60_000)
    page.locator(".st-key-submit_source").get_by_role("radio", name="Public URL").click()
    page.wait_for_function(settled, timeout=60_000)
    field = page.locator(".st-key-submit_video_url input")
    field.fill(video)
    field.press("Enter")
    box = page.locator(".st-key-submit_prompt textarea")
    box.fill(prompt)
    box.press("Tab")
    page.get_by_text("The video passed every check.").wait_for(timeout=60_000)
    page.wait_for_function(settled, timeout=60_000)
    page.locator(".st-key-submit_button").get_by_role("button", name="Start task").click()
    page.locator(".st-key-submit_result").wait_for(timeout=60_000)
