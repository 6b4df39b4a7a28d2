"""Alembic migrations of the task ledger (run them through ``Ledger.migrate()``; no alembic.ini)."""
