"""Typed, frozen records the ledger hands out and takes in (no SQL here).

A task's *label* is what a table or filter shows: the provider's status label once the task has
been read, else one of four words for the create's own lifecycle (:data:`STATUS_LABELS`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from luma.models import TaskStatus

from .schema import CreateState, Mode, Origin

__all__ = [
    "AddResult",
    "CANCELLED",
    "CREATING",
    "QUEUED",
    "CreateClaim",
    "NOT_CREATED",
    "NOT_READ",
    "OUTCOME_UNKNOWN",
    "Page",
    "SORT_FIELDS",
    "STATUS_LABELS",
    "SortField",
    "TaskQuery",
    "TaskRow",
    "TrackerCycle",
    "status_label",
]

QUEUED: Final = "Queued"
CANCELLED: Final = "Cancelled"
CREATING: Final = "Creating"
OUTCOME_UNKNOWN: Final = "Outcome unknown"
NOT_CREATED: Final = "Not created"
NOT_READ: Final = "Not read yet"

# Display order, also the order of "sort by status": what needs attention first.
STATUS_LABELS: Final[tuple[str, ...]] = (
    QUEUED,
    CREATING,
    NOT_READ,
    TaskStatus.GENERATING.label,
    OUTCOME_UNKNOWN,
    TaskStatus.SUCCESS.label,
    TaskStatus.CALLBACK_FAILED.label,
    TaskStatus.GENERATE_FAILED.label,
    TaskStatus.CREATE_TASK_FAILED.label,
    NOT_CREATED,
    CANCELLED,
)


def status_label(state: str, status: TaskStatus | int | None) -> str:
    """A task's label from its create state and provider status (see :data:`STATUS_LABELS`)."""
    if state == "queued":
        return QUEUED
    if state == "cancelled":
        return CANCELLED
    if state == "creating":
        return CREATING
    if state == "unknown":
        return OUTCOME_UNKNOWN
    if state == "failed":
        return NOT_CREATED
    return TaskStatus(status).label if status is not None else NOT_READ


SortField = Literal["created", "status", "completed", "prompt"]
SORT_FIELDS: Final[tuple[str, ...]] = ("created", "status", "completed", "prompt")


@dataclass(frozen=True)
class TaskRow:
    """One row of the ledger: a task, from the moment its create was written down."""

    id: int
    """The ledger's own row number."""
    request_key: str
    """The write-ahead key of the create (``import:<task_id>`` for an imported id)."""
    task_id: str | None
    """The provider's 32-hex task id, once known."""
    mode: Mode
    """"live" or "demo"; every query filters by it."""
    origin: Origin
    """How the row came: "submitted" here, "imported" by id, or opened from a "link"."""
    state: CreateState
    """The create's own lifecycle: "creating", "created", "failed" (provably not created) or "unknown"."""
    status: TaskStatus | None
    """The provider's status at the last read; None before the first read."""
    prompt: str | None
    """How the video should change."""
    video_url: str | None
    """The input video's URL."""
    callback_url: str | None
    """Where the provider POSTs the outcome, if anywhere."""
    watermark: str | None
    """Watermark identifier, if any."""
    source: str | None
    """How the video was chosen ("url", "upload", "sample")."""
    source_name: str | None
    """The uploaded file's name or the sample's title."""
    owner: str | None
    """Who the task belongs to: an opaque browser id or a signed-in email."""
    owner_name: str | None
    """The owner's display name."""
    key_ref: str | None
    """A hash naming the API key the task belongs to (never the key)."""
    api_base: str | None
    """The provider base URL the task was created against."""
    created_at: datetime
    """When the row was written (UTC)."""
    submitted_at: datetime | None
    """When the create was answered (UTC)."""
    provider_created_at: datetime | None
    """When the provider says the task was created (UTC)."""
    completed_at: datetime | None
    """When the provider says the task finished (UTC)."""
    checked_at: datetime | None
    """When the task was last read successfully (UTC)."""
    attempted_at: datetime | None
    """When a read was last attempted, successful or not (UTC)."""
    next_check_at: datetime | None
    """When the tracker should read it next; None: nothing to read (final, not created, or parked)."""
    failures: int
    """Failed reads since the last successful one."""
    result_urls: tuple[str, ...]
    """The generated videos."""
    origin_url: str | None
    """The provider's copy of the input video."""
    error_code: str | None
    """The provider's error code for a failed task."""
    error_message: str | None
    """The provider's error text for a failed task."""
    create_error: str | None
    """Plain words on why the create failed or its outcome is unknown."""
    read_error: str | None
    """Plain words on why the last read failed."""
    read_error_retryable: bool | None
    """Whether reading again later may succeed."""
    waiting: str | None
    """Why the task is parked (e.g. "key": its API key is not available), else None."""
    lease_owner: str | None
    """The tracker process reading it right now, if any."""
    lease_until: datetime | None
    """When that lease lapses (UTC)."""
    callback_token: str | None = None
    """The hash of the secret in the callback URL this dashboard gave the provider (None: no callback to us)."""
    callback_at: datetime | None = None
    """When a valid callback for this task last arrived (UTC)."""
    set_id: str | None = None
    """The variant set this task is a take of, if any."""
    set_index: int | None = None
    """Its place in the set (0-based, the order the set was planned in)."""
    prompt_index: int | None = None
    """Which of the set's prompts it uses (a grid axis)."""
    input_index: int | None = None
    """Which of the set's input videos it uses (the other grid axis)."""
    cost: int | None = None
    """Credits it cost (or will cost, while queued)."""
    kept: bool = False
    """A reviewer starred this take."""
    labels: str | None = None
    """A reviewer's labels, as a JSON list of strings."""
    archived_path: str | None = None
    """Where the archived copy of its result lives (None: not archived)."""
    archived_at: datetime | None = None
    """When that copy was made (UTC)."""

    @property
    def label_list(self) -> tuple[str, ...]:
        """The labels as a tuple."""
        try:
            values = json.loads(self.labels) if self.labels else []
        except ValueError:
            return ()
        return tuple(str(v) for v in values) if isinstance(values, list) else ()

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> TaskRow:
        """Build a row from a database row's mapping (columns the code does not know are ignored)."""
        status = row["status"]
        urls = row["result_urls"]
        return cls(
            **{name: row[name] for name in _PLAIN_FIELDS},
            status=TaskStatus(status) if status is not None else None,
            result_urls=tuple(json.loads(urls)) if urls else (),
        )

    @property
    def is_final(self) -> bool:
        """True once nothing about the task will change: a final status, or a create that provably failed."""
        if self.status is not None:
            return self.status.is_final
        return self.state in ("failed", "cancelled")

    @property
    def status_label(self) -> str:
        """The provider's label once read, else what is known about the create."""
        return status_label(self.state, self.status)

    @property
    def submitted_at_best(self) -> datetime:
        """The best known creation time: the provider's, else the create's answer, else the row's."""
        return self.provider_created_at or self.submitted_at or self.created_at

    @property
    def result_url(self) -> str | None:
        """The first result video, if any."""
        return self.result_urls[0] if self.result_urls else None


