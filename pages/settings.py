"""Settings: an API key for this session only, base URLs, how tasks are tracked, and a connection test."""

from __future__ import annotations

from urllib.parse import urlsplit

import streamlit as st

from luma._constants import DEFAULT_API_BASE, DEFAULT_UPLOAD_BASE
from luma.errors import LumaError
from pages._support import runtime
from pages._support.feedback import show_error
from studio.text import plain

runtime.page_guard("pages/settings.py")

state = st.session_state


def save_key() -> None:
    """Keep the typed key in memory for this session only, and clear the field at once."""
    key = (state.get("settings_api_key") or "").strip()
    if not key:
        state["settings_notice"] = ("warning", "Paste a key first.")
        return
    if any(ch.isspace() for ch in key) or len(key) < 8:
        state["settings_api_key"] = ""
        state["settings_notice"] = ("error", "That does not look like an API key: no spaces, at least 8 characters.")
        return
    # Saved before the field is cleared: a run stopped in between keeps the key, never loses it.
    state[runtime.SESSION_API_KEY] = key
    state[runtime.FORCE_DEMO] = False
    state["settings_api_key"] = ""
    runtime.forget_credits()
    state["settings_notice"] = ("success", "Key saved for this session. The dashboard is now in live mode.")


def forget_key() -> None:
    state.pop(runtime.SESSION_API_KEY, None)
    runtime.forget_credits()
    state["settings_notice"] = ("success", "The key was forgotten.")


def set_force_demo() -> None:
    state[runtime.FORCE_DEMO] = bool(state.get("settings_force_demo"))
    runtime.forget_credits()


