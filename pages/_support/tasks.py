"""The task list without Streamlit: tracked tasks, the refresh schedule, the table and exports.

Everything here is pure (no ``st.*``, no network) so it is unit-tested directly. The jobs page
keeps a ``dict[str, TrackedTask]`` in session state and only ever replaces entries: a failed
refresh marks a task, it never drops it.

Refresh schedule: each unfinished task is read again after an interval that grows with its
age -- fast at first (demo tasks finish in seconds), reaching the provider's recommended 30 s
after about two minutes -- snapped to a few steps so the page's timer changes rarely. Reads that
fail back off further. Tasks that are final, or whose last read failed in a way that repeating
cannot fix (unknown id, refused key), are not read automatically any more; when no task needs
reading, the timer stops.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from luma._constants import RECOMMENDED_POLL_SECONDS
from luma.errors import LumaError, MaintenanceError, RateLimitError, ServerError, TransportError
from luma.models import Task, TaskBatch, TaskRequest, TaskStatus
from studio.text import neutral_cell

__all__ = [
    "DEFAULT_MAX_INTERVAL",
    "DEFAULT_MIN_INTERVAL",
    "NOT_READ_LABEL",
    "STATUS_FILTER_OPTIONS",
    "FRAME_COLUMNS",
    "ParsedIds",
    "TrackedTask",
    "apply_batch",
    "decode_task_ids",
    "due_task_ids",
    "encode_task_ids",
    "export_csv",
    "export_json",
    "export_rows",
    "is_outage",
    "parse_task_ids",
    "poll_interval",
    "refresh_interval",
    "status_counts",
    "task_interval",
    "tasks_frame",
]

TASK_ID_RE = re.compile(r"^[0-9a-f]{32}$")

DEFAULT_MIN_INTERVAL = 2.0
"""Seconds between reads of a task that has just started."""
DEFAULT_MAX_INTERVAL = RECOMMENDED_POLL_SECONDS
"""Seconds between reads of an old task: the provider's recommended 30 s."""

# The timer only takes these values (within the configured bounds), so it changes rarely.
_STEPS = (2.0, 3.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0)
# How fast the interval grows: a task this many times the interval old is read at that interval.
_AGE_FACTOR = 4.0
# A timer tick may arrive a little early; a task is due once this share of its interval has passed.
_DUE_SLACK = 0.8

NOT_READ_LABEL = "Not read yet"
STATUS_FILTER_OPTIONS: tuple[str, ...] = (*(s.label for s in TaskStatus), NOT_READ_LABEL)

# Transient failures: while every read fails with one of these, the provider is having an outage.
_OUTAGE_ERRORS = (TransportError, ServerError, MaintenanceError, RateLimitError)


@dataclass(frozen=True)
class TrackedTask:
    """One task on the jobs list: what the user asked for, and the last thing the provider said."""

    task_id: str
    """The provider's 32-hex task id."""
    added_at: datetime
    """When the task was submitted from, or added to, this dashboard (UTC)."""
    request: TaskRequest | None = None
    """What the user submitted; None for imported ids until the provider echoes it."""
    source: str = "url"
    """How the input video was chosen: "url", "upload", "sample", "imported" or "link"."""
    source_name: str | None = None
    """A human name for the input (uploaded file name, sample title), when there is one."""
    task: Task | None = None
    """The last successful read of the task; None until the first one."""
    checked_at: datetime | None = None
    """When ``task`` was read (UTC)."""
    attempted_at: datetime | None = None
    """When a read was last tried, successful or not (UTC)."""
    refresh_error: LumaError | None = field(default=None, compare=False)
    """Why the last read failed; None after a successful one."""
    failures: int = 0
    """Consecutive failed reads."""

    @property
    def status(self) -> TaskStatus | None:
        """The last known status, or None before the first successful read."""
        return self.task.status if self.task is not None else None

    @property
    def is_final(self) -> bool:
        """True once the provider reported a final status."""
        return self.status is not None and self.status.is_final

    @property
    def status_label(self) -> str:
        """The status as a word for tables and filters."""
        return self.status.label if self.status is not None else NOT_READ_LABEL

    @property
    def shown_request(self) -> TaskRequest | None:
        """What was submitted: the user's own record, else the provider's echo."""
        if self.request is not None:
            return self.request
        return self.task.request if self.task is not None else None

    @property
    def submitted_at(self) -> datetime:
        """When the task was created: the provider's time when known."""
        if self.task is not None and self.task.created_at is not None:
            return self.task.created_at
        return self.added_at

    @property
    def needs_polling(self) -> bool:
        """True while reading the task again may tell something new."""
        if self.is_final:
            return False
        # An unknown id or a refused key will not fix itself: wait for the user.
        return self.refresh_error is None or self.refresh_error.retryable


