"""Submit: describe the change, choose the input video, check it, and start exactly one task per click."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import streamlit as st

from luma.errors import LumaError
from luma.preflight import check_file, format_size
from pages._support import runtime, set_form
from pages._support.feedback import show_error
from pages._support.submission import (
    IN_FLIGHT_NOTICES,
    SubmitInputs,
    SubmitRequest,
    callback_problem,
    decide_click,
    input_problems,
    language_hint,
)
from pages._support.views import show_report
from studio.creates import NotSent, send_written
from studio.ledger import LedgerUnavailable
from studio.schedule import CALLBACK_FALLBACK
from studio.sets import admit
from studio.text import plain

runtime.page_guard("pages/submit.py")

_LOG = logging.getLogger("luma.dashboard")
state = st.session_state
settings = runtime.settings()

SOURCE_LABELS = {"sample": "Sample clip", "upload": "Upload a file", "url": "Public URL"}
sources = ["sample", "upload", "url"] if settings.demo else ["upload", "url"]
# A click recorded this long ago and never sent (the user left the page mid-run) is dropped.
STALE_REQUEST = timedelta(minutes=2)
# The inputs under "Options", which are drawn only while open (see the layout below).
OPTION_KEYS = ("submit_callback_url", "submit_watermark")

# "Run again" on the Jobs page leaves the inputs here; apply them before the widgets exist.
prefill = state.pop(runtime.SUBMIT_PREFILL, None)
if prefill:
    for widget_key, value in prefill.items():
        state[widget_key] = value
    if any((prefill.get(key) or "").strip() for key in OPTION_KEYS):
        state["submit_options"] = True  # show the options it filled in
    # A deliberate re-run of the same inputs is a new submission, not a duplicate click.
    runtime.new_submission()
    state[runtime.SUBMIT_REQUEST] = None
    state["submit_notice"] = None
if state.get("submit_source") not in sources:
    state["submit_source"] = sources[0]
# A widget that is not drawn in a run loses its value, and the options are drawn only while
# open: hold their values as the session's own, so closing the options keeps what was typed.
for _key in OPTION_KEYS:
    if _key in state:
        state[_key] = state[_key]


def _sample_url(slug: str | None) -> tuple[str | None, str | None]:
    for clip in runtime.samples():
        if clip.slug == slug:
            return clip.url, clip.title
    return None, None


def chosen_video() -> tuple[str | None, str | None]:
    """(URL, human name) of the input video as the widgets hold it now; URL None when not ready."""
    source = state.get("submit_source")
    if source == "url":
        return (state.get("submit_video_url") or "").strip() or None, None
    if source == "sample":
        return _sample_url(state.get("submit_sample"))
    if source == "upload":
        file = state.get("submit_file")
        digest = state.get("submit_file_digest", {}).get(getattr(file, "file_id", None))
        upload = runtime.uploaded(digest) if digest else None
        if upload is not None:
            return upload.download_url, getattr(file, "name", None)
    return None, None


def current_inputs() -> SubmitInputs | None:
    """The inputs as the widgets hold them now (also called from the button's callback)."""
    prompt = (state.get("submit_prompt") or "").strip()
    video_url, name = chosen_video()
    if not prompt or not video_url:
        return None
    return SubmitInputs(
        prompt=prompt,
        video_url=video_url,
        callback_url=(state.get("submit_callback_url") or "").strip() or None,
        watermark=(state.get("submit_watermark") or "").strip() or None,
        source=state.get("submit_source") or "url",
        source_name=name,
    )


def record_click() -> None:
    """Button callback: record a request only when nothing is in flight for these inputs."""
    inputs = current_inputs()
    if inputs is None:
        missing = "a prompt" if not (state.get("submit_prompt") or "").strip() else "a video"
        state["submit_notice"] = f"Add {missing} first: nothing was sent."
        return
    problems = input_problems(inputs.prompt, inputs.callback_url)
    if problems:
        state["submit_notice"] = " ".join(problems)
        return
    decision = decide_click(
        state.get(runtime.SUBMIT_REQUEST),
        inputs,
        confirmed_resend=bool(state.get("submit_confirm_resend")),
    )
    if decision.record:
        if state.get("submit_confirm_resend"):
            runtime.new_submission()  # the user checked and asked to send these inputs again
        state[runtime.SUBMIT_REQUEST] = SubmitRequest(inputs)
        state["submit_notice"] = None
    else:
        state["submit_notice"] = decision.notice


def start_new() -> None:
    """Forget the last submission so the same inputs may be sent again, deliberately."""
    runtime.new_submission()
    state[runtime.SUBMIT_REQUEST] = None
    state["submit_notice"] = None


def recheck() -> None:
    runtime.forget_preflight()


def act_on_request() -> None:
    """Send a recorded request exactly once, and record its outcome even if a newer run stops this one."""
    request: SubmitRequest | None = state.get(runtime.SUBMIT_REQUEST)
    if request is None or not request.in_flight:
        return
    if request.state == "pending":
        if datetime.now(UTC) - request.recorded_at > STALE_REQUEST:
            state[runtime.SUBMIT_REQUEST] = None
            state["submit_notice"] = "An earlier click was interrupted before it was sent; nothing was created."
            st.rerun()
        # A run stopped in here leaves the request pending: the next run picks it up.
        try:
            with st.spinner("Checking the video before spending credits…"):
                report = runtime.preflight_url(request.inputs.video_url)
        except Exception:  # noqa: BLE001 - check_url does not raise for the server; anything else is ours
            _LOG.exception("The pre-flight check failed unexpectedly")
            request.state = "failed"
            st.rerun()
        request.preflight = report
        if not report.ok:
            request.state = "blocked"
            st.rerun()
    # "sending" here means another run of this session is sending it: the gate hands us its answer.
    # Everything the create needs from Streamlit and session state is read now, before sending.
    key = runtime.submission_key(request.fingerprint)
    listed_tasks = runtime.session_tasks()
    s = runtime.settings()
    who, name = runtime.owner()
    try:
        service = runtime.studio(s)
    except LedgerUnavailable as err:
        request.state = "failed"
        request.error = NotSent(f"The task ledger cannot be reached ({err}), so nothing was sent.")
        st.rerun()
    client = runtime.action_client()
    inputs = request.inputs
    # Our own callback URL goes with the task unless the user gave theirs (then we poll).
    ours = service.callback_for(s.mode) if inputs.callback_url is None else None
    sent_callback = ours[0] if ours else inputs.callback_url
    schedule = service.schedule(s.demo)
    price = runtime.pricing().credits_per_task
    fields = {
        "mode": s.mode,
        "owner": who,
        "owner_name": name,
        "key_ref": s.key_ref,
        "api_base": s.api_base,
        "prompt": inputs.prompt,
        "video_url": inputs.video_url,
        "callback_url": inputs.callback_url,
        "watermark": inputs.watermark,
        "source": inputs.source,
        "source_name": inputs.source_name,
        "sender": service.tracker.process_id,
        "callback_token": ours[1] if ours else None,
        "cost": price,
        # Budgets are checked as the create is written down, under the ledger's spending lock.
        "admit": admit(price, runtime.budget(), who, runtime.balance().balance, datetime.now(UTC)),
    }

    def first_check() -> datetime:
        # With our callback coming, reads are only a safety net in case it never does.
        now = datetime.now(UTC)
        return now + timedelta(seconds=CALLBACK_FALLBACK if ours else schedule.lo)

    def create() -> str:
        # With this create alone in flight for the key, the balance before and after says what it
        # really cost: recorded on the task, and compared with the configured price.
        alone = service.ledger.creating(s.key_ref) == 1
        before = _balance(client) if alone else None
        task_id = client.create_task(inputs.prompt, inputs.video_url, callback_url=sent_callback, watermark=inputs.watermark)
        after = _balance(client) if before is not None else None
        if before is not None and after is not None and before > after:
            service.ledger.set_cost(request.id, before - after)
            service.observed_price = before - after
        return task_id

    def send() -> str:
        # Written to the ledger before it leaves; settled with the answer (studio.creates).
        task_id = send_written(service.ledger, request.id, fields, create, queue=service.settles, first_check=first_check)
        service.tracker.nudge()
        return task_id

    with st.spinner("Creating the task…"):
        # No st.* call and no session-state access from here to the recorded outcome: each is a
        # point where a newer run (a second click) stops this one, which would lose the answer
        # to a create the provider has already charged for.
        request.state = "sending"
        outcome = runtime.create_once(key, request.id, send)
        if outcome.task_id is not None:
            runtime.remember_tasks([outcome.task_id], into=listed_tasks)
        request.settle(outcome)
        runtime.forget_credits()
    st.rerun()


def _balance(client: object) -> int | None:
    """Credits left, or None (a cross-check is never worth failing a create for)."""
    try:
        return int(client.get_credits())  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - the check is a nicety; the create is what matters
        return None


def upload_section() -> None:
    """The file picker: check the file here, upload it once, remember its download URL."""
    file = st.file_uploader(
        "Video file",
        type=["mp4", "mov", "avi"],
        key="submit_file",
        help="MP4, MOV or AVI, at most 10 s and 500 MB. It is uploaded once to the provider's "
        "file host (kept 3 days) and used from there.",
    )
    if file is None:
        return
    data = file.getvalue()
    digest, upload_as = runtime.upload_name(data, file.name)
    state["submit_file_digest"] = {file.file_id: digest}
    local = check_file(data, size=len(data), file_name=file.name)
    if not local.ok:
        show_report(local, what="This file")
        return
    upload = runtime.uploaded(digest)
    if upload is None:
        # The upload runs in the background: a click or an edit while it runs stops this run (each
        # progress update is a yield point), not the upload, and the next run follows it here.
        key, running = runtime.start_upload(digest, data, upload_as)
        bar = st.progress(running.fraction, text="Uploading…")
        while not running.wait(0.2):
            bar.progress(running.fraction, text=f"Uploading… {int(100 * running.fraction)}%")
        bar.empty()
        if running.error is not None:
            show_error(running.error, context="The upload failed.")
            runtime.forget_failed_upload(key, running)
            return
        upload = running.result
        runtime.remember_upload(digest, upload)
    st.caption(
        f":material/cloud_done: Uploaded **{plain(file.name)}** ({format_size(len(data))}). "
        "The provider keeps uploads for 3 days."
    )
    if local.warnings:
        show_report(local, what="This file")


# --- layout ----------------------------------------------------------------------------------------

st.header("Modify a video", anchor=False)
st.caption(
    "Describe the change, choose a video of at most 10 seconds, and start a task. "
    "Follow it on the Jobs page; it usually takes a few minutes"
    + (" (seconds in demo mode)." if settings.demo else ".")
)

mode = st.segmented_control(
    "What to start", ["One task", "Variant set"], key="submit_mode", default="One task",
    help="A variant set tries several prompts on several videos at once (up to 50 tasks), priced before it starts.",
)
if mode == "Variant set":
    set_form.render(settings)
    st.stop()

created: SubmitRequest | None = state.get(runtime.SUBMIT_REQUEST)
if created is not None and created.state == "done" and not created.announced:
    created.announced = True
    st.toast(f"Task {created.task_id} created.", icon=":material/check_circle:")

inputs_col, video_col = st.columns([3, 2], gap="large")

with inputs_col:
    prompt = st.text_area(
        "Prompt",
        key="submit_prompt",
        height=110,
        # No max_chars: the browser would silently keep the old text when a longer one is pasted,
        # and Start would send that. The length is checked below and refused in words instead.
        placeholder="Turn the street into a rainy neon-lit night, with reflections on the wet road",
        help="English only. Say what should change and how it should look: subject, style, light, weather.",
    )
    st.caption(
        "Good prompts name the look and keep the scene: *make it a snowy winter evening with warm "
        "street lights*, *restyle as a watercolour painting*, *golden-hour sunlight, soft shadows*."
    )
    prompt_problems = input_problems((prompt or "").strip(), None)
    if prompt_problems:
        st.error(prompt_problems[0], icon=":material/short_text:")
    hint = language_hint(prompt or "")
    if not hint.looks_english:
        st.warning(
            f"{hint.reason} The provider accepts English prompts only: translate the prompt before "
            "submitting, or the task may fail.",
            icon=":material/translate:",
        )

    st.segmented_control(
        "Input video",
        sources,
        key="submit_source",
        required=True,
        format_func=SOURCE_LABELS.__getitem__,
    )
    source = state.get("submit_source")

    if source == "url":
        st.text_input(
            "Video URL",
            key="submit_video_url",
            placeholder="https://example.com/clip.mp4",
            help="A direct, public link to an MP4, MOV or AVI file of at most 10 s and 500 MB.",
        )
        if settings.demo:
            st.caption(
                "In demo mode the emulator fetches this URL itself. Links from this demo (samples, "
                "uploads, results) always work."
            )
    elif source == "upload":
        upload_section()
    else:
        clips = runtime.samples()
        if clips and state.get("submit_sample") not in {c.slug for c in clips}:
            state["submit_sample"] = clips[0].slug
        titles = {c.slug: c.title for c in clips}
        # A segmented control, not a selectbox: four clips fit in a row and take one click, and
        # the page already loads the control's code for the two above, while a selectbox's first
        # draw costs the browser ~0.19 s of script on the demo's first page (python -m bench --only cold).
        st.segmented_control(
            "Sample clip",
            list(titles),
            key="submit_sample",
            required=True,
            format_func=lambda slug: titles.get(slug, slug),
            help="Short clips generated by the demo, ready to modify.",
        )
        chosen = next((c for c in clips if c.slug == state.get("submit_sample")), None)
        if chosen is not None:
            st.caption(chosen.description)

    # Drawn only while open (lazy, on_change="rerun"): the two text inputs would otherwise load
    # their browser code on the demo's first page (~0.12 s of script; python -m bench --only cold).
    # Open or closed is the user's (or "Run again"'s) choice, kept in its key: an ``expanded``
    # computed from the values would be a new widget whenever it changed, closing the options
    # under the user's hands as they cleared a field.
    options = st.expander("Options: callback URL and watermark", key="submit_options", on_change="rerun")
    if options.open:
        with options:
            st.text_input(
                "Callback URL",
                key="submit_callback_url",
                placeholder="https://example.com/luma-callback",
                help="The provider POSTs the outcome here when the task ends. Optional.",
            )
            typed_callback = (state.get("submit_callback_url") or "").strip()
            problem = callback_problem(typed_callback) if typed_callback else None
            if problem:
                st.error(problem, icon=":material/link_off:")
            elif runtime.callbacks_on(settings):
                st.caption(
                    ":material/bolt: This dashboard receives the provider's callbacks itself, so results show "
                    "the moment they are ready."
                    + (" With your own callback URL here, the provider calls yours instead, and this "
                       "dashboard learns the result by polling (within 30 s)." if typed_callback else "")
                )
            st.text_input(
                "Watermark",
                key="submit_watermark",
                help="A watermark identifier from your provider account, added to the result. Optional.",
            )

inputs = current_inputs()
video_url, video_name = chosen_video()

sample_slug = state.get("submit_sample") if source == "sample" else None
# On a fresh demo the sample clips are still being drawn in the background: the page never waits
# for them; this part of it looks again every second until the chosen one is there.
sample_pending = sample_slug is not None and not runtime.sample_ready(sample_slug)


@st.fragment(run_every=1.0 if sample_pending else None)
def video_panel() -> None:
    """The preview and the video check (or a placeholder while the demo's sample is drawn)."""
    if sample_pending:
        if runtime.sample_ready(sample_slug or ""):
            st.rerun(scope="app")  # ready: draw it all, and stop this timer
        with st.container(border=True, key="submit_sample_placeholder"):
            st.markdown(":material/hourglass_top: **Preparing the sample clip…**")
            st.caption("The demo draws its sample clips once, on its first start; this takes a few seconds.")
        st.subheader("Video check", anchor=False)
        st.caption("The check runs as soon as the sample clip is ready.")
        return
    if source == "sample" and video_url:
        try:
            st.video(runtime.fetch_bytes(video_url), alt=f"Sample clip: {video_name}")
        except LumaError as err:
            show_error(err, context="The sample preview could not be loaded.")
    st.subheader("Video check", anchor=False)
    if not video_url:
        st.caption("Choose a video to check it against the provider's limits before any credit is spent.")
    else:
        show_report(runtime.preflight_url(video_url))
        st.button("Check again", key="submit_recheck", icon=":material/refresh:", on_click=recheck)


with video_col:
    video_panel()

last: SubmitRequest | None = state.get(runtime.SUBMIT_REQUEST)
same_inputs = last is not None and inputs is not None and last.fingerprint == inputs.fingerprint()

with inputs_col:
    st.space("small")
    if last is not None and last.state == "unknown" and same_inputs:
        st.checkbox(
            "I checked: no task was created, send it again",
            key="submit_confirm_resend",
        )
    missing = "a prompt" if not (prompt or "").strip() else ("a video" if not video_url else None)
    st.button(
        "Start task",
        key="submit_button",
        type="primary",
        icon=":material/play_arrow:",
        on_click=record_click,
        # Not disabled for missing inputs: a text area commits on blur, so the click that blurs it would
        # land on a still-disabled button and be lost. The callback says what is missing instead.
        disabled=last is not None and last.in_flight,
        help="Creates one task on the provider" + ("" if settings.demo else " and spends credits") + ".",
    )
    if missing and not state.get("submit_notice"):
        st.caption(f"Add {missing} to start a task.")
    notice = state.get("submit_notice")
    if notice in IN_FLIGHT_NOTICES and not (last is not None and last.in_flight):
        notice = None  # "wait for the answer": the answer is in, shown below
    if notice:
        st.info(notice, icon=":material/info:")

    act_on_request()

    # --- the last submission -----------------------------------------------------------------------------
    if last is not None:
        if last.state == "done":
            with st.container(border=True, key="submit_result"):
                st.success(
                    "Task created. It is on the Jobs page, which refreshes it until it is done.",
                    title="Submitted",
                    icon=":material/check_circle:",
                )
                st.code(last.task_id or "", language=None)
                with st.container(horizontal=True, vertical_alignment="center"):
                    st.page_link("pages/jobs.py", label="Open the Jobs page", icon=":material/view_list:")
                    st.button("Start a new submission", key="submit_new", icon=":material/add:", on_click=start_new)
        elif last.state == "failed":
            if last.error is not None:
                show_error(last.error, context="The task was not created.")
            else:
                st.error("The task was not created: the video could not be checked. Try again.", icon=":material/error:")
        elif last.state == "unknown":
            st.warning(
                "The request reached the provider but no usable answer came back, so the task may or may "
                "not exist. Check the provider's logs (or add the task id on the Jobs page if you find it) "
                "before sending it again: a second send may cost credits twice.",
                title="Outcome unknown: the task may exist",
                icon=":material/hourglass_disabled:",
            )
            if last.error is not None:
                show_error(last.error)
        elif last.state == "blocked":
            st.error(
                "The task was not created: the video failed the video check. Fix what it lists and press Start task again.",
                icon=":material/block:",
            )
