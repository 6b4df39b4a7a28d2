"""The one Streamlit-side module: settings, the shared services and clients, and session state.

Pages do layout; everything they need from the outside world comes from here.

Services
    The ledger, the tracker, the demo emulator and the guarded network live in one
    :class:`studio.service.Studio` per configuration, in process memory (not in Streamlit's
    caches, which any browser can empty). :func:`studio` returns it, started: the ledger migrated
    and the tracker running (the server's lifespan in app.py starts it first; where no lifespan
    runs, the first page does).

Mode
    *Demo* (with no key anywhere) talks to the in-process emulator with
    ``LumaClient("demo", transport=emulator.transport(...))``. *Live* needs a key: from the
    Settings page (this session only), ``[luma] api_key`` in the secrets, or env ``LUMA_API_KEY``
    -- in that order.

Secrets
    ``st.secrets`` raises when no secrets file exists; :func:`secrets_table` is the one place that
    reads it and turns any failure into "no secrets".

Test seam
    :func:`set_test_seam` installs a :class:`TestSeam`: a function that wraps the transport the
    clients use and an optional retry policy. Tests use it to provoke provider answers the
    emulator cannot give; nothing else calls it. :func:`reset` clears it with the caches.

The API key is kept in session state or read from secrets/env at the moment a client is built; it
is never logged, never rendered, never put in a cache key (a hash is), an export, a URL or the
ledger (a hash names it there).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import threading
import uuid
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import streamlit as st

from luma import AsyncLumaClient, LumaClient, RetryPolicy
from luma.egress import EgressPolicy
from luma.emulator import Emulator, SampleClip
from luma.emulator.core import DEFAULT_PUBLIC_BASE
from luma.errors import LumaError
from luma.models import TaskBatch, UploadedFile
from luma.preflight import PreflightReport, check_url_over
from studio.access import GRANTS, THROTTLE
from studio.config import DeploymentConfig, host_of, key_ref
from studio.ledger import Ledger, LedgerUnavailable, Mode
from studio.registry import Registry
from studio.service import DEMO_KEY, Studio, shutdown_all, studio_for
from studio.sets import Budget, Pricing, Spent, month_start, today_start
from studio.tasks import decode_task_ids, encode_task_ids

from .feedback import ErrorView, describe_error, is_outage_error, set_key_source
from .submission import CreateOnce, CreateOutcome, Upload, Uploads

__all__ = [
    "CreditsReading",
    "Settings",
    "TestSeam",
    "action_client",
    "balance",
    "client",
    "deployment",
    "egress_policy",
    "emulator",
    "fetch_bytes",
    "frame_running",
    "ledger",
    "owner",
    "page_guard",
    "preflight_url",
    "read_tasks",
    "reset",
    "secret",
    "secrets_table",
    "set_test_seam",
    "settings",
    "studio",
]

_LOG = logging.getLogger("luma.dashboard")

# --- session-state keys (one place, so pages and tests agree) -----------------------------------
SESSION_API_KEY = "luma_session_api_key"
"""The key entered on the Settings page (memory only, this session only)."""
FORCE_DEMO = "luma_force_demo"
"""True: stay in demo mode in this session even though a key is configured."""
API_BASE_OVERRIDE = "luma_api_base"
UPLOAD_BASE_OVERRIDE = "luma_upload_base"
SESSION_TASKS = "jobs_session_tasks"
"""list[str]: ids of the tasks this session submitted or added, oldest first (the design card's
"ids kept in session state"; the ledger is what makes them last)."""
TASKS_RESTORED = "jobs_restored_from_url"
SUBMIT_REQUEST = "submit_request"
"""submission.SubmitRequest | None: the last recorded click on Submit."""
SUBMIT_PREFILL = "submit_prefill"
"""dict of submit-page widget values to apply on the next visit ("Run again")."""
UPLOADS = "submit_uploads"
"""dict[str, UploadedFile]: uploaded files by content hash, so a file is uploaded once."""
ACCESS_GRANTED = "access_granted"
ACCESS_FAILURES = "access_failures"
DEEP_LINK = "_deep_link_page"
BROWSER = "luma_browser_id"
"""This session's owner id when the browser sent no id cookie (AppTest, a cookie-less client)."""