_PLAIN_FIELDS: Final = tuple(name for name in TaskRow.__dataclass_fields__ if name not in ("status", "result_urls"))


@dataclass(frozen=True)
class CreateClaim:
    """The answer to :meth:`Ledger.begin_create`."""

    row: TaskRow
    """The row for the request key, new or existing."""
    mine: bool
    """True only for the one caller that wrote the row: it alone may send the create."""


@dataclass(frozen=True)
class AddResult:
    """The answer to :meth:`Ledger.add_existing`."""

    added: tuple[str, ...]
    """Task ids that were new to the ledger (in the order given)."""
    already: tuple[str, ...]
    """Task ids the ledger already had (in the order given)."""


@dataclass(frozen=True)
class TaskQuery:
    """What a page asks for: filters, order and one page of rows, all applied by the database."""

    mode: Mode
    """"live" or "demo" (required: demo rows never show in a live list)."""
    owner: str | None = None
    """Only this owner's tasks; None: everyone's."""
    owners: tuple[str, ...] = ()
    """Only tasks of any of these people (empty: no filter)."""
    statuses: tuple[str, ...] = ()
    """Only tasks whose label is any of these (:data:`STATUS_LABELS`; empty: no filter)."""
    created_from: datetime | None = None
    """Only rows written at or after this time."""
    created_before: datetime | None = None
    """Only rows written before this time."""
    text: str = ""
    """Only prompts containing this text (case-insensitive; ``%`` and ``_`` are literal)."""
    sort: SortField = "created"
    """Order by "created", "status", "completed" or "prompt"."""
    descending: bool = True
    """Newest (or last) first."""
    offset: int = 0
    """Rows to skip (paging)."""
    limit: int = 50
    """Rows per page."""

    def __post_init__(self) -> None:
        unknown = [label for label in self.statuses if label not in STATUS_LABELS]
        if unknown:
            raise ValueError(f"Unknown status label(s): {', '.join(unknown)}.")
        if self.sort not in SORT_FIELDS:
            raise ValueError(f"Unknown sort field {self.sort!r}; expected one of {', '.join(SORT_FIELDS)}.")
        if self.offset < 0 or self.limit < 0:
            raise ValueError("TaskQuery.offset and limit must be >= 0.")


@dataclass(frozen=True)
class Page:
    """One page of rows and how many match in all."""

    rows: tuple[TaskRow, ...]
    """The rows of this page, in the requested order."""
    total: int
    """Rows matching the filters, across all pages."""


@dataclass(frozen=True)
class TrackerCycle:
    """The last cycle a tracker process reported (for a health check)."""

    process: str
    """The process's id (host:pid or any stable name)."""
    mode: str | None
    """The mode it tracks, or None for both."""
    started_at: datetime
    """When the process first reported."""
    cycle_at: datetime
    """When it last finished a cycle."""
    lag_seconds: float
    """How far behind schedule the oldest row it read was."""
    claimed: int
    """Rows it claimed in that cycle."""
    failed: int
    """Reads that failed in that cycle."""
    cycles: int
    """Cycles since it first reported."""
