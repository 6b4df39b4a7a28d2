"""Callbacks the provider POSTs to ``callBackUrl``: parsing, signing and verification.

With signed callbacks turned on (provider settings page), each POST carries
``X-Webhook-Timestamp`` (unix seconds) and ``X-Webhook-Signature``, the standard base64 of
HMAC-SHA256(key, ``taskId + "." + timestamp``). Only the task id and the timestamp are signed,
not the body, so a verified callback proves *which task* the provider is talking about and
*when*; handlers should still read the outcome with ``get_task`` before acting on money matters.
The same task may be delivered more than once: handle callbacks idempotently.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterable, Mapping
from typing import Any

from ._constants import SIGNATURE_WINDOW_SECONDS
from .errors import ConfigurationError, SignatureError
from .models import CallbackEvent, parse_callback

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "parse_callback",
    "sign",
    "signature_headers",
    "verify_callback",
    "verify_signature",
]

TIMESTAMP_HEADER = "X-Webhook-Timestamp"
SIGNATURE_HEADER = "X-Webhook-Signature"

HeaderValue = str | bytes
Headers = Mapping[str, HeaderValue] | Iterable[tuple[str, HeaderValue]]


def _key_bytes(key: str | bytes) -> bytes:
    if isinstance(key, bytes):
        raw = key
    elif isinstance(key, str):
        raw = key.encode("utf-8")
    else:
        raise ConfigurationError("The webhook HMAC key must be text.")
    if not raw.strip():
        raise ConfigurationError(
            "No webhook HMAC key is configured: copy it from the provider's settings page."
        )
    return raw


def sign(task_id: str, timestamp: int | str, key: str | bytes) -> str:
    """The provider's signature for ``task_id`` at ``timestamp`` (unix seconds)."""
    message = f"{task_id}.{timestamp}".encode()
    digest = hmac.new(_key_bytes(key), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_headers(
    task_id: str, key: str | bytes, *, timestamp: int | None = None
) -> dict[str, str]:
    """Both signature headers for a callback about ``task_id`` (used by the emulator)."""
    stamp = int(time.time()) if timestamp is None else int(timestamp)
    return {TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: sign(task_id, stamp, key)}


def _header(headers: Headers, name: str) -> str | None:
    """Case-insensitive header lookup over a dict, an ``httpx.Headers`` or a list of pairs."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    wanted = name.lower()
    for key, value in items:
        if isinstance(key, bytes):
            key = key.decode("latin-1")
        if str(key).lower() == wanted:
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            text = str(value).strip()
            return text or None
    return None


def verify_signature(
    task_id: str,
    timestamp: str | int | None,
    signature: str | None,
    key: str | bytes,
    *,
    now: float | None = None,
    window: float = SIGNATURE_WINDOW_SECONDS,
) -> None:
    """Raise :class:`SignatureError` unless ``signature`` is the provider's for this task and time.

    The timestamp must lie within ``window`` seconds of ``now`` in either direction: an old one
    could be a replay, and one from the future means the clocks disagree too much to judge.
    """
    key_bytes = _key_bytes(key)
    if timestamp is None or timestamp == "":
        raise SignatureError(f"The callback has no {TIMESTAMP_HEADER} header.")
    if not signature:
        raise SignatureError(f"The callback has no {SIGNATURE_HEADER} header.")
    text = str(timestamp).strip()
    if not text.isdigit():
        raise SignatureError(f"The callback's {TIMESTAMP_HEADER} is not a whole number of seconds.")
    stamp = int(text)
    current = time.time() if now is None else now
    age = current - stamp
    if age > window:
        raise SignatureError(
            f"The callback's timestamp is {age:.0f} s old, more than the {window:.0f} s allowed; "
            "it may be a replay. Check the server clock if this repeats."
        )
    if -age > window:
        raise SignatureError(
            f"The callback's timestamp is {-age:.0f} s in the future, more than the {window:.0f} s "
            "allowed. Check the server clock."
        )
    expected = hmac.new(key_bytes, f"{task_id}.{text}".encode(), hashlib.sha256).digest()
    expected_b64 = base64.b64encode(expected)
    # compare_digest on bytes: a str with non-ASCII characters would raise TypeError instead.
    if not hmac.compare_digest(expected_b64, signature.strip().encode("utf-8")):
        raise SignatureError("The callback's signature does not match: it was not signed with this key.")


def verify_callback(
    headers: Headers,
    body: bytes | str | Mapping[str, Any],
    key: str | bytes,
    *,
    now: float | None = None,
    window: float = SIGNATURE_WINDOW_SECONDS,
) -> CallbackEvent:
    """Check a signed callback and return its parsed outcome.

    Raises :class:`SignatureError` for missing headers, a timestamp outside ``window`` or a
    wrong signature; :class:`~luma.errors.MalformedResponseError` when the body is not a
    callback (no task id to check the signature against); :class:`ConfigurationError` when
    ``key`` is empty. Header names are matched case-insensitively.
    """
    _key_bytes(key)
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if timestamp is None:
        raise SignatureError(f"The callback has no {TIMESTAMP_HEADER} header.")
    if signature is None:
        raise SignatureError(f"The callback has no {SIGNATURE_HEADER} header.")
    event = parse_callback(body)
    verify_signature(event.task_id, timestamp, signature, key, now=now, window=window)
    return event