QUERY_TASKS = "tasks"
"""The query parameter that mirrors this session's newest tasks (``?tasks=id1,id2``)."""

# --- secrets -------------------------------------------------------------------------------------


def secrets_table() -> dict[str, Any]:
    """All secrets as a plain dict; empty when there is no secrets file or it cannot be read."""
    try:
        return st.secrets.to_dict()
    except Exception as err:  # noqa: BLE001 - no file, a TOML error: either way, no secrets
        if not isinstance(err, FileNotFoundError):
            _LOG.warning("Secrets could not be read (%s); using defaults.", type(err).__name__)
        return {}


def secret(section: str, name: str, default: Any = None) -> Any:
    """``[section] name`` from the secrets, or ``default``."""
    table = secrets_table().get(section)
    if isinstance(table, dict) and table.get(name) not in (None, ""):
        return table[name]
    return default


def deployment() -> DeploymentConfig:
    """What the deployment configured (secrets and environment; no session involved)."""
    return DeploymentConfig.from_sources(secrets_table())


# --- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Where this session's requests go: the deployment's configuration, narrowed by the session."""

    demo: bool
    """True: the in-process emulator answers everything."""
    api_key: str = field(repr=False)
    """The key the clients send ("demo" in demo mode). Never shown."""
    key_source: str
    """Where the key came from: "session", "secrets", "environment" or "demo"."""
    api_base: str
    """The provider's API origin."""
    upload_base: str
    """The provider's upload origin."""
    deployment: DeploymentConfig = field(repr=False)
    """The deployment's own configuration."""
    configured_key: bool = False
    """True when a key exists in secrets or environment (so demo mode was chosen in-session)."""
    bases_locked: bool = False
    """True: the deployment's own key is in use, so only the hosts configured with it may be used."""
    refused_base: str | None = None
    """A base URL this session asked for that the deployment's key may not go to (kept unused)."""

    @property
    def mode(self) -> Mode:
        """"demo" or "live": the ledger keeps the two apart."""
        return "demo" if self.demo else "live"

    @property
    def key_hosts(self) -> tuple[str, ...]:
        """Hosts the deployment's key may be sent to."""
        return tuple(sorted(self.deployment.key_hosts))

    @property
    def key_ref(self) -> str | None:
        """The ledger's name for the key in use (None in demo mode)."""
        return None if self.demo else key_ref(self.api_key)

    @property
    def api_host(self) -> str:
        """The API host name, for the mode badge."""
        return urlsplit(self.api_base).netloc or self.api_base

    @property
    def fingerprint(self) -> str:
        """Identifies this configuration in cache keys without containing the key."""
        digest = hashlib.sha256(self.api_key.encode("utf-8")).hexdigest()[:16]
        raw = repr((self.demo, digest, self.api_base, self.upload_base, self.deployment.identity))
        return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:24]


def settings() -> Settings:
    """The current session's settings.

    The deployment's own key (secrets or environment) is only ever sent to the hosts configured
    with it, plus any the deployment lists in ``[luma] key_hosts``: a base URL typed on Settings
    for another host is ignored while that key is in use. A session may point the dashboard
    elsewhere only with its own key.
    """
    state = st.session_state
    config = deployment()
    session_key = state.get(SESSION_API_KEY) or None
    if session_key:
        key, source = session_key, "session"
    elif config.api_key and not state.get(FORCE_DEMO):
        key, source = config.api_key, config.key_source or "secrets"
    else:
        key, source = DEMO_KEY, "demo"
    locked = source in ("secrets", "environment")
    refused: str | None = None

    def chosen(override: Any, default: str) -> str:
        nonlocal refused
        wanted = str(override or "").strip()
        if not wanted:
            return default
        if locked and host_of(wanted) not in config.key_hosts:
            refused = wanted
            return default
        return wanted

    return Settings(
        demo=source == "demo",
        api_key=str(key).strip(),
        key_source=source,
        api_base=chosen(state.get(API_BASE_OVERRIDE), config.api_base),
        upload_base=chosen(state.get(UPLOAD_BASE_OVERRIDE), config.upload_base),
        deployment=config,
        configured_key=bool(config.api_key),
        bases_locked=locked,
        refused_base=refused,
    )


