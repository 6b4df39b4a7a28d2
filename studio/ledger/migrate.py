"""Running the ledger's Alembic migrations from code, safely from several processes at once.

Every server process calls :func:`upgrade` at start-up, so two may race on an empty database.
The whole upgrade (reading the current revision, the DDL, stamping the new revision) runs in
one transaction that first takes a lock: a transaction-scoped advisory lock on Postgres, the
write lock (``BEGIN IMMEDIATE``) on SQLite. The second process waits, then reads the revision the
first one committed and has nothing left to do, instead of failing on "table already exists".
Both backends have transactional DDL, so a failed upgrade leaves the previous revision intact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from .engine import WRITE

__all__ = ["MIGRATIONS", "alembic_config", "current_revision", "head_revision", "upgrade"]

MIGRATIONS: Final = Path(__file__).with_name("migrations")
# Any constant bigint works; this one spells "LUMALEDG" so it is recognisable in pg_locks.
_ADVISORY_LOCK: Final = 0x4C554D414C454447


def alembic_config(url: str | None = None, *, connection: Connection | None = None) -> Config:
    """An Alembic config built in code (no alembic.ini): the packaged scripts, and a URL or connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    if url is not None:
        # ConfigParser would read "%" as interpolation.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision the packaged migrations define."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the ledger's migrations have no head revision"
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None: never migrated)."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the database to ``revision`` under the migration lock; returns the revision it is at."""
    with engine.connect() as connection:
        connection.execution_options(**{WRITE: True})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
            command.upgrade(alembic_config(connection=connection), revision)
        return current_revision(connection)
