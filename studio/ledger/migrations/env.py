"""Alembic's entry point for the ledger's migrations.

:func:`studio.ledger.migrate.upgrade` passes an open connection, already inside the transaction
that holds the migration lock, as ``config.attributes["connection"]``; Alembic then runs inside
that transaction instead of opening its own. A config carrying only ``sqlalchemy.url`` (see
:func:`studio.ledger.migrate.alembic_config`) also works, for ``revision --autogenerate`` and for
offline SQL scripts.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from studio.ledger.schema import metadata

config = context.config
url = config.get_main_option("sqlalchemy.url")


def _configure(**options: object) -> None:
    context.configure(target_metadata=metadata, compare_type=True, **options)  # type: ignore[arg-type]


if context.is_offline_mode():
    _configure(url=url, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()
    else:
        if not url:
            raise RuntimeError("Run the ledger's migrations with Ledger.migrate(), or set sqlalchemy.url.")
        engine = create_engine(url)
        try:
            with engine.connect() as own:
                _configure(connection=own, render_as_batch=own.dialect.name == "sqlite")
                with context.begin_transaction():
                    context.run_migrations()
        finally:
            engine.dispose()