def _current_key() -> str | None:
    return settings().api_key


set_key_source(_current_key)


def access_password() -> str | None:
    """The shared password of a hosted deployment (``[access] password``), if set."""
    value = secret("access", "password")
    return str(value) if value else None


def auth_configured() -> bool:
    """True when Streamlit's own ``[auth]`` login is configured."""
    return isinstance(secrets_table().get("auth"), dict)


# --- the shared services -----------------------------------------------------------------------------


def studio(s: Settings | None = None) -> Studio:
    """The process's services for this deployment: ledger ready, tracker running.

    Raises :class:`studio.ledger.LedgerUnavailable` when the database cannot be reached (pages
    show a banner; nothing is lost, and the next page tries again).
    """
    s = s if s is not None else settings()
    service = studio_for(s.deployment)
    if _SEAM is not None and _SEAM.wrap_transport is not None:
        service.wrap = _SEAM.wrap_transport  # tests reach under the tracker's reads too
    service.ensure_tracking()
    if s.key_source == "session":
        # A key typed on Settings is kept in this process so its tasks are tracked after the tab closes.
        service.add_key(s.api_key)
    return service


def ledger() -> Ledger:
    """The task ledger (see :func:`studio`)."""
    return studio().ledger


def ledger_problem() -> ErrorView | None:
    """Why the ledger cannot be used right now (None when it can)."""
    try:
        studio()
    except LedgerUnavailable as err:
        return ErrorView(
            title="The task ledger cannot be reached",
            message=str(err),
            next_step="Every task already written is kept; reload the page in a moment. Nothing new is "
            "sent until the ledger answers, so no task can go unrecorded.",
        )
    return None


def callbacks_on(s: Settings) -> bool:
    """True when tasks of this session get this dashboard's own callback URL."""
    service = studio_for(s.deployment)
    return service.callback_base(s.mode) is not None


def send_test_callback(s: Settings) -> tuple[bool, str]:
    """POST a signed test callback to this server's public callback address, as the provider would.

    Returns (worked, what happened in words). It goes out through the guarded network, to the
    address the provider is given, so it also proves that address reaches this server.
    """
    import httpx

    from luma.callbacks import signature_headers
    from studio.web import CALLBACK_PREFIX

    service = studio(s)
    base = service.callback_base(s.mode)
    if base is None:
        return False, "Callbacks are off."
    token = service.callbacks.new_test()
    key = service.callback_key(s.mode)
    headers = signature_headers("test", key) if key else {}
    body = {"code": 200, "msg": "test", "data": {"taskId": "test"}}
    try:
        with httpx.Client(transport=service.network, timeout=PAGE_TIMEOUT) as http:
            answer = http.post(f"{base}{CALLBACK_PREFIX}{token}", json=body, headers=headers)
    except httpx.HTTPError as err:
        return False, f"The test callback did not get through ({type(err).__name__}): check {base} reaches this server."
    if answer.status_code == 200 and service.callbacks.test_seen(token):
        return True, "The test callback reached this server and was accepted."
    return False, f"The test callback got HTTP {answer.status_code}: check that {base} reaches this server."


def budget() -> Budget:
    """The deployment's spending caps (``[budget]``)."""
    return Budget.from_secrets(secrets_table())


def pricing() -> Pricing:
    """The deployment's price per task (``[pricing]``)."""
    return Pricing.from_secrets(secrets_table())


def spent(s: Settings, who: str) -> Spent:
    """Credits spent (or committed by queued takes) today and this month, by ``who`` and by everyone."""
    ledger = studio(s).ledger
    now = datetime.now(UTC)
    day, month = today_start(now), month_start(now)
    today_mine, month_mine, today_all, month_all = ledger.spent_by_window(s.mode, day=day, month=month, owner=who)
    return Spent(today_mine=today_mine, month_mine=month_mine, today_all=today_all, month_all=month_all)


