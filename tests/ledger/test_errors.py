"""A database that cannot be used gives one plain error, never a traceback or the URL's password."""

from __future__ import annotations

import socket
import sqlite3

import pytest

from studio.ledger import Ledger, LedgerUnavailable, TaskQuery

SECRET = "s3cret-Pa55"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the block ends: nothing listens there


def _assert_plain(error: LedgerUnavailable) -> None:
    assert SECRET not in str(error) and SECRET not in repr(error)
    assert error.__cause__ is None and error.__suppress_context__  # no driver traceback chained
    assert error.next_step


def test_a_closed_port_is_reported_plainly_without_the_password():
    with Ledger(f"postgresql+psycopg://luma:{SECRET}@127.0.0.1:{_closed_port()}/ledger") as ledger:
        assert "***" in repr(ledger) and SECRET not in repr(ledger)
        assert ledger.ping() is False
        for attempt in (
            ledger.migrate,
            lambda: ledger.query(TaskQuery(mode="live")),
            lambda: ledger.get(task_id="a" * 32),
        ):
            with pytest.raises(LedgerUnavailable) as caught:
                attempt()
            _assert_plain(caught.value)


@pytest.mark.postgres
def test_a_wrong_password_is_reported_without_it(postgres_server):
    url = postgres_server.set(password=SECRET).render_as_string(hide_password=False)
    with Ledger(url) as ledger, pytest.raises(LedgerUnavailable) as caught:
        ledger.migrate()
    _assert_plain(caught.value)


def test_an_sqlite_path_under_a_file_is_reported_plainly(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(LedgerUnavailable) as caught:
        Ledger(f"sqlite:///{blocker / 'ledger.sqlite'}")
    _assert_plain(caught.value)


def test_an_sqlite_path_that_is_a_folder_is_reported_plainly(tmp_path):
    with Ledger(f"sqlite:///{tmp_path}") as ledger:
        assert ledger.ping() is False
        with pytest.raises(LedgerUnavailable) as caught:
            ledger.migrate()
    _assert_plain(caught.value)


def test_a_locked_sqlite_file_says_busy(tmp_path):
    path = tmp_path / "ledger.sqlite"
    with Ledger(f"sqlite:///{path}") as ledger:
        ledger.migrate()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        with Ledger(f"sqlite:///{path}", busy_timeout=0.2) as ledger:
            assert ledger.get(task_id="a" * 32) is None  # readers are not blocked (WAL)
            with pytest.raises(LedgerUnavailable, match="busy"):
                ledger.add_existing(["a" * 32], mode="live")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.parametrize("url", ["not a url", "mysql+pymysql://u:p@localhost/db"])
def test_an_unusable_url_is_reported_plainly(url):
    with pytest.raises(LedgerUnavailable):
        Ledger(url)
