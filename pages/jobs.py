"""Jobs: every task of this session, refreshed until final; results, errors, import and export."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import streamlit as st

from luma.errors import LumaError, error_for_code
from luma.models import TaskStatus
from pages._support import runtime, tasks
from pages._support.feedback import describe_error, last_resort, show_error
from studio.text import plain, verbatim

runtime.page_guard("pages/jobs.py")

state = st.session_state
settings = runtime.settings()
lo, hi = settings.refresh_min, settings.refresh_max

SELECTION_KEY = "jobs_table"
FILTER_KEY = "jobs_status_filter"
SCHEDULE = "jobs_refresh_every"
OUTAGE = "jobs_outage"
LINKS = "jobs_download_links"
FULL_RUN = "jobs_full_run"


def now() -> datetime:
    return datetime.now(UTC)


def clear_selection() -> None:
    state[SELECTION_KEY] = {"selection": {"rows": [], "columns": [], "cells": []}}


def import_ids() -> None:
    """Add the pasted task ids; report invalid ones and keep them in the box to be fixed."""
    parsed = tasks.parse_task_ids(state.get("jobs_import_text") or "", existing=runtime.listed())
    added_at = now()
    runtime.track(*(tasks.TrackedTask(task_id=i, added_at=added_at, source="imported") for i in parsed.valid))
    state["jobs_import_result"] = parsed
    state["jobs_import_text"] = "\n".join(parsed.invalid)
    clear_selection()


def remove(task_id: str) -> None:
    runtime.untrack(task_id)
    state.get(LINKS, {}).pop(task_id, None)
    clear_selection()
    # The button lives in the timer fragment, whose reruns skip app.py: update the URL here.
    runtime.mirror_to_url()
    state["jobs_removed"] = task_id


def run_again(item: tasks.TrackedTask) -> None:
    """Pre-fill the Submit page with this task's inputs."""
    request = item.shown_request
    if request is None:
        return
    prefill = {
        "submit_prompt": request.prompt,
        "submit_callback_url": request.callback_url or "",
        "submit_watermark": request.watermark or "",
    }
    sample = next((c for c in runtime.samples() if c.url == request.video_url), None)
    if sample is not None:
        prefill.update(submit_source="sample", submit_sample=sample.slug)
    else:
        prefill.update(submit_source="url", submit_video_url=request.video_url)
    state[runtime.SUBMIT_PREFILL] = prefill


def refresh(task_ids: list[str]) -> None:
    """Read these tasks (concurrently) and fold the answers into the list; never drop a task."""
    if not task_ids:
        return
    try:
        batch = runtime.read_tasks(task_ids)
    except LumaError as err:
        state[OUTAGE] = describe_error(err)
        return
    runtime.replace_tracked(tasks.apply_batch(runtime.listed(), batch, now()))
    if tasks.is_outage(batch):
        state[OUTAGE] = describe_error(next(iter(batch.errors.values())))
    else:
        state[OUTAGE] = None
    if any(t.status.is_final for t in batch.tasks.values()):
        runtime.forget_credits()


def player(url: str | None, *, what: str) -> None:
    if not url:
        st.caption(f"No {what} video yet.")
        return
    if settings.demo:
        # Emulator URLs are not reachable from the browser (only Streamlit's port is): send bytes.
        try:
            st.video(runtime.fetch_bytes(url), alt=f"{what.capitalize()} video")
        except LumaError as err:
            show_error(err, context=f"The {what} video could not be loaded.")
    else:
        st.video(url, alt=f"{what.capitalize()} video")