def owner() -> tuple[str, str]:
    """(owner id, display name) of whoever uses this session: the signed-in user, else this browser.

    The browser id comes from the HTTP-only cookie the web edge sets, so "Mine" is the same in
    every tab and after a reload; without one (AppTest) the session gets an id of its own.
    """
    from .access import browser_id

    if auth_configured():
        try:
            if st.user.is_logged_in and st.user.get("email"):
                email = str(st.user.get("email"))
                return email, str(st.user.get("name") or email)
        except Exception:  # noqa: BLE001 - no user context
            pass
    browser = browser_id() or st.session_state.setdefault(BROWSER, uuid.uuid4().hex)
    return f"browser:{browser}", f"Browser {hashlib.sha256(browser.encode()).hexdigest()[:6]}"


# --- test seam -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestSeam:
    """How tests reach under the clients (see the module docstring)."""

    __test__ = False  # not a pytest test class

    wrap_transport: Callable[[Any], Any] | None = None
    """Given the default transport (the emulator's, or the guarded network), return the one to use."""
    retry: RetryPolicy | None = None
    """Retry policy for every client, instead of the dashboard's."""


_SEAM: TestSeam | None = None


def set_test_seam(seam: TestSeam | None) -> None:
    """Install (or remove, with None) the test seam. For tests only."""
    global _SEAM
    _SEAM = seam


def reset() -> None:
    """Forget the test seam and every service, client, cached answer and in-process registry."""
    set_test_seam(None)
    _PROCESS.clear()
    shutdown_all()
    st.cache_resource.clear()
    st.cache_data.clear()
    _CREATES.clear()
    _UPLOADS.clear()
    THROTTLE.clear()
    GRANTS.clear()


def _seam_token() -> str:
    return f"seam-{id(_SEAM)}" if _SEAM is not None else "no-seam"


# --- clients -------------------------------------------------------------------------------------

_PROCESS = Registry(max_entries=64)

# A page never waits long on the provider: reads it shows (credits, download links, the connection
# test) time out after a few seconds and are retried at most once within that budget. A create or
# an upload the user started runs longer, under a spinner: cutting a create short would leave its
# outcome unknown while the provider may have charged for it.
PAGE_TIMEOUT = 4.0
ACTION_TIMEOUT = 30.0
_UI_RETRY = RetryPolicy(max_attempts=2, max_delay=1.0, max_total=PAGE_TIMEOUT)


def egress_policy(s: Settings) -> EgressPolicy:
    """What the server may connect to for this configuration: public addresses, and the
    private hosts the deployment itself configured (never one typed in a session)."""
    return EgressPolicy(allow_hosts=frozenset(s.deployment.network_hosts))


def emulator() -> Emulator | None:
    """The process's demo emulator, in demo mode; None in live mode."""
    s = settings()
    return studio_for(s.deployment).emulator() if s.demo else None


def _transport(s: Settings) -> Any:
    """The transport every client of this configuration shares (sync and async alike)."""
    service = studio_for(s.deployment)
    base = service.demo_transport() if s.demo else service.network
    if _SEAM is not None and _SEAM.wrap_transport is not None:
        return _SEAM.wrap_transport(base)
    return base


def _close_client(c: LumaClient) -> None:
    c.close()


def _client_for(s: Settings, kind: str) -> LumaClient:
    def build() -> LumaClient:
        retry = _SEAM.retry if _SEAM is not None and _SEAM.retry is not None else _UI_RETRY
        return LumaClient(
            s.api_key,
            api_base=s.api_base,
            upload_base=s.upload_base,
            transport=_transport(s),
            timeout=PAGE_TIMEOUT if kind == "page" else ACTION_TIMEOUT,
            retry=retry,
            create_limiter=_create_limiter(s) if kind == "action" else None,
        )

    return _PROCESS.get(("client", kind, s.fingerprint, _seam_token()), build, _close_client)


