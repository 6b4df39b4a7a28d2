"""The archive of results: storage (local folder and fsspec), the archiver, playback and expiry."""

from __future__ import annotations

import uuid
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fsspec
import pytest

from luma.errors import NotFoundError, ServerError
from luma.models import TaskStatus
from studio import archive as archive_module
from studio.archive import Archive, Archiver, describe, expires_at, expiry_text, playable
from studio.ledger import TaskRow

T0 = datetime(2026, 3, 7, 12, 0, 0, tzinfo=UTC)
ID_A, ID_B, ID_C, ID_D, ID_E = "a" * 32, "b" * 32, "c" * 32, "d" * 32, "e" * 32
VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"v" * 100


def row(task_id: str | None = ID_A, **values: Any) -> TaskRow:
    """A ledger row with plain defaults (a created task never read yet)."""
    defaults: dict[str, Any] = {f.name: None for f in fields(TaskRow)}
    defaults.update(
        id=1, request_key=f"k-{task_id}", task_id=task_id, mode="live", origin="submitted", state="created",
        created_at=T0, failures=0, result_urls=(),
    )
    defaults.update(values)
    return TaskRow(**defaults)


def done(task_id: str, **values: Any) -> TaskRow:
    """A task that succeeded at T0 with one result video."""
    values = {"status": TaskStatus.SUCCESS, "completed_at": T0, "result_urls": (f"https://h/{task_id}.mp4",), **values}
    return row(task_id, **values)


class Row:
    """A TaskRow plus the ``archived_path`` attribute the ledger will add."""

    def __init__(self, base: TaskRow, archived_path: str | None = None) -> None:
        self._base = base
        self.archived_path = archived_path

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)


@pytest.fixture(params=["local", "memory"])
def archive(request: pytest.FixtureRequest, tmp_path: Path) -> Archive:
    if request.param == "local":
        return Archive(str(tmp_path / "archive"))
    # A fresh prefix per test: the memory filesystem is shared by the whole process.
    return Archive(f"memory://test-{uuid.uuid4().hex}/results")


# --- the archive ---------------------------------------------------------------------------------


def test_put_exists_read_round_trip(archive: Archive):
    location = archive.put(ID_A, T0, VIDEO)
    assert archive.exists(location)
    assert archive.read(location) == VIDEO
    with archive.open(location) as file:
        assert file.read(4) == VIDEO[:4], "open streams the same bytes"
    assert not archive.exists(archive.location(ID_B, T0))


def test_layout_is_year_month_task_id(archive: Archive, tmp_path: Path):
    late = datetime(2026, 1, 31, 23, 30, tzinfo=UTC) + timedelta(hours=1)  # 00:30 on 1 February, UTC
    location = archive.put(ID_A, late, VIDEO)
    assert location.endswith(f"/2026/02/{ID_A}.mp4")
    assert location == archive.location(ID_A, late), "the location depends only on the task"
    if archive.local:
        assert (tmp_path / "archive" / "2026" / "02" / f"{ID_A}.mp4").read_bytes() == VIDEO
    else:
        assert location.startswith(archive.url + "/")
        fs, path = fsspec.core.url_to_fs(location)
        assert fs.cat_file(path) == VIDEO, "the location opens with plain fsspec too"


def test_file_url_is_a_local_folder(tmp_path: Path):
    archive = Archive((tmp_path / "kept").as_uri())
    assert archive.local
    location = archive.put(ID_A, T0, VIDEO)
    assert Path(location).read_bytes() == VIDEO
    assert Path(location).is_relative_to(tmp_path / "kept")


def test_second_put_of_same_size_does_not_write(archive: Archive, monkeypatch: pytest.MonkeyPatch):
    first = archive.put(ID_A, T0, VIDEO)

    def no_write(*_: Any) -> None:
        raise AssertionError("an existing copy of the same size was written again")

    monkeypatch.setattr(archive_module, "_write_local", no_write)
    monkeypatch.setattr(archive_module, "_write_fs", no_write)
    assert archive.put(ID_A, T0, VIDEO) == first
    assert archive.read(first) == VIDEO