# --- task ids ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedIds:
    """Task ids typed or pasted by a user, sorted into what can be added and what cannot."""

    valid: tuple[str, ...] = ()
    """New, well-formed ids, in the order given, lower-cased."""
    invalid: tuple[str, ...] = ()
    """Entries that are not 32 hexadecimal characters, as typed."""
    duplicates: tuple[str, ...] = ()
    """Well-formed ids already on the list or given twice."""


def parse_task_ids(text: str, existing: Iterable[str] = ()) -> ParsedIds:
    """Split ``text`` (one id per line; commas and spaces also separate) into valid/invalid/duplicate."""
    seen = set(existing)
    valid: list[str] = []
    invalid: list[str] = []
    duplicates: list[str] = []
    for raw in re.split(r"[\s,;]+", text):
        entry = raw.strip()
        if not entry:
            continue
        task_id = entry.lower()
        if not TASK_ID_RE.match(task_id):
            invalid.append(entry)
        elif task_id in seen:
            duplicates.append(task_id)
        else:
            seen.add(task_id)
            valid.append(task_id)
    return ParsedIds(tuple(valid), tuple(invalid), tuple(duplicates))


def encode_task_ids(task_ids: Iterable[str]) -> str:
    """The ``tasks`` query-parameter value for a list of ids."""
    return ",".join(task_ids)


def decode_task_ids(value: str | list[str] | None) -> list[str]:
    """Ids from a ``tasks`` query parameter; anything malformed is ignored, order kept, no repeats."""
    if not value:
        return []
    text = ",".join(value) if isinstance(value, list) else value
    return list(parse_task_ids(text).valid)


# --- refresh schedule ----------------------------------------------------------------------------


def _steps(lo: float, hi: float) -> list[float]:
    return sorted({lo, hi, *(s for s in _STEPS if lo < s < hi)})


def _snap(seconds: float, lo: float, hi: float) -> float:
    """The largest allowed step not above ``seconds`` (at least ``lo``)."""
    allowed = [s for s in _steps(lo, hi) if s <= seconds]
    return allowed[-1] if allowed else lo


def poll_interval(age: float, lo: float = DEFAULT_MIN_INTERVAL, hi: float = DEFAULT_MAX_INTERVAL) -> float:
    """Seconds between reads of a task that has been running ``age`` seconds."""
    lo, hi = _bounds(lo, hi)
    return _snap(min(hi, max(lo, age / _AGE_FACTOR)), lo, hi)


def task_interval(
    item: TrackedTask, now: datetime, lo: float = DEFAULT_MIN_INTERVAL, hi: float = DEFAULT_MAX_INTERVAL
) -> float:
    """Seconds between reads of ``item``: by age, doubled per consecutive failed read, capped."""
    lo, hi = _bounds(lo, hi)
    age = max(0.0, (now - item.submitted_at).total_seconds())
    base = poll_interval(age, lo, hi)
    if item.failures:
        return _snap(min(hi, base * 2 ** min(item.failures, 8)), lo, hi)
    return base


