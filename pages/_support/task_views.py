"""How one task is shown: its details panel, the players and the download (Streamlit glue only).

Everything is drawn from a ledger row (:class:`studio.ledger.TaskRow`); nothing here asks the
provider for a status. Outside text is escaped (:mod:`studio.text`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import streamlit as st

from luma.errors import LumaError, error_for_code
from luma.models import TaskStatus
from studio.archive import describe, expiry_text
from studio.ledger import LedgerError, LedgerUnavailable, TaskRow
from studio.tasks import file_name
from studio.text import plain, verbatim

from . import runtime
from .feedback import show_error
from .results import shown_result

__all__ = ["badge_color", "details", "run_again_prefill"]

LINKS = "jobs_download_links"
ADOPT_KEY = "jobs_adopt_id"
# Where the provider lists every task of an account (the only place to find a lost task id).
PROVIDER_LOGS = "the provider's Logs page (kie.ai → Logs)"


def badge_color(row: TaskRow) -> Literal["blue", "green", "red", "orange", "gray"]:
    """The colour of a task's status badge."""
    if row.state == "unknown":
        return "orange"
    if row.state == "failed":
        return "red"
    if row.status is None or row.status is TaskStatus.GENERATING:
        return "blue"
    return "green" if row.status.succeeded else "red"


def _player(url: str | None, *, what: str, demo: bool) -> None:
    if not url:
        st.caption(f"No {what} video yet.")
        return
    if demo:
        # Emulator URLs are not reachable from the browser (only Streamlit's port is): send bytes.
        try:
            st.video(runtime.fetch_bytes(url), alt=f"{what.capitalize()} video")
        except LumaError as err:
            show_error(err, context=f"The {what} video could not be loaded.")
    else:
        st.video(url, alt=f"{what.capitalize()} video")


def _result_player(row: TaskRow, *, demo: bool) -> None:
    """The result: the provider's copy while it keeps it, then the archived one."""
    if not row.result_url:
        st.caption("No result video yet.")
        return
    shown = shown_result(runtime.settings(), row)
    if shown is not None:
        st.video(shown, alt="Result video")
    elif demo:
        st.caption("The result could not be loaded.")
    else:
        st.caption("The provider no longer keeps this result (14 days) and there is no archived copy: "
                   "set [archive] to keep copies of results.")


def _kept_until(row: TaskRow) -> dict[str, str]:
    """The result's expiry countdown and where its archived copy is, as detail rows."""
    if not row.result_url:
        return {}
    out = {"Provider keeps the result": expiry_text(row, datetime.now(UTC)) or "—"}
    out["Archived copy"] = verbatim(describe(row.archived_path)) if row.archived_path else "none"
    return out


def run_again_prefill(row: TaskRow) -> dict[str, Any] | None:
    """The Submit page's widget values for another take of this task's inputs."""
    if not row.prompt or not (row.video_url or row.origin_url):
        return None
    prefill: dict[str, Any] = {
        "submit_prompt": row.prompt,
        "submit_callback_url": row.callback_url or "",
        "submit_watermark": row.watermark or "",
    }
    video_url = row.video_url or row.origin_url
    sample = next((c for c in runtime.samples() if c.url == video_url), None)
    if sample is not None:
        prefill.update(submit_source="sample", submit_sample=sample.slug)
    else:
        prefill.update(submit_source="url", submit_video_url=video_url)
    return prefill


def _adopt(request_key: str) -> None:
    """Button callback: attach the task id the user found in the provider's logs."""
    typed = (st.session_state.get(ADOPT_KEY) or "").strip().lower()
    try:
        row = runtime.ledger().adopt(request_key, typed)
    except (LedgerError, LedgerUnavailable, ValueError) as err:
        st.session_state["jobs_adopt_notice"] = ("error", str(err))
        return
    runtime.remember_tasks([row.task_id or typed])
    runtime.studio().tracker.nudge()
    st.session_state[ADOPT_KEY] = ""
    st.session_state["jobs_adopt_notice"] = ("success", f"Task {row.task_id} adopted; it is read from now on.")


def _outcome_unknown(row: TaskRow) -> None:
    st.warning(
        f"{plain(row.create_error or 'The create got no usable answer.')} The provider may have created "
        f"the task and charged for it, so it is never sent again on its own. Look for it on {PROVIDER_LOGS} "
        "(same prompt, same time) and paste its task id here to follow it.",
        title="Outcome unknown: the task may exist",
        icon=":material/hourglass_disabled:",
    )
    with st.container(horizontal=True, vertical_alignment="bottom"):
        st.text_input("Task id from the provider's logs", key=ADOPT_KEY, placeholder="774d9a7dd608a0e49293903095e45a4c")
        st.button("Adopt this task id", key="jobs_adopt_button", on_click=_adopt, args=(row.request_key,))
    notice = st.session_state.pop("jobs_adopt_notice", None)
    if notice:
        kind, text = notice
        (st.success if kind == "success" else st.error)(plain(text))