def _create_limiter(s: Settings) -> Any:
    """The provider's 20-creates-per-10-s window for this key, kept in the ledger so every server
    process sharing it stays inside the window together."""
    from studio.ledger import LedgerCreateLimiter

    ref = key_ref(s.api_key) if not s.demo else "demo"
    return LedgerCreateLimiter(studio_for(s.deployment).ledger, ref)


def client() -> LumaClient:
    """The client for reads a page waits on (short timeouts), shared by sessions with the same settings."""
    return _client_for(settings(), "page")


def action_client() -> LumaClient:
    """The client for creates and uploads the user started (longer timeouts, shared create window)."""
    return _client_for(settings(), "action")


def read_tasks(task_ids: Iterable[str]) -> TaskBatch:
    """Read many tasks concurrently now (benchmarks and tests; pages read the ledger instead)."""
    ids = list(task_ids)
    s = settings()
    transport: Any = _transport(s)
    retry = _SEAM.retry if _SEAM is not None and _SEAM.retry is not None else _UI_RETRY

    async def run() -> TaskBatch:
        async with AsyncLumaClient(
            s.api_key, api_base=s.api_base, upload_base=s.upload_base, transport=transport,
            timeout=PAGE_TIMEOUT, retry=retry,
        ) as async_client:
            return await async_client.get_tasks(ids)

    return asyncio.run(run())


@st.cache_data(ttl=300, max_entries=64, show_spinner=False)
def _preflight(url: str, fingerprint: str, seam: str, _s: Settings, _transport: Any) -> PreflightReport:
    # In demo mode the emulator's own file host is served in-process, so it passes the
    # private-address check; every other host goes out through the guard.
    local = (emulator_public_base(_s),) if _s.demo else ()
    return check_url_over(url, transport=_transport, egress=egress_policy(_s), local_origins=local)


def emulator_public_base(s: Settings) -> str:
    """The origin of the demo emulator's file URLs."""
    return str(dict(s.deployment.demo_options).get("public_base") or DEFAULT_PUBLIC_BASE)


def preflight_url(url: str) -> PreflightReport:
    """The pre-flight checks on a video URL, fetched the way the provider will (cached 5 minutes)."""
    s = settings()
    return _preflight(url, s.fingerprint, _seam_token(), s, _transport(s))


def forget_preflight() -> None:
    """Drop cached pre-flight reports ("Check again")."""
    _preflight.clear()


@dataclass(frozen=True)
class CreditsReading:
    """The balance, or why it could not be read."""

    balance: int | None = None
    """Credits left, when the read worked."""
    problem: ErrorView | None = None
    """Why it did not."""
    outage: bool = False
    """True when the provider did not answer in time, or answered that it is down."""


@st.cache_data(ttl=30, max_entries=32, show_spinner=False)
def _credits(fingerprint: str, seam: str, epoch: int, _c: LumaClient) -> CreditsReading:
    # A failure is cached for the same 30 s: while the provider hangs, one page in 30 s waits
    # a few seconds for it, not every page.
    try:
        return CreditsReading(balance=_c.get_credits())
    except LumaError as err:
        return CreditsReading(problem=describe_error(err), outage=is_outage_error(err))


def balance() -> CreditsReading:
    """Remaining credits, or why they could not be read (cached for 30 s)."""
    s = settings()
    return _credits(s.fingerprint, _seam_token(), _credits_epoch[0], client())


# Bumped to make the cached credits stale: a plain write, safe where a Streamlit call is not.
_credits_epoch = [0]


def forget_credits() -> None:
    """Make the cached credits stale (after a create, or a settings change)."""
    _credits_epoch[0] += 1


@st.cache_data(ttl=3600, max_entries=24, show_spinner=False)
def _fetch(url: str, fingerprint: str, _c: LumaClient) -> bytes:
    return _c.fetch(url)


def fetch_bytes(url: str) -> bytes:
    """A file's bytes through the client's transport (demo videos), cached by URL."""
    return _fetch(url, settings().fingerprint, action_client())


def sample_ready(slug: str) -> bool:
    """True when the demo's sample clip is drawn and can be shown without waiting (always live)."""
    em = emulator()
    return em is None or em.sample_ready(slug)


