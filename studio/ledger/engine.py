"""One SQLAlchemy engine per ledger URL, tuned per backend, and the one place errors are translated.

SQLite (the embedded default) is shared by the threads *and processes* of a server:

* WAL, so readers never wait for the writer and the writer never waits for readers;
* a busy timeout, so a writer waits its turn instead of failing at once;
* every write transaction starts with ``BEGIN IMMEDIATE``. pysqlite's own deferred ``BEGIN``
  takes the write lock only at the first write, and a transaction that read first and then
  finds that another process wrote meanwhile fails with "database is locked" *without*
  waiting. Taking the lock up front makes the busy timeout apply. Reads keep a deferred BEGIN;
* foreign keys on (SQLite leaves them off per connection).

Postgres connects with a short connect timeout and a pre-ping, so a server restart costs one
reconnect rather than an error on the page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.pool import StaticPool

from .errors import LedgerUnavailable

__all__ = ["BUSY_TIMEOUT", "WRITE", "make_engine", "redacted", "translate_errors", "upsert"]

# Seconds a SQLite writer waits for another one. Writes here are single short transactions
# (milliseconds), so this only runs out when something holds the lock abnormally long.
BUSY_TIMEOUT: Final = 10.0
# Seconds to wait for a Postgres server before saying it is unavailable.
CONNECT_TIMEOUT: Final = 5
# The connection option that makes a SQLite transaction start with BEGIN IMMEDIATE.
WRITE: Final = "ledger_write"


def redacted(url: URL) -> str:
    """The URL as text with any password hidden."""
    return url.render_as_string(hide_password=True)


def upsert(backend: str) -> Callable[[sa.Table], Any]:
    """The backend's ``insert`` (the one whose statements take ``ON CONFLICT``; both spell it alike).

    Imported per call rather than at the top: importing the Postgres dialect costs ~60 ms of a
    SQLite server's start-up, while the first page waits (python -m bench --only cold).
    """
    if backend == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


def make_engine(url: URL, *, busy_timeout: float = BUSY_TIMEOUT) -> Engine:
    """An engine for ``url`` (SQLite file or memory, or Postgres), with the settings above."""
    try:
        if url.get_backend_name() == "sqlite":
            return _sqlite_engine(url, busy_timeout)
        return sa.create_engine(
            url,
            pool_pre_ping=True,
            connect_args={"connect_timeout": CONNECT_TIMEOUT} if url.get_backend_name() == "postgresql" else {},
        )
    except (exc.ArgumentError, exc.NoSuchModuleError) as error:
        raise LedgerUnavailable(f"The ledger URL {redacted(url)} is not usable: {_first_line(error, url)}") from None


def _sqlite_engine(url: URL, busy_timeout: float) -> Engine:
    database = url.database or ""
    in_memory = database in ("", ":memory:")
    if not in_memory:
        try:
            # The default path lives in a folder that does not exist on a fresh checkout.
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise LedgerUnavailable(
                f"The ledger's SQLite folder for {redacted(url)} could not be created ({error.strerror})."
            ) from None
    engine = sa.create_engine(
        url,
        connect_args={"timeout": busy_timeout, "check_same_thread": False},
        # An in-memory database exists once per connection: share one.
        **({"poolclass": StaticPool} if in_memory else {}),
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let the begin hook below emit BEGIN itself (pysqlite would otherwise issue a deferred one).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                # Persistent in the file; repeating it on an already-WAL file is a cheap no-op.
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(WRITE) else "BEGIN")

    return engine


def _first_line(error: BaseException, url: URL) -> str:
    """The driver's first line of explanation, with the password scrubbed should it appear."""
    original = getattr(error, "orig", None) or error
    text = (str(original).strip().splitlines() or [type(original).__name__])[0]
    if url.password:
        text = text.replace(str(url.password), "***")
    return text[:300]


@contextmanager
def translate_errors(url: URL) -> Iterator[None]:
    """Turn a failure to reach, open or lock the database into :class:`LedgerUnavailable`.

    Constraint violations (``IntegrityError``) are not availability problems and pass through.
    """
    try:
        yield
    except (exc.OperationalError, exc.InterfaceError, exc.TimeoutError) as error:
        raise LedgerUnavailable(_message(error, url)) from None
    except exc.DBAPIError as error:
        if error.connection_invalidated:
            raise LedgerUnavailable(_message(error, url)) from None
        raise
    except OSError as error:  # e.g. the SQLite file's folder vanished
        raise LedgerUnavailable(f"The task ledger at {redacted(url)} could not be opened ({error.strerror}).") from None


def _message(error: BaseException, url: URL) -> str:
    detail = _first_line(error, url)
    if "locked" in detail.lower():
        return f"The task ledger at {redacted(url)} stayed busy for too long ({detail}); try again in a moment."
    return f"The task ledger at {redacted(url)} could not be used: {detail}."
