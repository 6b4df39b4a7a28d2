"""Parsers against every documented example and variant, and the task-status vocabulary."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from luma.errors import MalformedResponseError
from luma.models import (
    CallbackEvent,
    Task,
    TaskRequest,
    TaskStatus,
    parse_callback,
    parse_request,
    parse_task,
    parse_upload,
)

TASK = "774d9a7dd608a0e49293903095e45a4c"


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


# --- record-info -------------------------------------------------------------------------------


def test_record_info_success_example(record_success: dict[str, Any]) -> None:
    task = parse_task(record_success)

    assert task == Task(
        task_id=TASK,
        status=TaskStatus.SUCCESS,
        request=TaskRequest(
            prompt="A futuristic cityscape",
            video_url="https://example.com/video.mp4",
            callback_url="https://example.com/callback",
            watermark=None,  # "waterMark": "" means no watermark
        ),
        created_at=_utc(1755078171000),
        completed_at=_utc(1755078480000),
        origin_urls=("https://tempfile.aiquickdraw.com/kieai/file/veo3-video/1755074605154fqb0m8ge.mp4",),
        result_urls=("https://tempfile.aiquickdraw.com/l/f782018c-6be4-4990-96ba-7231cd5a39e7.mp4",),
        error_code=None,
        error_message=None,
    )
    assert task.result_url == "https://tempfile.aiquickdraw.com/l/f782018c-6be4-4990-96ba-7231cd5a39e7.mp4"
    assert task.origin_url is not None and task.origin_url.endswith("1755074605154fqb0m8ge.mp4")
    assert task.created_at == datetime(2025, 8, 13, 9, 42, 51, tzinfo=UTC)
    assert task.status.is_final and task.status.succeeded


def test_generating_with_null_response(record_success: dict[str, Any]) -> None:
    record_success.update(response=None, successFlag=0, completeTime=None)
    task = parse_task(record_success)
    assert task.status is TaskStatus.GENERATING
    assert not task.status.is_final and not task.status.succeeded
    assert task.result_urls == () and task.result_url is None and task.origin_url is None
    assert task.completed_at is None
    assert task.created_at == _utc(1755078171000)


def test_generating_with_absent_response(record_success: dict[str, Any]) -> None:
    del record_success["response"]
    del record_success["completeTime"]
    record_success["successFlag"] = 0
    task = parse_task(record_success)
    assert task.status is TaskStatus.GENERATING
    assert task.result_urls == ()
    assert task.completed_at is None


def test_failed_with_integer_error_code(record_success: dict[str, Any]) -> None:
    record_success.update(
        successFlag=3, response=None, errorCode=501, errorMessage="Generation failed"
    )
    task = parse_task(record_success)
    assert task.status is TaskStatus.GENERATE_FAILED
    assert task.status.is_final and not task.status.succeeded
    assert task.error_code == 501
    assert task.error_message == "Generation failed"


@pytest.mark.parametrize(("raw", "parsed"), [("501", 501), (" 422 ", 422), ("E_TIMEOUT", "E_TIMEOUT")])
def test_failed_with_string_error_code(
    record_success: dict[str, Any], raw: str, parsed: int | str
) -> None:
    record_success.update(successFlag=2, response=None, errorCode=raw, errorMessage="bad input")
    task = parse_task(record_success)
    assert task.status is TaskStatus.CREATE_TASK_FAILED
    assert task.error_code == parsed


def test_callback_failed_still_has_results(record_success: dict[str, Any]) -> None:
    record_success["successFlag"] = 4
    task = parse_task(record_success)
    assert task.status is TaskStatus.CALLBACK_FAILED
    assert task.status.succeeded and task.status.is_final
    assert task.result_url is not None


@pytest.mark.parametrize("key", ["paramJson", "promptJson"])
def test_echoed_request_under_either_name(record_success: dict[str, Any], key: str) -> None:
    echo = record_success.pop("paramJson")
    record_success[key] = echo
    assert parse_task(record_success).request is not None
    assert parse_task(record_success).request.prompt == "A futuristic cityscape"  # type: ignore[union-attr]


def test_null_param_json_falls_back_to_prompt_json(record_success: dict[str, Any]) -> None:
    record_success["promptJson"] = record_success["paramJson"]
    record_success["paramJson"] = None
    request = parse_task(record_success).request
    assert request is not None and request.video_url == "https://example.com/video.mp4"


@pytest.mark.parametrize("key", ["waterMark", "watermark"])
def test_watermark_under_either_spelling(key: str) -> None:
    request = parse_request(json.dumps({"prompt": "p", "videoUrl": "https://v", key: "brand-1"}))
    assert request == TaskRequest(prompt="p", video_url="https://v", watermark="brand-1")


def test_request_echo_as_object_or_unreadable() -> None:
    assert parse_request({"prompt": "p", "videoUrl": "https://v", "callBackUrl": ""}) == TaskRequest(
        prompt="p", video_url="https://v"
    )
    assert parse_request("{not json") is None
    assert parse_request("[1, 2]") is None
    assert parse_request(None) is None


def test_missing_task_id_uses_the_id_asked_for(record_success: dict[str, Any]) -> None:
    del record_success["taskId"]
    record_success["response"] = None
    with pytest.raises(MalformedResponseError):
        parse_task(record_success)
    assert parse_task(record_success, task_id="abc").task_id == "abc"


@pytest.mark.parametrize(
    "mutation",
    [
        {"successFlag": 7},
        {"successFlag": "done"},
        {"successFlag": 1.5},
        {"response": "not an object"},
        {"createTime": float("nan")},
        {"completeTime": float("inf")},
        {"createTime": True},
        {"response": {"resultUrls": [{"url": "https://x"}]}},
        {"response": {"resultUrls": 42}},
    ],
    ids=repr,
)
def test_unreadable_task_records_raise_malformed(
    record_success: dict[str, Any], mutation: dict[str, Any]
) -> None:
    record_success.update(mutation)
    with pytest.raises(MalformedResponseError):
        parse_task(record_success)


@pytest.mark.parametrize("data", [None, [], "x", 3])
def test_task_record_must_be_an_object(data: Any) -> None:
    with pytest.raises(MalformedResponseError):
        parse_task(data)


def test_nan_and_infinity_from_real_json_text_raise_malformed() -> None:
    # Python's json accepts these tokens, so a sloppy server could really send them.
    data = json.loads('{"taskId": "a", "successFlag": 0, "createTime": NaN}')
    with pytest.raises(MalformedResponseError):
        parse_task(data)


def test_every_status_has_words() -> None:
    for status in TaskStatus:
        assert status.label and status.meaning.endswith(".")
    assert [s for s in TaskStatus if s.is_final] == [
        TaskStatus.SUCCESS,
        TaskStatus.CREATE_TASK_FAILED,
        TaskStatus.GENERATE_FAILED,
        TaskStatus.CALLBACK_FAILED,
    ]
    assert {s for s in TaskStatus if s.succeeded} == {TaskStatus.SUCCESS, TaskStatus.CALLBACK_FAILED}


# --- uploads -------------------------------------------------------------------------------------

SHAPE_A = {
    "fileName": "clip.mp4",
    "filePath": "luma-dashboard/clip.mp4",
    "downloadUrl": "https://tempfile.redpandaai.co/kieai/luma-dashboard/clip.mp4",
    "fileSize": 154832,
    "mimeType": "video/mp4",
    "uploadedAt": "2025-01-01T12:00:00.000Z",
}
SHAPE_B = {
    "fileId": "file_abc123",
    "fileName": "clip.mp4",
    "originalName": "my clip.mp4",
    "fileSize": "154832",
    "mimeType": "video/mp4",
    "uploadPath": "luma-dashboard",
    "fileUrl": "https://kieai.redpandaai.co/files/luma-dashboard/clip.mp4",
    "downloadUrl": "https://tempfile.redpandaai.co/kieai/luma-dashboard/clip.mp4",
    "uploadTime": "2025-01-01T12:00:00Z",
    "expiresAt": "2025-01-04T12:00:00Z",
}


def test_upload_shape_a() -> None:
    up = parse_upload(SHAPE_A)
    assert up.download_url == SHAPE_A["downloadUrl"]
    assert up.file_name == "clip.mp4" and up.file_size == 154832 and up.mime_type == "video/mp4"
    assert up.file_path == "luma-dashboard/clip.mp4"
    assert up.uploaded_at == datetime(2025, 1, 1, 12, tzinfo=UTC)
    # Shape A names no expiry: the documented 3-day lifetime fills it in.
    assert up.expires_at == up.uploaded_at + timedelta(days=3)


def test_upload_shape_b() -> None:
    up = parse_upload(SHAPE_B)
    assert up.download_url == SHAPE_B["downloadUrl"]  # downloadUrl wins over fileUrl
    assert up.file_name == "clip.mp4" and up.file_size == 154832
    assert up.file_path == "luma-dashboard"
    assert up.uploaded_at == datetime(2025, 1, 1, 12, tzinfo=UTC)
    assert up.expires_at == datetime(2025, 1, 4, 12, tzinfo=UTC)


def test_upload_variants() -> None:
    only_file_url = {"fileUrl": "https://h/x.mp4", "uploadTime": 1735732800000}
    up = parse_upload(only_file_url)
    assert up.download_url == "https://h/x.mp4"
    assert up.uploaded_at == datetime(2025, 1, 1, 12, tzinfo=UTC)  # epoch ms
    assert parse_upload({"downloadUrl": "https://h/x", "uploadedAt": "1735732800"}).uploaded_at == (
        datetime(2025, 1, 1, 12, tzinfo=UTC)  # epoch seconds as text
    )


@pytest.mark.parametrize(
    "data",
    [None, [], {"fileName": "x"}, {"downloadUrl": 5}, {"downloadUrl": "https://h", "uploadedAt": "yesterday"}],
    ids=repr,
)
def test_unreadable_uploads_raise_malformed(data: Any) -> None:
    with pytest.raises(MalformedResponseError):
        parse_upload(data)


# --- callbacks -----------------------------------------------------------------------------------

PROMPT_JSON = '{"prompt":"A futuristic cityscape","videoUrl":"https://example.com/video.mp4","waterMark":"wm"}'


def test_callback_success_example() -> None:
    body = {
        "code": 200,
        "msg": "Modify record generated successfully.",
        "data": {"taskId": TASK, "promptJson": PROMPT_JSON, "resultUrls": ["https://r/1.mp4"]},
    }
    event = parse_callback(json.dumps(body).encode())
    assert event == CallbackEvent(
        task_id=TASK,
        succeeded=True,
        code=200,
        message="Modify record generated successfully.",
        request=TaskRequest(
            prompt="A futuristic cityscape", video_url="https://example.com/video.mp4", watermark="wm"
        ),
        result_urls=("https://r/1.mp4",),
    )


@pytest.mark.parametrize("code", [500, 501, "501"])
def test_callback_failure_example(code: int | str) -> None:
    body = {"code": code, "msg": "Modify record generation failed.", "data": {"taskId": TASK, "promptJson": PROMPT_JSON}}
    event = parse_callback(body)
    assert not event.succeeded
    assert event.code == int(code)
    assert event.result_urls == ()
    assert event.request is not None and event.request.prompt == "A futuristic cityscape"


def test_callback_task_id_fallbacks() -> None:
    assert parse_callback({"code": 200, "data": {"task_id": "b"}}).task_id == "b"
    assert parse_callback({"code": 200, "taskId": "c", "data": None}).task_id == "c"
    assert parse_callback({"code": 200, "taskId": "c", "data": {"taskId": "a"}}).task_id == "a"


@pytest.mark.parametrize(
    "body",
    [b"not json", "[]", {"code": 200, "data": {}}, {"data": {"taskId": "a"}}, {"code": "ok", "data": {"taskId": "a"}},
     {"code": True, "data": {"taskId": "a"}}, '{"code": Infinity, "data": {"taskId": "a"}}'],
    ids=repr,
)
def test_unreadable_callbacks_raise_malformed(body: Any) -> None:
    with pytest.raises(MalformedResponseError):
        parse_callback(body)