def samples() -> list[SampleClip]:
    """The demo's sample clips (demo mode only; empty in live mode)."""
    em = emulator()
    return em.samples() if em is not None else []


# --- uploads -------------------------------------------------------------------------------------

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def upload_name(data: bytes, file_name: str) -> tuple[str, str]:
    """(content hash, name to upload under): unique per content, since a reused name overwrites."""
    digest = hashlib.sha256(data).hexdigest()
    stem = _SAFE_NAME.sub("-", Path(file_name).name).strip("-.") or "video.mp4"
    return digest, f"{digest[:12]}-{stem}"


def uploaded(digest: str) -> UploadedFile | None:
    """The upload of this content made earlier in this session, if any."""
    return st.session_state.get(UPLOADS, {}).get(digest)


def remember_upload(digest: str, upload: UploadedFile) -> None:
    """Remember an upload so the same file is never sent twice in this session."""
    st.session_state.setdefault(UPLOADS, {})[digest] = upload


_UPLOADS = Uploads()


def start_upload(digest: str, data: bytes, upload_as: str) -> tuple[Hashable, Upload]:
    """(key, upload) of this session's upload of this content: running, finished, or started now.

    The upload runs in its own thread, so a run stopped while showing its progress does not stop
    it; the next run follows the same upload.
    """
    key = (_session_key(), digest)
    c = action_client()
    return key, _UPLOADS.start(key, len(data), lambda progress: c.upload_file(data, file_name=upload_as, progress=progress))


def forget_failed_upload(key: Hashable, upload: Upload) -> None:
    """A failed upload has been reported: the next run may try again."""
    _UPLOADS.forget_failed(key, upload)


# --- this session's tasks ------------------------------------------------------------------------


def session_tasks() -> list[str]:
    """The live list of this session's task ids (oldest first). Append, never replace.

    It is made once per session and never swapped for another list, so a run that took it before
    sending a create can add the task to it without touching session state again.
    """
    if SESSION_TASKS not in st.session_state:
        st.session_state[SESSION_TASKS] = []
    return st.session_state[SESSION_TASKS]


def remember_tasks(task_ids: Iterable[str], into: list[str] | None = None) -> int:
    """Add ids to this session's list (plain list writes: safe between yield points). Returns new ones."""
    listed = into if into is not None else session_tasks()
    known = set(listed)
    added = 0
    for task_id in task_ids:
        if task_id not in known:
            listed.append(task_id)
            known.add(task_id)
            added += 1
    return added


def restore_from_url() -> int:
    """Once per session: add the ids in ``?tasks=`` to the ledger and this session's list.

    Garbage in the address is ignored; the ids are added to the ledger as this user's ("opened
    from a link"), so they last beyond the session. Returns how many were new to this session.
    """
    if st.session_state.get(TASKS_RESTORED):
        return 0
    ids = decode_task_ids(st.query_params.get_all(QUERY_TASKS))
    if ids:
        s = settings()
        who, name = owner()
        try:
            studio(s).ledger.add_existing(
                ids, mode=s.mode, owner=who, owner_name=name, key_ref=s.key_ref, api_base=s.api_base, origin="link"
            )
            studio(s).tracker.nudge()
        except LedgerUnavailable:
            return 0  # the address stays as it is; the next run tries again
    added = remember_tasks(ids)
    # Marked done only now: a run stopped before this point restores again, never loses the list
    # (the address would otherwise be rewritten from an empty list).
    st.session_state[TASKS_RESTORED] = True
    return added


def mirror_to_url() -> None:
    """Keep ``?tasks=`` equal to this session's newest tasks, so a reload or a bookmark brings them back.

    Only the newest few: the ledger keeps them all, and a long address is refused by servers.
    """
    value = encode_task_ids(list(session_tasks()))
    if value:
        # Sent on every full run, even when the server's copy already matches: with fast reruns
        # an interrupted run's address update can be lost in the browser while the server's copy
        # (taken from an earlier click) says it is current; re-sending makes the address converge.
        st.query_params[QUERY_TASKS] = value
    elif QUERY_TASKS in st.query_params:
        del st.query_params[QUERY_TASKS]


