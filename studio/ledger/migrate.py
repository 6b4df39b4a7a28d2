"""Running the ledger's Alembic migrations from code, safely from several processes at once.

Every server process calls :func:`upgrade` at start-up, so two may race on an empty database.
The whole upgrade (reading the current revision, the DDL, stamping the new revision) runs in
one transaction that first takes a lock: a transaction-scoped advisory lock on Postgres, the
write lock (``BEGIN IMMEDIATE``) on SQLite. The second process waits, then reads the revision the
first one committed and has nothing left to do, instead of failing on "table already exists".
Both backends have transactional DDL, so a failed upgrade leaves the previous revision intact.

Alembic itself (about 0.3 s to import) is loaded only when there is something to migrate from:
a database already at :data:`HEAD` is left as it is, and an empty one gets the schema the code
describes (``schema.metadata``, which ``tests/ledger/test_migrations.py`` holds equal to what the
migrations build) stamped at ``HEAD``, as Alembic's own "create_all, then stamp" recipe does.
That is most starts of a server, and all of a demo's first start.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .engine import WRITE
from .schema import metadata

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["HEAD", "MIGRATIONS", "alembic_config", "current_revision", "head_revision", "upgrade"]

HEAD: Final = "0004"
"""The newest revision in migrations/versions (a test holds it equal to Alembic's head)."""
_VERSIONS: Final = "alembic_version"

MIGRATIONS: Final = Path(__file__).with_name("migrations")
# Any constant bigint works; this one spells "LUMALEDG" so it is recognisable in pg_locks.
_ADVISORY_LOCK: Final = 0x4C554D414C454447


def alembic_config(url: str | None = None, *, connection: Connection | None = None) -> Config:
    """An Alembic config built in code (no alembic.ini): the packaged scripts, and a URL or connection."""
    from alembic.config import Config

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
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the ledger's migrations have no head revision"
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at (None: never migrated)."""
    if not sa.inspect(connection).has_table(_VERSIONS):
        return None
    versions = connection.execute(sa.text(f"SELECT version_num FROM {_VERSIONS}")).scalars().all()
    if len(versions) != 1:  # none, or a branched history this code never writes: let Alembic say
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(connection).get_current_revision()
    return str(versions[0])


def _create_at_head(connection: Connection) -> None:
    """An empty database: the tables as the code describes them, stamped at HEAD."""
    metadata.create_all(connection)
    versions = sa.Table(
        _VERSIONS, sa.MetaData(),
        sa.Column("version_num", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )
    versions.create(connection)
    connection.execute(versions.insert().values(version_num=HEAD))


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the database to ``revision`` under the migration lock; returns the revision it is at."""
    with engine.connect() as connection:
        connection.execution_options(**{WRITE: True})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
            at = current_revision(connection)
            if revision in ("head", HEAD) and at == HEAD:
                pass
            elif revision in ("head", HEAD) and at is None and not sa.inspect(connection).get_table_names():
                _create_at_head(connection)
            else:
                from alembic import command

                command.upgrade(alembic_config(connection=connection), revision)
        return current_revision(connection)