def _provider_error(row: TaskRow) -> None:
    status = row.status
    if status not in (TaskStatus.CREATE_TASK_FAILED, TaskStatus.GENERATE_FAILED):
        return
    code = row.error_code
    number = int(code) if code is not None and code.isdigit() else None
    typed = error_for_code(number, operation="get_task") if number is not None else None
    what = typed.summary if typed is not None else status.meaning
    body = f"{what}{f' (code {plain(code)})' if code is not None else ''}"
    if row.error_message:
        body += f"\n\nThe provider said: {plain(row.error_message)}"
    body += f"\n\n**Next step:** {typed.next_step if typed is not None else status.meaning}"
    st.error(body, title=status.label, icon=":material/error:")


def _download(row: TaskRow, demo: bool) -> None:
    url = row.result_url
    if not url:
        return
    shown = shown_result(runtime.settings(), row)
    if demo or isinstance(shown, bytes):
        # The emulator's files, or an archived copy once the provider's is gone: served as bytes.
        if not isinstance(shown, bytes):
            st.caption("The result could not be loaded for download.")
            return
        data = shown
        st.download_button(
            "Download result",
            data=data,
            file_name=f"{row.task_id}.mp4",
            mime="video/mp4",
            key="jobs_download",
            icon=":material/download:",
            on_click="ignore",
        )
        return
    links = st.session_state.setdefault(LINKS, {})
    if st.button("Get download link", key="jobs_download_link", icon=":material/link:"):
        try:
            links[row.task_id] = (runtime.client().get_download_url(url), datetime.now(UTC))
        except LumaError as err:
            show_error(err, context="No download link could be made.")
    if row.task_id in links:
        link, made = links[row.task_id]
        age = (datetime.now(UTC) - made).total_seconds()
        if age < 20 * 60:
            st.link_button("Download result", link, icon=":material/download:", type="primary")
            st.caption(f"The link is valid for 20 minutes (about {int((20 * 60 - age) // 60)} left).")
        else:
            st.caption("The last link has expired; get a new one.")


def details(row: TaskRow, *, demo: bool) -> None:
    """Everything about one task: players, request, error, download, actions."""
    with st.container(border=True, key="jobs_details"):
        with st.container(horizontal=True, vertical_alignment="center"):
            st.subheader("Task details", anchor=False)
            st.badge(row.status_label, color=badge_color(row))
        if row.task_id:
            st.code(row.task_id, language=None)
        if row.status is not None:
            st.caption(row.status.meaning)
        if row.state == "creating":
            st.info("The create is being sent; its answer is written here as soon as it comes.", icon=":material/send:")
        elif row.state == "failed":
            st.error(
                f"{plain(row.create_error or 'The task was not created.')} Nothing was charged.",
                title="Not created",
                icon=":material/block:",
            )
        elif row.state == "unknown":
            _outcome_unknown(row)
        if row.waiting == "key":
            st.info(
                "This task was submitted with an API key typed in a browser session, and this server "
                "was restarted since, so it no longer has that key. Enter the same key on Settings to "
                "resume following it.",
                title="Waiting for its API key",
                icon=":material/key:",
            )

        source_col, result_col = st.columns(2)
        with source_col:
            st.markdown("**Input video**")
            _player(row.video_url or row.origin_url, what="input", demo=demo)
        with result_col:
            st.markdown("**Result**")
            _result_player(row, demo=demo)

        if row.prompt is not None:
            st.markdown("**What was submitted**")
            video = (file_name(row.video_url) if demo else row.video_url) or "—"
            st.table(
                {
                    "Prompt": plain(row.prompt, limit=None) or "—",
                    # Addresses as inline code: copied exactly, never turned into links.
                    "Video URL": verbatim(video),
                    "Callback URL": verbatim(row.callback_url) if row.callback_url else "—",
                    "Watermark": plain(row.watermark) if row.watermark else "—",
                    "Submitted by": plain(row.owner_name or "—"),
                    "Cost": f"{row.cost:,} credits" if row.cost is not None else "—",
                    **_kept_until(row),
                },
                border="horizontal",
            )

        _provider_error(row)
        if row.read_error:
            st.warning(
                f"The last read of this task failed: {plain(row.read_error)} Its last known status is shown; "
                + ("the tracker keeps trying." if row.read_error_retryable else "it is not read again on its own."),
                icon=":material/sync_problem:",
            )

        with st.container(horizontal=True, vertical_alignment="center"):
            _download(row, demo)
            prefill = run_again_prefill(row)
            if prefill is not None and st.button(
                "Run again with the same inputs", key="jobs_run_again", icon=":material/replay:"
            ):
                st.session_state[runtime.SUBMIT_PREFILL] = prefill
                st.switch_page("pages/submit.py")