def refresh_interval(
    items: Iterable[TrackedTask],
    now: datetime,
    lo: float = DEFAULT_MIN_INTERVAL,
    hi: float = DEFAULT_MAX_INTERVAL,
) -> float | None:
    """How often the page should wake up to read tasks; None when no task needs reading."""
    intervals = [task_interval(i, now, lo, hi) for i in items if i.needs_polling]
    return min(intervals) if intervals else None


def due_task_ids(
    items: Iterable[TrackedTask],
    now: datetime,
    lo: float = DEFAULT_MIN_INTERVAL,
    hi: float = DEFAULT_MAX_INTERVAL,
) -> list[str]:
    """The tasks whose next read is due now."""
    due = []
    for item in items:
        if not item.needs_polling:
            continue
        if item.attempted_at is None:
            due.append(item.task_id)
            continue
        waited = (now - item.attempted_at).total_seconds()
        # Measured against the interval in force at the last read, which is the pace the page
        # timer was set to; the interval for the task's age *now* is one step longer whenever
        # the schedule steps up, and a wake would then read nothing, doubling the real gap.
        if waited >= _DUE_SLACK * task_interval(item, item.attempted_at, lo, hi):
            due.append(item.task_id)
    return due


def _bounds(lo: float, hi: float) -> tuple[float, float]:
    lo = max(0.5, float(lo))
    return lo, max(lo, float(hi))


# --- applying reads ------------------------------------------------------------------------------


def apply_batch(tracked: Mapping[str, TrackedTask], batch: TaskBatch, now: datetime) -> dict[str, TrackedTask]:
    """The list after a refresh: read tasks updated, failed ones marked, nothing dropped or added."""
    result: dict[str, TrackedTask] = {}
    for task_id, item in tracked.items():
        if task_id in batch.tasks:
            result[task_id] = replace(
                item,
                task=batch.tasks[task_id],
                checked_at=now,
                attempted_at=now,
                refresh_error=None,
                failures=0,
            )
        elif task_id in batch.errors:
            result[task_id] = replace(
                item, attempted_at=now, refresh_error=batch.errors[task_id], failures=item.failures + 1
            )
        else:
            result[task_id] = item
    return result


def is_outage(batch: TaskBatch) -> bool:
    """True when every read failed, each for a reason that says the provider is down or busy."""
    return bool(batch.errors) and not batch.tasks and all(
        isinstance(err, _OUTAGE_ERRORS) for err in batch.errors.values()
    )


def status_counts(items: Iterable[TrackedTask]) -> Counter[str]:
    """How many tasks are in each status (by label)."""
    return Counter(i.status_label for i in items)


# --- the table -----------------------------------------------------------------------------------

FRAME_COLUMNS = (
    "task_id",
    "status",
    "prompt",
    "submitted",
    "completed",
    "duration",
    "source",
    "result",
    "error",
)


def _error_text(item: TrackedTask) -> str | None:
    parts = []
    task = item.task
    if task is not None and (task.error_code is not None or task.error_message):
        code = f"{task.error_code}: " if task.error_code is not None else ""
        parts.append(f"{code}{task.error_message or 'no message'}")
    elif item.status in (TaskStatus.CREATE_TASK_FAILED, TaskStatus.GENERATE_FAILED):
        parts.append(item.status.meaning)
    if item.refresh_error is not None:
        parts.append(f"Last refresh failed: {item.refresh_error.message}")
    return " | ".join(parts) or None


def _source_url(item: TrackedTask) -> str | None:
    request = item.shown_request
    if request is not None and request.video_url:
        return request.video_url
    return item.task.origin_url if item.task is not None else None


def file_name(url: str | None) -> str | None:
    """The last path segment of a URL (without its query), e.g. for showing demo files."""
    return url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or None if url else None


