"""Typed, frozen records of what the provider returns, and the parsers that build them.

Parsers accept every documented variant (``response`` null or absent, ``errorCode`` as int or
string, ``paramJson`` or ``promptJson``, ``waterMark`` or ``watermark``, both upload shapes) and
raise :class:`~luma.errors.MalformedResponseError` rather than ``KeyError`` on anything else.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ._constants import UPLOAD_LIFETIME_SECONDS
from .errors import LumaError, MalformedResponseError

__all__ = [
    "CallbackEvent",
    "Task",
    "TaskBatch",
    "TaskRequest",
    "TaskStatus",
    "UploadedFile",
    "parse_callback",
    "parse_request",
    "parse_task",
    "parse_upload",
]


class TaskStatus(enum.IntEnum):
    """A task's state, the provider's ``successFlag``."""

    GENERATING = 0
    SUCCESS = 1
    CREATE_TASK_FAILED = 2
    GENERATE_FAILED = 3
    CALLBACK_FAILED = 4

    @property
    def is_final(self) -> bool:
        """True once the task will not change any more."""
        return self is not TaskStatus.GENERATING

    @property
    def succeeded(self) -> bool:
        """True when result videos exist (status 4 only lost the callback, not the video)."""
        return self in (TaskStatus.SUCCESS, TaskStatus.CALLBACK_FAILED)

    @property
    def label(self) -> str:
        """A short human name for tables and badges."""
        return _LABELS[self]

    @property
    def meaning(self) -> str:
        """One sentence on what the state means for the user."""
        return _MEANINGS[self]


_LABELS = {
    TaskStatus.GENERATING: "Generating",
    TaskStatus.SUCCESS: "Succeeded",
    TaskStatus.CREATE_TASK_FAILED: "Creation failed",
    TaskStatus.GENERATE_FAILED: "Generation failed",
    TaskStatus.CALLBACK_FAILED: "Succeeded (callback failed)",
}
_MEANINGS = {
    TaskStatus.GENERATING: "The provider is still working on the video (usually 2-15 minutes).",
    TaskStatus.SUCCESS: "The modified video is ready.",
    TaskStatus.CREATE_TASK_FAILED: (
        "The provider could not start the task; check the input video and prompt, then run it again."
    ),
    TaskStatus.GENERATE_FAILED: (
        "The provider started but could not generate the video; try another prompt or input video."
    ),
    TaskStatus.CALLBACK_FAILED: (
        "The video is ready, but the provider could not deliver it to your callback URL; check that "
        "the callback endpoint answers HTTP 200 within 15 seconds."
    ),
}


@dataclass(frozen=True)
class TaskRequest:
    """What was asked for, as the provider echoes it back."""

    prompt: str
    """How the video should change."""
    video_url: str
    """The input video's public URL."""
    callback_url: str | None = None
    """Where the provider POSTs the outcome, if anywhere."""
    watermark: str | None = None
    """Watermark identifier added to the output, if any."""


@dataclass(frozen=True)
class Task:
    """One modification task as reported by ``record-info``."""

    task_id: str
    """The provider's 32-hex task id."""
    status: TaskStatus
    """Where the task stands."""
    request: TaskRequest | None = None
    """The echoed request, when ``paramJson`` was present and readable."""
    created_at: datetime | None = None
    """When the task was created (UTC)."""
    completed_at: datetime | None = None
    """When the task finished (UTC); None while generating."""
    origin_urls: tuple[str, ...] = ()
    """The provider's copies of the input video."""
    result_urls: tuple[str, ...] = ()
    """The generated videos."""
    error_code: int | str | None = None
    """The provider's error code for a failed task."""
    error_message: str | None = None
    """The provider's error text for a failed task."""

    @property
    def result_url(self) -> str | None:
        """The first result video, if any."""
        return self.result_urls[0] if self.result_urls else None

    @property
    def origin_url(self) -> str | None:
        """The provider's copy of the input video, if any."""
        return self.origin_urls[0] if self.origin_urls else None


