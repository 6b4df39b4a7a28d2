"""Sets: review a variant set's takes in a grid, compare input and result, keep the best."""

from __future__ import annotations

from typing import Any

import streamlit as st

from pages._support import runtime
from pages._support.components import compare_player
from pages._support.results import bundle_fetcher, video_source
from pages._support.review import next_input, take_card
from studio.bundle import zip_bundle
from studio.ledger import LedgerUnavailable, TaskRow
from studio.text import plain

runtime.page_guard("pages/sets.py")

state = st.session_state
settings = runtime.settings()
PENDING = {"Queued", "Creating", "Outcome unknown", "Not read yet", "Generating"}

st.header("Variant sets", anchor=False)
st.caption(
    "Every take of a set, with its input and its result side by side. Star the takes you keep, label them, "
    "and use one as the input of the next set."
)
if runtime.ledger_problem() is not None:
    st.stop()  # the frame (dashboard.py) has said why, above this page
service = runtime.studio(settings)
who, _ = runtime.owner()
everyone = st.toggle("Everyone's sets", key="sets_everyone")
known = service.ledger.sets(settings.mode, owner=None if everyone else who)
if not known:
    st.info("No variant sets yet. Start one on the Submit page: choose *Variant set*.", icon=":material/grid_view:")
    st.page_link("pages/submit.py", label="Go to Submit", icon=":material/movie_edit:")
    st.stop()
wanted = st.query_params.get("set")
ids = [s.id for s in known]
if wanted in ids and state.get("sets_choice") not in ids:
    state["sets_choice"] = wanted
titles = {s.id: f"{s.title} · {s.created_at:%d %b %H:%M} · {s.owner_name or '—'}" for s in known}
chosen_id = st.selectbox("Set", ids, key="sets_choice", format_func=lambda i: titles.get(i, i))
chosen = next(s for s in known if s.id == chosen_id)
st.query_params["set"] = chosen.id


def cancel() -> None:
    n = service.ledger.cancel_queued(set_id=chosen.id)
    state["sets_notice"] = f"Cancelled {n} take(s) that had not been sent."


def _pending(rows: list[TaskRow]) -> bool:
    return any(r.status_label in PENDING for r in rows)


try:
    following = _pending(service.ledger.set_rows(chosen.id))
except LedgerUnavailable:
    following = True  # the fragment below says so, and retries


# Re-read every 2 s only while some take is still on its way: a finished set stays still.
@st.fragment(run_every=2.0 if following else None)
def review() -> None:
    """The set's progress, its grid and the compare panel, re-read from the ledger."""
    try:
        rows = service.ledger.set_rows(chosen.id)
    except LedgerUnavailable as err:
        st.error(f"The task ledger stopped answering: {plain(err)} This view retries on its own.")
        return
    if following and not _pending(rows) and st.session_state.get("sets_settled") != chosen.id:
        state["sets_settled"] = chosen.id
        st.rerun()  # the whole page, to stop refreshing
    labels = [r.status_label for r in rows]
    counts = {name: labels.count(name) for name in dict.fromkeys(labels)}
    for column, (label, count) in zip(st.columns(len(counts)), counts.items(), strict=True):
        column.metric(label, count, border=True)
    queued = counts.get("Queued", 0)
    notice = state.pop("sets_notice", None)
    if notice:
        st.toast(notice, icon=":material/cancel:")
    with st.container(horizontal=True, vertical_alignment="center"):
        if queued:
            st.button(f"Cancel the {queued} take(s) not sent yet", key="sets_cancel", on_click=cancel,
                      icon=":material/cancel:")
        st.caption("Takes already sent cannot be cancelled: the provider has no way to stop a task."
                   + f" Cost: {sum(r.cost or 0 for r in rows if r.status_label not in ('Cancelled', 'Not created')):,} credits.")
        finished = [r for r in rows if r.result_url]
        if finished:
            st.download_button(
                "Download all (ZIP)", data=_zip(rows),
                file_name=f"luma-set-{chosen.id[:8]}.zip", mime="application/zip", key="sets_zip",
                icon=":material/folder_zip:", on_click="ignore",
            )
    refused = [r for r in rows if r.state == "failed"]
    for row in refused:
        st.warning(f"Take {(row.set_index or 0) + 1} was refused: {plain(row.create_error or 'not created')}",
                   icon=":material/block:")
    only_kept = st.toggle("Only kept takes", key="sets_only_kept")
    grid(rows, only_kept)
    compare(rows)


def _zip(rows: list[TaskRow]) -> Any:
    """The ZIP, built only when the button is clicked (Streamlit-free: it may run off the script thread)."""
    fetch = bundle_fetcher(settings)
    return lambda: zip_bundle(rows, fetch, name=f"luma-set-{chosen.id[:8]}")


def grid(rows: list[TaskRow], only_kept: bool) -> None:
    """Prompts down, inputs across (a crossed set), each take playable with its marks."""
    by_cell = {(r.prompt_index, r.input_index): r for r in rows}
    header = st.columns([2] + [3] * len(chosen.inputs))
    header[0].markdown("**Prompt \\ input**")
    for column, video in zip(header[1:], chosen.inputs, strict=True):
        column.markdown(f"**{plain(video.get('name') or video.get('url'), limit=60)}**")
    for p, prompt in enumerate(chosen.prompts):
        cells = [by_cell.get((p, i)) for i in range(len(chosen.inputs))]
        if only_kept and not any(c is not None and c.kept for c in cells):
            continue
        line = st.columns([2] + [3] * len(chosen.inputs))
        line[0].markdown(plain(prompt, limit=200))
        for column, row in zip(line[1:], cells, strict=True):
            with column:
                if row is not None and not (only_kept and not row.kept):
                    take_card(settings, service, row)


def compare(rows: list[TaskRow]) -> None:
    """The chosen take's input and result, played together (a wipe or side by side)."""
    chosen_take = state.get("sets_compare")
    row = next((r for r in rows if r.task_id == chosen_take), None)
    if row is None or not row.result_url:
        st.caption(":material/compare: Choose *Compare* on a finished take to play its input and result together.")
        return
    st.subheader("Compare", anchor=False)
    source, result = video_source(settings, row, "input", key="cmp-in"), video_source(settings, row, "result", key="cmp-out")
    if source and result:
        compare_player(source, result, key=f"compare-{row.task_id}", labels=("Input", "Result"))
    if st.button("Use this result as the next input", key="sets_next_input", icon=":material/input:"):
        next_input(settings, row)


review()
