"""The access gate of a hosted deployment: Streamlit's own login, or a shared password.

When ``[auth]`` is configured, users sign in with ``st.login`` (OpenID Connect) and the gate checks
``st.user.is_logged_in``. Otherwise, when ``[access] password`` is set, a shared password is asked
for once per session. Until the gate opens, the dashboard renders only the gate and makes no API
call.

The gate answers on every page address (``/jobs``, ``/settings``, ...), so a deep link shows the
sign-in form rather than "page not found", and after signing in the browser is still on the page
it asked for. Wrong passwords are throttled per client address and overall, in process memory
(:data:`studio.access.THROTTLE`), so reloading or opening another tab does not reset the wait.
A session past the gate registers its browser with :data:`studio.access.GRANTS`, which is what
lets the web edge serve that browser its ``/media/`` files.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable

import streamlit as st

from studio.access import GRANTS, THROTTLE
from studio.edge import BROWSER_COOKIE

from . import runtime

__all__ = ["browser_id", "client_address", "gate"]

PASSWORD_KEY = "access_password"
SUBMIT_KEY = "access_submit"
LOGIN_KEY = "access_login"
NOTICE_KEY = "access_notice"


def client_address() -> str:
    """The address the throttle counts wrong passwords against ("unknown" when there is none)."""
    try:
        address = st.context.ip_address
    except Exception:  # noqa: BLE001 - no request context (tests): one shared bucket
        return "unknown"
    return address if isinstance(address, str) and address else "unknown"


def browser_id() -> str | None:
    """This browser's id from the cookie the web edge sets (None without one, e.g. in AppTest)."""
    try:
        value = st.context.cookies.get(BROWSER_COOKIE)
    except Exception:  # noqa: BLE001 - no request context
        return None
    return value if isinstance(value, str) and value else None


def _providers() -> list[str | None]:
    table = runtime.secrets_table().get("auth", {})
    return sorted(name for name, value in table.items() if isinstance(value, dict))


def _login_page() -> None:
    st.title("Luma video studio", anchor=False)
    st.write("Sign in to use the dashboard.")
    providers = _providers() or [None]
    with st.container(horizontal=True):
        for name in providers:
            label = f"Sign in with {name.title()}" if name and len(providers) > 1 else "Sign in"
            key = f"{LOGIN_KEY}_{name}" if name and len(providers) > 1 else LOGIN_KEY
            if st.button(label, key=key, type="primary", icon=":material/login:"):
                if name:
                    st.login(name)
                else:
                    st.login()


def _check_password() -> None:
    """Form callback: compare the password, unless this address must still wait."""
    state = st.session_state
    entered = state.get(PASSWORD_KEY) or ""
    state[PASSWORD_KEY] = ""  # never kept in session state beyond this check
    client = client_address()
    wait = THROTTLE.wait_left(client)
    if wait > 0:
        # Refused without comparing: more tabs or reloads do not mean more guesses.
        state[NOTICE_KEY] = f"Too many wrong passwords. Wait {wait:.0f} s, then try again."
        return
    expected = runtime.access_password() or ""
    if entered and hmac.compare_digest(entered.encode("utf-8"), expected.encode("utf-8")):
        THROTTLE.succeeded(client)
        state[runtime.ACCESS_GRANTED] = True
        state.pop(NOTICE_KEY, None)
        return
    wait = THROTTLE.failed(client)
    state[runtime.ACCESS_FAILURES] = int(state.get(runtime.ACCESS_FAILURES, 0)) + 1
    state[NOTICE_KEY] = f"Wrong password. Check it and try again in {max(1.0, wait):.0f} s."


def _password_page() -> None:
    st.title("Luma video studio", anchor=False)
    with st.form("access_form", border=True, width=420):
        st.write("This dashboard is protected. Enter the access password.")
        st.text_input("Password", type="password", key=PASSWORD_KEY)
        st.form_submit_button("Enter", key=SUBMIT_KEY, type="primary", on_click=_check_password)
    notice = st.session_state.get(NOTICE_KEY)
    if notice:
        st.error(notice, icon=":material/lock:")


def _gate_navigation(page: Callable[[], None], page_paths: Iterable[str]) -> None:
    # The gate answers on every page's address: no "page not found" over the form, and the
    # address (say /jobs) is kept, so the real navigation opens that page once the gate opens.
    pages = [st.Page(page, title="Sign in", default=True)]
    pages += [st.Page(page, title="Sign in", url_path=path) for path in page_paths if path]
    st.navigation(pages, position="hidden").run()


def _register_browser() -> None:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    browser = browser_id()
    ctx = get_script_run_ctx()
    if browser and ctx is not None:
        GRANTS.grant(browser, ctx.session_id)


def gate(page_paths: Iterable[str] = ()) -> bool:
    """True when the user may use the app; otherwise render the gate and return False.

    ``page_paths`` are the URL paths of the real pages, which the gate answers on too.
    """
    if runtime.auth_configured():
        if st.user.is_logged_in:
            _register_browser()
            return True
        _gate_navigation(_login_page, page_paths)
        return False
    if not runtime.access_password() or st.session_state.get(runtime.ACCESS_GRANTED):
        _register_browser()
        return True
    _gate_navigation(_password_page, page_paths)
    return False
