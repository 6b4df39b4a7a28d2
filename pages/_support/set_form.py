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

import pandas as pd
import streamlit as st

from studio.ledger import LedgerUnavailable, OverBudget
from studio.sets import MAX_SET_TASKS, Pricing, SetInput, admit, plan, spending_problems
from studio.text import plain

from . import runtime
from .submission import language_hint
from .views import show_report

__all__ = ["render"]

SET_REQUEST = "submit_set_request"


@dataclass
class SetRequest:
    """One click on "Start the set" (lives in session state)."""

    fingerprint: str
    """What was planned (prompts, inputs): the same plan is not started twice by accident."""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    """The click's id, which becomes the set's id."""
    written: bool = False
    """True once the set is in the ledger."""
    problems: list[str] = field(default_factory=list)
    """Why it was refused (nothing written)."""


def _inputs(settings: runtime.Settings) -> list[SetInput]:
    state = st.session_state
    chosen: list[SetInput] = []
    titles = {c.slug: c for c in runtime.samples()}
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


def _fingerprint(prompts: list[str], inputs: list[SetInput]) -> str:
    raw = json.dumps([prompts, [i.url for i in inputs], st.session_state.get("set_watermark") or ""])
    return hashlib.sha256(raw.encode()).hexdigest()


def _record_click() -> None:
    state = st.session_state
    fingerprint = _fingerprint(_prompts(), _inputs(runtime.settings()))
    current: SetRequest | None = state.get(SET_REQUEST)
    if current is not None and current.fingerprint == fingerprint and not current.problems:
        return  # this plan was already started (a second click, a double click): nothing more
    state[SET_REQUEST] = SetRequest(fingerprint)


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
        pd.DataFrame({
            "#": [n + 1 for n in range(len(items))],
            "prompt": [i.prompt for i in items],
            "input": [i.source_name or i.video_url for i in items],
        }),
        hide_index=True, key="set_preview",
    )
    who, _ = runtime.owner()
    try:
        spent = runtime.spent(settings, who)
    except LedgerUnavailable as err:
        st.error(f"The task ledger cannot be reached: {plain(err)} Nothing is sent until it answers.")
        return
    reading = runtime.balance()
    problems = spending_problems(cost, spent, runtime.budget(), reading.balance)
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
    request: SetRequest | None = state.get(SET_REQUEST)
    if problems:
        st.error("The set does not fit and was not started:\n\n" + "\n".join(f"- {plain(p)}" for p in problems),
                 icon=":material/block:")
    if request is not None and not request.written and request.fingerprint == _fingerprint(prompts, inputs):
        if problems:
            request.problems = problems
        else:
            try:
                _write(settings, request, items, prompts, inputs, pricing.credits_per_task, reading.balance)
            except OverBudget as err:  # someone else's spend got in first: refused whole, nothing written
                request.problems = err.problems
                st.error("The set does not fit and was not started:\n\n"
                         + "\n".join(f"- {plain(p)}" for p in err.problems), icon=":material/block:")
            except LedgerUnavailable as err:
                st.error(f"The task ledger cannot be reached: {plain(err)} Nothing was started; click again in a moment.")
                state[SET_REQUEST] = None
    if request is not None and request.written:
        st.success(f"Set started: {len(items)} task(s) queued; the server sends them within the provider's limits, "
                   "whether or not this tab stays open.", icon=":material/check_circle:")
        with st.container(horizontal=True):
            st.page_link("pages/sets.py", label="Review the set", icon=":material/grid_view:",
                         query_params={"set": request.id})
            st.button("Start another set", key="set_start_over", on_click=_start_over)
        return
    st.button(f"Start {len(items)} task(s)", key="set_start_button", type="primary", icon=":material/play_arrow:",
              on_click=_record_click, disabled=bool(problems))


def _write(
    settings: runtime.Settings, request: SetRequest, items: list, prompts: list[str], inputs: list[SetInput],
    price: int, balance: int | None,
) -> None:
    """Write the set whole, queued (idempotent: its id is the click's); the dispatcher sends it.

    The budgets are checked again inside the writing transaction: the preview's check is advice,
    this one is the rule."""
    who, name = runtime.owner()
    service = runtime.studio(settings)
    check = admit(price * len(items), runtime.budget(), who, balance, datetime.now(UTC))
    service.ledger.create_set(
        request.id, items, mode=settings.mode, name=(st.session_state.get("set_name") or "").strip() or None,
        owner=who, owner_name=name, key_ref=settings.key_ref, api_base=settings.api_base, prompts=prompts,
        inputs=[{"url": i.url, "name": i.name, "source": i.source} for i in inputs], crossed=len(prompts) > 1 and len(inputs) > 1,
        cost_per_task=price, watermark=(st.session_state.get("set_watermark") or "").strip() or None,
        admit=check,
    )
    request.written = True
    service.dispatcher.nudge()
