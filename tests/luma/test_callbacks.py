"""Signed callbacks: the spec's test vector, and every way a callback must be refused."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

import luma.models
from luma.callbacks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    parse_callback,
    sign,
    signature_headers,
    verify_callback,
    verify_signature,
)
from luma.errors import ConfigurationError, MalformedResponseError, SignatureError

# The spec's test vector.
KEY = "test-key"
TASK = "ee9c2715375b7837f8bb51d641ff5863"
STAMP = 1769670760
SIGNATURE = "kaRdMyPIATX8gQVYxP8Mn46UnMuqft8BZvnk1FLpda4="


def _body(**data: Any) -> bytes:
    return json.dumps(
        {"code": 200, "msg": "Modify record generated successfully.",
         "data": {"taskId": TASK, "promptJson": "{}", "resultUrls": ["https://r/1.mp4"], **data}}
    ).encode()


def _headers(stamp: int | str = STAMP, signature: str = SIGNATURE) -> dict[str, str]:
    return {TIMESTAMP_HEADER: str(stamp), SIGNATURE_HEADER: signature}


def test_sign_matches_the_spec_test_vector() -> None:
    assert sign(TASK, STAMP, KEY) == SIGNATURE
    assert sign(TASK, str(STAMP), KEY.encode()) == SIGNATURE


def test_verify_accepts_the_test_vector() -> None:
    event = verify_callback(_headers(), _body(), KEY, now=STAMP)
    assert event.task_id == TASK and event.succeeded
    assert event.result_urls == ("https://r/1.mp4",)


@pytest.mark.parametrize(
    "headers",
    [
        {"x-webhook-timestamp": str(STAMP), "x-webhook-signature": SIGNATURE},
        {"X-WEBHOOK-TIMESTAMP": str(STAMP), "X-Webhook-SIGNATURE": SIGNATURE},
        httpx.Headers(_headers()),
        [("x-webhook-timestamp", str(STAMP)), ("x-webhook-signature", SIGNATURE)],
        {b"x-webhook-timestamp": str(STAMP).encode(), b"x-webhook-signature": SIGNATURE.encode()},
    ],
    ids=["lower", "mixed", "httpx.Headers", "pairs", "bytes"],
)
def test_header_lookup_ignores_case_and_container(headers: Any) -> None:
    assert verify_callback(headers, _body(), KEY, now=STAMP).task_id == TASK


def test_body_may_be_text_or_a_dict() -> None:
    assert verify_callback(_headers(), _body().decode(), KEY, now=STAMP).task_id == TASK
    assert verify_callback(_headers(), json.loads(_body()), KEY, now=STAMP).task_id == TASK


@pytest.mark.parametrize("missing", [TIMESTAMP_HEADER, SIGNATURE_HEADER])
def test_missing_header_is_refused(missing: str) -> None:
    headers = _headers()
    del headers[missing]
    with pytest.raises(SignatureError, match=missing):
        verify_callback(headers, _body(), KEY, now=STAMP)


def test_blank_header_counts_as_missing() -> None:
    with pytest.raises(SignatureError, match=SIGNATURE_HEADER):
        verify_callback(_headers(signature="  "), _body(), KEY, now=STAMP)


def test_stale_timestamp_is_refused_even_with_a_valid_signature() -> None:
    verify_callback(_headers(), _body(), KEY, now=STAMP + 300)  # the window's edge is still fine
    with pytest.raises(SignatureError, match="old"):
        verify_callback(_headers(), _body(), KEY, now=STAMP + 301)


def test_future_timestamp_beyond_window_is_refused() -> None:
    verify_callback(_headers(), _body(), KEY, now=STAMP - 300)
    with pytest.raises(SignatureError, match="future"):
        verify_callback(_headers(), _body(), KEY, now=STAMP - 301)


def test_custom_window() -> None:
    with pytest.raises(SignatureError):
        verify_callback(_headers(), _body(), KEY, now=STAMP + 61, window=60)
    assert verify_callback(_headers(), _body(), KEY, now=STAMP + 59, window=60).task_id == TASK


@pytest.mark.parametrize(
    ("headers", "key", "body"),
    [
        (_headers(signature=SIGNATURE.replace("k", "K", 1)), KEY, _body()),  # tampered signature
        (_headers(), "other-key", _body()),  # wrong key
        (_headers(), KEY, _body(taskId="0" * 32)),  # signature belongs to another task
        (_headers(signature="kaRdMyPIATX8gQVYxP8Mn46UnMuqft8BZvnk1FLpda4"), KEY, _body()),  # no padding
        (_headers(signature="kaRdMyPIATX8gQVYxP8Mn46UnMuqft8BZvnk1FLpda4é"), KEY, _body()),  # non-ASCII
    ],
    ids=["tampered", "wrong-key", "other-task", "unpadded", "non-ascii"],
)
def test_wrong_signature_is_refused(headers: dict[str, str], key: str, body: bytes) -> None:
    with pytest.raises(SignatureError, match="does not match"):
        verify_callback(headers, body, key, now=STAMP)


def test_timestamp_must_be_whole_seconds() -> None:
    with pytest.raises(SignatureError, match="whole number"):
        verify_callback(_headers(stamp="1769670760.5"), _body(), KEY, now=STAMP)
    with pytest.raises(SignatureError):
        verify_callback(_headers(stamp="yesterday"), _body(), KEY, now=STAMP)


def test_task_id_fallbacks_are_what_gets_verified() -> None:
    under_snake = {"code": 200, "data": {"task_id": TASK}}
    top_level = {"code": 200, "taskId": TASK}
    assert verify_callback(_headers(), under_snake, KEY, now=STAMP).task_id == TASK
    assert verify_callback(_headers(), top_level, KEY, now=STAMP).task_id == TASK


def test_failure_callback_verifies_and_reports_failure() -> None:
    body = {"code": 501, "msg": "Modify record generation failed.", "data": {"taskId": TASK, "promptJson": "{}"}}
    event = verify_callback(_headers(), body, KEY, now=STAMP)
    assert not event.succeeded and event.code == 501


def test_missing_headers_are_reported_before_the_body_is_read() -> None:
    with pytest.raises(SignatureError):
        verify_callback({}, b"not json", KEY, now=STAMP)


def test_body_without_task_id_is_malformed() -> None:
    with pytest.raises(MalformedResponseError):
        verify_callback(_headers(), b'{"code": 200, "data": {}}', KEY, now=STAMP)


@pytest.mark.parametrize("key", ["", "   ", b""])
def test_empty_key_is_a_configuration_error(key: str | bytes) -> None:
    with pytest.raises(ConfigurationError):
        verify_callback(_headers(), _body(), key, now=STAMP)
    with pytest.raises(ConfigurationError):
        sign(TASK, STAMP, key)


def test_verify_signature_directly() -> None:
    verify_signature(TASK, STAMP, SIGNATURE, KEY, now=STAMP)
    with pytest.raises(SignatureError):
        verify_signature(TASK, None, SIGNATURE, KEY, now=STAMP)
    with pytest.raises(SignatureError):
        verify_signature(TASK, STAMP, None, KEY, now=STAMP)


def test_signature_headers_round_trip() -> None:
    headers = signature_headers(TASK, KEY, timestamp=STAMP)
    assert headers == _headers()
    fresh = signature_headers("abc", "k2")
    assert verify_callback(fresh, {"code": 200, "data": {"taskId": "abc"}}, "k2").task_id == "abc"


def test_secret_never_in_signature_errors() -> None:
    key = "whsec-CANARY-91d0"
    for headers, now in [(_headers(), STAMP), (_headers(), STAMP + 999), ({}, STAMP)]:
        with pytest.raises(SignatureError) as caught:
            verify_callback(headers, _body(), key, now=now)
        assert key not in str(caught.value) and key not in repr(caught.value)


def test_parse_callback_is_the_models_parser() -> None:
    assert parse_callback is luma.models.parse_callback