def details(item: tasks.TrackedTask) -> None:
    """Everything about one task: players, request, error, download, actions."""
    task = item.task
    request = item.shown_request
    with st.container(border=True, key="jobs_details"):
        with st.container(horizontal=True, vertical_alignment="center"):
            st.subheader("Task details", anchor=False)
            st.badge(item.status_label, color=_badge_color(item.status))
        st.code(item.task_id, language=None)
        if item.status is not None:
            st.caption(item.status.meaning)

        source_col, result_col = st.columns(2)
        with source_col:
            st.markdown("**Input video**")
            player(request.video_url if request else (task.origin_url if task else None), what="input")
        with result_col:
            st.markdown("**Result**")
            player(task.result_url if task else None, what="result")

        if request is not None:
            st.markdown("**What was submitted**")
            st.table(
                {
                    "Prompt": plain(request.prompt, limit=None) or "—",
                    # Demo file URLs only resolve inside this process: name the file instead.
                    # Addresses as inline code: copied exactly, never turned into links.
                    "Video URL": verbatim(
                        (tasks.file_name(request.video_url) if settings.demo else request.video_url) or "—"
                    ),
                    "Callback URL": verbatim(request.callback_url) if request.callback_url else "—",
                    "Watermark": plain(request.watermark) if request.watermark else "—",
                },
                border="horizontal",
            )

        if task is not None and item.status in (TaskStatus.CREATE_TASK_FAILED, TaskStatus.GENERATE_FAILED):
            code = task.error_code
            typed = error_for_code(code, operation="get_task") if isinstance(code, int) else None
            what = typed.summary if typed is not None else item.status.meaning
            shown_code = f" (code {code})" if code is not None else ""
            body = f"{what}{shown_code}"
            if task.error_message:
                body += f"\n\nThe provider said: {plain(task.error_message)}"
            body += f"\n\n**Next step:** {typed.next_step if typed is not None else item.status.meaning}"
            st.error(body, title=item.status.label, icon=":material/error:")
        if item.refresh_error is not None:
            show_error(
                item.refresh_error,
                context="The last refresh of this task failed; its last known status is shown.",
            )

        with st.container(horizontal=True, vertical_alignment="center"):
            if task is not None and task.result_url:
                download(item)
            if request is not None and st.button(
                "Run again with the same inputs", key="jobs_run_again", icon=":material/replay:"
            ):
                run_again(item)
                st.switch_page("pages/submit.py")
            st.button(
                "Remove from list",
                key="jobs_remove",
                icon=":material/delete:",
                on_click=remove,
                args=(item.task_id,),
            )


def download(item: tasks.TrackedTask) -> None:
    url = item.task.result_url if item.task else None
    if not url:
        return
    if settings.demo:
        try:
            data = runtime.fetch_bytes(url)
        except LumaError as err:
            show_error(err, context="The result could not be loaded for download.")
            return
        st.download_button(
            "Download result",
            data=data,
            file_name=f"{item.task_id}.mp4",
            mime="video/mp4",
            key="jobs_download",
            icon=":material/download:",
            on_click="ignore",
        )
        return
    links = state.setdefault(LINKS, {})
    if st.button("Get download link", key="jobs_download_link", icon=":material/link:"):
        try:
            links[item.task_id] = (runtime.client().get_download_url(url), now())
        except LumaError as err:
            show_error(err, context="No download link could be made.")
    if item.task_id in links:
        link, made = links[item.task_id]
        age = (now() - made).total_seconds()
        if age < 20 * 60:
            st.link_button("Download result", link, icon=":material/download:", type="primary")
            st.caption(f"The link is valid for 20 minutes (about {int((20 * 60 - age) // 60)} left).")
        else:
            st.caption("The last link has expired; get a new one.")


def _badge_color(status: TaskStatus | None) -> Literal["blue", "green", "red"]:
    if status is None or status is TaskStatus.GENERATING:
        return "blue"
    return "green" if status.succeeded else "red"


def _describe_schedule(interval: float | None, items: list[tasks.TrackedTask]) -> str:
    if not items:
        return ""
    if interval is None:
        if all(i.is_final for i in items):
            return ":material/check_circle: Every task is final: automatic refresh has stopped."
        return (
            ":material/pause_circle: Automatic refresh is paused: the remaining tasks could not be "
            "read (see their errors). Use Refresh now after fixing the cause."
        )
    return f":material/autorenew: Unfinished tasks refresh automatically (every {interval:g} s)."


# --- layout ----------------------------------------------------------------------------------------

