"""The Submit page's variant-set form: prompts x inputs, priced and checked before anything is sent.

Streamlit glue over :mod:`studio.sets` (planning, pricing, budgets) and the ledger (a set is
written whole, every take queued, before the server's dispatcher sends any). One click writes
one set: the click's id is the set's id, so a double click or a rerun writes nothing more.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from studio.ledger import LedgerUnavailable, OverBudget, SetItem
from studio.sets import MAX_SET_TASKS, Budget, Pricing, SetInput, admit, plan, spending_problems
from studio.text import plain

from . import runtime
from .submission import language_hint
from .views import show_report

__all__ = ["render"]

SET_REQUEST = "submit_set_request"
QUOTE = "submit_set_quote"


@dataclass
class SetRequest:
    """One click on "Start the set" (lives in session state)."""

    fingerprint: str
    """What was planned (prompts, inputs, name, watermark): the same plan is not started twice by accident."""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    """The click's id, which becomes the set's id."""
    written: bool = False
    """True once the set is in the ledger."""
    problems: list[str] = field(default_factory=list)
    """Why it was refused (nothing written)."""
    error: str | None = None
    """Why it could not be written (the ledger did not answer); a click may try again."""


@dataclass(frozen=True)
class Quote:
    """What the page showed for the current inputs: the plan, its price and whether it fits.

    Everything the write needs is captured here while the page renders, so the click's callback
    can write the set without a single Streamlit call (see :func:`_record_click`).
    """

    fingerprint: str
    items: list[SetItem]
    prompts: list[str]
    inputs: list[SetInput]
    name: str | None
    watermark: str | None
    price: int
    balance: int | None
    problems: list[str]
    mode: str
    owner: str
    owner_name: str
    key_ref: str | None
    api_base: str | None
    budget: Budget
    service: Any


def _inputs(settings: runtime.Settings) -> list[SetInput]:
    state = st.session_state
    chosen: list[SetInput] = []
    titles = {c.slug: c for c in runtime.samples()} if settings.demo else {}
    for slug in state.get("set_samples") or []:
        clip = titles.get(slug)
        if clip is not None:
            chosen.append(SetInput(url=clip.url, name=clip.title, source="sample"))
    for line in (state.get("set_urls") or "").splitlines():
        if line.strip():
            chosen.append(SetInput(url=line.strip(), name=None, source="url"))
    return chosen


def _prompts() -> list[str]:
    return [line.strip() for line in (st.session_state.get("set_prompts") or "").splitlines() if line.strip()]


def _fingerprint() -> str:
    """The inputs as typed right now (session state already holds a click's pending edits)."""
    state = st.session_state
    raw = json.dumps([state.get("set_prompts") or "", state.get("set_samples") or [], state.get("set_urls") or "",
                      state.get("set_name") or "", state.get("set_watermark") or ""])
    return hashlib.sha256(raw.encode()).hexdigest()


def _record_click() -> None:
    """The click's callback: the first thing its run does. It writes the set here when the inputs
    are the ones the page priced and checked, because a tab closed right after the click stops
    the run at its next Streamlit call: a write left to the page body would be lost with it."""
    state = st.session_state
    fingerprint = _fingerprint()
    current: SetRequest | None = state.get(SET_REQUEST)
    if current is not None and current.fingerprint == fingerprint and not current.problems and not current.error:
        return  # this plan was already started (a second click, a double click): nothing more
    quote: Quote | None = state.get(QUOTE)
    request = SetRequest(fingerprint)
    state[SET_REQUEST] = request
    if quote is not None and quote.fingerprint == fingerprint and not quote.problems:
        _write(quote, request)  # no Streamlit call inside: nothing can stop it half-way
    # Otherwise the inputs changed with the click: the page checks them, then writes (render()).


def _start_over() -> None:
    st.session_state[SET_REQUEST] = None


def render(settings: runtime.Settings) -> None:
    """The variant-set form, its preview and the start button."""
    state = st.session_state
    st.text_input("Name (optional)", key="set_name", placeholder="Winter looks, take 2", max_chars=120)
    st.text_area(
        "Prompts, one per line",
        key="set_prompts",
        height=120,
        placeholder="make it a snowy winter evening\nturn it into a neon-lit night\nrestyle as a watercolour painting",
    )
    if settings.demo:
        clips = runtime.samples()
        st.multiselect("Sample clips", [c.slug for c in clips], key="set_samples",
                       format_func=lambda slug: next((c.title for c in clips if c.slug == slug), slug))
    st.text_area("Video URLs, one per line", key="set_urls", height=80, placeholder="https://example.com/clip.mp4")
    st.text_input("Watermark (optional)", key="set_watermark")

    prompts, inputs = _prompts(), _inputs(settings)
    fingerprint = _fingerprint()
    state[QUOTE] = None
    foreign = [n for n, p in enumerate(prompts, 1) if not language_hint(p).looks_english]
    if foreign:
        st.warning(
            f"Prompt(s) {', '.join(map(str, foreign))} may not be English. The provider accepts English "
            "prompts only: translate them first, or those takes may fail.",
            icon=":material/translate:",
        )
    try:
        items = plan(prompts, inputs)
    except ValueError as err:
        st.caption(f":material/info: {plain(err)} Every prompt is tried on every input, up to {MAX_SET_TASKS} tasks.")
        return
    pricing = Pricing.from_secrets(runtime.secrets_table())
    cost = pricing.cost(len(items))
    st.dataframe(
        {
            "#": [n + 1 for n in range(len(items))],
            "prompt": [i.prompt for i in items],
            "input": [i.source_name or i.video_url for i in items],
        },
        hide_index=True, key="set_preview",
    )
    who, who_name = runtime.owner()
    try:
        spent = runtime.spent(settings, who)
    except LedgerUnavailable as err:
        st.error(f"The task ledger cannot be reached: {plain(err)} Nothing is sent until it answers.")
        return
    reading = runtime.balance()
    budget = runtime.budget()
    problems = spending_problems(cost, spent, budget, reading.balance)
    money = "" if settings.demo else f" ({Pricing.dollars(cost)})"
    price_note = "" if pricing.configured or settings.demo else " The price per task is the default guess: set [pricing] credits_per_task."
    st.markdown(
        f"**{len(items)} task(s)** · {len(prompts)} prompt(s) x {len(inputs)} input(s) · "
        f"**{cost:,} credits**{money} at {pricing.credits_per_task:,} per task.{price_note}"
    )
    # Each input is checked once, before any credit is spent.
    failed = []
    for video in inputs:
        report = runtime.preflight_url(video.url)
        if not report.ok:
            failed.append(video)
            with st.expander(f"Video check failed: {plain(video.name or video.url, limit=80)}", expanded=True):
                show_report(report, what="This input")
    if failed:
        problems.append(f"{len(failed)} input video(s) failed the video check (see above).")
    name = (state.get("set_name") or "").strip() or None
    watermark = (state.get("set_watermark") or "").strip() or None
    quote = Quote(
        fingerprint=fingerprint, items=items, prompts=prompts, inputs=inputs, name=name, watermark=watermark,
        price=pricing.credits_per_task, balance=reading.balance, problems=problems, mode=settings.mode, owner=who,
        owner_name=who_name, key_ref=settings.key_ref, api_base=settings.api_base, budget=budget,
        service=runtime.studio(settings),
    )
    state[QUOTE] = quote
    request: SetRequest | None = state.get(SET_REQUEST)
    if problems:
        st.error("The set does not fit and was not started:\n\n" + "\n".join(f"- {plain(p)}" for p in problems),
                 icon=":material/block:")
    if request is not None and not request.written and request.fingerprint == fingerprint and not request.error:
        # The click came with edited inputs (checked just now, above): write it now if it fits.
        if problems:
            request.problems = problems
        elif not request.problems:
            _write(quote, request)
    if request is not None and request.fingerprint == fingerprint and request.problems and not problems:
        st.error("The set does not fit and was not started:\n\n"
                 + "\n".join(f"- {plain(p)}" for p in request.problems), icon=":material/block:")
    if request is not None and request.error:
        st.error(f"The task ledger cannot be reached: {plain(request.error)} Nothing was started; click again "
                 "in a moment.", icon=":material/database:")
    if request is not None and request.written:
        st.success(f"Set started: {len(items)} task(s) queued; the server sends them within the provider's limits, "
                   "whether or not this tab stays open.", icon=":material/check_circle:")
        runtime.forget_credits()
        with st.container(horizontal=True):
            st.page_link("pages/sets.py", label="Review the set", icon=":material/grid_view:",
                         query_params={"set": request.id})
            st.button("Start another set", key="set_start_over", on_click=_start_over)
        return
    st.button(f"Start {len(items)} task(s)", key="set_start_button", type="primary", icon=":material/play_arrow:",
              on_click=_record_click, disabled=bool(problems))


def _write(quote: Quote, request: SetRequest) -> None:
    """Write the set whole, queued (idempotent: its id is the click's); the dispatcher sends it.

    No Streamlit call in here (it runs in the click's callback). The budgets are checked again
    inside the writing transaction: the preview's check is advice, this one is the rule."""
    ledger = quote.service.ledger
    check = admit(quote.price * len(quote.items), quote.budget, quote.owner, quote.balance, datetime.now(UTC))
    try:
        ledger.create_set(
            request.id, quote.items, mode=quote.mode, name=quote.name, owner=quote.owner, owner_name=quote.owner_name,
            key_ref=quote.key_ref, api_base=quote.api_base, prompts=quote.prompts,
            inputs=[{"url": i.url, "name": i.name, "source": i.source} for i in quote.inputs],
            crossed=len(quote.prompts) > 1 and len(quote.inputs) > 1, cost_per_task=quote.price,
            watermark=quote.watermark, admit=check,
        )
    except OverBudget as err:  # someone else's spend got in first: refused whole, nothing written
        request.problems = err.problems
        return
    except LedgerUnavailable as err:
        request.error = str(err)
        return
    request.written = True
    quote.service.dispatcher.nudge()
