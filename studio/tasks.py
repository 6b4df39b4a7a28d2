"""Task ids typed by people, the Jobs table and the exports: pure functions over ledger rows.

Rows are the ledger's :class:`~studio.ledger.TaskRow` (anything with its attributes will do).
Nothing here touches Streamlit or the network.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from luma.models import TaskStatus

from .text import neutral_cell

if TYPE_CHECKING:  # pandas is imported by the one function that needs it: it costs ~0.8 s at start-up
    import pandas as pd

__all__ = [
    "EXPORT_FIELDS",
    "FRAME_COLUMNS",
    "MAX_ADDRESS_IDS",
    "TASK_ID_RE",
    "ParsedIds",
    "decode_task_ids",
    "encode_task_ids",
    "error_text",
    "export_csv",
    "export_json",
    "export_row",
    "file_name",
    "parse_task_ids",
    "tasks_frame",
]

TASK_ID_RE = re.compile(r"^[0-9a-f]{32}$")

MAX_ADDRESS_IDS = 50
"""Task ids kept in the page address (``?tasks=``): the newest of this session's tasks. The ledger
keeps every task; the address only needs to bring a bookmark back, and a long one (33 characters
per id) is refused by servers and browsers well before 5,000 ids."""


# --- task ids ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedIds:
    """Task ids typed or pasted by a user, sorted into what can be added and what cannot."""

    valid: tuple[str, ...] = ()
    """New, well-formed ids, in the order given, lower-cased."""
    invalid: tuple[str, ...] = ()
    """Entries that are not 32 hexadecimal characters, as typed."""
    duplicates: tuple[str, ...] = ()
    """Well-formed ids given twice (or already known, when ``existing`` was given)."""


def parse_task_ids(text: str, existing: Iterable[str] = ()) -> ParsedIds:
    """Split ``text`` (one id per line; commas, semicolons and spaces also separate)."""
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


def encode_task_ids(task_ids: Iterable[str], limit: int = MAX_ADDRESS_IDS) -> str:
    """The ``tasks`` query-parameter value: the last ``limit`` ids (the newest)."""
    ids = list(task_ids)
    return ",".join(ids[-limit:])


def decode_task_ids(value: str | list[str] | None) -> list[str]:
    """Ids from a ``tasks`` query parameter; anything malformed is ignored, order kept, no repeats."""
    if not value:
        return []
    text = ",".join(value) if isinstance(value, list) else value
    # A hand-made address can be anything: look at a bounded prefix only.
    return list(parse_task_ids(text[: 40 * 5000]).valid)


# --- the table -----------------------------------------------------------------------------------

FRAME_COLUMNS = (
    "task_id",
    "status",
    "prompt",
    "person",
    "submitted",
    "completed",
    "duration",
    "cost",
    "source",
    "result",
    "error",
)


def file_name(url: str | None) -> str | None:
    """The last path segment of a URL (without its query), e.g. for showing demo files."""
    return url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or None if url else None


def error_text(row: Any) -> str | None:
    """Why a task failed or could not be read, in one line (None when nothing went wrong)."""
    parts = []
    if row.state in ("failed", "unknown") and row.create_error:
        parts.append(row.create_error)
    if row.error_code is not None or row.error_message:
        code = f"{row.error_code}: " if row.error_code is not None else ""
        parts.append(f"{code}{row.error_message or 'no message'}")
    elif row.status in (TaskStatus.CREATE_TASK_FAILED, TaskStatus.GENERATE_FAILED):
        parts.append(row.status.meaning)
    if row.waiting == "key":
        parts.append("Waiting for its API key: enter it on Settings to resume tracking.")
    if row.read_error:
        parts.append(f"Last read failed: {row.read_error}")
    return " | ".join(parts) or None


def _duration(row: Any, now: datetime) -> float | None:
    start = row.submitted_at_best
    end = row.completed_at if row.completed_at is not None else (now if row.status is TaskStatus.GENERATING else None)
    if end is None:
        return None
    return float(max(0, round((end - start).total_seconds())))


def tasks_frame(rows: Iterable[Any], now: datetime, *, links: bool = True) -> pd.DataFrame:
    """One row per task with readable values, for ``st.dataframe`` (columns: FRAME_COLUMNS).

    ``links=False`` shows the source and result as file names instead of URLs: the demo's file
    URLs live inside the server process and would be dead links in the browser.
    """
    import pandas as pd

    shown = (lambda url: url) if links else file_name
    records = [
        {
            "task_id": row.task_id or "",
            "status": row.status_label,
            "prompt": row.prompt,
            "person": row.owner_name,
            "submitted": row.submitted_at_best,
            "completed": row.completed_at,
            "duration": _duration(row, now),
            "cost": row.cost,
            "source": shown(row.video_url or row.origin_url),
            "result": shown(row.result_url),
            "error": error_text(row),
        }
        for row in rows
    ]
    frame = pd.DataFrame(records, columns=list(FRAME_COLUMNS))
    for column in ("task_id", "status", "prompt", "person", "source", "result"):
        frame[column] = frame[column].astype("string")
    # Empty, not a grey "None", for tasks without an error.
    frame["error"] = frame["error"].astype("string").fillna("")
    frame["submitted"] = pd.to_datetime(frame["submitted"], utc=True)
    frame["completed"] = pd.to_datetime(frame["completed"], utc=True)
    frame["duration"] = pd.to_timedelta(pd.to_numeric(frame["duration"]), unit="s")
    frame["cost"] = pd.to_numeric(frame["cost"]).astype("Int64")
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
    "person",
    "cost",
    "kept",
    "labels",
    "submitted_at",
    "completed_at",
    "result_url",
    "origin_url",
    "error_code",
    "error_message",
    "last_read_error",
)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def export_row(row: Any) -> dict[str, Any]:
    """A plain record of one task (no credentials: the ledger holds none)."""
    return {
        "task_id": row.task_id,
        "status": row.status_label,
        "status_code": int(row.status) if row.status is not None else None,
        "prompt": row.prompt,
        "video_url": row.video_url,
        "callback_url": row.callback_url,
        "watermark": row.watermark,
        "source": row.source,
        "source_name": row.source_name,
        "person": row.owner_name,
        "cost": row.cost,
        "kept": bool(row.kept),
        "labels": "; ".join(row.label_list),
        "submitted_at": _iso(row.submitted_at_best),
        "completed_at": _iso(row.completed_at),
        "result_url": row.result_url,
        "origin_url": row.origin_url,
        "error_code": row.error_code,
        "error_message": row.error_message,
        "last_read_error": row.read_error,
    }


def export_csv(rows: Iterable[Any]) -> bytes:
    """Tasks as CSV (UTF-8, header row); text a spreadsheet would run as a formula is quoted."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(EXPORT_FIELDS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        record = export_row(row)
        writer.writerow({k: "" if v is None else neutral_cell(v) if isinstance(v, str) else v for k, v in record.items()})
    return buffer.getvalue().encode("utf-8")


def export_json(rows: Iterable[Any]) -> bytes:
    """Tasks as a JSON document: ``{"tasks": [...]}``."""
    return json.dumps({"tasks": [export_row(r) for r in rows]}, indent=2, ensure_ascii=False).encode("utf-8")
