""""Download all": a set of tasks as one ZIP of their result videos and a manifest.

The ZIP holds ``videos/<NN>-<task_id>.mp4`` for each result that could be had (``NN``: the task's
position in the given order, zero-padded, so the files sort as the set was shown) and
``manifest.csv`` and ``manifest.json``, one entry per task whether its video is in the ZIP or not:
:func:`studio.tasks.export_row`'s fields plus :data:`MANIFEST_EXTRA` (where the file is, or why it
is missing, in plain words).

The ZIP is built in memory: a set holds at most :data:`MAX_BUNDLE_TASKS` tasks of a few MB each
(the provider's input is at most 10 seconds of video), and Streamlit's download button needs the
bytes anyway. Peak memory is about twice the videos' total (the archive, then its copy as bytes).
Videos are stored, not deflated: MP4 is already compressed and deflating it only costs CPU.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import zipfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Final

from luma.errors import NotFoundError
from luma.models import TaskStatus

from .tasks import EXPORT_FIELDS, export_row
from .text import neutral_cell

__all__ = [
    "MANIFEST_EXTRA",
    "MANIFEST_FIELDS",
    "MAX_BUNDLE_TASKS",
    "REASON_DOWNLOAD_FAILED",
    "REASON_CANCELLED",
    "REASON_EMPTY",
    "REASON_FAILED",
    "REASON_GONE",
    "REASON_NOT_CREATED",
    "REASON_NOT_FINISHED",
    "REASON_NO_RESULT",
    "missing_reason",
    "zip_bundle",
]

_LOG = logging.getLogger("luma.bundle")

MAX_BUNDLE_TASKS: Final = 50
"""Tasks in one ZIP at most: the bound that keeps building it in memory safe."""

MANIFEST_EXTRA: Final = ("file", "included", "missing_reason")
"""The manifest's fields beyond :data:`studio.tasks.EXPORT_FIELDS`."""

MANIFEST_FIELDS: Final = (*EXPORT_FIELDS, *MANIFEST_EXTRA)
"""The manifest's fields, in CSV column order."""

REASON_CANCELLED: Final = "cancelled"
REASON_NOT_CREATED: Final = "not created"
REASON_NOT_FINISHED: Final = "not finished"
REASON_FAILED: Final = "the task failed"
REASON_NO_RESULT: Final = "the provider gave no result video"
REASON_GONE: Final = "the provider no longer has it"
REASON_DOWNLOAD_FAILED: Final = "failed to download"
REASON_EMPTY: Final = "the download was empty"

# ZIP timestamps cannot go before 1980; used when a task has no completion time, so that the
# same set always gives the same bytes.
_EPOCH: Final = (1980, 1, 1, 0, 0, 0)


def missing_reason(row: Any) -> str | None:
    """Why a task has no result video to download, in plain words; None when it should have one."""
    if row.state == "cancelled":
        return REASON_CANCELLED
    if not row.task_id or row.state == "failed":
        return REASON_NOT_CREATED
    if row.status is None or not TaskStatus(row.status).is_final:
        return REASON_NOT_FINISHED
    if not TaskStatus(row.status).succeeded:
        return REASON_FAILED
    if not row.result_url:
        return REASON_NO_RESULT
    return None


def _stamp(when: datetime | None) -> tuple[int, int, int, int, int, int]:
    if when is None:
        return _EPOCH
    utc = when.astimezone(UTC) if when.tzinfo is not None else when
    return max(_EPOCH, (utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second))


def _fetch(row: Any, fetch: Callable[[Any], bytes | None]) -> tuple[bytes | None, str | None]:
    """The video's bytes, or None and why not; never raises."""
    try:
        data = fetch(row)
    except NotFoundError:
        return None, REASON_GONE
    except Exception as exc:  # noqa: BLE001 - one task's failure is a line in the manifest, not a broken ZIP
        _LOG.warning("Could not download the result of task %s (%s: %s).", row.task_id, type(exc).__name__, exc)
        return None, REASON_DOWNLOAD_FAILED
    if data is None:
        return None, REASON_GONE
    if not data:
        return None, REASON_EMPTY
    return data, None


def _csv_cell(value: Any) -> Any:
    # The same cells as studio.tasks.export_csv: nothing a spreadsheet would run as a formula.
    if value is None:
        return ""
    return neutral_cell(value) if isinstance(value, str) else value


def zip_bundle(rows: Iterable[Any], fetch: Callable[[Any], bytes | None], *, name: str = "luma-results") -> bytes:
    """The tasks' result videos and a manifest as one ZIP (see the module's docstring).

    ``fetch(row)`` returns a result's bytes, None (or raises :class:`~luma.errors.NotFoundError`)
    when the provider no longer has it; pass one that falls back to the archive (e.g. built on
    :func:`studio.archive.playable`) to include expired results. A fetch that raises anything else
    is a missing file with its reason. ``name`` is the ZIP's comment and the manifest's ``name``.
    """
    tasks = list(rows)
    if len(tasks) > MAX_BUNDLE_TASKS:
        raise ValueError(f"A download holds at most {MAX_BUNDLE_TASKS} tasks; {len(tasks)} were given.")
    width = max(2, len(str(len(tasks))))
    manifest: list[dict[str, Any]] = []
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for position, row in enumerate(tasks, start=1):
            reason = missing_reason(row)
            data: bytes | None = None
            if reason is None:
                data, reason = _fetch(row, fetch)
            file = ""
            if data is not None:
                file = f"videos/{position:0{width}d}-{row.task_id}.mp4"
                info = zipfile.ZipInfo(file, date_time=_stamp(row.completed_at))
                info.compress_type = zipfile.ZIP_STORED
                archive.writestr(info, data)
            manifest.append({**export_row(row), "file": file, "included": data is not None, "missing_reason": reason or ""})
        stamp = _stamp(max((row.completed_at for row in tasks if row.completed_at is not None), default=None))
        archive.writestr(_text_entry("manifest.csv", stamp), _manifest_csv(manifest))
        archive.writestr(_text_entry("manifest.json", stamp), _manifest_json(manifest, name))
        archive.comment = name.encode("utf-8")[:0xFFFF]
    return buffer.getvalue()


def _text_entry(file: str, stamp: tuple[int, int, int, int, int, int]) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(file, date_time=stamp)
    # Text compresses well, unlike the videos.
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def _manifest_csv(manifest: list[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(MANIFEST_FIELDS), lineterminator="\n")
    writer.writeheader()
    for entry in manifest:
        writer.writerow({key: _csv_cell(value) for key, value in entry.items()})
    return text.getvalue().encode("utf-8")


def _manifest_json(manifest: list[dict[str, Any]], name: str) -> bytes:
    return json.dumps({"name": name, "tasks": manifest}, indent=2, ensure_ascii=False).encode("utf-8")
