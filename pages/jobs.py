"""Jobs: every task in the ledger (mine or everyone's), kept current by the server's tracker."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from itertools import islice
from typing import Any

import streamlit as st

from pages._support import runtime
from pages._support.feedback import last_resort
from pages._support.results import bundle_fetcher
from pages._support.task_views import details
from studio.bundle import MAX_BUNDLE_TASKS, zip_bundle
from studio.ledger import STATUS_LABELS, LedgerUnavailable, TaskQuery
from studio.tasks import export_csv, export_json, parse_task_ids, tasks_frame
from studio.text import plain

runtime.page_guard("pages/jobs.py")

state = st.session_state
settings = runtime.settings()
PAGE_SIZES = (25, 50, 100)
SORTS = {
    "Newest first": ("created", True),
    "Oldest first": ("created", False),
    "Recently completed": ("completed", True),
    "Status": ("status", False),
    "Prompt A-Z": ("prompt", False),
}
PENDING = {"Creating", "Not read yet", "Generating"}


def clear_selection() -> None:
    state["jobs_table"] = {"selection": {"rows": [], "columns": [], "cells": []}}
    state["jobs_page"] = 1


def import_ids() -> None:
    """Add the pasted task ids to the ledger as mine; report invalid ones and keep them to fix."""
    parsed = parse_task_ids(state.get("jobs_import_text") or "")
    who, name = runtime.owner()
    try:
        result = runtime.ledger().add_existing(
            parsed.valid, mode=settings.mode, owner=who, owner_name=name,
            key_ref=settings.key_ref, api_base=settings.api_base, origin="imported",
        )
    except LedgerUnavailable as err:
        state["jobs_import_result"] = (parsed, None, str(err))
        return
    runtime.remember_tasks(parsed.valid)
    runtime.studio().tracker.nudge()
    state["jobs_import_result"] = (parsed, result, None)
    state["jobs_import_text"] = "\n".join(parsed.invalid)
    clear_selection()


def query(**extra: object) -> TaskQuery:
    """The ledger query the filters on this page describe."""
    who, _ = runtime.owner()
    dates: tuple[Any, ...] = tuple(state.get("jobs_dates") or ())
    start = datetime.combine(dates[0], time.min, UTC) if len(dates) >= 1 else None
    end = datetime.combine(dates[1], time.min, UTC) + timedelta(days=1) if len(dates) == 2 else None
    sort, descending = SORTS[state.get("jobs_sort") or "Newest first"]
    everyone = state.get("jobs_view") == "Everyone"
    fields: dict[str, object] = {
        "mode": settings.mode,
        "owner": None if everyone else who,
        "owners": tuple(state.get("jobs_people") or ()) if everyone else (),
        "statuses": tuple(state.get("jobs_status_filter") or ()),
        "created_from": start,
        "created_before": end,
        "text": (state.get("jobs_search") or "").strip(),
        "sort": sort,
        "descending": descending,
    }
    fields.update(extra)
    return TaskQuery(**fields)  # type: ignore[arg-type]


# --- layout ----------------------------------------------------------------------------------------

st.header("Jobs", anchor=False)
st.caption(
    "Every task submitted or added here is kept in the team's ledger and followed by the server until "
    "it finishes, whether or not a tab is open. Closing the tab loses nothing."
)
if runtime.ledger_problem() is not None:
    st.stop()  # the frame (dashboard.py) has said why, above this page
service = runtime.studio(settings)
people = dict(service.ledger.people(settings.mode))

with st.expander("Add existing task ids", icon=":material/add:"):
    st.text_area(
        "Task ids, one per line",
        key="jobs_import_text",
        placeholder="774d9a7dd608a0e49293903095e45a4c",
        help="32 hexadecimal characters each, as the provider shows them. They are added to your tasks.",
    )
    st.button("Add to my tasks", key="jobs_import_button", icon=":material/playlist_add:", on_click=import_ids)
    outcome = state.pop("jobs_import_result", None)
    if outcome is not None:
        parsed, added, failure = outcome
        if failure:
            st.error(f"The ledger could not take them: {plain(failure)} Nothing was lost; try again.")
        elif added is not None:
            if added.added:
                st.success(f"Added {len(added.added):,} task(s).", icon=":material/check:")
            if added.already or parsed.duplicates:
                st.info(f"Already known, skipped: {len(added.already) + len(parsed.duplicates):,}.", icon=":material/info:")
        if parsed.invalid:
            shown = ", ".join(plain(x, limit=80) for x in parsed.invalid[:20])
            more = f" and {len(parsed.invalid) - 20:,} more" if len(parsed.invalid) > 20 else ""
            st.error(
                f"Not task ids (a task id is 32 characters 0-9 and a-f), left in the box to fix: {shown}{more}",
                icon=":material/error:",
            )
        if not (parsed.valid or parsed.duplicates or parsed.invalid):
            st.info("Paste at least one task id.", icon=":material/info:")

with st.container(horizontal=True, vertical_alignment="bottom"):
    st.segmented_control("Show", ["Mine", "Everyone"], key="jobs_view", default="Mine", on_change=clear_selection)
    st.text_input("Prompt contains", key="jobs_search", on_change=clear_selection, placeholder="snow")
    st.date_input("Submitted between", value=[], key="jobs_dates", on_change=clear_selection, format="YYYY-MM-DD")
    st.selectbox("Sort", list(SORTS), key="jobs_sort", on_change=clear_selection)
with st.container(horizontal=True, vertical_alignment="bottom"):
    st.pills("Status", list(STATUS_LABELS), selection_mode="multi", key="jobs_status_filter", on_change=clear_selection)
    if state.get("jobs_view") == "Everyone" and people:
        st.multiselect("People", list(people), key="jobs_people", format_func=lambda o: people.get(o) or o,
                       on_change=clear_selection)


# While tasks run, the view re-reads the ledger every second (an open page then shows what the
# tracker learnt within a second); otherwise every few seconds, for a teammate's new tasks.
# The same counts head the list below: a full run reads them once (a count scans the view's
# rows); the list's own timed reruns read them afresh.
view_counts = {"this run": service.ledger.counts(query())}
running = any(view_counts["this run"].get(label, 0) for label in PENDING)


@st.fragment(run_every=1.0 if running else 5.0)
def live_list() -> None:
    """The counts, the table and the selected task, re-read from the ledger (never the provider)."""
    try:
        draw_list()
    except LedgerUnavailable as err:
        st.error(f"The task ledger stopped answering: {plain(err)} Nothing is lost; this view retries on its own.")
    except Exception as err:  # noqa: BLE001 - last resort: a plain sentence, the traceback to the log
        last_resort(err, context="Drawing the task list failed.")


def draw_list() -> None:
    ledger = service.ledger
    counts = view_counts.pop("this run", None)
    if counts is None:
        counts = ledger.counts(query())
    total = sum(counts.values())
    outage = service.tracker.outage
    if outage:
        st.warning(f"{outage} Every task keeps its last known status; the server keeps trying.",
                   title="The provider is not answering", icon=":material/cloud_off:")
    if total == 0:
        st.info("No tasks here yet. Start one on the Submit page, add existing task ids above, or change "
                "the filters.", icon=":material/inbox:")
        st.page_link("pages/submit.py", label="Go to Submit", icon=":material/movie_edit:")
        return
    summary = {
        "Tasks": total,
        "Running": sum(counts.get(k, 0) for k in PENDING),
        "Succeeded": counts.get("Succeeded", 0) + counts.get("Callback failed", 0),
        "Failed": sum(counts.get(k, 0) for k in ("Generation failed", "Creation failed", "Not created")),
    }
    if counts.get("Outcome unknown"):
        summary["Outcome unknown"] = counts["Outcome unknown"]
    for column, (label, value) in zip(st.columns(len(summary)), summary.items(), strict=True):
        column.metric(label, f"{value:,}", border=True)

    size = int(state.get("jobs_page_size") or PAGE_SIZES[1])
    page_number = max(1, int(state.get("jobs_page") or 1))
    page = ledger.query(query(offset=(page_number - 1) * size, limit=size))
    pages = max(1, -(-page.total // size))
    if page_number > pages:  # the filters shrank the list under this page
        state["jobs_page"] = page_number = pages
        page = ledger.query(query(offset=(page_number - 1) * size, limit=size))
    frame = tasks_frame(page.rows, datetime.now(UTC), links=not settings.demo)
    event = st.dataframe(
        frame,
        key="jobs_table",
        on_select="rerun",
        selection_mode="single-row",
        hide_index=True,
        column_order=("status", "prompt", "task_id", "person", "submitted", "completed", "duration", "cost", "result",
                      "source", "error"),
        column_config=table_columns(),
    )
    with st.container(horizontal=True, vertical_alignment="center"):
        st.number_input("Page", min_value=1, max_value=pages, key="jobs_page", width=110)
        st.selectbox("Rows per page", PAGE_SIZES, key="jobs_page_size", index=1, width=140)
        st.caption(f"{page.total:,} task(s) shown · {ledger.total_cost(query()):,} credits · page {page_number} of {pages}")
        exports = query(offset=0, limit=0)
        st.download_button("Export CSV", data=lambda: export_csv(ledger.iter_rows(exports)), file_name="luma-tasks.csv",
                           mime="text/csv", key="jobs_export_csv", icon=":material/download:", on_click="ignore")
        st.download_button("Export JSON", data=lambda: export_json(ledger.iter_rows(exports)),
                           file_name="luma-tasks.json", mime="application/json", key="jobs_export_json",
                           icon=":material/data_object:", on_click="ignore")
        if any(r.result_url for r in page.rows):
            fetch = bundle_fetcher(settings)
            st.download_button(
                "Download results (ZIP)",
                data=lambda: zip_bundle(islice((r for r in ledger.iter_rows(exports) if r.result_url), MAX_BUNDLE_TASKS),
                                        fetch),
                file_name="luma-results.zip", mime="application/zip", key="jobs_zip", icon=":material/folder_zip:",
                on_click="ignore",
                help=f"The results of this filtered view (the first {MAX_BUNDLE_TASKS} in its order), with a manifest "
                "of each task's prompt and settings.",
            )
    rows = event.selection.rows if event is not None else []
    if rows and rows[0] < len(page.rows):
        details(page.rows[rows[0]], demo=settings.demo)
    else:
        st.caption(":material/touch_app: Select a row to watch, download or re-run that task.")


def table_columns() -> dict[str, Any]:
    zone = st.context.timezone or "UTC"
    if settings.demo:
        # Demo file URLs are served inside this process, not to the browser: show names, play below.
        links = {name: st.column_config.TextColumn(label, help="Select the row to play it", width="small")
                 for name, label in (("source", "Input"), ("result", "Result"))}
    else:
        pattern = r"https?://[^/]+/(?:.*/)?([^/?#]+)"
        links = {name: st.column_config.LinkColumn(label, display_text=pattern, width="small")
                 for name, label in (("source", "Input"), ("result", "Result"))}
    return {
        "task_id": st.column_config.TextColumn("Task id", width="small"),
        "status": st.column_config.TextColumn("Status", width="small", pinned=True),
        "prompt": st.column_config.TextColumn("Prompt", width="medium"),
        "person": st.column_config.TextColumn("Submitted by", width="small"),
        "submitted": st.column_config.DatetimeColumn("Submitted", format="D MMM, HH:mm:ss", timezone=zone),
        "completed": st.column_config.DatetimeColumn("Completed", format="D MMM, HH:mm:ss", timezone=zone),
        "duration": st.column_config.NumberColumn("Duration", format="compact", width="small"),
        "cost": st.column_config.NumberColumn("Credits", width="small"),
        **links,
        "error": st.column_config.TextColumn("Error", width="medium"),
    }


live_list()