def test_put_replaces_a_copy_of_another_size(archive: Archive):
    location = archive.put(ID_A, T0, b"short")
    assert archive.put(ID_A, T0, VIDEO) == location
    assert archive.read(location) == VIDEO


class _Boom(Exception):
    pass


def test_local_write_failure_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    archive = Archive(str(tmp_path / "archive"))
    location = archive.location(ID_A, T0)

    def fail_replace(*_: Any) -> None:
        raise _Boom("disk gone mid-write")

    monkeypatch.setattr(archive_module.os, "replace", fail_replace)
    with pytest.raises(_Boom):
        archive.put(ID_A, T0, VIDEO)
    assert not archive.exists(location)
    assert list((tmp_path / "archive").rglob("*")) == [tmp_path / "archive" / "2026", tmp_path / "archive" / "2026" / "03"], (
        "nothing but the folders is left behind"
    )


def test_fsspec_write_failure_leaves_no_partial_file(monkeypatch: pytest.MonkeyPatch):
    archive = Archive(f"memory://test-{uuid.uuid4().hex}/results")
    location = archive.location(ID_A, T0)
    fs, root = fsspec.core.url_to_fs(archive.url)
    real_open = fs.open

    class HalfWriter:
        """Writes half of what it is given, then fails, like a dropped connection."""

        def __init__(self, file: Any) -> None:
            self.file = file

        def __enter__(self) -> HalfWriter:
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()

        def write(self, data: bytes) -> int:
            self.file.write(data[: len(data) // 2])
            raise _Boom("connection dropped")

    def failing_open(path: str, mode: str = "rb", **kwargs: Any) -> Any:
        file = real_open(path, mode, **kwargs)
        return HalfWriter(file) if "w" in mode else file

    monkeypatch.setattr(fs, "open", failing_open)
    with pytest.raises(_Boom):
        archive.put(ID_A, T0, VIDEO)
    monkeypatch.undo()
    assert not archive.exists(location)
    assert fs.find(root) == [], "neither the object nor its .part is left"


def test_fsspec_without_move_writes_directly(monkeypatch: pytest.MonkeyPatch):
    archive = Archive(f"memory://test-{uuid.uuid4().hex}/results")
    fs, root = fsspec.core.url_to_fs(archive.url)

    def no_move(*_: Any, **__: Any) -> None:
        raise NotImplementedError

    monkeypatch.setattr(fs, "mv", no_move)
    location = archive.put(ID_A, T0, VIDEO)
    monkeypatch.undo()
    assert archive.read(location) == VIDEO
    assert [path.rsplit("/", 1)[-1] for path in fs.find(root)] == [f"{ID_A}.mp4"], "the .part is cleaned up"


def test_describe_hides_userinfo_and_query():
    assert describe("s3://AKIA:secret@bucket/prefix?token=xyz#frag") == "s3://bucket/prefix"
    assert describe("https://user:pw@host.example:8443/a/b?sig=1") == "https://host.example:8443/a/b"
    assert describe("simplecache::s3://k:s@bucket/p") == "simplecache::s3://bucket/p"
    assert describe("data/archive") == "data/archive"
    archive = Archive(f"memory://user:secret@test-{uuid.uuid4().hex}/results?key=1")
    assert "secret" not in archive.url and "key=1" not in archive.url and "secret" not in repr(archive)
    assert "secret" not in archive.put(ID_A, T0, VIDEO)


def test_task_id_cannot_leave_the_folder(archive: Archive):
    for bad in ("../escape", "a/b", "", "a\\b"):
        with pytest.raises(ValueError):
            archive.location(bad, T0)


# --- the archiver --------------------------------------------------------------------------------


class FakeLedger:
    """The two ledger methods the archiver uses, over a list of rows."""

    def __init__(self, rows: list[TaskRow]) -> None:
        self.rows = {r.task_id: Row(r) for r in rows}
        self.marked: list[tuple[str, str, datetime]] = []

    def unarchived(self, limit: int) -> list[Any]:
        # A careless ledger: everything without a copy, successful or not (the archiver checks).
        return [r for r in self.rows.values() if not r.archived_path][:limit]

    def mark_archived(self, task_id: str, location: str, now: datetime) -> None:
        self.rows[task_id].archived_path = location
        self.marked.append((task_id, location, now))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FakeFetch:
    """Result bytes per task id; an exception to raise, or None for "gone"."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def __call__(self, r: Any) -> bytes | None:
        self.calls.append(r.task_id)
        answer = self.answers.get(r.task_id, b"video of " + r.task_id.encode())
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[no-any-return]


def test_archiver_copies_finished_successful_rows_once(archive: Archive):
    rows = [
        done(ID_A),
        done(ID_B, status=TaskStatus.CALLBACK_FAILED),  # the callback failed, the video did not
        # A result URL on a failed task should not happen; the status alone must keep it out.
        row(ID_C, status=TaskStatus.GENERATE_FAILED, completed_at=T0, result_urls=("https://h/c.mp4",)),
        row(ID_D, status=TaskStatus.GENERATING),
        row(ID_E),
    ]
    ledger, fetch, clock = FakeLedger(rows), FakeFetch({}), Clock(T0 + timedelta(days=1))
    archiver = Archiver(ledger, archive, fetch, clock=clock)
    assert archiver.run_once() == 2
    assert sorted(fetch.calls) == [ID_A, ID_B], "failed and unfinished rows are never fetched"
    assert [(task_id, now) for task_id, _, now in ledger.marked] == [(ID_A, clock.now), (ID_B, clock.now)]
    for task_id, location, _ in ledger.marked:
        assert location == archive.location(task_id, T0)
        assert archive.read(location) == b"video of " + task_id.encode()
    clock.now += timedelta(hours=2)
    assert archiver.run_once() == 0
    assert sorted(fetch.calls) == [ID_A, ID_B], "an archived row is never fetched again"


def test_archiver_survives_one_failing_fetch(archive: Archive, caplog: pytest.LogCaptureFixture):
    ledger = FakeLedger([done(ID_A), done(ID_B), done(ID_C)])
    fetch = FakeFetch({ID_B: ServerError()})
    archiver = Archiver(ledger, archive, fetch, clock=Clock(T0))
    assert archiver.run_once() == 2
    assert {task_id for task_id, _, _ in ledger.marked} == {ID_A, ID_C}
    assert ledger.rows[ID_B].archived_path is None
    assert ID_B in caplog.text


def test_archiver_does_not_refetch_when_a_copy_exists(archive: Archive):
    """A copy whose ledger write was lost (a crash in between) is recorded without a download."""
    archive.put(ID_A, T0, VIDEO)
    ledger, fetch = FakeLedger([done(ID_A)]), FakeFetch({})
    assert Archiver(ledger, archive, fetch, clock=Clock(T0)).run_once() == 1
    assert fetch.calls == []
    assert ledger.rows[ID_A].archived_path == archive.location(ID_A, T0)


def test_archiver_skips_rows_already_archived(archive: Archive):
    class StaleLedger(FakeLedger):
        def unarchived(self, limit: int) -> list[Any]:
            return list(self.rows.values())  # even rows that have a copy

    ledger = StaleLedger([done(ID_A)])
    ledger.rows[ID_A].archived_path = "somewhere"
    fetch = FakeFetch({})
    assert Archiver(ledger, archive, fetch, clock=Clock(T0)).run_once() == 0
    assert fetch.calls == []


@pytest.mark.parametrize("gone", [None, NotFoundError()], ids=["returns-none", "raises-not-found"])
def test_archiver_backs_off_a_gone_result(archive: Archive, gone: Any):
    ledger = FakeLedger([done(ID_A), done(ID_B)])
    fetch, clock = FakeFetch({ID_A: gone}), Clock(T0 + timedelta(days=15))
    archiver = Archiver(ledger, archive, fetch, clock=clock)
    assert archiver.run_once() == 1
    assert ledger.rows[ID_A].archived_path is None, "a gone result is left unarchived"
    clock.now += timedelta(minutes=59)
    assert archiver.run_once() == 0
    assert fetch.calls == [ID_A, ID_B], "not asked again within the hour"
    clock.now += timedelta(minutes=2)
    archiver.run_once()
    assert fetch.calls == [ID_A, ID_B, ID_A], "asked again after an hour"


def test_archiver_resting_rows_do_not_starve_others(archive: Archive):
    ledger = FakeLedger([done(ID_A), done(ID_B), done(ID_C)])
    fetch = FakeFetch({ID_A: None, ID_B: None})
    archiver = Archiver(ledger, archive, fetch, clock=Clock(T0))
    assert archiver.run_once(limit=2) == 0
    assert archiver.run_once(limit=2) == 1, "the third row is reached though the first two still come first"
    assert [task_id for task_id, _, _ in ledger.marked] == [ID_C]


# --- playback and expiry -------------------------------------------------------------------------


def test_playable_prefers_the_provider(archive: Archive):
    location = archive.put(ID_A, T0, b"archived")
    assert playable(Row(done(ID_A), location), lambda r: b"provider", archive) == b"provider"


def test_playable_falls_back_to_the_archive_when_gone(archive: Archive):
    location = archive.put(ID_A, T0, b"archived")

    def gone(_: Any) -> bytes:
        raise NotFoundError()

    assert playable(Row(done(ID_A), location), gone, archive) == b"archived"
    assert playable(Row(done(ID_A), None), gone, archive) is None, "gone and never archived"
    assert playable(Row(done(ID_A), location), gone, None) is None, "no archive configured"
    missing = archive.location(ID_B, T0)
    assert playable(Row(done(ID_B), missing), gone, archive) is None, "the archived file was deleted"


def test_playable_other_errors_use_the_archive_or_propagate(archive: Archive):
    location = archive.put(ID_A, T0, b"archived")

    def down(_: Any) -> bytes:
        raise ServerError()

    assert playable(Row(done(ID_A), location), down, archive) == b"archived"
    with pytest.raises(ServerError):
        playable(Row(done(ID_A), None), down, archive)


def test_expires_at_is_completion_plus_14_days():
    assert expires_at(done(ID_A)) == T0 + timedelta(days=14)
    assert expires_at(row(ID_A, status=TaskStatus.GENERATING)) is None
    assert expires_at(replace(done(ID_A), result_urls=())) is None


@pytest.mark.parametrize(
    ("elapsed", "text"),
    [
        (timedelta(days=10, hours=19, minutes=59), "expires in 3 days 4 h"),
        (timedelta(days=13), "expires in 1 day"),
        (timedelta(days=13, hours=22, minutes=30), "expires in 1 h 30 min"),
        (timedelta(days=13, hours=23, minutes=53), "expires in 7 min"),
        (timedelta(days=14) - timedelta(seconds=20), "expires in less than a minute"),
        (timedelta(days=14), "expired just now"),
        (timedelta(days=16, hours=5), "expired 2 days ago"),
        (timedelta(days=14, hours=3, minutes=10), "expired 3 h ago"),
    ],
)
def test_expiry_text(elapsed: timedelta, text: str):
    assert expiry_text(done(ID_A), T0 + elapsed) == text


def test_expiry_text_without_result_is_empty():
    assert expiry_text(row(ID_A), T0) == ""


def test_a_local_archive_never_loads_fsspec(tmp_path: Path):
    """A folder on this disk (the default) needs no fsspec, whose import costs every server's start-up."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from datetime import UTC, datetime\n"
        "from studio.archive import Archive\n"
        f"archive = Archive({str(tmp_path / 'archive')!r})\n"
        "where = archive.put('%032x' % 1, datetime.now(UTC), b'video')\n"
        "assert archive.read(where) == b'video' and archive.exists(where)\n"
        "print('fsspec' in sys.modules)\n"
    )
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert shown.stdout.strip() == "False"
