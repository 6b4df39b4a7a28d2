"""The emulator's core, driven through :meth:`Emulator.handle` and its public methods."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from luma import TaskStatus
from luma._constants import PATH_CREATE, PATH_CREDITS, PATH_RECORD, PATH_UPLOAD_BASE64, PATH_UPLOAD_STREAM
from luma.emulator import Emulator, EmulatorConfig
from luma.emulator import media as media_module
from luma.emulator.media import SAMPLES
from luma.emulator.wire import EmulatorRequest, EmulatorResponse, parse_multipart, parse_range

SECRET_KEY = "sk-live-DO-NOT-LEAK-0123456789"


def call(emulator: Emulator, method: str, target: str, *, key: str | None = "demo", json_body: Any = None,
         body: bytes = b"", headers: dict[str, str] | None = None) -> EmulatorResponse:
    pairs = dict(headers or {})
    if key is not None:
        pairs["Authorization"] = f"Bearer {key}"
    if json_body is not None:
        body = json.dumps(json_body).encode()
        pairs["Content-Type"] = "application/json"
    return emulator.handle(EmulatorRequest.build(method, target, pairs.items(), body))


def payload(response: EmulatorResponse) -> bytes:
    return b"".join(response.chunks())


def envelope(response: EmulatorResponse) -> dict[str, Any]:
    return json.loads(payload(response))


def create(emulator: Emulator, prompt: str = "make it night", key: str = "demo", **extra: Any) -> str:
    answer = envelope(call(emulator, "POST", PATH_CREATE, key=key,
                           json_body={"prompt": prompt, "videoUrl": emulator.samples()[0].url, **extra}))
    assert answer["code"] == 200, answer
    return str(answer["data"]["taskId"])


def upload(emulator: Emulator, name: str, data: bytes, folder: str = "t") -> str:
    answer = envelope(call(emulator, "POST", PATH_UPLOAD_BASE64, json_body={
        "base64Data": base64.b64encode(data).decode(), "uploadPath": folder, "fileName": name}))
    assert answer["success"] is True, answer
    return str(answer["data"]["downloadUrl"])


def path_of(emulator: Emulator, url: str) -> str:
    return url.removeprefix(emulator.config.public_base)


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [
    {"error_style": "xml"}, {"failure_rate": 1.5}, {"rate_429": -0.1}, {"rate_500": 0.6, "rate_timeout": 0.6},
    {"processing_delay": -1}, {"upload_shape": "C"}, {"response_while_generating": "missing"},
    {"error_code_type": "float"}, {"required_key": "  "}, {"public_base": "ftp://x"}, {"callback_failure_code": 200},
    {"answer_delay": -1},
])
def test_config_refuses_settings_that_cannot_work(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        EmulatorConfig(**bad)


def test_reprs_never_show_keys() -> None:
    config = EmulatorConfig(required_key=SECRET_KEY, signing_key="whsec-SECRET")
    assert SECRET_KEY not in repr(config) and "whsec-SECRET" not in repr(config)
    assert "required_key='<set>'" in repr(config)


def test_configure_changes_behaviour_all_or_nothing(make_emulator: Callable[..., Emulator]) -> None:
    emulator = make_emulator()
    emulator.configure(credits_per_task=25)
    create(emulator)
    assert envelope(call(emulator, "GET", PATH_CREDITS))["data"] == 975
    with pytest.raises(ValueError):
        emulator.configure(credits_per_task=5, failure_rate=2.0)
    assert emulator.config.credits_per_task == 25
    with pytest.raises(ValueError):
        emulator.configure(data_dir=Path("/elsewhere"))


def test_admin_paths(make_emulator: Callable[..., Emulator]) -> None:
    emulator = make_emulator(signing_key="whsec-SECRET")
    create(emulator)
    stats = envelope(call(emulator, "GET", "/_emulator/stats", key=None))
    assert stats == {"creates": 1, "tasks": {"GENERATING": 1, "SUCCESS": 0, "CREATE_TASK_FAILED": 0,
                                             "GENERATE_FAILED": 0, "CALLBACK_FAILED": 0},
                     "requests": {"creates": 1, "credits": 0, "download_urls": 0, "files": 0, "other": 0,
                                  "reads": 0, "uploads": 0}}
    changed = call(emulator, "POST", "/_emulator/config", key=None, json_body={"processing_delay": 0.5})
    assert changed.status == 200 and envelope(changed)["processing_delay"] == 0.5
    assert emulator.config.processing_delay == 0.5
    shown = payload(call(emulator, "GET", "/_emulator/config", key=None))
    assert b"whsec-SECRET" not in shown and json.loads(shown)["signing_key"] is True
    for bad in ({"required_key": "x"}, {"no_such_field": 1}, {"rate_500": 3}):
        assert call(emulator, "POST", "/_emulator/config", key=None, json_body=bad).status == 400
    assert emulator.config.required_key is None


def test_stats_count_requests_per_operation_answered_or_not(make_emulator: Callable[..., Emulator]) -> None:
    emulator = make_emulator()
    task_id = create(emulator)
    for _ in range(3):
        call(emulator, "GET", f"{PATH_RECORD}?taskId={task_id}")
    assert envelope(call(emulator, "GET", f"{PATH_RECORD}?taskId={task_id}", key=None))["code"] == 401
    assert envelope(call(emulator, "GET", f"{PATH_RECORD}?taskId={'0' * 32}"))["code"] == 404
    emulator.configure(rate_429=1.0)
    assert envelope(call(emulator, "GET", f"{PATH_RECORD}?taskId={task_id}"))["code"] == 429
    assert envelope(call(emulator, "GET", PATH_CREDITS))["code"] == 429
    emulator.configure(rate_429=0.0)
    url = upload(emulator, "clip.mp4", b"0123456789")
    call(emulator, "GET", path_of(emulator, url), key=None)
    call(emulator, "HEAD", path_of(emulator, url), key=None)
    call(emulator, "POST", "/api/v1/common/download-url", json_body={"url": url})
    call(emulator, "GET", "/api/v1/nowhere")
    call(emulator, "GET", "/_emulator/config", key=None)  # the admin paths are not counted
    assert emulator.stats()["requests"] == {"creates": 1, "reads": 6, "credits": 1, "uploads": 1, "files": 2,
                                            "download_urls": 1, "other": 1}
    assert emulator.stats()["creates"] == 1  # accepted creates, as before


# --- what is recorded ----------------------------------------------------------------------------


def test_creates_log_and_files_never_hold_the_key(make_emulator: Callable[..., Emulator],
                                                  fake_clock: Any) -> None:
    emulator = make_emulator()
    first = create(emulator, "first", key=SECRET_KEY)
    refused = envelope(call(emulator, "POST", PATH_CREATE, key=SECRET_KEY, json_body={"prompt": "no url"}))
    assert refused["code"] == 422
    fake_clock.advance(1.0)
    second = create(emulator, "second", key=SECRET_KEY, callBackUrl="https://hooks.example.com/x")
    fake_clock.advance(2.0)
    assert emulator.wait_idle(30)

    lines = [json.loads(line) for line in emulator.creates_log.read_text().splitlines()]
    assert [(line["taskId"], line["prompt"]) for line in lines] == [(first, "first"), (second, "second")]
    assert lines[1]["time"] - lines[0]["time"] == pytest.approx(1.0)
    assert emulator.create_count() == 2
    for path in emulator.data_dir.rglob("*"):
        if path.is_file():
            assert SECRET_KEY.encode() not in path.read_bytes(), path


def test_each_key_is_its_own_account(make_emulator: Callable[..., Emulator]) -> None:
    emulator = make_emulator()
    task_id = create(emulator, key="alice")
    assert emulator.credits_left("alice") == 990 and emulator.credits_left("bob") == 1000
    assert envelope(call(emulator, "GET", f"{PATH_RECORD}?taskId={task_id}", key="bob"))["code"] == 404
    assert envelope(call(emulator, "GET", f"{PATH_RECORD}?taskId={task_id}", key="alice"))["code"] == 200


def test_same_seed_same_task_ids(make_emulator: Callable[..., Emulator]) -> None:
    runs = []
    for _ in range(2):
        emulator = make_emulator(seed=42, failure_rate=0.5)
        ids = [create(emulator, f"p{i}") for i in range(3)]
        runs.append(ids)
    assert runs[0] == runs[1]


def test_concurrent_creates_keep_the_books_straight(make_emulator: Callable[..., Emulator]) -> None:
    emulator = make_emulator(failure_rate=1.0, create_limit=100)
    url = emulator.samples()[0].url
    ids: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(5):
                ids.append(create(emulator))
        except BaseException as exc:  # noqa: BLE001 (surfaced below)
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and url
    assert len(set(ids)) == 40 and emulator.create_count() == 40
    assert emulator.credits_left("demo") == 1000 - 400
    assert len(emulator.creates_log.read_text().splitlines()) == 40


# --- processing ------------------------------------------------------------------------------------


def test_render_error_ends_generate_failed_with_a_clear_message(
    make_emulator: Callable[..., Emulator], fake_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise media_module.MediaError("the encoder ran out of disk")

    monkeypatch.setattr(media_module, "render_result", broken)
    emulator = make_emulator()
    task_id = create(emulator)
    fake_clock.advance(2.0)
    assert emulator.wait_idle(30)
    data = envelope(call(emulator, "GET", f"{PATH_RECORD}?taskId={task_id}"))["data"]
    assert data["successFlag"] == 3 and data["errorCode"] == 501
    assert data["errorMessage"] == "The video could not be rendered: the encoder ran out of disk"
    assert data["response"]["resultUrls"] == [] and len(data["response"]["originUrls"]) == 1


def test_wait_idle_times_out_while_rendering(
    make_emulator: Callable[..., Emulator], fake_clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real = media_module.render_result

    def slow(*args: Any, **kwargs: Any) -> Any:
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(media_module, "render_result", slow)
    emulator = make_emulator()
    task_id = create(emulator)
    fake_clock.advance(5.0)
    assert emulator.wait_idle(0.1) is False
    # The delay has passed but rendering has not finished: still GENERATING.
    assert envelope(call(emulator, "GET", f"{PATH_RECORD}?taskId={task_id}"))["data"]["successFlag"] == 0
    release.set()
    assert emulator.wait_idle(30) is True
    assert envelope(call(emulator, "GET", f"{PATH_RECORD}?taskId={task_id}"))["data"]["successFlag"] == 1


def test_results_expire_after_14_days(make_emulator: Callable[..., Emulator], fake_clock: Any) -> None:
    emulator = make_emulator()
    task_id = create(emulator)
    fake_clock.advance(2.0)
    assert emulator.wait_idle(30)
    result = envelope(call(emulator, "GET", f"{PATH_RECORD}?taskId={task_id}"))["data"]["response"]["resultUrls"][0]
    assert call(emulator, "GET", path_of(emulator, result), key=None).status == 200
    fake_clock.advance(14 * 24 * 3600)
    assert call(emulator, "GET", path_of(emulator, result), key=None).status == 410


def test_local_size_limit_is_checked_before_copying(make_emulator: Callable[..., Emulator],
                                                    sample_mp4: Path) -> None:
    emulator = make_emulator(max_video_bytes=1000)
    answer = envelope(call(emulator, "POST", PATH_CREATE,
                           json_body={"prompt": "x", "videoUrl": emulator.samples()[0].url}))
    assert answer["code"] == 422 and "larger than 1000 bytes" in answer["msg"]
    assert sample_mp4.stat().st_size > 1000


def test_garbage_never_raises(make_emulator: Callable[..., Emulator]) -> None:
    emulator = make_emulator()
    assert envelope(call(emulator, "POST", PATH_CREATE, body=b"{not json"))["code"] == 422
    assert envelope(call(emulator, "POST", PATH_CREATE, json_body=["a list"]))["code"] == 422
    assert envelope(call(emulator, "POST", PATH_CREATE, json_body={"prompt": 5, "videoUrl": "x"}))["code"] == 422
    assert envelope(call(emulator, "POST", PATH_CREATE,
                         json_body={"prompt": "p", "videoUrl": "ftp://host/x.mp4"}))["code"] == 422
    broken = call(emulator, "POST", PATH_UPLOAD_STREAM, body=b"--x\r\nnope",
                  headers={"Content-Type": "multipart/form-data; boundary=x"})
    assert envelope(broken)["code"] == 400
    assert call(emulator, "GET", "/nowhere").status == 404
    assert call(emulator, "DELETE", "/files/samples/rolling-hills.mp4").status == 405


# --- files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-9", (0, 9)), ("bytes=10-", (10, 99)), ("bytes=-10", (90, 99)), ("bytes=90-500", (90, 99)),
    ("bytes=-500", (0, 99)), ("bytes=100-", "unsatisfiable"), ("bytes=-0", "unsatisfiable"),
    ("bytes=0-1,5-6", None), ("items=0-1", None), ("bytes=9-3", None), ("bytes=-", None),
])
def test_parse_range(header: str, expected: Any) -> None:
    assert parse_range(header, 100) == expected


def test_file_serving_with_ranges(make_emulator: Callable[..., Emulator], sample_mp4: Path) -> None:
    emulator = make_emulator()
    data = sample_mp4.read_bytes()
    path = path_of(emulator, emulator.samples()[0].url)

    full = call(emulator, "GET", path, key=None)
    assert full.status == 200 and payload(full) == data
    assert full.header("Content-Type") == "video/mp4" and full.header("Accept-Ranges") == "bytes"
    assert full.header("Content-Length") == str(len(data))

    part = call(emulator, "GET", path, key=None, headers={"Range": "bytes=100-199"})
    assert part.status == 206 and payload(part) == data[100:200]
    assert part.header("Content-Range") == f"bytes 100-199/{len(data)}" and part.header("Content-Length") == "100"

    tail = call(emulator, "GET", path, key=None, headers={"Range": "bytes=-16"})
    assert tail.status == 206 and payload(tail) == data[-16:]

    beyond = call(emulator, "GET", path, key=None, headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status == 416 and beyond.header("Content-Range") == f"bytes */{len(data)}"

    head = call(emulator, "HEAD", path, key=None)
    assert head.status == 200 and payload(head) == b"" and head.header("Content-Length") == str(len(data))


@pytest.mark.parametrize(("name", "content_type"), [
    ("a.mp4", "video/mp4"), ("a.MOV", "video/quicktime"), ("a.avi", "video/x-msvideo"), ("notes.txt", "text/plain"),
])
def test_content_types(make_emulator: Callable[..., Emulator], name: str, content_type: str) -> None:
    emulator = make_emulator()
    url = upload(emulator, name, b"0123456789")
    answer = call(emulator, "GET", path_of(emulator, url), key=None)
    assert answer.status == 200 and answer.header("Content-Type") == content_type


def test_paths_cannot_escape_the_data_dir(make_emulator: Callable[..., Emulator]) -> None:
    emulator = make_emulator()
    create(emulator)
    for path in ("/files/../creates.jsonl", "/files/%2e%2e/creates.jsonl", "/files/uploads/../creates.jsonl",
                 "/files/creates.jsonl", "/files/tmp/x", "/files/samples/../../etc/passwd"):
        assert call(emulator, "GET", path, key=None).status == 404, path
    url = upload(emulator, "..\\..\\evil.mp4", b"x", folder="safe")
    assert url.endswith("/files/uploads/safe/evil.mp4")
    assert (emulator.data_dir / "uploads" / "safe" / "evil.mp4").exists()


def test_upload_reusing_a_name_overwrites(make_emulator: Callable[..., Emulator]) -> None:
    emulator = make_emulator()
    first = upload(emulator, "same.mp4", b"first version")
    second = upload(emulator, "same.mp4", b"second")
    assert first == second
    assert payload(call(emulator, "GET", path_of(emulator, first), key=None)) == b"second"


def test_samples_are_generated_on_demand_and_cached(make_emulator: Callable[..., Emulator]) -> None:
    emulator = make_emulator(sample_width=64, sample_height=36, sample_seconds=0.5)
    slug = SAMPLES[-1].slug
    (emulator.data_dir / "samples" / f"{slug}.mp4").unlink()  # the fixture pre-made it; start clean
    clips = emulator.samples()
    assert [c.slug for c in clips] == [s.slug for s in SAMPLES]
    assert all(c.title and c.description for c in clips)
    assert not (emulator.data_dir / "samples" / f"{slug}.mp4").exists()  # listing does not render

    first = call(emulator, "GET", f"/files/samples/{slug}.mp4", key=None)
    assert first.status == 200 and first.header("Content-Type") == "video/mp4"
    made = emulator.data_dir / "samples" / f"{slug}.mp4"
    info = media_module.probe(made)
    assert (info.width, info.height) == (64, 36)
    stamp = made.stat().st_mtime_ns
    assert call(emulator, "GET", f"/files/samples/{slug}.mp4", key=None).status == 200
    assert made.stat().st_mtime_ns == stamp
    assert call(emulator, "GET", "/files/samples/no-such-clip.mp4", key=None).status == 404


def test_prepare_samples_in_the_background(make_emulator: Callable[..., Emulator]) -> None:
    emulator = make_emulator(sample_width=64, sample_height=36, sample_seconds=0.5)
    folder = emulator.data_dir / "samples"
    for clip in folder.iterdir():
        clip.unlink()
    emulator.prepare_samples()
    assert emulator.wait_idle(60)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{s.slug}.mp4" for s in SAMPLES)
    assert all(media_module.probe(p).width == 64 for p in folder.iterdir())


def test_temp_data_dir_is_removed_on_close() -> None:
    emulator = Emulator()
    data_dir = emulator.data_dir
    assert data_dir.is_dir()
    emulator.close()
    assert not data_dir.exists()


# --- multipart -----------------------------------------------------------------------------------


def test_multipart_parser_keeps_binary_content_intact() -> None:
    blob = b"\r\n--notquite\r\n\x00\xff" * 50 + b"--b0und"
    body = (
        b"--b0undary\r\nContent-Disposition: form-data; name=\"uploadPath\"\r\n\r\nclips/2026\r\n"
        b"--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"my clip.mp4\"\r\n"
        b"Content-Type: video/mp4\r\n\r\n" + blob + b"\r\n--b0undary--\r\n"
    )
    fields, files = parse_multipart(body, 'multipart/form-data; boundary="b0undary"')
    assert fields == {"uploadPath": "clips/2026"}
    assert files == {"file": ("my clip.mp4", "video/mp4", blob)}


@pytest.mark.parametrize("body", [b"", b"--b\r\nno header end", b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--"])
def test_multipart_parser_refuses_malformed_bodies(body: bytes) -> None:
    with pytest.raises(ValueError):
        parse_multipart(body, "multipart/form-data; boundary=b")


def test_generating_task_status_by_clock(make_emulator: Callable[..., Emulator], fake_clock: Any) -> None:
    emulator = make_emulator(processing_delay=30.0)
    task_id = create(emulator)
    assert emulator.wait_idle(30)
    fake_clock.advance(29.9)
    assert emulator.stats()["tasks"]["GENERATING"] == 1
    fake_clock.advance(0.1)
    assert emulator.stats()["tasks"]["SUCCESS"] == 1
    data = envelope(call(emulator, "GET", f"{PATH_RECORD}?taskId={task_id}"))["data"]
    assert data["completeTime"] - data["createTime"] == 30_000
    assert TaskStatus(data["successFlag"]) is TaskStatus.SUCCESS