st.header("Jobs", anchor=False)
st.caption(
    "Every task you submit or add appears here and is refreshed until it finishes. The list is "
    "also kept in the page address: reload or bookmark the page to come back to it."
)

with st.expander("Add existing task ids", icon=":material/add:"):
    st.text_area(
        "Task ids, one per line",
        key="jobs_import_text",
        placeholder="774d9a7dd608a0e49293903095e45a4c",
        help="32 hexadecimal characters each, as the provider shows them.",
    )
    st.button("Add to list", key="jobs_import_button", icon=":material/playlist_add:", on_click=import_ids)
    result: tasks.ParsedIds | None = state.pop("jobs_import_result", None)
    if result is not None:
        if result.valid:
            st.success(f"Added {len(result.valid)} task(s).", icon=":material/check:")
        if result.duplicates:
            st.info(f"Already on the list, skipped: {', '.join(result.duplicates)}", icon=":material/info:")
        if result.invalid:
            st.error(
                "Not task ids (a task id is 32 characters 0-9 and a-f), left in the box to fix: "
                + ", ".join(plain(x, limit=80) for x in result.invalid),
                icon=":material/error:",
            )
        if not (result.valid or result.duplicates or result.invalid):
            st.info("Paste at least one task id.", icon=":material/info:")

removed = state.pop("jobs_removed", None)
if removed:
    st.toast(f"Removed task {removed} from the list.", icon=":material/delete:")

# Read what is due before the timer is registered, so it starts at the right pace and this run
# needs no second, app-wide rerun (which would also swallow the notices above).
try:
    refresh(tasks.due_task_ids(runtime.listed().values(), now(), lo, hi))
except LumaError as err:
    show_error(err)
schedule = tasks.refresh_interval(runtime.listed().values(), now(), lo, hi)
state[SCHEDULE] = schedule
state[FULL_RUN] = True


@st.fragment(run_every=schedule)
def live_list() -> None:
    """Refresh what is due, then draw the list; reruns on its own while tasks are unfinished."""
    # A fragment rerun does not pass through app.py's handler: catch here too.
    try:
        draw_list()
    except LumaError as err:
        show_error(err)
    except Exception as err:  # noqa: BLE001 - last resort: a plain sentence, the traceback to the log
        last_resort(err, context="Drawing the jobs list failed.")


