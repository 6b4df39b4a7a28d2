"""Where the emulator keeps its state between runs: small JSON files in its data dir.

A provider remembers its tasks across its own restarts, so the emulator does too: a new
emulator on the same data dir answers for every task, credit balance, upload and download link
the previous one knew. Layout, under ``data_dir/state/``:

- ``tasks/<taskId>.json``: one task record, rewritten whole on every change of that task;
- ``credits.json``: credits left per key hash, rewritten when a create charges;
- ``uploads.json``: upload records by file path, rewritten when an upload is added or expires;
- ``links.jsonl``: one line per download-url link (links never change, so they are appended);
- ``lock``: held (``flock``) while an emulator of this process uses the dir, so an emulator in
  another process is refused (:class:`DataDirInUse`).

Every rewrite goes to a temp file that is then renamed over the old one (``os.replace``), so a
reader, or a run after a crash, only ever finds a complete file. Nothing is fsynced: a killed
process loses nothing it wrote (the kernel keeps the pages), a power cut may lose the last
writes, which is plenty for an emulator and keeps each write well under a millisecond. The
create count is not stored here: ``creates.jsonl`` (one line per accepted create) already is it.

One live emulator per data dir is the supported setup. A second one *in the same process* is
let through, because the dashboard builds one emulator per configuration and two configurations
may name the same dir: it is marked :attr:`StateStore.shared`, loads what is stored but leaves
unfinished work to the emulator that was there first; while both are open, each reads from disk
the tasks the other runs (:meth:`StateStore.crowded`, :meth:`StateStore.load_task`), and the last
write of ``credits.json`` or ``uploads.json`` wins.

The store knows JSON shapes, not the emulator's records: the backend turns its records into
plain dicts and back. Callers serialise writes (the backend writes under its own lock); reads
happen once, when the emulator starts.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

if sys.platform != "win32":
    import fcntl

__all__ = ["STATE_VERSION", "DataDirInUse", "StateStore", "count_lines"]

log = logging.getLogger(__name__)

#: Format version written into every state file; a file with another version is ignored.
STATE_VERSION = 1


class DataDirInUse(RuntimeError):
    """An emulator in another process is using this data dir."""


@dataclass
class _Hold:
    """This process's lock on one data dir, shared by the stores open on it."""

    handle: IO[str] | None
    """The locked file (None where there is no ``flock``)."""
    users: int = 0
    """Stores of this process open on the dir."""


# flock locks belong to an open file, so one per process and dir: its stores share it.
_HELD: dict[Path, _Hold] = {}
_HELD_LOCK = threading.Lock()


