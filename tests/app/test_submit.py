"""The Submit page: one click, one task; pre-flight blocks; every create error in words; uploads."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from luma.emulator import media
from pages._support import runtime
from pages._support.submission import SubmitInputs, SubmitRequest
from studio.ledger import TaskQuery

from .conftest import alerts, creates, envelope, make_app, page_text

PROMPT = "make it a snowy night"
CREATE = ("POST", "/api/v1/modify/generate")


def submit(at, prompt: str = PROMPT):
    at.text_area(key="submit_prompt").set_value(prompt)
    return at.button(key="submit_button").click().run()


def test_one_click_creates_exactly_one_task(hermetic):
    at = make_app().run()
    submit(at)
    assert not at.exception
    assert creates(hermetic) == 1
    request = at.session_state[runtime.SUBMIT_REQUEST]
    assert request.state == "done" and len(request.task_id) == 32
    assert [t.value for t in at.toast] == [f"Task {request.task_id} created."]
    assert at.code[0].value == request.task_id
    assert at.page_link[0].value == "Open the Jobs page"
    assert at.session_state[runtime.SESSION_TASKS] == [request.task_id]
    row = runtime.ledger().get(task_id=request.task_id)
    assert row is not None and row.prompt == PROMPT and row.source == "sample" and row.state == "created"
    assert row.request_key == request.id, "written down under the click's own key before it was sent"
    assert query_value(at, "tasks") == request.task_id, "mirrored into the URL"


def test_second_click_and_reruns_after_success_create_nothing(hermetic):
    at = make_app().run()
    submit(at)
    task_id = at.session_state[runtime.SUBMIT_REQUEST].task_id
    at.button(key="submit_button").click().run()
    at.run()
    at.button(key="submit_button").click().run()
    assert not at.exception
    assert creates(hermetic) == 1
    assert any(f"Already submitted as task {task_id}" in a for a in alerts(at))
    # Changed inputs are a new submission.
    submit(at, "restyle as a watercolour painting")
    assert creates(hermetic) == 2


def test_a_click_whose_run_lost_the_recorded_request_still_creates_once(hermetic):
    """The browser test caught two creates 0.1 s apart from one double click: with fast reruns the
    two clicks' runs overlap. Creates go through a ledger outside session state, so even a session
    that forgot it sent these inputs sends nothing twice (see test_submit_stopped_runs.py)."""
    at = make_app().run()
    submit(at)
    task_id = at.session_state[runtime.SUBMIT_REQUEST].task_id
    at.session_state[runtime.SUBMIT_REQUEST] = None  # the lost write
    at.button(key="submit_button").click().run()
    assert not at.exception
    assert creates(hermetic) == 1
    assert at.session_state[runtime.SUBMIT_REQUEST].task_id == task_id, "the first answer is reused"


def test_start_new_submission_allows_a_deliberate_repeat(hermetic):
    at = make_app().run()
    submit(at)
    at.button(key="submit_new").click().run()
    at.button(key="submit_button").click().run()
    assert creates(hermetic) == 2


def query_value(at, name: str) -> str | None:
    value = at.query_params.get(name)
    return ",".join(value) if isinstance(value, list) else value


def runtime_sample_url(at) -> str:
    slug = at.session_state["submit_sample"]
    return next(c.url for c in runtime.samples() if c.slug == slug)


def test_non_english_prompt_warns_but_does_not_block(hermetic):
    at = make_app().run()
    at.text_area(key="submit_prompt").set_value("Сделай ночь и добавь снег").run()
    assert any("English prompts only" in a for a in alerts(at))
    at.button(key="submit_button").click().run()
    assert creates(hermetic) == 1


# --- pre-flight -----------------------------------------------------------------------------------


def _mp4(tmp_path: Path, seconds: float) -> bytes:
    path = tmp_path / f"clip-{seconds}.mp4"
    media.make_sample(media.SAMPLES[0].slug, path, width=64, height=36, seconds=seconds, fps=4)
    return path.read_bytes()


def _file_host(body: bytes, content_type: str, *, status: int = 200, length: int | None = None):
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Type": content_type, "Content-Length": str(length if length is not None else len(body))}
        if request.method == "HEAD":
            return httpx.Response(status, headers=headers)
        return httpx.Response(status, content=body, headers={"Content-Type": content_type})

    return handler


@pytest.mark.parametrize(
    ("case", "url", "failed_check"),
    [
        ("malformed", "not a url", "Address"),
        ("unreachable", "http://videos.test/missing.mp4", "Reachable"),
        ("web page", "http://videos.test/page.html", None),
        ("webm", "http://videos.test/clip.webm", "Video format"),
        ("too big", "http://videos.test/huge.mp4", "Size"),
        ("too long", "http://videos.test/long.mp4", "Length"),
    ],
)
def test_each_preflight_failure_blocks_the_submit(case, url, failed_check, seam, hermetic, tmp_path):
    bodies = {
        "missing.mp4": (b"not found", "text/plain", 404, None),
        "page.html": (b"<!doctype html><html><body>hi</body></html>", "text/html", 200, None),
        "clip.webm": (b"\x1a\x45\xdf\xa3" + b"\x00" * 60 + b"webm" + b"\x00" * 200, "video/webm", 200, None),
        "huge.mp4": (_mp4(tmp_path, 1), "video/mp4", 200, 600 * 1024 * 1024),
        "long.mp4": (_mp4(tmp_path, 11), "video/mp4", 200, None),
    }

    def host(request: httpx.Request) -> httpx.Response:
        body, ctype, status, length = bodies[request.url.path.rsplit("/", 1)[-1]]
        return _file_host(body, ctype, status=status, length=length)(request)

    seam({"videos.test": host})
    at = make_app().run()
    at.segmented_control(key="submit_source").set_value("url").run()
    at.text_input(key="submit_video_url").set_value(url)
    submit(at)
    assert not at.exception
    assert creates(hermetic) == 0, f"{case}: nothing may be created"
    assert at.session_state[runtime.SUBMIT_REQUEST].state == "blocked"
    text = "\n".join(alerts(at))
    assert "Submit is blocked" in text and "The task was not created" in text
    lines = [m.value for m in at.markdown if "Fail." in m.value]
    assert lines, "the failed check is listed"
    if failed_check:
        assert any(f"**{failed_check}: Fail.**" in line for line in lines)
    assert any("How to fix" in line for line in lines) or case == "unreachable"


def test_preflight_warning_lets_the_user_go_on(seam, tmp_path):
    clip = _mp4(tmp_path, 1) + b"\0" * 400_000

    def host(request: httpx.Request) -> httpx.Response:
        # HEAD refused and the body streamed without a length: the size cannot be checked.
        if request.method == "HEAD":
            return httpx.Response(405)
        chunks = (clip[i : i + 65536] for i in range(0, len(clip), 65536))
        return httpx.Response(200, content=chunks, headers={"Content-Type": "video/mp4"})

    traffic = seam({"videos.test": host})
    at = make_app().run()
    at.segmented_control(key="submit_source").set_value("url").run()
    at.text_input(key="submit_video_url").set_value("http://videos.test/ok.mp4").run()
    assert any("Some checks could not be run" in a for a in alerts(at))
    assert any("**Size: Not checked.**" in m.value for m in at.markdown)
    submit(at)
    assert at.session_state[runtime.SUBMIT_REQUEST].state != "blocked"
    assert traffic.paths("POST").count(CREATE[1]) == 1, "the create was sent despite the warning"


# --- create errors ------------------------------------------------------------------------------------

ERROR_TITLES = {
    401: "The API key was not accepted (401)",
    402: "Out of credits (402)",
    404: "Not found (404)",
    422: "The provider refused the input (422)",
    429: "Too many requests (429)",
    455: "The provider is under maintenance (455)",
    500: "The provider had an internal error (500)",
    501: "The video could not be generated (501)",
    505: "Video modification is disabled for this account (505)",
}


@pytest.mark.parametrize("code", sorted(ERROR_TITLES))
def test_each_create_error_code_has_its_own_message(code, seam, hermetic):
    traffic = seam({CREATE: envelope(code, msg="provider words")})
    at = make_app().run()
    submit(at)
    assert not at.exception
    errors = [e for e in at.error]
    titles = [e.proto.title for e in errors]
    assert ERROR_TITLES[code] in titles
    shown = next(e for e in errors if e.proto.title == ERROR_TITLES[code])
    assert "Next step" in shown.value and "The task was not created" in shown.value
    assert traffic.paths("POST").count(CREATE[1]) == 1, "a create is never retried"
    assert creates(hermetic) == 0
    assert at.session_state[runtime.SUBMIT_REQUEST].state == "failed"
    assert "Traceback" not in page_text(at)


def test_create_404_says_the_endpoint_may_have_moved(seam):
    seam({CREATE: envelope(404)})
    at = make_app().run()
    submit(at)
    assert any("retired or moved" in e.value for e in at.error)


def test_a_create_the_balance_cannot_pay_for_is_not_sent(hermetic):
    at = make_app(demo={"credits": 0}).run()
    submit(at)
    assert "Not enough credits" in [e.proto.title for e in at.error]
    assert any("It costs 10 credits and the account has 0 left" in a for a in alerts(at))
    assert creates(hermetic) == 0
    assert not runtime.ledger().query(TaskQuery(mode="demo")).rows, "nothing half-created"


def test_errors_from_the_emulator_itself(hermetic, monkeypatch):
    # The balance read fails (so nothing is refused before sending): the emulator's own 402 shows.
    at = make_app(demo={"credits": 0}).run()
    monkeypatch.setattr(runtime, "balance", lambda: runtime.CreditsReading())
    submit(at)
    assert "Out of credits (402)" in [e.proto.title for e in at.error]
    assert creates(hermetic) == 0


def test_timeout_says_the_task_may_exist_and_needs_confirmation(seam, hermetic):
    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    traffic = seam({CREATE: hang})
    at = make_app().run()
    submit(at)
    assert not at.exception
    assert at.session_state[runtime.SUBMIT_REQUEST].state == "unknown"
    assert any("the task may exist" in a for a in alerts(at))
    # The same inputs again: not sent without the explicit confirmation.
    at.button(key="submit_button").click().run()
    assert traffic.paths("POST").count(CREATE[1]) == 1
    assert any("a task may have been created" in a for a in alerts(at))
    at.checkbox(key="submit_confirm_resend").check()
    at.button(key="submit_button").click().run()
    assert traffic.paths("POST").count(CREATE[1]) == 2


def test_malformed_create_answer_is_treated_as_maybe_created(seam):
    seam({CREATE: lambda r: httpx.Response(200, content=b"<html>oops")})
    at = make_app().run()
    submit(at)
    assert at.session_state[runtime.SUBMIT_REQUEST].state == "unknown"
    assert any("answer was not understood" in e.proto.title for e in at.error)


def test_connection_error_is_a_plain_failure(seam):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    seam({CREATE: refuse})
    at = make_app().run()
    submit(at)
    assert at.session_state[runtime.SUBMIT_REQUEST].state == "failed"
    assert "Could not connect to the provider" in [e.proto.title for e in at.error]


def test_unexpected_exception_never_shows_a_traceback(monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("internal detail /secret/path")

    at = make_app().run()
    monkeypatch.setattr("luma.client.LumaClient.create_task", boom)
    submit(at)
    assert not at.exception
    text = page_text(at)
    assert "internal detail" not in text and "Traceback" not in text
    assert at.session_state[runtime.SUBMIT_REQUEST].state == "unknown"


# --- uploads ------------------------------------------------------------------------------------------


def test_upload_is_checked_sent_once_and_used(seam, hermetic, tmp_path):
    traffic = seam()
    clip = _mp4(tmp_path, 1)
    at = make_app().run()
    at.segmented_control(key="submit_source").set_value("upload").run()
    at.file_uploader(key="submit_file").upload("my clip.mp4", clip, "video/mp4").run()
    assert not at.exception
    assert traffic.paths("POST").count("/api/file-stream-upload") == 1
    assert any("Uploaded" in c.value for c in at.caption)
    at.run()
    submit(at)
    assert traffic.paths("POST").count("/api/file-stream-upload") == 1, "uploaded once per file"
    assert creates(hermetic) == 1
    sent = json.loads(next(r for r in traffic.seen if r.url.path == CREATE[1]).content)
    assert "/files/uploads/" in sent["videoUrl"] and sent["videoUrl"].endswith("-my-clip.mp4")


def test_a_bad_local_file_is_refused_before_upload(seam, hermetic):
    traffic = seam()
    at = make_app().run()
    at.segmented_control(key="submit_source").set_value("upload").run()
    at.file_uploader(key="submit_file").upload("page.mp4", b"<!doctype html><html></html>", "video/mp4").run()
    assert not at.exception
    assert "/api/file-stream-upload" not in traffic.paths()
    assert any("This file cannot be used yet" in e.value for e in at.error)
    submit(at)
    assert any("Add a video first" in a for a in alerts(at))
    assert creates(hermetic) == 0


@pytest.mark.parametrize(("code", "title"), [(400, "The upload was rejected (400)"), (405, "The upload endpoint refused the request (405)")])
def test_upload_errors_in_words(code, title, seam, tmp_path):
    body = json.dumps({"success": False, "code": code, "msg": "no", "data": None}).encode()
    seam({("POST", "/api/file-stream-upload"): lambda r: httpx.Response(200, content=body)})
    at = make_app().run()
    at.segmented_control(key="submit_source").set_value("upload").run()
    at.file_uploader(key="submit_file").upload("clip.mp4", _mp4(tmp_path, 1), "video/mp4").run()
    assert not at.exception
    assert title in [e.proto.title for e in at.error]


def test_a_request_left_pending_by_an_interrupted_run_is_sent_once(hermetic):
    at = make_app().run()
    at.text_area(key="submit_prompt").set_value(PROMPT).run()
    # As if the click's run had been interrupted before the create call (e.g. by another click).
    at.session_state[runtime.SUBMIT_REQUEST] = SubmitRequest(SubmitInputs(PROMPT, runtime_sample_url(at)))
    at.run()
    at.run()
    assert creates(hermetic) == 1
    assert at.session_state[runtime.SUBMIT_REQUEST].state == "done"


def test_the_sample_clips_are_one_click_each_and_the_choice_is_sent(hermetic):
    at = make_app().run()
    clips = runtime.samples()
    control = at.segmented_control(key="submit_sample")
    assert list(control.options) == [clip.title for clip in clips], "every clip in view, no dropdown"
    control.set_value(clips[1].slug).run()
    assert at.session_state["submit_sample"] == clips[1].slug
    submit(at)
    row = runtime.ledger().get(task_id=at.session_state[runtime.SUBMIT_REQUEST].task_id)
    assert row is not None and row.source_name == clips[1].title


def test_the_options_are_drawn_only_while_open_and_keep_what_was_typed(hermetic):
    at = make_app().run()
    option_keys = {"submit_callback_url", "submit_watermark"}
    assert not option_keys & {t.key for t in at.text_input}, "closed on a first visit: not drawn"
    at.session_state["submit_options"] = True  # the user opens them
    at.run()
    assert option_keys <= {t.key for t in at.text_input}
    at.text_input(key="submit_watermark").set_value("studio-mark").run()
    at.session_state["submit_options"] = False  # and closes them again
    at.run()
    assert not option_keys & {t.key for t in at.text_input}
    assert at.session_state["submit_watermark"] == "studio-mark", "closing the options keeps the value"
    submit(at)
    assert not at.exception
    row = runtime.ledger().get(task_id=at.session_state[runtime.SUBMIT_REQUEST].task_id)
    assert row is not None and row.watermark == "studio-mark"


def test_options_set_by_run_again_are_shown_open(hermetic):
    at = make_app()
    at.session_state[runtime.SUBMIT_PREFILL] = {"submit_prompt": PROMPT, "submit_watermark": "studio-mark"}
    at.run()
    assert at.text_input(key="submit_watermark").value == "studio-mark"


def test_clearing_an_option_leaves_the_options_open(hermetic):
    at = make_app().run()
    at.session_state["submit_options"] = True
    at.run()
    at.text_input(key="submit_watermark").set_value("studio-mark").run()
    at.text_input(key="submit_watermark").set_value("").run()
    assert at.session_state["submit_options"] is True
    assert at.text_input(key="submit_watermark").value == ""