# --- running pages only through dashboard.py ----------------------------------------------------------

_FRAME = threading.local()


@contextlib.contextmanager
def frame_running() -> Iterator[None]:
    """Marks that dashboard.py (gate, sidebar, navigation) is running the current page."""
    _FRAME.active = True
    try:
        yield
    finally:
        _FRAME.active = False


def page_guard(page_path: str) -> None:
    """Send a page that was started without dashboard.py back through it.

    Streamlit still routes a first request for ``/submit`` straight to ``pages/submit.py`` (the
    legacy ``pages/`` folder convention) until dashboard.py has called ``st.navigation`` once in
    this server process. That would skip the access gate; this sends the request there instead,
    which then opens the page that was asked for.
    """
    if getattr(_FRAME, "active", False):
        return
    st.session_state[DEEP_LINK] = page_path
    st.switch_page("dashboard.py", query_params=st.query_params.to_dict())


# --- browser messages this server never asked for ---------------------------------------------------


def drop_forged_widget_states() -> int:
    """Forget widget values a browser sent for widgets this server never drew; returns how many.

    Every real widget id starts with Streamlit's element-id prefix. A hand-made websocket message
    can carry any id; one that looks like a plain session-state key makes Streamlit's own
    session state raise on the next widget (a traceback in the log, the page broken for that
    session). Called first thing in every run, before any widget exists.
    """
    from streamlit.runtime.scriptrunner import get_script_run_ctx
    from streamlit.runtime.state.common import is_element_id

    ctx = get_script_run_ctx()
    inner = getattr(getattr(ctx, "session_state", None), "_state", None)
    widgets = getattr(inner, "_new_widget_state", None)
    if widgets is None:
        return 0
    forged = [wid for wid in list(widgets.states) if not is_element_id(wid)]
    for wid in forged:
        del widgets[wid]
    if forged:
        _LOG.warning("Ignored %d widget value(s) for widgets this server never drew.", len(forged))
    return len(forged)


# --- one create per submission, whatever happens to session state -----------------------------------
#
# Session state cannot stop a double create, nor keep a create's answer: with fast reruns a click
# starts a new script thread at once while the old one runs on to its next yield point (any st.*
# call or session-state access) and stops there. See pages/_support/submission.py. So creates go
# through one process-wide gate, keyed per browser session and submission, and every create is
# written to the ledger before it is sent (the ledger's unique request key holds across processes
# and restarts).

SUBMIT_GENERATION = "submit_generation"
SUBMIT_SESSION = "submit_session_token"
_CREATES = CreateOnce()

SubmissionKey = tuple[str, int, str]


def _session_key() -> str:
    """This browser session, as a key for process-wide registries (reads session state)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    # A random token too: session ids can repeat (AppTest reuses one), tokens do not. It is made
    # in the session's first run, long before any click could race it.
    token = st.session_state.setdefault(SUBMIT_SESSION, uuid.uuid4().hex)
    return f"{ctx.session_id if ctx is not None else 'no-session'}:{token}"


def submission_key(fingerprint: str) -> SubmissionKey:
    """The key of a submission of these inputs in this browser session (reads session state)."""
    return _session_key(), int(st.session_state.get(SUBMIT_GENERATION, 0)), fingerprint


def start_session() -> None:
    """Give the session its submission token in its first run (before any click can race it)."""
    st.session_state.setdefault(SUBMIT_SESSION, uuid.uuid4().hex)


def new_submission() -> None:
    """The user deliberately starts over: the same inputs may be sent again."""
    st.session_state[SUBMIT_GENERATION] = int(st.session_state.get(SUBMIT_GENERATION, 0)) + 1


def create_once(key: SubmissionKey, request_id: str, send: Callable[[], str]) -> CreateOutcome:
    """Send a create for this submission once per process; every caller gets the same outcome.

    Touches neither Streamlit nor session state, so a newer run cannot stop it half-way.
    """
    return _CREATES.create_once(key, request_id, send)
