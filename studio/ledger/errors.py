"""The ledger's errors, drawn once::

    LedgerError              base: catch this to catch every ledger failure
    ├── LedgerUnavailable    the database could not be reached, opened or written (or stayed locked)
    └── LedgerConflict       the change contradicts a row already there (e.g. a task id on another row)

Messages are plain sentences for a page banner. None ever contains the database URL's
password: they are built from our own words and the driver's first line, scrubbed.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["LedgerConflict", "LedgerError", "LedgerUnavailable"]


class LedgerError(Exception):
    """Base of every error raised by ``studio.ledger``."""

    #: One sentence a user can act on.
    next_step: ClassVar[str] = "Try again; if it keeps failing, ask whoever runs the dashboard."

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class LedgerUnavailable(LedgerError):
    """The task ledger's database could not be used right now."""

    next_step = (
        "The task list is stored in a database that cannot be reached right now: check the ledger "
        "database setting (URL, server, disk), then reload the page. No task was lost on the provider."
    )


class LedgerConflict(LedgerError):
    """The requested change contradicts what the ledger already records."""

    next_step = "Check the task id: it is already listed, so there is nothing to add."