@dataclass(frozen=True)
class TaskBatch:
    """The outcome of reading many tasks at once: one failure never hides the others."""

    tasks: dict[str, Task] = field(default_factory=dict)
    """Tasks read successfully, by task id."""
    errors: dict[str, LumaError] = field(default_factory=dict)
    """Why each other task could not be read, by task id."""


@dataclass(frozen=True)
class UploadedFile:
    """A file stored on the provider's upload host."""

    download_url: str
    """Public URL of the file: pass it on as ``videoUrl``."""
    file_name: str | None = None
    """Name on the upload host."""
    file_size: int | None = None
    """Size in bytes."""
    mime_type: str | None = None
    """Content type the host recorded."""
    uploaded_at: datetime | None = None
    """When the host stored it."""
    expires_at: datetime | None = None
    """When the host deletes it (3 days after upload, when the host does not say)."""
    file_path: str | None = None
    """Path on the upload host (shape A) or upload folder (shape B)."""


@dataclass(frozen=True)
class CallbackEvent:
    """A task outcome POSTed by the provider to the callback URL."""

    task_id: str
    """The task this outcome is for."""
    succeeded: bool
    """True for the success body (code 200); any other code is a failure."""
    code: int
    """The body's code (200 success; 500 or 501 failure)."""
    message: str | None = None
    """The body's ``msg``."""
    request: TaskRequest | None = None
    """The echoed request from ``promptJson``."""
    result_urls: tuple[str, ...] = ()
    """Generated videos, on success."""


# --- parsing -------------------------------------------------------------------------------------


def _as_mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise MalformedResponseError(f"The provider's answer had no readable {what}.")
    return value


def _optional_str(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text != "" else None


def _urls(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) or v is None for v in value):
        return tuple(v for v in value if v)
    raise MalformedResponseError("The provider's answer had a URL list in an unknown shape.")


def _from_epoch(seconds: float, value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        # NaN, Infinity (json accepts both) and far-off years end up here.
        raise MalformedResponseError(f"The provider's answer had an unreadable time: {value!r}.") from None


def _time_ms(value: Any) -> datetime | None:
    """Epoch milliseconds (int, float or digit string) to an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise MalformedResponseError(f"The provider's answer had an unreadable time: {value!r}.")
    try:
        millis = float(value)
    except (TypeError, ValueError):
        return _time_text(value)
    return _from_epoch(millis / 1000.0, value)


# Upload answers do not say which epoch unit they would use; anything past this many seconds
# (the year 5138) can only be milliseconds.
_EPOCH_MS_THRESHOLD = 1e11


def _time_text(value: Any) -> datetime | None:
    """An ISO-8601 time (upload answers use these) to an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise MalformedResponseError(f"The provider's answer had an unreadable time: {value!r}.")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, (int, float)):
        seconds = value / 1000.0 if abs(value) > _EPOCH_MS_THRESHOLD else float(value)
        return _from_epoch(seconds, value)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise MalformedResponseError(f"The provider's answer had an unreadable time: {value!r}.") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _error_code(value: Any) -> int | str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    text = str(value).strip()
    return int(text) if text.lstrip("-").isdigit() else text


