"""The access gate of a hosted deployment: Streamlit's own login, or a shared password.

When ``[auth]`` is configured, users sign in with ``st.login`` (OpenID Connect) and the gate checks
``st.user.is_logged_in``. Otherwise, when ``[access] password`` is set, a shared password is asked
for once per session. Until the gate opens, app.py renders only the gate (through a hidden,
one-page navigation) and makes no API call.
"""

from __future__ import annotations

import hmac
import time

import streamlit as st

from . import runtime

__all__ = ["gate", "throttle_seconds"]

PASSWORD_KEY = "access_password"
SUBMIT_KEY = "access_submit"
LOGIN_KEY = "access_login"

_sleep = time.sleep  # module-level so tests can watch the waits without patching time itself


def throttle_seconds(failures: int) -> float:
    """How long a wrong password makes the next answer wait: growing, capped at 4 s."""
    return 0.0 if failures <= 0 else min(4.0, 0.5 * 2 ** (failures - 1))


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


def _password_page() -> None:
    st.title("Luma video studio", anchor=False)
    expected = runtime.access_password() or ""
    with st.form("access_form", border=True, width=420):
        st.write("This dashboard is protected. Enter the access password.")
        entered = st.text_input("Password", type="password", key=PASSWORD_KEY)
        submitted = st.form_submit_button("Enter", key=SUBMIT_KEY, type="primary")
    if not submitted:
        return
    if entered and hmac.compare_digest(entered.encode("utf-8"), expected.encode("utf-8")):
        st.session_state[runtime.ACCESS_GRANTED] = True
        st.session_state[runtime.ACCESS_FAILURES] = 0
        st.rerun()
    failures = st.session_state.get(runtime.ACCESS_FAILURES, 0) + 1
    st.session_state[runtime.ACCESS_FAILURES] = failures
    # Slow down guessing: each wrong answer in this session waits longer, up to a few seconds.
    _sleep(throttle_seconds(failures))
    st.error("Wrong password. Check it and try again.", icon=":material/lock:")


def gate() -> bool:
    """True when the user may use the app; otherwise render the gate and return False."""
    if runtime.auth_configured():
        if st.user.is_logged_in:
            return True
        st.navigation([st.Page(_login_page, title="Sign in", url_path="sign-in")], position="hidden").run()
        return False
    if not runtime.access_password() or st.session_state.get(runtime.ACCESS_GRANTED):
        return True
    st.navigation([st.Page(_password_page, title="Sign in", url_path="sign-in")], position="hidden").run()
    return False