def tasks_frame(items: Iterable[TrackedTask], now: datetime, *, links: bool = True) -> pd.DataFrame:
    """One row per task with readable values, for ``st.dataframe`` (columns: FRAME_COLUMNS).

    ``links=False`` shows the source and result as file names instead of URLs: the demo's file
    URLs live inside the server process and would be dead links in the browser.
    """
    rows: list[dict[str, Any]] = []
    shown = (lambda url: url) if links else file_name
    for item in items:
        request = item.shown_request
        completed = item.task.completed_at if item.task is not None else None
        # Running tasks show their time so far; a task never read has no known duration.
        end = completed if completed is not None else (now if item.status is TaskStatus.GENERATING else None)
        duration = (end - item.submitted_at) if end is not None else None
        if duration is not None:
            duration = timedelta(seconds=max(0, round(duration.total_seconds())))
        rows.append(
            {
                "task_id": item.task_id,
                "status": item.status_label,
                "prompt": request.prompt if request is not None else None,
                "submitted": item.submitted_at,
                "completed": completed,
                "duration": duration.total_seconds() if duration is not None else None,
                "source": shown(_source_url(item)),
                "result": shown(item.task.result_url if item.task is not None else None),
                "error": _error_text(item),
            }
        )
    frame = pd.DataFrame(rows, columns=list(FRAME_COLUMNS))
    frame["task_id"] = frame["task_id"].astype("string")
    frame["status"] = frame["status"].astype("string")
    frame["prompt"] = frame["prompt"].astype("string")
    frame["source"] = frame["source"].astype("string")
    frame["result"] = frame["result"].astype("string")
    # Empty, not a grey "None", for tasks without an error.
    frame["error"] = frame["error"].astype("string").fillna("")
    frame["submitted"] = pd.to_datetime(frame["submitted"], utc=True)
    frame["completed"] = pd.to_datetime(frame["completed"], utc=True)
    frame["duration"] = pd.to_timedelta(pd.to_numeric(frame["duration"]), unit="s")
    return frame


# --- exports -------------------------------------------------------------------------------------

EXPORT_FIELDS = (
    "task_id",
    "status",
    "status_code",
    "prompt",
    "video_url",
    "callback_url",
    "watermark",
    "source",
    "source_name",
    "submitted_at",
    "completed_at",
    "result_url",
    "origin_url",
    "error_code",
    "error_message",
    "last_refresh_error",
)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def export_rows(items: Iterable[TrackedTask]) -> list[dict[str, Any]]:
    """Plain records of the list, for CSV and JSON (no credentials: none are ever stored here)."""
    rows = []
    for item in items:
        request = item.shown_request
        task = item.task
        rows.append(
            {
                "task_id": item.task_id,
                "status": item.status_label,
                "status_code": int(item.status) if item.status is not None else None,
                "prompt": request.prompt if request else None,
                "video_url": request.video_url if request else None,
                "callback_url": request.callback_url if request else None,
                "watermark": request.watermark if request else None,
                "source": item.source,
                "source_name": item.source_name,
                "submitted_at": _iso(item.submitted_at),
                "completed_at": _iso(task.completed_at if task else None),
                "result_url": task.result_url if task else None,
                "origin_url": task.origin_url if task else None,
                "error_code": task.error_code if task else None,
                "error_message": task.error_message if task else None,
                "last_refresh_error": item.refresh_error.message if item.refresh_error else None,
            }
        )
    return rows


def export_csv(items: Iterable[TrackedTask]) -> bytes:
    """The list as CSV (UTF-8, header row); text a spreadsheet would run as a formula is quoted."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(EXPORT_FIELDS), lineterminator="\n")
    writer.writeheader()
    for row in export_rows(items):
        writer.writerow({k: "" if v is None else neutral_cell(v) if isinstance(v, str) else v for k, v in row.items()})
    return buffer.getvalue().encode("utf-8")


def export_json(items: Iterable[TrackedTask]) -> bytes:
    """The list as a JSON document: ``{"tasks": [...]}``."""
    return json.dumps({"tasks": export_rows(items)}, indent=2, ensure_ascii=False).encode("utf-8")
