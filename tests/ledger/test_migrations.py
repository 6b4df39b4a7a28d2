"""Migrations: an empty database reaches head, a second run changes nothing, processes may race,
and upgrading a database that holds rows keeps every row (whatever revisions come after 0001)."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from studio.ledger import Ledger, head_revision
from studio.ledger.migrate import HEAD, alembic_config
from studio.ledger.schema import metadata

FIRST = "0001"


def test_an_empty_database_migrates_to_head(empty_url):
    with Ledger(empty_url) as ledger:
        assert ledger.revision() is None
        assert ledger.migrate() == head_revision()
        assert ledger.revision() == head_revision()
        names = set(sa.inspect(ledger.engine).get_table_names())
    assert {"tasks", "create_keys", "create_slots", "tracker_cycles", "alembic_version"} <= names


def test_the_code_and_the_migrations_describe_the_same_schema(empty_url):
    # Through Alembic, every revision in turn: an empty database is otherwise created from the
    # code's schema directly (see studio.ledger.migrate), which this test is what makes safe.
    from alembic import command

    with Ledger(empty_url) as ledger:
        with ledger.engine.begin() as conn:
            command.upgrade(alembic_config(connection=conn), "head")
        assert ledger.revision() == HEAD
        with ledger.engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert differences == []


def test_head_names_the_newest_migration():
    assert head_revision() == HEAD


def test_a_fresh_or_current_database_is_migrated_without_loading_alembic(empty_url):
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from studio.ledger import Ledger\n"
        f"with Ledger({empty_url!r}) as ledger:\n"
        "    assert ledger.migrate() == ledger.migrate()\n"
        "print('alembic' in sys.modules)\n"
    )
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert shown.stdout.strip() == "False"


def test_a_sqlite_ledger_writes_without_loading_the_postgres_dialect(tmp_path):
    """Importing SQLAlchemy's Postgres dialect costs ~60 ms of a demo server's start-up."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from studio.ledger import Ledger\n"
        f"with Ledger('sqlite:///{tmp_path / 'ledger.db'}') as ledger:\n"
        "    ledger.migrate()\n"
        "    ledger.add_existing(['%032x' % 7], mode='demo')\n"  # an upsert (ON CONFLICT)
        "    ledger.record_cycle('p', now=ledger.now(), lag_seconds=0.0, claimed=0)\n"  # and another
        "print('sqlalchemy.dialects.postgresql' in sys.modules)\n"
    )
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert shown.stdout.strip() == "False"


def test_migrating_twice_changes_nothing(empty_url):
    with Ledger(empty_url) as ledger:
        ledger.migrate()
        statements: list[str] = []
        sa.event.listen(ledger.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        assert ledger.migrate() == head_revision()
    changes = [
        s
        for s in statements
        if s.lstrip().split()[0].upper() in ("CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE")
    ]
    assert changes == []


def _migrate_in_child(url: str, start, results) -> None:
    start.wait(10)
    try:
        with Ledger(url) as ledger:
            results.put(("ok", ledger.migrate()))
    except Exception as error:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put(("error", repr(error)))


def test_processes_migrating_at_once_all_succeed(empty_url):
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    children = [context.Process(target=_migrate_in_child, args=(empty_url, start, results)) for _ in range(3)]
    for child in children:
        child.start()
    start.set()
    outcomes = [results.get(timeout=60) for _ in children]
    for child in children:
        child.join(30)
    assert outcomes == [("ok", head_revision())] * 3
    with Ledger(empty_url) as ledger:
        assert ledger.revision() == head_revision()


def _value(column: sa.Column, n: int, *, aware: bool):
    """A distinct value of the column's type for row ``n`` (key columns of related tables agree)."""
    kind = column.type.python_type
    if kind is bool:
        return n % 2 == 0
    if kind is int:
        return n + 1
    if kind is float:
        return n + 0.5
    if kind is datetime:
        moment = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n, microseconds=123)
        return moment if aware else moment.replace(tzinfo=None)
    return f"{column.name}-{n}"


def test_rows_written_at_the_first_revision_survive_an_upgrade_to_head(empty_url):
    with Ledger(empty_url) as ledger:
        assert ledger.migrate(FIRST) == FIRST
        first = sa.MetaData()
        first.reflect(ledger.engine)
        aware = ledger.engine.dialect.name == "postgresql"
        tables = [t for t in first.sorted_tables if t.name != "alembic_version"]
        with ledger.transaction(write=True) as conn:
            for table in tables:
                conn.execute(
                    table.insert(), [{c.name: _value(c, n, aware=aware) for c in table.columns} for n in range(5)]
                )

        def snapshot() -> dict[str, list[dict]]:
            # Only the columns revision 0001 had, read as raw values: later revisions may add more.
            with ledger.transaction() as conn:
                return {
                    t.name: [
                        dict(r._mapping)
                        for r in conn.execute(
                            sa.select(*(sa.column(c.name) for c in t.columns))
                            .select_from(sa.table(t.name))
                            .order_by(sa.column(t.primary_key.columns.values()[0].name))
                        )
                    ]
                    for t in tables
                }

        before = snapshot()
        assert all(len(rows) == 5 for rows in before.values())
        assert ledger.migrate() == head_revision()
        assert snapshot() == before