def parse_request(raw: Any) -> TaskRequest | None:
    """Parse the echoed request (``paramJson`` / ``promptJson``: a JSON string, or already a dict)."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    if not isinstance(raw, Mapping):
        return None
    watermark = raw.get("waterMark", raw.get("watermark"))
    return TaskRequest(
        prompt=str(raw.get("prompt") or ""),
        video_url=str(raw.get("videoUrl") or ""),
        callback_url=_optional_str(raw.get("callBackUrl", raw.get("callbackUrl"))),
        watermark=_optional_str(watermark),
    )


def _first(data: Mapping[str, Any], *keys: str) -> Any:
    """The first of ``keys`` whose value is not None (a null ``paramJson`` falls through)."""
    for key in keys:
        value = data.get(key)
        if value is not None:
            return value
    return None


def parse_task(data: Any, *, task_id: str | None = None) -> Task:
    """Build a :class:`Task` from record-info's ``data``.

    ``task_id`` is the id that was asked for; it is used only when the record itself names none.
    """
    data = _as_mapping(data, "task record")
    response = data.get("response")
    if response is not None and not isinstance(response, Mapping):
        raise MalformedResponseError("The provider's task record had an unreadable 'response'.")
    response = response or {}
    found_id = data.get("taskId") or response.get("taskId") or task_id
    if not found_id or not isinstance(found_id, (str, int)) or isinstance(found_id, bool):
        raise MalformedResponseError("The provider's task record had no task id.")
    flag = data.get("successFlag")
    try:
        if isinstance(flag, float) and not flag.is_integer():
            raise ValueError(flag)
        status = TaskStatus(int(flag if flag is not None else 0))
    except (TypeError, ValueError, OverflowError):
        raise MalformedResponseError(f"The provider reported an unknown task status {flag!r}.") from None
    return Task(
        task_id=str(found_id),
        status=status,
        request=parse_request(_first(data, "paramJson", "promptJson")),
        created_at=_time_ms(data.get("createTime")),
        completed_at=_time_ms(data.get("completeTime")),
        origin_urls=_urls(response.get("originUrls")),
        result_urls=_urls(response.get("resultUrls")),
        error_code=_error_code(data.get("errorCode")),
        error_message=_optional_str(data.get("errorMessage")),
    )


def parse_upload(data: Any) -> UploadedFile:
    """Build an :class:`UploadedFile` from either documented upload ``data`` shape."""
    data = _as_mapping(data, "upload result")
    url = data.get("downloadUrl") or data.get("fileUrl")
    if not url or not isinstance(url, str):
        raise MalformedResponseError("The upload host's answer had no download URL.")
    uploaded_at = _time_text(data.get("uploadedAt", data.get("uploadTime")))
    expires_at = _time_text(data.get("expiresAt"))
    if expires_at is None and uploaded_at is not None:
        expires_at = uploaded_at + timedelta(seconds=UPLOAD_LIFETIME_SECONDS)
    size = data.get("fileSize")
    try:
        file_size = int(size) if size is not None else None
    except (TypeError, ValueError):
        file_size = None
    return UploadedFile(
        download_url=str(url),
        file_name=_optional_str(data.get("fileName") or data.get("originalName")),
        file_size=file_size,
        mime_type=_optional_str(data.get("mimeType")),
        uploaded_at=uploaded_at,
        expires_at=expires_at,
        file_path=_optional_str(data.get("filePath") or data.get("uploadPath")),
    )


def parse_callback(body: Any) -> CallbackEvent:
    """Build a :class:`CallbackEvent` from a callback POST body (a dict, or JSON text/bytes)."""
    if isinstance(body, (bytes, bytearray, str)):
        try:
            body = json.loads(body)
        except ValueError:
            raise MalformedResponseError("The callback body is not JSON.") from None
    body = _as_mapping(body, "callback body")
    data = body.get("data")
    data = data if isinstance(data, Mapping) else {}
    task_id = data.get("taskId") or data.get("task_id") or body.get("taskId")
    if not task_id or not isinstance(task_id, (str, int)) or isinstance(task_id, bool):
        raise MalformedResponseError("The callback body has no task id.")
    raw_code = body.get("code")
    try:
        if isinstance(raw_code, bool) or (isinstance(raw_code, float) and not raw_code.is_integer()):
            raise ValueError(raw_code)
        code = int(raw_code)
    except (TypeError, ValueError, OverflowError):
        raise MalformedResponseError("The callback body has no readable code.") from None
    return CallbackEvent(
        task_id=str(task_id),
        succeeded=code == 200,
        code=code,
        message=_optional_str(body.get("msg")),
        request=parse_request(_first(data, "promptJson", "paramJson")),
        result_urls=_urls(data.get("resultUrls")),
    )
