"""Fixtures for the ledger tests: every store and limiter test runs on SQLite and on Postgres.

Postgres: the server named by ``LUMA_TEST_POSTGRES_URL`` (default: the local one below, when it
answers). Each test gets a database of its own, copied from a template migrated once per
session (``CREATE DATABASE ... TEMPLATE`` is a file copy: much faster than migrating again).
With no server, the Postgres params are skipped, unless ``LUMA_REQUIRE_POSTGRES=1``: then they fail.
"""

from __future__ import annotations

import os
import time
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from studio.ledger import Ledger

LOCAL_POSTGRES = "postgresql+psycopg://luma:luma@127.0.0.1:5432/luma_test"
START = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


class FakeClock:
    """An aware UTC clock that moves only when told to."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def _server_url() -> URL | None:
    """The Postgres server to test on, or None when none answers."""
    url = sa.make_url(os.environ.get("LUMA_TEST_POSTGRES_URL") or LOCAL_POSTGRES)
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.DBAPIError:
        return None
    finally:
        engine.dispose()
    return url


def _admin(server: URL) -> sa.Engine:
    return sa.create_engine(server, isolation_level="AUTOCOMMIT")


def _create_database(server: URL, *, template: str | None = None) -> URL:
    name = f"ledger_test_{uuid.uuid4().hex[:12]}"
    admin = _admin(server)
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    finally:
        admin.dispose()
    return server.set(database=name)


def _drop_database(server: URL, name: str) -> None:
    # FORCE ends our own leftover sessions, but not an autovacuum worker that happens to be in
    # the database (the test role may not signal it): wait for that one to finish.
    admin = _admin(server)
    try:
        for _ in range(40):
            try:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                return
            except sa.exc.DBAPIError as error:
                last = error
                time.sleep(0.25)
        warnings.warn(f"could not drop the test database {name}: {last.orig}", stacklevel=2)
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_server() -> URL:
    """The Postgres server URL; skips (or fails under LUMA_REQUIRE_POSTGRES=1) without one."""
    url = _server_url()
    if url is None:
        message = "no Postgres server answers at LUMA_TEST_POSTGRES_URL (or the local default)"
        if os.environ.get("LUMA_REQUIRE_POSTGRES") == "1":
            pytest.fail(message + " and LUMA_REQUIRE_POSTGRES=1")
        pytest.skip(message)
    return url


@pytest.fixture(scope="session")
def postgres_template(postgres_server: URL) -> Iterator[str]:
    """A database migrated to head, copied for each test."""
    url = _create_database(postgres_server)
    ledger = Ledger(url)
    ledger.migrate()
    ledger.close()  # a template must have no connections when it is copied
    yield str(url.database)
    _drop_database(postgres_server, str(url.database))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The backend under test: sqlite or postgres."""
    return str(request.param)


@pytest.fixture
def empty_url(backend: str, tmp_path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a new, empty (never migrated) database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        return
    server = request.getfixturevalue("postgres_server")
    url = _create_database(server)
    yield url.render_as_string(hide_password=False)
    _drop_database(server, str(url.database))


@pytest.fixture
def ledger_url(backend: str, tmp_path, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a new database already at the head revision."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
        with Ledger(url) as fresh:
            fresh.migrate()
        yield url
        return
    server = request.getfixturevalue("postgres_server")
    created = _create_database(server, template=request.getfixturevalue("postgres_template"))
    yield created.render_as_string(hide_password=False)
    _drop_database(server, str(created.database))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def ledger(ledger_url: str, clock: FakeClock) -> Iterator[Ledger]:
    """A migrated ledger on a fake clock."""
    with Ledger(ledger_url, clock=clock) as opened:
        yield opened


def task_id(n: int) -> str:
    """A provider-shaped (32-hex) task id, distinct per ``n``."""
    return f"{n:032x}"


@pytest.fixture
def make_task(ledger: Ledger, clock: FakeClock):
    """Writes a created task (a create that was answered) and returns its row."""

    def make(
        n: int,
        *,
        mode: str = "live",
        prompt: str = "make it snow",
        owner: str | None = "alice",
        owner_name: str | None = None,
        key_ref: str | None = "key-1",
    ):
        key = f"req-{mode}-{n}"
        ledger.begin_create(
            key,
            mode=mode,
            prompt=prompt,
            video_url=f"https://example.com/{n}.mp4",
            owner=owner,
            owner_name=owner_name or owner,
            key_ref=key_ref,
        )
        ledger.settle_create(key, state="created", task_id=task_id(n))
        row = ledger.get(request_key=key)
        assert row is not None
        return row

    return make
