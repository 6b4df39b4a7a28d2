"""Sending a create that is written down first: the ledger's row exists before the request leaves.

:func:`send_written` is the only way the product sends a create. It writes the row (state
"creating") under a unique request key, sends only if this call wrote it, and settles the row
with the answer: "created" with the task id, "failed" when the request provably never left, or
"unknown" when the provider may have created (and charged for) it. If the server dies between
the send and the settle, the row stays "creating" and the next start marks it "unknown": the
provider may have charged for it, so it is never sent again on its own.

If the database cannot be reached before sending, nothing is sent (:class:`NotSent`). If it
fails *after* the provider answered, the answer is not lost: it is kept in memory and written by
the tracker's next cycle (:class:`SettleQueue`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from luma.errors import LumaError, MalformedResponseError, RequestTimeout, TransportError

from .ledger.sets import OverBudget
from .sets import short_of_credits

__all__ = ["BudgetRefused", "CreditsShort", "NotSent", "SettleQueue", "send_claimed", "send_written"]

_LOG = logging.getLogger("luma.creates")

State = Literal["created", "failed", "unknown"]


class NotSent(LumaError):
    """The create was not sent: it could not be written down first."""

    next_step = "Nothing was sent and nothing was charged. Try again in a moment."


class BudgetRefused(NotSent):
    """The create was not sent: it does not fit a spending budget (``[budget]``)."""

    next_step = (
        "Nothing was sent and nothing was charged. Budgets renew at midnight UTC (daily) and on "
        "the 1st (monthly); whoever runs the studio can raise them under [budget]."
    )

    def __init__(self, problems: list[str]) -> None:
        super().__init__("Not sent: " + " ".join(problems))
        #: Each reason, in words.
        self.problems = problems


class CreditsShort(BudgetRefused):
    """The create was not sent: the account's balance cannot pay for it."""

    next_step = "Nothing was sent and nothing was charged. Top up the account's credits, then try again."


class SettleQueue:
    """Create answers the ledger could not take at once; written later, never dropped."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def put(self, request_key: str, **settle: Any) -> None:
        """Keep an answer for ``request_key`` until :meth:`flush` writes it."""
        with self._lock:
            self._items[request_key] = settle

    def flush(self, ledger: Any) -> int:
        """Write every kept answer the ledger takes now; returns how many were written."""
        with self._lock:
            items = list(self._items.items())
        written = 0
        for request_key, settle in items:
            try:
                ledger.settle_create(request_key, **settle)
            except Exception as err:  # noqa: BLE001 - still down: kept for the next flush
                _LOG.warning("A create's answer is still waiting for the ledger (%s).", type(err).__name__)
                break
            with self._lock:
                self._items.pop(request_key, None)
            written += 1
        return written

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


def _maybe_created(err: BaseException) -> bool:
    if isinstance(err, LumaError):
        return isinstance(err, MalformedResponseError) or (isinstance(err, TransportError) and err.request_sent)
    return True  # not ours to understand: assume the worst


def _settle(ledger: Any, queue: SettleQueue | None, request_key: str, **settle: Any) -> None:
    for attempt in range(3):
        try:
            ledger.settle_create(request_key, **settle)
            return
        except Exception as err:  # noqa: BLE001 - the answer must not be lost: retried, then queued
            if attempt < 2:
                time.sleep(0.2 * (attempt + 1))
                continue
            _LOG.warning("The ledger did not take a create's answer (%s); it is kept and written later.", err)
            if queue is not None:
                queue.put(request_key, **settle)


def send_written(
    ledger: Any,
    request_key: str,
    fields: dict[str, Any],
    create: Callable[[], str],
    *,
    queue: SettleQueue | None = None,
    first_check: Callable[[], datetime] | None = None,
    wait: float = 90.0,
    poll: float = 0.25,
) -> str:
    """Write the create down, send it if this call wrote it, settle it; returns the task id.

    ``fields`` are :meth:`Ledger.begin_create`'s keyword arguments. Raises the create's own error
    (after settling the row "failed" or "unknown"), :class:`NotSent` when the row could not be
    written, or, when another caller holds the key, that caller's outcome once it is settled.
    ``first_check()`` says when the tracker should first read the created task (default: at once).
    """
    try:
        claim = ledger.begin_create(request_key, **fields)
    except OverBudget as err:
        raise (CreditsShort if short_of_credits(err.problems) else BudgetRefused)(err.problems) from None
    except Exception as err:  # noqa: BLE001 - whatever the database says, nothing was sent
        raise NotSent(f"The task ledger could not record the task ({err}), so nothing was sent.") from None
    if not claim.mine:
        return _await_settled(ledger, request_key, wait=wait, poll=poll)
    return send_claimed(ledger, request_key, create, queue=queue, first_check=first_check)


def send_claimed(
    ledger: Any,
    request_key: str,
    create: Callable[[], str],
    *,
    queue: SettleQueue | None = None,
    first_check: Callable[[], datetime] | None = None,
) -> str:
    """Send a create whose row this caller holds in state "creating" (written ahead, or a queued
    take it started), and settle the row with the answer; returns the task id or raises."""
    try:
        task_id = create()
    except BaseException as err:
        state: State = "unknown" if _maybe_created(err) else "failed"
        message = err.message if isinstance(err, LumaError) else "The create was interrupted before its answer came."
        _settle(ledger, queue, request_key, state=state, create_error=message)
        raise
    when = first_check() if first_check is not None else None
    _settle(ledger, queue, request_key, state="created", task_id=task_id, first_check=when)
    return task_id


def _await_settled(ledger: Any, request_key: str, *, wait: float, poll: float) -> str:
    """Another caller (a process) is sending this very create: wait for its answer, never resend."""
    deadline = time.monotonic() + wait
    while True:
        row = ledger.get(request_key=request_key)
        if row is not None and row.state == "created" and row.task_id:
            return str(row.task_id)
        if row is not None and row.state == "failed":
            raise LumaError(row.create_error or "The task was not created.")
        if row is not None and row.state == "unknown":
            raise RequestTimeout(row.create_error or "The create got no usable answer: the task may exist.")
        if time.monotonic() > deadline:
            raise RequestTimeout("Another server process is still sending this create; its outcome is unknown.")
        time.sleep(poll)
