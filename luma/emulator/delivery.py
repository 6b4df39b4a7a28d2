"""Callback delivery: the emulator POSTs a finished task's outcome to its ``callBackUrl``.

Mirrors the provider's documented behaviour: a JSON POST with a 15 s timeout, retried after a
failure (three retries after the first attempt, with a short doubling backoff), optionally signed
with ``X-Webhook-Timestamp`` / ``X-Webhook-Signature`` (HMAC-SHA256 over ``taskId.timestamp``,
computed by :func:`luma.callbacks.sign`, so the emulator and the verifier share one definition).
The bodies use the callback's own field names: ``promptJson`` (not ``paramJson``), no
``originUrls``, no ``successFlag``, no times.

Callbacks go only to public addresses: the default transport is a
:func:`luma.egress.guarded_transport`, and a callback URL whose host is a private IP literal is
refused before any request. A refusal is not retried (the address will not become public by
waiting): one attempt, outcome ``refused: private address``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from .._constants import USER_AGENT
from ..egress import AddressRefused, EgressPolicy, guarded_transport, refusal_of

__all__ = [
    "CALLBACK_BACKOFF",
    "CALLBACK_RETRIES",
    "CALLBACK_TIMEOUT",
    "FAILURE_MESSAGE",
    "REFUSED",
    "SUCCESS_MESSAGE",
    "CallbackSender",
    "DeliveryOutcome",
    "failure_body",
    "success_body",
]

SUCCESS_MESSAGE = "Modify record generated successfully."
FAILURE_MESSAGE = "Modify record generation failed."
#: The provider's documented per-attempt timeout, in seconds.
CALLBACK_TIMEOUT = 15.0
#: Retries after the first attempt ("stops after 3 consecutive failed retries").
CALLBACK_RETRIES = 3
#: First pause between attempts, doubled after each failure; short so demos settle quickly.
CALLBACK_BACKOFF = 0.5
#: The outcome of a callback to a private or local address (never retried).
REFUSED = "refused: private address"


def success_body(task_id: str, prompt_json: str, result_urls: list[str]) -> dict[str, Any]:
    """The documented success callback body."""
    return {
        "code": 200,
        "msg": SUCCESS_MESSAGE,
        "data": {"taskId": task_id, "promptJson": prompt_json, "resultUrls": list(result_urls)},
    }


def failure_body(task_id: str, prompt_json: str, code: int = 500) -> dict[str, Any]:
    """The documented failure callback body (code 500 in the callbacks page, 501 in the quickstart)."""
    return {"code": code, "msg": FAILURE_MESSAGE, "data": {"taskId": task_id, "promptJson": prompt_json}}


@dataclass(frozen=True)
class DeliveryOutcome:
    """How one callback delivery ended."""

    delivered: bool
    """True once an attempt got an HTTP 2xx answer."""
    attempts: int
    """Attempts made, the first one included."""
    detail: str
    """The last attempt's HTTP status or error kind, for logs and tests (never a secret)."""


class CallbackSender:
    """POSTs callback bodies with retries, through an injectable transport.

    ``egress`` decides which addresses may be called: the default transport is guarded by it,
    and a URL whose host is a refused IP literal is never sent, whatever the transport.
    """

    def __init__(
        self,
        transport: httpx.BaseTransport | None = None,
        *,
        egress: EgressPolicy | None = None,
        signing_key: Callable[[], str | None] | str | None = None,
        timeout: float = CALLBACK_TIMEOUT,
        retries: int = CALLBACK_RETRIES,
        backoff: float = CALLBACK_BACKOFF,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], object] = time.sleep,  # what it returns is ignored (Event.wait fits)
        cancelled: Callable[[], bool] = lambda: False,
    ) -> None:
        # An explicit transport also keeps httpx from routing through environment proxies:
        # the provider calls the callback URL directly, so the emulator does too.
        self._egress = egress if egress is not None else EgressPolicy()
        self._client = httpx.Client(
            transport=transport if transport is not None else guarded_transport(self._egress),
            timeout=httpx.Timeout(timeout),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
        )
        # A callable lets the emulator change its signing key at run time without a new sender.
        self._signing_key = signing_key if callable(signing_key) else (lambda: signing_key)
        self._retries = retries
        self._backoff = backoff
        self._clock = clock
        self._sleep = sleep
        self._cancelled = cancelled
        self._timeout = timeout

    def send(
        self,
        url: str,
        body: dict[str, Any],
        *,
        retries: int | None = None,
        backoff: float | None = None,
        timeout: float | None = None,
    ) -> DeliveryOutcome:
        """Deliver ``body`` to ``url``; returns after success or after the last retry failed.

        ``retries``, ``backoff`` and ``timeout`` override the constructor's values for this call.
        """
        retries = self._retries if retries is None else retries
        backoff = self._backoff if backoff is None else backoff
        timeout = self._timeout if timeout is None else timeout
        payload = json.dumps(body, separators=(",", ":")).encode()
        task_id = str(body.get("data", {}).get("taskId", ""))
        try:
            # Before httpx parses the URL: some private spellings (0177.0.0.1) are not URLs to it.
            parts = urlsplit(url)
            self._egress.check_literal(parts.hostname or "", parts.port)
        except AddressRefused:
            return DeliveryOutcome(False, 1, REFUSED)
        except ValueError:
            return DeliveryOutcome(False, 1, "invalid callback URL")
        detail = "not attempted"
        attempts = 0
        for attempt in range(retries + 1):
            if attempt:
                self._sleep(backoff * (2 ** (attempt - 1)))
            if self._cancelled():
                detail = "cancelled (the emulator is closing)"
                break
            attempts += 1
            headers = {"Content-Type": "application/json"}
            key = self._signing_key()
            if key:
                from ..callbacks import sign  # the client owner's module defines the signature

                timestamp = str(int(self._clock()))
                headers["X-Webhook-Timestamp"] = timestamp
                headers["X-Webhook-Signature"] = sign(task_id, timestamp, key)
            try:
                response = self._client.post(url, content=payload, headers=headers, timeout=timeout)
            except httpx.TimeoutException:
                detail = "timed out"
                continue
            except httpx.HTTPError as exc:
                if refusal_of(exc) is not None:
                    # A name that resolves to a private address stays private: do not retry.
                    return DeliveryOutcome(False, attempts, REFUSED)
                detail = f"connection failed ({type(exc).__name__})"
                continue
            except httpx.InvalidURL:
                return DeliveryOutcome(False, attempts, "invalid callback URL")
            if 200 <= response.status_code < 300:
                return DeliveryOutcome(True, attempts, f"HTTP {response.status_code}")
            detail = f"HTTP {response.status_code}"
        return DeliveryOutcome(False, attempts, detail)

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._client.close()
