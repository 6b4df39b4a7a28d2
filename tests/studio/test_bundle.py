""""Download all": the ZIP of result videos and its manifests."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from luma.errors import NotFoundError, RequestTimeout
from luma.models import TaskStatus
from studio import bundle
from studio.bundle import zip_bundle
from studio.ledger import TaskRow
from studio.tasks import EXPORT_FIELDS, export_row

T0 = datetime(2026, 3, 7, 12, 0, 0, tzinfo=UTC)
IDS = [c * 32 for c in "abcdef"]
FORMULA = '=HYPERLINK("http://evil.example","click")'


def row(task_id: str | None, **values: Any) -> TaskRow:
    """A ledger row with plain defaults (a created task never read yet)."""
    defaults: dict[str, Any] = {f.name: None for f in fields(TaskRow)}
    defaults.update(
        id=1, request_key=f"k-{task_id}", task_id=task_id, mode="live", origin="submitted", state="created",
        created_at=T0, failures=0, result_urls=(),
    )
    defaults.update(values)
    return TaskRow(**defaults)


def done(task_id: str, **values: Any) -> TaskRow:
    values = {
        "status": TaskStatus.SUCCESS, "completed_at": T0, "result_urls": (f"https://h/{task_id[0]}.mp4",),
        "prompt": f"prompt {task_id[0]}", **values,
    }
    return row(task_id, **values)


def video(task_id: str) -> bytes:
    return b"\x00\x00\x00\x18ftypmp42" + task_id.encode() * 10


A, B, C, D, E, F = IDS
ROWS = [
    done(A, prompt=FORMULA),
    row(B, status=TaskStatus.GENERATE_FAILED, completed_at=T0, error_code="501", error_message="boom", prompt="-1+2"),
    done(C, completed_at=T0 + timedelta(minutes=3)),
    done(D),  # its fetch raises
    done(E, status=TaskStatus.CALLBACK_FAILED),
    done(F, prompt="@SUM(A1)"),
]


def fetch(r: Any) -> bytes:
    if r.task_id == D:
        raise RequestTimeout("no answer")
    assert r.task_id in (A, C, E, F), "only rows with a result are fetched"
    return video(r.task_id)


@pytest.fixture(scope="module")
def archive() -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(zip_bundle(ROWS, fetch)))


def _csv(archive: zipfile.ZipFile) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode("utf-8"))))


def _json(archive: zipfile.ZipFile) -> list[dict[str, Any]]:
    return json.loads(archive.read("manifest.json"))["tasks"]  # type: ignore[no-any-return]


def test_zip_holds_exactly_the_available_videos(archive: zipfile.ZipFile):
    videos = {name: archive.read(name) for name in archive.namelist() if name.startswith("videos/")}
    assert videos == {
        f"videos/01-{A}.mp4": video(A),
        f"videos/03-{C}.mp4": video(C),
        f"videos/05-{E}.mp4": video(E),
        f"videos/06-{F}.mp4": video(F),
    }
    assert sorted(archive.namelist()) == sorted([*videos, "manifest.csv", "manifest.json"])
    assert archive.testzip() is None


def test_videos_are_stored_not_deflated(archive: zipfile.ZipFile):
    for info in archive.infolist():
        if info.filename.startswith("videos/"):
            assert info.compress_type == zipfile.ZIP_STORED
            assert info.compress_size == info.file_size


def test_manifests_list_every_row_with_its_outcome(archive: zipfile.ZipFile):
    expected = [
        (A, f"videos/01-{A}.mp4", True, ""),
        (B, "", False, "the task failed"),
        (C, f"videos/03-{C}.mp4", True, ""),
        (D, "", False, "failed to download"),
        (E, f"videos/05-{E}.mp4", True, ""),
        (F, f"videos/06-{F}.mp4", True, ""),
    ]
    assert [(e["task_id"], e["file"], e["included"], e["missing_reason"]) for e in _json(archive)] == expected
    assert [(e["task_id"], e["file"], e["included"], e["missing_reason"]) for e in _csv(archive)] == [
        (task_id, file, str(included), reason) for task_id, file, included, reason in expected
    ]


def test_manifest_fields_match_export_row(archive: zipfile.ZipFile):
    entries = _json(archive)
    for r, entry in zip(ROWS, entries, strict=True):
        assert {k: v for k, v in entry.items() if k in EXPORT_FIELDS} == export_row(r)
        assert list(entry) == [*EXPORT_FIELDS, "file", "included", "missing_reason"]
    assert list(_csv(archive)[0]) == [*EXPORT_FIELDS, "file", "included", "missing_reason"]
    assert json.loads(archive.read("manifest.json"))["name"] == "luma-results"


def test_formulas_are_neutral_in_csv_and_exact_in_json(archive: zipfile.ZipFile):
    prompts_csv = [e["prompt"] for e in _csv(archive)]
    prompts_json = [e["prompt"] for e in _json(archive)]
    assert prompts_csv[0] == "'" + FORMULA and prompts_csv[1] == "'-1+2" and prompts_csv[5] == "'@SUM(A1)"
    assert prompts_json[0] == FORMULA and prompts_json[1] == "-1+2" and prompts_json[5] == "@SUM(A1)"
    assert prompts_csv[2] == "prompt c", "ordinary text is untouched"


@pytest.mark.parametrize(
    ("r", "answer", "reason"),
    [
        (row(A, status=TaskStatus.GENERATING), None, "not finished"),
        (row(A), None, "not finished"),
        (row(None, state="failed", create_error="refused"), None, "not created"),
        (row(None, state="cancelled"), None, "cancelled"),
        (row(A, status=TaskStatus.SUCCESS, completed_at=T0), None, "the provider gave no result video"),
        (done(A), NotFoundError(), "the provider no longer has it"),
        (done(A), None, "the provider no longer has it"),
        (done(A), b"", "the download was empty"),
    ],
)
def test_missing_reasons(r: TaskRow, answer: Any, reason: str):
    def answer_fetch(_: Any) -> bytes | None:
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[no-any-return]

    data = zipfile.ZipFile(io.BytesIO(zip_bundle([r], answer_fetch, name="set")))
    assert not [n for n in data.namelist() if n.startswith("videos/")]
    (entry,) = _json(data)
    assert (entry["included"], entry["file"], entry["missing_reason"]) == (False, "", reason)


def test_numbering_is_zero_padded_to_the_set_size():
    rows = [done(f"{i:032x}") for i in range(bundle.MAX_BUNDLE_TASKS)]
    names = zipfile.ZipFile(io.BytesIO(zip_bundle(rows, lambda r: b"x"))).namelist()
    assert names[0] == f"videos/01-{0:032x}.mp4" and names[49] == f"videos/50-{49:032x}.mp4"


def test_same_rows_give_the_same_bytes():
    assert zip_bundle(ROWS, fetch) == zip_bundle(ROWS, fetch)


def test_too_many_tasks_are_refused():
    with pytest.raises(ValueError, match="at most 50"):
        zip_bundle([done(A)] * (bundle.MAX_BUNDLE_TASKS + 1), fetch)


def test_empty_set_is_a_zip_with_empty_manifests():
    data = zipfile.ZipFile(io.BytesIO(zip_bundle([], fetch)))
    assert sorted(data.namelist()) == ["manifest.csv", "manifest.json"]
    assert _json(data) == [] and _csv(data) == []