def _valid_base(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def save_bases() -> None:
    api = (state.get("settings_api_base") or "").strip().rstrip("/")
    upload = (state.get("settings_upload_base") or "").strip().rstrip("/")
    bad = [name for name, value in (("API", api), ("upload", upload)) if not _valid_base(value)]
    if bad:
        state["settings_notice"] = (
            "error",
            f"The {' and '.join(bad)} base URL must be an http(s) address such as {DEFAULT_API_BASE}.",
        )
        return
    now = runtime.settings()
    if now.bases_locked:
        refused = [v for v in (api, upload) if (urlsplit(v).hostname or "").lower() not in now.key_hosts]
        if refused:
            state["settings_notice"] = (
                "error",
                "This deployment's API key may only be sent to "
                + ", ".join(now.key_hosts)
                + ". To use another address, enter your own API key first.",
            )
            return
    state[runtime.API_BASE_OVERRIDE] = api
    state[runtime.UPLOAD_BASE_OVERRIDE] = upload
    runtime.forget_credits()
    state["settings_notice"] = ("success", "Base URLs saved for this session.")


def reset_bases() -> None:
    state.pop(runtime.API_BASE_OVERRIDE, None)
    state.pop(runtime.UPLOAD_BASE_OVERRIDE, None)
    state.pop("settings_api_base", None)
    state.pop("settings_upload_base", None)
    runtime.forget_credits()
    state["settings_notice"] = ("success", "Base URLs reset to the configured defaults.")


current = runtime.settings()

st.header("Settings", anchor=False)
st.caption("Changes here apply to this browser session only; nothing is written to disk.")

notice = state.pop("settings_notice", None)
if notice:
    kind, text = notice
    {"success": st.success, "warning": st.warning, "error": st.error}[kind](text)

with st.container(border=True):
    st.subheader("API key", anchor=False)
    if state.get(runtime.SESSION_API_KEY):
        st.success("A key is set for this session.", icon=":material/key:")
        fallback = "the configured key" if current.configured_key else "demo mode"
        st.button(
            f"Forget the key and return to {fallback}",
            key="settings_forget_key",
            icon=":material/key_off:",
            on_click=forget_key,
        )
    else:
        if current.configured_key:
            where = "the app's secrets" if current.key_source != "environment" else "the environment"
            st.caption(f"This deployment has a key configured in {where}. A key entered here replaces it for this session.")
        else:
            st.caption(
                "No key is configured, so the dashboard runs in demo mode. Enter your kie.ai API key to "
                "use the real provider; it is kept in memory for this session only and never shown again."
            )
        with st.container(horizontal=True, vertical_alignment="bottom"):
            st.text_input(
                "API key",
                key="settings_api_key",
                type="password",
                autocomplete="off",
                placeholder="Paste your kie.ai API key",
            )
            st.button("Use this key", key="settings_save_key", type="primary", on_click=save_key)
    if current.configured_key and not state.get(runtime.SESSION_API_KEY):
        state["settings_force_demo"] = bool(state.get(runtime.FORCE_DEMO))
        st.toggle(
            "Use demo mode in this session",
            key="settings_force_demo",
            on_change=set_force_demo,
            help="Try things on the built-in emulator without spending credits.",
        )

with st.container(border=True):
    st.subheader("Provider addresses", anchor=False)
    st.caption(
        "The provider has moved endpoints before; change these if its docs name new hosts."
        + (" In demo mode the emulator answers any address." if current.demo else "")
    )
    in_use = {(urlsplit(u).hostname or "").lower() for u in (current.api_base, current.upload_base)}
    # The deployment's key goes only where the deployment said: with nowhere else allowed, the
    # fields are locked rather than offered and then refused.
    locked = current.bases_locked and set(current.key_hosts) <= in_use
    if current.bases_locked:
        st.info(
            "The dashboard is using this deployment's API key, which is only sent to "
            f"{plain(', '.join(current.key_hosts))}."
            + (" The addresses are locked." if locked else " Other addresses are refused.")
            + " To use another address, enter your own API key above: it is kept for this session only.",
            icon=":material/lock:",
        )
    if current.refused_base:
        st.warning(
            f"The address {plain(current.refused_base)} is not used: this deployment's key may not go there.",
            icon=":material/block:",
        )
    if locked:
        state["settings_api_base"] = current.api_base
        state["settings_upload_base"] = current.upload_base
    else:
        state.setdefault("settings_api_base", current.api_base)
        state.setdefault("settings_upload_base", current.upload_base)
    st.text_input("API base URL", key="settings_api_base", help=f"Default: {DEFAULT_API_BASE}", disabled=locked)
    st.text_input(
        "Upload base URL", key="settings_upload_base", help=f"Default: {DEFAULT_UPLOAD_BASE}", disabled=locked
    )
    with st.container(horizontal=True):
        st.button("Save addresses", key="settings_save_bases", on_click=save_bases, disabled=locked)
        st.button("Reset", key="settings_reset_bases", type="tertiary", on_click=reset_bases)

with st.container(border=True):
    st.subheader("Task tracking", anchor=False)
    service = runtime.studio(current) if runtime.ledger_problem() is None else None
    schedule = service.schedule(current.demo) if service is not None else None
    tracker = service.tracker if service is not None else None
    if schedule is not None and tracker is not None:
        last = tracker.last
        st.caption(
            f"The server reads every unfinished task itself, first {schedule.lo:g} s after it starts, then "
            f"more slowly as it ages, at least every {schedule.hi:g} s (the provider advises 30 s). Open "
            "tabs only read the ledger, so more tabs never mean more calls to the provider. The "
            "deployment sets these bounds ([refresh] in its secrets)."
        )
        status = "running" if tracker.running else "stopped"
        when = f"; last cycle {last.started:%H:%M:%S} UTC" if last is not None else ""
        st.caption(f":material/autorenew: Tracker {status}{when}.")
    else:
        st.caption("The task ledger cannot be reached right now, so tracking is paused.")

with st.container(border=True):
    st.subheader("Callbacks", anchor=False)
    service = runtime.studio(current) if runtime.ledger_problem() is None else None
    base = service.callback_base(current.mode) if service is not None else None
    if service is None:
        st.caption("The task ledger cannot be reached right now.")
    elif base is None:
        st.caption(
            ":material/sync: Off: results are learnt by polling (within 30 s). A self-hosted deployment turns "
            "them on with `[callbacks] public_url`, the address the provider can reach this server at; "
            "on Streamlit Community Cloud callbacks cannot arrive (its sign-in redirects them), so polling stays."
        )
    else:
        log = service.callbacks
        latest = f"the last {log.last_received_at:%H:%M:%S} UTC" if log.last_received_at else "none yet"
        signed = "signed (HMAC)" if service.callback_key(current.mode) else "checked by their per-task secret"
        st.caption(
            f":material/bolt: On: every task gets this dashboard's own callback URL at {plain(base)}; callbacks "
            f"are {signed}. Received since start: {log.received:,} ({latest}); refused: {log.refused:,}."
        )
        if st.button("Send a test callback", key="settings_test_callback", icon=":material/send:"):
            st.session_state["settings_callback_test"] = runtime.send_test_callback(current)
        outcome = st.session_state.get("settings_callback_test")
        if outcome:
            ok, words = outcome
            (st.success if ok else st.error)(plain(words))

with st.container(border=True):
    st.subheader("Spending", anchor=False)
    pricing, budget = runtime.pricing(), runtime.budget()
    service = runtime.studio(current) if runtime.ledger_problem() is None else None
    source = "set by the deployment ([pricing] credits_per_task)" if pricing.configured else (
        "the default guess (the provider publishes no price for this model): set [pricing] credits_per_task")
    st.caption(f":material/sell: Price per task: **{pricing.credits_per_task:,} credits**, {source}.")
    observed = service.observed_price if service is not None else None
    if observed is None:
        st.caption(
            ":material/balance: Not measured yet: when a single create is the only one in flight, the dashboard "
            "reads the balance before and after and records what the task really cost."
        )
    elif observed == pricing.credits_per_task:
        st.caption(f":material/check_circle: The last measured create cost {observed:,} credits, as configured.")
    else:
        st.warning(
            f"The last measured create cost {observed:,} credits, not the configured {pricing.credits_per_task:,}. "
            "Costs and budgets use the configured price: ask whoever runs the studio to update [pricing].",
            icon=":material/price_change:",
        )
    caps = [
        (name, value)
        for name, value in (("team per day", budget.daily), ("team per month", budget.monthly),
                            ("per person per day", budget.daily_per_person),
                            ("per person per month", budget.monthly_per_person))
        if value is not None
    ]
    if caps:
        st.caption(":material/savings: Budgets: " + ", ".join(f"{v:,} credits {n}" for n, v in caps)
                   + ". Submit and variant sets refuse what would go over, before anything is sent.")
    else:
        st.caption(":material/savings: No budget caps: the deployment can set them under [budget].")

with st.container(border=True):
    st.subheader("Connection", anchor=False)
    where = "the built-in emulator" if current.demo else current.api_host
    st.caption(f"Checks that {plain(where)} answers and accepts the key, by reading the remaining credits.")
    if st.button("Test connection", key="settings_test", icon=":material/network_check:"):
        try:
            with st.spinner("Asking the provider…"):
                balance = runtime.client().get_credits()
        except LumaError as err:
            show_error(err, context="The connection test failed.")
        else:
            runtime.forget_credits()
            st.success(f"Connected to {plain(where)}. {balance:,} credits left.", icon=":material/check_circle:")
