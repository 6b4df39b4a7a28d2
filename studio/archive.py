"""An optional archive that keeps a copy of each finished result after the provider drops it.

The provider keeps generated videos 14 days (:data:`~luma._constants.RESULT_LIFETIME_SECONDS`).
:class:`Archive` is where copies go: a local folder (a plain path or ``file://`` URL; the app's
default is ``data/archive``) or any fsspec URL (``s3://bucket/prefix``, ``gcs://...``,
``memory://...`` in tests). Bucket credentials come from fsspec's usual environment and config
files, never from this code, and :func:`describe` strips userinfo and query strings from any
location before it is shown or logged.

Objects live at ``<root>/<YYYY>/<MM>/<task_id>.mp4``, dated by the task's completion (UTC): the
key depends only on the task, so a second attempt (another process, or a retry after a crash)
finds the first copy instead of making another.

:class:`Archiver` copies results of finished, successful tasks once; :func:`playable` picks the
provider's copy while it exists and the archived one after; :func:`expires_at` and
:func:`expiry_text` say how long the provider's copy lasts.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Final, Protocol
from urllib.parse import urlsplit, urlunsplit
from urllib.request import url2pathname

from luma._constants import RESULT_LIFETIME_SECONDS
from luma.errors import NotFoundError
from luma.models import TaskStatus

__all__ = [
    "ARCHIVE_SUFFIX",
    "Archive",
    "ArchiveLedger",
    "Archiver",
    "ERROR_RETRY",
    "GONE_RETRY",
    "RESULT_LIFETIME",
    "archive_key",
    "describe",
    "expires_at",
    "expiry_text",
    "playable",
]

_LOG = logging.getLogger("luma.archive")

RESULT_LIFETIME: Final = timedelta(seconds=RESULT_LIFETIME_SECONDS)
"""How long the provider keeps a generated video after the task completes."""

ARCHIVE_SUFFIX: Final = ".mp4"
"""The results are MP4 files; the suffix lets a file browser or bucket console play them."""

GONE_RETRY: Final = timedelta(hours=1)
"""How long the archiver leaves a task alone after the provider said its result is gone: asking
again sooner only spends requests (it may still come back if the "gone" was a host's hiccup)."""

ERROR_RETRY: Final = timedelta(minutes=5)
"""How long the archiver leaves a task alone after a download or write failed: long enough that
one broken task does not take a slot in every cycle, short enough that a network blip heals soon."""

# A task id becomes a file name: refuse anything that could leave the folder ("..", "/", "\").
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


# --- locations -----------------------------------------------------------------------------------


def describe(location: str) -> str:
    """``location`` for display: userinfo (``user:secret@``), query and fragment removed.

    Chained fsspec URLs (``simplecache::s3://...``) are cleaned part by part; plain paths are
    returned unchanged.
    """
    return "::".join(_describe_one(part) for part in location.split("::"))


def _describe_one(location: str) -> str:
    if "://" not in location:
        return location
    parts = urlsplit(location)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", "")) or location


def _is_local(url: str) -> bool:
    return "://" not in url or url.lower().startswith("file://")


def _local_path(url: str) -> Path:
    if not url.lower().startswith("file://"):
        return Path(url)
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        # "file://data/archive" reads as host "data": refuse rather than guess a relative folder.
        raise ValueError(f"Archive URL {describe(url)!r} names a host; use file:///absolute/path or a plain path.")
    return Path(url2pathname(parts.path))


def archive_key(task_id: str, completed_at: datetime) -> str:
    """The object's path below the archive root: ``<YYYY>/<MM>/<task_id>.mp4`` (UTC date)."""
    if not _SAFE_ID.match(task_id):
        raise ValueError(f"Task id {task_id!r} cannot name an archive file.")
    when = completed_at.astimezone(UTC) if completed_at.tzinfo is not None else completed_at
    return f"{when:%Y}/{when:%m}/{task_id}{ARCHIVE_SUFFIX}"


# --- the archive ---------------------------------------------------------------------------------


def _url_to_fs(url: str) -> tuple[Any, str]:
    # Imported on first use: a local folder (the default) never needs fsspec, and importing it
    # costs ~30 ms of every server's start-up, while the first page waits.
    import fsspec.core

    fs, path = fsspec.core.url_to_fs(url)
    return fs, path


class Archive:
    """Where copies of results go: a local folder or an fsspec filesystem.

    Locations handed out by :meth:`put` are the root as :func:`describe` shows it plus the key
    (no credentials in them, so the ledger can store them and a page can show them). A location
    outside this archive's root (say, after the archive was moved) is opened with fsspec's usual
    configuration for its URL, or as a local path.
    """

    def __init__(self, url: str) -> None:
        if not url.strip():
            raise ValueError("The archive location is empty.")
        self.url = describe(url)
        """The root for display and for the locations handed out (no userinfo or query)."""
        self._fs: Any = None
        if _is_local(url):
            self._root = str(_local_path(url))
        else:
            self._fs, root = _url_to_fs(url)
            self._root = str(root).rstrip("/")
        self.local = self._fs is None
        """True for a folder on this machine's disk."""

    def __repr__(self) -> str:
        return f"Archive({self.url!r})"

    # -- paths

    def location(self, task_id: str, completed_at: datetime) -> str:
        """Where the copy of a task's result is (or would be) kept."""
        key = archive_key(task_id, completed_at)
        if self.local:
            return str(Path(self._root) / key)
        return f"{self.url.rstrip('/')}/{key}"

    def _resolve(self, location: str) -> tuple[Any, str]:
        """The filesystem (None: local disk) and its path for a location."""
        if not self.local:
            prefix = self.url.rstrip("/") + "/"
            if location.startswith(prefix):
                return self._fs, f"{self._root}/{location[len(prefix):]}"
        if _is_local(location):
            return None, str(_local_path(location))
        fs, path = _url_to_fs(location)
        return fs, str(path)

    def _size(self, location: str) -> int | None:
        fs, path = self._resolve(location)
        try:
            if fs is None:
                return os.stat(path).st_size if os.path.isfile(path) else None
            # One request (a HEAD on a bucket) answers both "is it there" and "how big".
            info = fs.info(path)
            return int(info["size"]) if info.get("type") == "file" else None
        except FileNotFoundError:
            return None

    # -- reading

    def exists(self, location: str) -> bool:
        """True when a complete copy is at ``location``."""
        return self._size(location) is not None

    def read(self, location: str) -> bytes:
        """The copy's bytes (``FileNotFoundError`` when there is none)."""
        with self.open(location) as file:
            data: bytes = file.read()
        return data

    def open(self, location: str) -> IO[bytes]:
        """The copy as a binary file object, for streaming a large file (the caller closes it)."""
        fs, path = self._resolve(location)
        if fs is None:
            return Path(path).open("rb")
        handle: IO[bytes] = fs.open(path, "rb")
        return handle

    # -- writing

    def put(self, task_id: str, completed_at: datetime, data: bytes) -> str:
        """Keep ``data`` as the task's copy and return its location.

        Idempotent: an existing copy of the same size is left alone (the layout is stable, so this
        is how a second attempt finds the first). Written atomically where the filesystem allows:
        readers see the old state or the whole new file, never part of it.
        """
        location = self.location(task_id, completed_at)
        if self._size(location) == len(data):
            return location
        fs, path = self._resolve(location)
        if fs is None:
            _write_local(Path(path), data)
        else:
            _write_fs(fs, path, data)
        return location


def _write_local(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # A hidden temporary in the same folder: os.replace is atomic only within one filesystem, and
    # a crash leaves a dot-file that no listing of "*.mp4" would pick up.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_fs(fs: Any, path: str, data: bytes) -> None:
    parent = path.rpartition("/")[0]
    if parent:
        # Object stores have no folders (a no-op there); sftp, local-like and memory filesystems do.
        fs.makedirs(parent, exist_ok=True)
    part = path + ".part"
    try:
        with fs.open(part, "wb") as file:
            file.write(data)
    except BaseException:
        _remove_quietly(fs, part)
        raise
    try:
        fs.mv(part, path)
    except (NotImplementedError, OSError) as exc:
        # Some filesystems cannot rename (or, on a bucket, copy then delete may be refused). A
        # single PUT to an object store is atomic anyway; elsewhere a direct write is the best left.
        _LOG.info("Archive %s cannot move %s (%s); writing it directly.", describe(fs.unstrip_protocol(path)), part, type(exc).__name__)
        try:
            with fs.open(path, "wb") as file:
                file.write(data)
        except BaseException:
            _remove_quietly(fs, path)
            raise
        finally:
            _remove_quietly(fs, part)


def _remove_quietly(fs: Any, path: str) -> None:
    try:
        if fs.exists(path):
            fs.rm(path)
    except Exception:  # noqa: BLE001 - cleanup must never hide the error being handled
        _LOG.debug("Could not remove %s from the archive.", path, exc_info=True)


# --- copying results -----------------------------------------------------------------------------


class ArchiveLedger(Protocol):
    """What the archiver needs from the ledger (two methods the ledger provides for it)."""

    def unarchived(self, limit: int) -> list[Any]:
        """Up to ``limit`` rows of finished, successful tasks with a result and no archived copy."""
        ...

    def mark_archived(self, task_id: str, location: str, now: datetime) -> None:
        """Record that the task's result is kept at ``location``."""
        ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _archivable(row: Any) -> bool:
    status = row.status
    return (
        bool(row.task_id)
        and status is not None
        and TaskStatus(status).succeeded
        and bool(row.result_url)
        and not getattr(row, "archived_path", None)
    )


class Archiver:
    """Copies each finished, successful task's result into the archive, once.

    ``fetch(row)`` downloads the result (None, or :class:`~luma.errors.NotFoundError`, when the
    provider no longer has it). One bad task never stops the others: each failure is logged and
    that task is left alone for a while (:data:`GONE_RETRY`, :data:`ERROR_RETRY`). That memory is
    per process; after a restart every task gets one more try, which is cheap.
    """

    def __init__(
        self,
        ledger: ArchiveLedger,
        archive: Archive,
        fetch: Callable[[Any], bytes | None],
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.ledger = ledger
        self.archive = archive
        self.fetch = fetch
        self.clock = clock
        # task id -> no attempt before this time.
        self._not_before: dict[str, datetime] = {}

    def __repr__(self) -> str:
        return f"Archiver({self.archive!r})"

    def run_once(self, limit: int = 20) -> int:
        """Copy up to ``limit`` results not archived yet; return how many were copied."""
        now = self.clock()
        self._not_before = {task_id: due for task_id, due in self._not_before.items() if due > now}
        # Ask for the resting tasks on top, so that a handful of gone results at the head of the
        # ledger's list cannot starve the rows behind them.
        try:
            rows = self.ledger.unarchived(limit + len(self._not_before))
        except Exception:  # noqa: BLE001 - a ledger hiccup is retried at the next run
            _LOG.warning("Could not list results to archive.", exc_info=True)
            return 0
        copied = 0
        tried = 0
        for row in rows:
            if tried >= limit:
                break
            if not _archivable(row) or row.task_id in self._not_before:
                continue
            tried += 1
            if self._copy(row):
                copied += 1
        return copied

    def _copy(self, row: Any) -> bool:
        task_id: str = row.task_id
        completed = row.completed_at or getattr(row, "created_at", None)
        if completed is None:
            _LOG.warning("Task %s has no completion time; not archived.", task_id)
            self._rest(task_id, GONE_RETRY)
            return False
        try:
            location = self.archive.location(task_id, completed)
            # A copy from an earlier attempt whose ledger write was lost: record it, no download.
            if not self.archive.exists(location):
                try:
                    data = self.fetch(row)
                except NotFoundError:
                    data = None
                if data is None:
                    _LOG.info("Result of task %s is no longer at the provider; not archived.", task_id)
                    self._rest(task_id, GONE_RETRY)
                    return False
                location = self.archive.put(task_id, completed, data)
            self.ledger.mark_archived(task_id, location, self.clock())
        except Exception as exc:  # noqa: BLE001 - one task's failure must not stop the others
            _LOG.warning("Could not archive the result of task %s (%s: %s).", task_id, type(exc).__name__, exc)
            self._rest(task_id, ERROR_RETRY)
            return False
        return True

    def _rest(self, task_id: str, pause: timedelta) -> None:
        self._not_before[task_id] = self.clock() + pause


# --- showing results -----------------------------------------------------------------------------


def playable(row: Any, fetch_provider: Callable[[Any], bytes | None], archive: Archive | None) -> bytes | None:
    """The bytes to show for a task's result: the provider's copy while it exists, else the archive's.

    The provider is asked first (its copy is the original, and the row may not be archived yet).
    When it answers that the file is gone (:class:`~luma.errors.NotFoundError`, its 404 or 410, or
    ``fetch_provider`` returns None) the archived copy is used if there is one; else None. Any other
    failure also falls back to an archived copy, and is raised when there is none, so the page can
    say what went wrong instead of "expired".
    """
    try:
        data = fetch_provider(row) if row.result_url else None
    except NotFoundError:
        data = None
    except Exception:
        data = _archived(row, archive)
        if data is None:
            raise
        return data
    return data if data is not None else _archived(row, archive)


def _archived(row: Any, archive: Archive | None) -> bytes | None:
    location = getattr(row, "archived_path", None)
    if archive is None or not location:
        return None
    try:
        return archive.read(location)
    except FileNotFoundError:
        _LOG.warning("The archived copy of task %s is missing at %s.", row.task_id, describe(location))
        return None


def expires_at(row: Any) -> datetime | None:
    """When the provider drops the task's result: completion + 14 days (None: no result yet)."""
    if row.completed_at is None or not row.result_url:
        return None
    completed: datetime = row.completed_at
    return completed + RESULT_LIFETIME


def expiry_text(row: Any, now: datetime) -> str:
    """"expires in 3 days 4 h", "expired 2 days ago"; empty when the task has no result."""
    when = expires_at(row)
    if when is None:
        return ""
    left = when - now
    if left > timedelta(0):
        span = _span(left)
        return f"expires in {span}" if span else "expires in less than a minute"
    # Once gone, the precise hour no longer matters: the largest unit is enough.
    span = _span(-left, units=1)
    return f"expired {span} ago" if span else "expired just now"


def _span(delta: timedelta, *, units: int = 2) -> str:
    """A duration in its ``units`` largest units, rounded down ("3 days 4 h", "5 h 20 min", "7 min")."""
    minutes = int(delta.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{days} {'day' if days == 1 else 'days'}" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    # Start at the largest non-zero unit; a zero unit after it is left out ("3 days", not "3 days 0 h").
    first = next((i for i, part in enumerate(parts) if part), len(parts))
    return " ".join(part for part in parts[first : first + units] if part)