def draw_list() -> None:
    items = list(runtime.listed().values())
    if not items:
        st.info(
            "No tasks yet. Start one on the Submit page, or add existing task ids above.",
            icon=":material/inbox:",
        )
        st.page_link("pages/submit.py", label="Go to Submit", icon=":material/movie_edit:")
        return

    with st.container(horizontal=True, vertical_alignment="center"):
        forced = st.button("Refresh now", key="jobs_refresh_now", icon=":material/refresh:")
        export_slot = st.container(horizontal=True, width="content")

    full_run = state.pop(FULL_RUN, False)
    if forced:
        refresh([i.task_id for i in items if not i.is_final])
    elif not full_run:
        # The timer's own run: the page body above did not run, so read what is due here.
        refresh(tasks.due_task_ids(items, now(), lo, hi))
    items = list(runtime.listed().values())

    new_schedule = tasks.refresh_interval(items, now(), lo, hi)
    if new_schedule != state.get(SCHEDULE):
        # run_every is fixed when the fragment is registered: a full rerun registers the new pace.
        st.rerun(scope="app")

    # Built when clicked, not on every rerun; the file is then served only to this browser's
    # signed-in session (see studio.edge), and only while that session lives.
    snapshot = list(items)
    with export_slot:
        st.download_button(
            "Export CSV",
            data=lambda: tasks.export_csv(snapshot),
            file_name="luma-tasks.csv",
            mime="text/csv",
            key="jobs_export_csv",
            icon=":material/download:",
            on_click="ignore",
        )
        st.download_button(
            "Export JSON",
            data=lambda: tasks.export_json(snapshot),
            file_name="luma-tasks.json",
            mime="application/json",
            key="jobs_export_json",
            icon=":material/data_object:",
            on_click="ignore",
        )
    st.caption(_describe_schedule(new_schedule, items))

    outage = state.get(OUTAGE)
    if outage is not None:
        st.warning(
            f"{outage.title}: {plain(outage.message)} Every task is kept with its last known status; "
            f"the page keeps trying. {outage.next_step}",
            title="The provider is not answering",
            icon=":material/cloud_off:",
        )
    else:
        failing = [i for i in items if i.refresh_error is not None]
        if failing:
            st.warning(
                f"{len(failing)} task(s) could not be refreshed; they keep their last known status. "
                "See the error column, or select a task for details.",
                icon=":material/sync_problem:",
            )

    counts = tasks.status_counts(items)
    failed = counts[TaskStatus.CREATE_TASK_FAILED.label] + counts[TaskStatus.GENERATE_FAILED.label]
    succeeded = counts[TaskStatus.SUCCESS.label] + counts[TaskStatus.CALLBACK_FAILED.label]
    summary = [
        ("Tasks", len(items)),
        ("Generating", counts[TaskStatus.GENERATING.label]),
        ("Succeeded", succeeded),
        ("Failed", failed),
    ]
    if counts[tasks.NOT_READ_LABEL]:
        summary.append((tasks.NOT_READ_LABEL, counts[tasks.NOT_READ_LABEL]))
    for column, (label, value) in zip(st.columns(len(summary)), summary, strict=True):
        column.metric(label, value, border=True)

    chosen = st.pills(
        "Filter by status",
        tasks.STATUS_FILTER_OPTIONS,
        selection_mode="multi",
        key=FILTER_KEY,
        on_change=clear_selection,
        help="Show only tasks in these states; none selected shows every task.",
    )
    ordered = sorted(items, key=lambda i: i.added_at, reverse=True)
    shown = [i for i in ordered if not chosen or i.status_label in chosen]
    # Demo file URLs are served inside this process, not to the browser: show names, play below.
    frame = tasks.tasks_frame(shown, now(), links=not settings.demo)
    if settings.demo:
        link_columns = {
            "source": st.column_config.TextColumn("Input", help="Select the row to play it", width="small"),
            "result": st.column_config.TextColumn("Result", help="Select the row to play it", width="small"),
        }
    else:
        link_columns = {
            "source": st.column_config.LinkColumn(
                "Input", display_text=r"https?://[^/]+/(?:.*/)?([^/?#]+)", width="small"
            ),
            "result": st.column_config.LinkColumn(
                "Result", display_text=r"https?://[^/]+/(?:.*/)?([^/?#]+)", width="small"
            ),
        }
    timezone_name = st.context.timezone or "UTC"
    event = st.dataframe(
        frame,
        key=SELECTION_KEY,
        on_select="rerun",
        selection_mode="single-row",
        hide_index=True,
        column_order=("status", "prompt", "submitted", "completed", "duration", "result", "source", "error", "task_id"),
        alt="Modification tasks with their status, prompt, times and links",
        column_config={
            "task_id": st.column_config.TextColumn("Task id", width="medium"),
            "status": st.column_config.TextColumn("Status", width="small", pinned=True),
            "prompt": st.column_config.TextColumn("Prompt", width="medium"),
            "submitted": st.column_config.DatetimeColumn(
                "Submitted", format="D MMM, HH:mm:ss", timezone=timezone_name
            ),
            "completed": st.column_config.DatetimeColumn(
                "Completed", format="D MMM, HH:mm:ss", timezone=timezone_name
            ),
            "duration": st.column_config.NumberColumn("Duration", format="compact", width="small"),
            **link_columns,
            "error": st.column_config.TextColumn("Error", width="medium"),
        },
    )
    if not shown:
        st.caption("No task matches the filter.")
    rows = event.selection.rows if event is not None else []
    if rows and rows[0] < len(frame):
        selected_id = str(frame.iloc[rows[0]]["task_id"])
        item = runtime.tracked().get(selected_id)
        if item is not None:
            details(item)
    else:
        st.caption(":material/touch_app: Select a row to watch, download or re-run that task.")


live_list()