def _acquire(path: Path, data_dir: Path) -> IO[str] | None:
    if sys.platform == "win32":
        return None  # no flock there; the rule in the docstring still stands
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open until the last store closes
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise DataDirInUse(
            f"another emulator (process {holder}) is using the data dir {data_dir}; "
            "stop it first, or give this one its own data dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))  # only for the error above: the flock is the lock
    handle.flush()
    return handle


class StateStore:
    """The emulator's state files under ``data_dir/state`` (see the module docstring).

    Creating one takes the data dir's lock: :class:`DataDirInUse` when an emulator in another
    process holds it. A process that dies releases it with its file descriptors, so a crash
    never leaves a dir locked. :meth:`close` releases it (once the last store of this process on
    the dir is closed); writes after :meth:`close` are ignored.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.root = self.data_dir / "state"
        self.tasks_dir = self.root / "tasks"
        self.tasks_dir.mkdir(parents=True, exist_ok=True)
        with _HELD_LOCK:
            hold = _HELD.get(self.data_dir)
            if hold is None:
                hold = _HELD[self.data_dir] = _Hold(_acquire(self.root / "lock", self.data_dir))
            #: Another store of this process was open on the dir when this one was made: that
            #: one's emulator, not this one's, finishes the work earlier runs left unfinished.
            self.shared = hold.users > 0
            hold.users += 1
        self.closed = False

    def crowded(self) -> bool:
        """Whether another store of this process is open on the same dir right now."""
        with _HELD_LOCK:
            hold = _HELD.get(self.data_dir)
            return hold is not None and hold.users > 1

    def close(self) -> None:
        """Stop writing, and release the lock if no other store of this process uses the dir."""
        with _HELD_LOCK:
            if self.closed:
                return
            self.closed = True
            hold = _HELD[self.data_dir]
            hold.users -= 1
            if hold.users == 0:
                del _HELD[self.data_dir]
                if hold.handle is not None:
                    hold.handle.close()  # closing the descriptor releases the flock

    # -- writing ----------------------------------------------------------------------------------

    def _replace(self, path: Path, value: Any) -> None:
        if self.closed:
            return
        # Per thread: two emulators sharing the dir (see the module docstring) never share a temp file.
        tmp = path.with_name(f"{path.name}.{threading.get_ident()}.tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump({"version": STATE_VERSION, "data": value}, out, separators=(",", ":"))
        os.replace(tmp, path)

    def save_task(self, task_id: str, record: dict[str, Any]) -> None:
        """Write one task's record (atomically, replacing the previous one)."""
        self._replace(self.tasks_dir / f"{task_id}.json", record)

    def save_credits(self, balances: dict[str, int]) -> None:
        """Write the credits left per key hash."""
        self._replace(self.root / "credits.json", balances)

    def save_uploads(self, uploads: dict[str, dict[str, Any]]) -> None:
        """Write every live upload record, by its file path."""
        self._replace(self.root / "uploads.json", uploads)

    def add_link(self, token: str, record: dict[str, Any]) -> None:
        """Append one download link (a line; a torn last line is skipped when read)."""
        if self.closed:
            return
        line = json.dumps({"version": STATE_VERSION, "token": token, "data": record}, separators=(",", ":"))
        with open(self.root / "links.jsonl", "a", encoding="utf-8") as out:
            out.write(line + "\n")

    # -- reading (once, at start) -----------------------------------------------------------------

    def _read(self, path: Path) -> Any:
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("emulator: ignoring the unreadable state file %s (%s)", path, exc)
            return None
        if not isinstance(stored, dict) or stored.get("version") != STATE_VERSION:
            log.warning("emulator: ignoring the state file %s (not format version %s)", path, STATE_VERSION)
            return None
        return stored.get("data")

    def remove_stale(self) -> None:
        """Delete temp files a process left when it died mid-write (call before anything writes)."""
        for stale in self.root.rglob("*.tmp"):
            stale.unlink(missing_ok=True)

    def load_task(self, task_id: str) -> dict[str, Any] | None:
        """One stored task record, or None (``task_id`` must be a checked id, never raw input)."""
        record = self._read(self.tasks_dir / f"{task_id}.json")
        return record if isinstance(record, dict) else None

    def load_tasks(self) -> list[dict[str, Any]]:
        """Every stored task record (unreadable files are skipped with a warning)."""
        records = []
        for path in sorted(self.tasks_dir.glob("*.json")):
            record = self._read(path)
            if isinstance(record, dict):
                records.append(record)
        return records

    def load_credits(self) -> dict[str, int]:
        """Credits left per key hash."""
        stored = self._read(self.root / "credits.json")
        if not isinstance(stored, dict):
            return {}
        return {str(k): int(v) for k, v in stored.items() if isinstance(v, int)}

    def load_uploads(self) -> dict[str, dict[str, Any]]:
        """Upload records by file path."""
        stored = self._read(self.root / "uploads.json")
        if not isinstance(stored, dict):
            return {}
        return {str(k): v for k, v in stored.items() if isinstance(v, dict)}

    def load_links(self) -> dict[str, dict[str, Any]]:
        """Download links by token."""
        links: dict[str, dict[str, Any]] = {}
        path = self.root / "links.jsonl"
        if not path.exists():
            return links
        _end_torn_line(path)
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                stored = json.loads(line)
            except ValueError:
                continue  # the line being written when a process died
            if isinstance(stored, dict) and stored.get("version") == STATE_VERSION and isinstance(stored.get("data"), dict):
                links[str(stored.get("token"))] = stored["data"]
        return links


def count_lines(path: Path) -> int:
    """Complete JSON lines of a ``.jsonl`` file; a torn last line is ended so appends start clean."""
    if not path.exists():
        return 0
    _end_torn_line(path)
    count = 0
    for line in path.read_bytes().splitlines():
        try:
            json.loads(line)
        except ValueError:
            continue  # the line being written when a process died
        count += 1
    return count


def _end_torn_line(path: Path) -> None:
    # A process killed mid-append leaves a line without its newline; the next append would be
    # glued to it and both lost.
    with open(path, "rb+") as handle:
        if handle.seek(0, os.SEEK_END) == 0:
            return
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) != b"\n":
            handle.write(b"\n")
