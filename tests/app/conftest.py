"""Shared setup of the dashboard's AppTest tests.

Each test gets its own emulator data dir (``LUMA_EMULATOR_DIR``), no API key from the environment,
fresh Streamlit caches and no test seam. ``make_app`` builds an ``AppTest`` of dashboard.py (the script app.py serves) whose
secrets always replace any real secrets file, with a fast demo (tiny sample clips, tasks that
finish in half a second).

Navigation: Streamlit serves files in ``pages/`` directly (legacy routing) until dashboard.py
has called ``st.navigation`` once per server process; ``AppTest`` resets that switch before
every run, so every run after the first would start the page file without dashboard.py. The
real server flips it once for good, so the fixture below keeps AppTest on dashboard.py's
navigation, like the server after its first page view. ``test_deep_link_goes_through_app_py`` runs without it
(``@pytest.mark.legacy_pages``) to check the guard that covers that first view.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from streamlit.runtime.pages_manager import PagesManager  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from luma import RetryPolicy  # noqa: E402
from pages._support import runtime  # noqa: E402

APP = str(ROOT / "dashboard.py")
FAST_DEMO: dict[str, Any] = {
    "processing_delay": 0.5,
    "sample_width": 160,
    "sample_height": 90,
    "sample_seconds": 1.0,
    "workers": 1,
}
TIMEOUT = 30


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "legacy_pages: run AppTest with Streamlit's legacy pages/ routing")


@pytest.fixture(autouse=True)
def hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    data_dir = tmp_path / "emulator"
    monkeypatch.setenv("LUMA_EMULATOR_DIR", str(data_dir))
    # Each test gets its own ledger (an embedded SQLite file) in its own data folder.
    monkeypatch.setenv("LUMA_DATA_DIR", str(tmp_path / "data"))
    for name in ("LUMA_API_KEY", "LUMA_API_BASE", "LUMA_UPLOAD_BASE", "LUMA_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    runtime.reset()
    if request.node.get_closest_marker("legacy_pages") is None:
        original = PagesManager.__init__

        def init(self: PagesManager, *args: Any, **kwargs: Any) -> None:
            original(self, *args, **kwargs)
            PagesManager.uses_pages_directory = False

        monkeypatch.setattr(PagesManager, "__init__", init)
    yield data_dir
    runtime.reset()


def make_app(secrets: dict[str, Any] | None = None, *, demo: dict[str, Any] | None = None) -> AppTest:
    """An AppTest of dashboard.py with these secrets (always set, so no real secrets file is read)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    table: dict[str, Any] = {"demo": {**FAST_DEMO, **(demo or {})}}
    table.update(secrets or {})
    at.secrets.update(table)
    return at


def creates(data_dir: Path) -> int:
    """Tasks the emulator accepted (one line each in creates.jsonl)."""
    log = data_dir / "creates.jsonl"
    return len(log.read_text().splitlines()) if log.exists() else 0


def page_text(at: AppTest) -> str:
    """Everything the page would send to the browser, as text (for "never shown" checks)."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            for child in children.values():
                walk(child)

    walk(at._tree)
    return "\n".join(parts)


def shown(markdown: str) -> str:
    """Markdown as the reader sees it: outside text reaches the page backslash-escaped."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


def alerts(at: AppTest) -> list[str]:
    """Text (title and body) of every error, warning, info and success alert, as shown."""
    out = []
    for kind in ("error", "warning", "info", "success"):
        for element in getattr(at, kind):
            title = getattr(element.proto, "title", "")
            out.append(shown(f"{title} {element.value}".strip()))
    return out


class Intercept:
    """A transport that answers chosen requests itself and passes the rest to ``inner``.

    ``routes`` maps (method, path) or a host name to a handler returning an ``httpx.Response``
    (or raising an ``httpx`` exception). Every request is recorded in ``seen``.
    """

    def __init__(self, inner: Any, routes: dict[Any, Callable[[httpx.Request], httpx.Response]]) -> None:
        self.inner = inner
        self.routes = routes
        self.seen: list[httpx.Request] = []

    def _route(self, request: httpx.Request) -> Callable[[httpx.Request], httpx.Response] | None:
        return self.routes.get((request.method, request.url.path)) or self.routes.get(request.url.host)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        route = self._route(request)
        if route is not None:
            request.read()
            return route(request)
        if self.inner is None:
            raise httpx.ConnectError("no network in tests", request=request)
        return self.inner.handle_request(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        route = self._route(request)
        if route is not None:
            await request.aread()
            return route(request)
        if self.inner is None:
            raise httpx.ConnectError("no network in tests", request=request)
        return await self.inner.handle_async_request(request)

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    def paths(self, method: str | None = None) -> list[str]:
        return [r.url.path for r in self.seen if method is None or r.method == method]


def envelope(code: int, data: Any = None, msg: str = "error") -> Callable[[httpx.Request], httpx.Response]:
    """A handler answering HTTP 200 with the provider's envelope and this body code."""
    body = json.dumps({"code": code, "msg": msg, "data": data}).encode()
    return lambda request: httpx.Response(200, content=body, headers={"Content-Type": "application/json"})


@pytest.fixture
def live_backend(tmp_path: Path) -> Iterator[Any]:
    """A test-owned emulator standing in for the real provider in live-mode tests."""
    from luma.emulator import Emulator, EmulatorConfig

    # A public-looking file host: live mode's pre-flight refuses local names, as the provider would.
    config = EmulatorConfig(data_dir=tmp_path / "live", public_base="https://tempfile.example.com", **FAST_DEMO)
    emulator = Emulator(config)
    yield emulator
    emulator.close()


@pytest.fixture
def seam() -> Callable[..., Intercept]:
    """Install an ``Intercept`` over the default transport; returns a function taking the routes."""

    def install(
        routes: dict[Any, Callable[[httpx.Request], httpx.Response]] | None = None, *, backend: Any = None
    ) -> Intercept:
        """``backend`` answers what the routes do not, instead of the default transport (in live
        mode, the guarded network transport, which has nothing to reach in tests)."""
        intercept = Intercept(backend, routes or {})

        def wrap(inner: Any) -> Intercept:
            # One Intercept for the whole test, so its record survives client rebuilds.
            intercept.inner = backend if backend is not None else inner
            return intercept

        runtime.set_test_seam(runtime.TestSeam(wrap_transport=wrap, retry=RetryPolicy.never()))
        return intercept

    return install
