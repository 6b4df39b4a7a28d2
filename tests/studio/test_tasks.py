"""Task ids typed by people, the Jobs table and the exports, over ledger rows."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from luma.models import TaskStatus
from studio import tasks
from studio.ledger import TaskRow

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
ID_A, ID_B, ID_C, ID_D = "a" * 32, "b" * 32, "c" * 32, "d" * 32


def row(task_id: str | None = ID_A, **values: Any) -> TaskRow:
    """A ledger row with plain defaults (a created task never read yet)."""
    defaults: dict[str, Any] = {f.name: None for f in fields(TaskRow)}
    defaults.update(
        id=1, request_key=f"k-{task_id}", task_id=task_id, mode="live", origin="submitted", state="created",
        created_at=T0, failures=0, result_urls=(),
    )
    defaults.update(values)
    return TaskRow(**defaults)


def test_tasks_frame_has_readable_columns():
    rows = [
        row(ID_A, prompt="make it night", video_url="https://h/in.mp4", status=TaskStatus.SUCCESS,
            provider_created_at=T0 - timedelta(seconds=30), completed_at=T0 - timedelta(seconds=10),
            result_urls=("https://h/out.mp4",), owner_name="Ada"),
        row(ID_B, status=TaskStatus.GENERATE_FAILED, error_code="501", error_message="boom"),
        row(ID_C, read_error="The provider did not answer in time.", read_error_retryable=True),
        row(ID_D, status=TaskStatus.GENERATING, provider_created_at=T0 - timedelta(seconds=5.4)),
        row(None, state="unknown", create_error="No answer came back."),
    ]
    frame = tasks.tasks_frame(rows, T0)
    assert list(frame.columns) == list(tasks.FRAME_COLUMNS)
    assert list(frame["status"]) == ["Succeeded", "Generation failed", "Not read yet", "Generating", "Outcome unknown"]
    assert frame.loc[0, "prompt"] == "make it night" and frame.loc[0, "person"] == "Ada"
    assert frame.loc[0, "duration"].total_seconds() == pytest.approx(20.0)
    assert frame.loc[0, "result"] == "https://h/out.mp4" and frame.loc[0, "source"] == "https://h/in.mp4"
    assert "501: boom" in frame.loc[1, "error"]
    assert "Last read failed" in frame.loc[2, "error"]
    assert "No answer came back." in frame.loc[4, "error"]
    assert frame.loc[0, "error"] == "", "a task without an error shows nothing, not None"
    assert pd.isna(frame.loc[2, "duration"]), "a task never read has no duration"
    assert frame.loc[3, "duration"].total_seconds() == 5.0, "running tasks show whole seconds so far"
    assert str(frame["submitted"].dtype).startswith("datetime64")


def test_tasks_frame_without_links_shows_file_names():
    """Demo file URLs are dead links in the browser: the table shows their names instead."""
    rows = [row(video_url="http://luma-emulator.local/files/samples/rolling-hills.mp4", status=TaskStatus.SUCCESS,
                result_urls=("http://luma-emulator.local/files/results/x.mp4?t=1",))]
    frame = tasks.tasks_frame(rows, T0, links=False)
    assert frame.loc[0, "source"] == "rolling-hills.mp4" and frame.loc[0, "result"] == "x.mp4"
    assert not frame.astype(str).apply(lambda col: col.str.contains("luma-emulator.local")).any().any()


def test_tasks_frame_empty_keeps_columns():
    frame = tasks.tasks_frame([], T0)
    assert list(frame.columns) == list(tasks.FRAME_COLUMNS) and frame.empty


def test_parse_task_ids_sorts_valid_invalid_duplicates():
    text = f"{ID_A}\n  {ID_B.upper()} \nnot-an-id\n{ID_A}\n\n{'f' * 31};{ID_C}"
    parsed = tasks.parse_task_ids(text, existing=[ID_C])
    assert parsed.valid == (ID_A, ID_B)
    assert parsed.invalid == ("not-an-id", "f" * 31)
    assert parsed.duplicates == (ID_A, ID_C)


def test_the_address_keeps_only_the_newest_ids_and_ignores_garbage():
    ids = [f"{n:032x}" for n in range(5000)]
    value = tasks.encode_task_ids(ids)
    assert value.split(",") == ids[-tasks.MAX_ADDRESS_IDS :]
    assert len(value) < 2000, "an address servers and browsers accept"
    assert tasks.decode_task_ids(tasks.encode_task_ids([ID_A, ID_B])) == [ID_A, ID_B]
    assert tasks.decode_task_ids(f"{ID_A},<script>,{ID_A},%00") == [ID_A]
    assert tasks.decode_task_ids(None) == [] and tasks.decode_task_ids([ID_A, ID_B]) == [ID_A, ID_B]
    assert tasks.decode_task_ids("x" * 10_000_000) == [], "a huge address is looked at in a bounded prefix"


def _export_rows() -> list[TaskRow]:
    return [
        row(ID_A, prompt='say "hi", twice', video_url="https://h/in.mp4", watermark="wm", source="upload",
            source_name="clip.mp4", status=TaskStatus.SUCCESS, provider_created_at=T0,
            result_urls=("https://h/out.mp4",)),
        row(ID_B, origin="imported"),
        row(ID_C, prompt="=HYPERLINK(\"http://evil\")", owner_name="+cmd"),
    ]


def test_export_csv_round_trips_and_quotes_formulas():
    rows = list(csv.DictReader(io.StringIO(tasks.export_csv(_export_rows()).decode("utf-8"))))
    assert [r["task_id"] for r in rows] == [ID_A, ID_B, ID_C]
    assert rows[0]["prompt"] == 'say "hi", twice'
    assert rows[0]["status"] == "Succeeded" and rows[0]["result_url"] == "https://h/out.mp4"
    assert rows[1]["status"] == "Not read yet" and rows[1]["prompt"] == ""
    assert rows[2]["prompt"].startswith("'=") and rows[2]["person"] == "'+cmd"
    assert set(rows[0]) == set(tasks.EXPORT_FIELDS)


def test_export_json_round_trips():
    data = json.loads(tasks.export_json(_export_rows()))
    assert [t["task_id"] for t in data["tasks"]] == [ID_A, ID_B, ID_C]
    assert data["tasks"][0]["watermark"] == "wm"
    assert data["tasks"][0]["submitted_at"] == "2026-01-01T12:00:00+00:00"
    assert data["tasks"][1]["status_code"] is None
    assert data["tasks"][2]["prompt"].startswith("="), "JSON keeps the text exactly"
