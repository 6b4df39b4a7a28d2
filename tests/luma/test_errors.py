"""Every documented error code, in both styles, through the one response reader; and no key leaks."""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import luma.errors as errors_module
from luma import LumaClient
from luma._constants import (
    PATH_CREATE,
    PATH_CREDITS,
    PATH_DOWNLOAD_URL,
    PATH_RECORD,
    PATH_UPLOAD_BASE64,
    PATH_UPLOAD_STREAM,
    PATH_UPLOAD_URL,
)
from luma.client import interpret_response
from luma.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConnectError,
    FeatureDisabledError,
    GenerationFailedError,
    InsufficientCreditsError,
    InvalidInputError,
    LumaError,
    MaintenanceError,
    MalformedResponseError,
    MethodNotAllowedError,
    NotFoundError,
    RateLimitError,
    RequestTimeout,
    ServerError,
    SignatureError,
    TransportError,
    ValidationError,
    error_for_code,
)

from .conftest import MockApi

API_CODES: dict[int, type[APIError]] = {
    401: AuthenticationError,
    402: InsufficientCreditsError,
    404: NotFoundError,
    422: ValidationError,
    429: RateLimitError,
    455: MaintenanceError,
    500: ServerError,
    501: GenerationFailedError,
    505: FeatureDisabledError,
}
UPLOAD_CODES: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    405: MethodNotAllowedError,
    500: ServerError,
}
VIDEO = "https://example.com/video.mp4"


def _call(client: LumaClient, operation: str) -> Any:
    return {
        "create_task": lambda: client.create_task("make it snow", VIDEO),
        "get_task": lambda: client.get_task("774d9a7dd608a0e49293903095e45a4c"),
        "get_credits": client.get_credits,
        "get_download_url": lambda: client.get_download_url("https://tempfile.aiquickdraw.com/l/x.mp4"),
        "upload_file": lambda: client.upload_file(b"\x00\x01video", file_name="a.mp4"),
        "upload_base64": lambda: client.upload_base64(b"\x00\x01video", file_name="a.mp4"),
        "upload_url": lambda: client.upload_url(VIDEO),
    }[operation]()


API_PATHS = {
    "create_task": PATH_CREATE,
    "get_task": PATH_RECORD,
    "get_credits": PATH_CREDITS,
    "get_download_url": PATH_DOWNLOAD_URL,
}
UPLOAD_PATHS = {
    "upload_file": PATH_UPLOAD_STREAM,
    "upload_base64": PATH_UPLOAD_BASE64,
    "upload_url": PATH_UPLOAD_URL,
}


@pytest.mark.parametrize("style", ["http", "body"])
@pytest.mark.parametrize("operation", list(API_PATHS))
@pytest.mark.parametrize("code", list(API_CODES))
def test_api_error_codes_in_both_styles(
    code: int, operation: str, style: str, client: LumaClient, mock_api: MockApi
) -> None:
    mock_api.on(API_PATHS[operation], MockApi.error(code, style=style))
    with pytest.raises(API_CODES[code]) as caught:
        _call(client, operation)
    error = caught.value
    assert type(error) is API_CODES[code]
    assert error.status_code == code
    assert error.http_status == (code if style == "http" else 200)
    assert error.provider_message == "provider says no"
    assert error.operation == operation
    # Our own words, never the provider's msg.
    assert "provider says no" not in str(error)
    expected_sends = 1 if operation == "create_task" or not error.retryable else 5
    assert mock_api.count(API_PATHS[operation]) == expected_sends


@pytest.mark.parametrize("style", ["http", "body"])
@pytest.mark.parametrize("operation", list(UPLOAD_PATHS))
@pytest.mark.parametrize("code", list(UPLOAD_CODES))
def test_upload_error_codes_in_both_styles(
    code: int, operation: str, style: str, client: LumaClient, mock_api: MockApi
) -> None:
    mock_api.on(UPLOAD_PATHS[operation], MockApi.error(code, style=style, upload=True))
    with pytest.raises(UPLOAD_CODES[code]) as caught:
        _call(client, operation)
    assert caught.value.status_code == code
    assert caught.value.operation == operation
    assert mock_api.count(UPLOAD_PATHS[operation]) == 1  # uploads are never re-sent once sent


@pytest.mark.parametrize("operation", list(API_PATHS))
def test_code_200_in_both_styles_is_success(operation: str, client: LumaClient, mock_api: MockApi) -> None:
    data = {
        "create_task": {"taskId": "a" * 32},
        "get_task": {"taskId": "a" * 32, "successFlag": 0},
        "get_credits": 100,
        "get_download_url": "https://tempfile.aiquickdraw.com/fresh.mp4",
    }[operation]
    # A msg that reads like an error must not matter: only codes count.
    mock_api.on(API_PATHS[operation], MockApi.ok(data, msg="error: insufficient credits"))
    assert _call(client, operation) is not None


def test_http_402_without_a_body(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREATE, MockApi.reply(402))
    with pytest.raises(InsufficientCreditsError) as caught:
        client.create_task("p", VIDEO)
    assert caught.value.http_status == 402 and caught.value.provider_message is None


def test_http_402_with_html_body(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREATE, MockApi.reply(402, text="<html>Payment Required</html>"))
    with pytest.raises(InsufficientCreditsError):
        client.create_task("p", VIDEO)


def test_body_402_with_http_200_and_success_msg(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREATE, MockApi.reply(200, {"code": 402, "msg": "success", "data": None}))
    with pytest.raises(InsufficientCreditsError):
        client.create_task("p", VIDEO)


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_html_pages_are_server_errors(status: int, client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_RECORD, MockApi.reply(status, text=f"<html><h1>{status} Bad Gateway</h1></html>"))
    with pytest.raises(ServerError) as caught:
        client.get_task("abc")
    assert caught.value.status_code == status and caught.value.retryable
    assert mock_api.count(PATH_RECORD) == 5  # a read: retried to the attempt bound


def test_body_code_wins_over_http_status(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREDITS, MockApi.reply(500, {"code": 401, "msg": "nope"}))
    with pytest.raises(AuthenticationError) as caught:
        client.get_credits()
    assert caught.value.http_status == 500


def test_http_error_with_body_code_200_uses_http_status(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREDITS, MockApi.reply(401, {"code": 200, "msg": "success", "data": 5}))
    with pytest.raises(AuthenticationError):
        client.get_credits()


def test_string_body_code_is_read(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREDITS, MockApi.reply(200, {"code": "402", "msg": "x"}))
    with pytest.raises(InsufficientCreditsError):
        client.get_credits()


def test_404_on_get_task_is_an_unknown_task(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_RECORD, MockApi.error(404, style="http"))
    with pytest.raises(NotFoundError) as caught:
        client.get_task("0" * 32)
    assert "does not know this task" in str(caught.value)
    assert "retired" not in str(caught.value)


@pytest.mark.parametrize("style", ["http", "body"])
def test_404_on_create_says_the_endpoint_may_have_moved(style: str, client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREATE, MockApi.error(404, style=style))
    with pytest.raises(NotFoundError) as caught:
        client.create_task("p", VIDEO)
    message = str(caught.value)
    assert "retired or moved" in message and "base URL" in message


def test_422_on_download_url_explains_provider_urls(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_DOWNLOAD_URL, MockApi.error(422, style="body"))
    with pytest.raises(ValidationError, match="only URLs the provider generated"):
        client.get_download_url("https://example.com/not-theirs.mp4")


def test_429_carries_retry_after(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_CREATE, MockApi.reply(429, {"code": 429, "msg": "slow down"}, headers={"Retry-After": "12"}))
    with pytest.raises(RateLimitError) as caught:
        client.create_task("p", VIDEO)
    assert caught.value.retry_after == 12.0
    assert mock_api.count(PATH_CREATE) == 1


@pytest.mark.parametrize(
    "answer",
    [
        MockApi.reply(200, text="<html>hello</html>"),
        MockApi.reply(200, text=b""),
        MockApi.reply(200, text=b"\xff\xfe\x00garbage"),
        MockApi.reply(200, ["code", 200]),
        MockApi.reply(200, {"msg": "success", "data": 5}),
        MockApi.reply(200, {"code": "two hundred", "data": 5}),
        MockApi.reply(200, {"code": 200, "msg": "success", "data": "lots"}),
        MockApi.reply(200, {"code": 200, "msg": "success", "data": True}),
        MockApi.reply(200, {"code": 200, "msg": "success"}),
        MockApi.reply(200, text="[" * 100_000),
    ],
    ids=["html", "empty", "binary", "list", "no-code", "bad-code", "str-data", "bool-data", "no-data", "deep"],
)
def test_wrong_shapes_are_malformed_never_key_or_type_errors(
    answer: Callable[[httpx.Request], httpx.Response], client: LumaClient, mock_api: MockApi
) -> None:
    mock_api.on(PATH_CREDITS, answer)
    with pytest.raises(MalformedResponseError):
        client.get_credits()
    assert mock_api.count(PATH_CREDITS) == 5  # malformed reads are retried


@pytest.mark.parametrize(
    "body",
    [{"code": 200, "msg": "success", "data": {}}, {"code": 200, "data": None}, {"code": 200, "data": {"taskId": 7}}],
    ids=repr,
)
def test_create_answer_without_task_id_warns_the_task_may_exist(
    body: dict[str, Any], client: LumaClient, mock_api: MockApi
) -> None:
    mock_api.on(PATH_CREATE, MockApi.reply(200, body))
    with pytest.raises(MalformedResponseError, match="may have been created"):
        client.create_task("p", VIDEO)
    assert mock_api.count(PATH_CREATE) == 1


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"success": False, "code": 200, "msg": "failed"}, APIError),
        ({"success": False, "code": 400, "msg": "failed"}, BadRequestError),
        ({"success": True, "code": 500, "msg": "failed"}, ServerError),
        ({"success": "maybe", "msg": "?"}, MalformedResponseError),
        ({"success": True, "code": 200, "data": {"fileName": "x"}}, MalformedResponseError),
    ],
    ids=["false-200", "false-400", "true-500", "no-code", "no-url"],
)
def test_upload_envelope_failures(body: dict[str, Any], error: type[LumaError], client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_UPLOAD_URL, MockApi.reply(200, body))
    with pytest.raises(error):
        client.upload_url(VIDEO)


def test_upload_envelope_success_without_code(client: LumaClient, mock_api: MockApi) -> None:
    mock_api.on(PATH_UPLOAD_URL, MockApi.reply(200, {"success": True, "data": {"downloadUrl": "https://h/x.mp4"}}))
    assert client.upload_url(VIDEO).download_url == "https://h/x.mp4"


# --- the reader and the map on their own --------------------------------------------------------


def _response(status: int, **kw: Any) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("GET", "https://api.kie.ai/x"), **kw)


def test_interpret_response_returns_data_and_raw_bytes() -> None:
    assert interpret_response(_response(200, json={"code": 200, "data": [1]}), operation="x", now=0) == [1]
    assert interpret_response(_response(206, content=b"abc"), operation="fetch", envelope="raw", now=0) == b"abc"
    with pytest.raises(NotFoundError):
        interpret_response(_response(404, content=b"gone"), operation="fetch", envelope="raw", now=0)


def test_interpret_response_reads_retry_after_as_http_date() -> None:
    response = _response(
        429, json={"code": 429}, headers={"Retry-After": "Thu, 29 Jan 2026 07:13:00 GMT"}
    )
    with pytest.raises(RateLimitError) as caught:
        interpret_response(response, operation="get_task", now=1_769_670_760.0)
    assert caught.value.retry_after == 20.0


@pytest.mark.parametrize(
    ("code", "cls", "words"),
    [
        (418, APIError, "unexpected code 418"),
        (599, ServerError, "internal error"),
        (502, ServerError, "internal error"),
        (301, APIError, "redirect"),
        (403, APIError, "unexpected code 403"),
    ],
)
def test_codes_without_a_class(code: int, cls: type[APIError], words: str) -> None:
    error = error_for_code(code)
    assert type(error) is cls and words in str(error) and error.status_code == code


@pytest.mark.parametrize(("code", "cls"), [(401, APIError), (403, APIError), (404, NotFoundError), (410, NotFoundError)])
def test_fetch_reads_file_host_refusals_as_expired_links(code: int, cls: type[APIError]) -> None:
    error = error_for_code(code, operation="fetch")
    assert type(error) is cls
    assert "link" in str(error) and "API key" not in str(error)


def test_every_error_says_what_to_do_next() -> None:
    for name in errors_module.__all__:
        obj = getattr(errors_module, name)
        if isinstance(obj, type) and issubclass(obj, LumaError):
            assert obj.next_step.endswith((".", ")")), name
    assert InvalidInputError("x").retryable is False and isinstance(InvalidInputError("x"), ValueError)


def test_docstring_tree_lists_every_error_class() -> None:
    doc = errors_module.__doc__ or ""
    classes = [
        name for name in errors_module.__all__
        if isinstance(getattr(errors_module, name), type) and issubclass(getattr(errors_module, name), LumaError)
    ]
    drawn = re.findall(r"[├└]── (\w+)", doc) + ["LumaError"]
    assert sorted(drawn) == sorted(classes)
    # Each drawn child really inherits from the parent drawn above it.
    assert issubclass(ConnectError, TransportError) and issubclass(RequestTimeout, TransportError)
    for cls in API_CODES.values():
        assert issubclass(cls, APIError)
    for name in ("ConfigurationError", "InvalidInputError", "MalformedResponseError", "SignatureError", "TransportError", "APIError"):
        assert getattr(errors_module, name).__bases__[0] is LumaError


def test_retryable_flags() -> None:
    assert {code for code, cls in API_CODES.items() if cls.retryable} == {429, 455, 500}
    assert TransportError.retryable and ConnectError.retryable and MalformedResponseError.retryable
    assert not ConnectError.request_sent and RequestTimeout.request_sent


# --- secrets: the key must not appear anywhere an error can be seen -------------------------------


def _leak_free(error: BaseException, key: str) -> None:
    shown = [str(error), repr(error), "".join(traceback.format_exception(error))]
    if isinstance(error, APIError):
        shown.append(str(error.provider_message))
    for text in shown:
        assert key not in text


def _echo_key(exc_type: type[httpx.RequestError]) -> Callable[[httpx.Request], httpx.Response]:
    """A transport failure whose own message and request carry the key, as h11 errors can."""

    def answer(request: httpx.Request) -> httpx.Response:
        raise exc_type(f"Illegal header value {request.headers['Authorization']!r}", request=request)

    return answer


LEAKY_ANSWERS: dict[str, Callable[[httpx.Request], httpx.Response]] = {
    **{f"http-{code}": MockApi.error(code, style="http") for code in [*API_CODES, 400, 405, 502]},
    **{f"body-{code}": MockApi.error(code, style="body") for code in API_CODES},
    "key-echoed-in-msg": MockApi.reply(401, {"code": 401, "msg": "Invalid key: sk-CANARY-7f3a9c1e0b5d4f2a"}),
    "html": MockApi.reply(200, text="<html></html>"),
    **{
        exc.__name__: _echo_key(exc)
        for exc in (
            httpx.ConnectError,
            httpx.ConnectTimeout,
            httpx.ReadTimeout,
            httpx.WriteTimeout,
            httpx.PoolTimeout,
            httpx.ReadError,
            httpx.WriteError,
            httpx.RemoteProtocolError,
            httpx.LocalProtocolError,
            httpx.ProxyError,
            httpx.UnsupportedProtocol,
            httpx.DecodingError,
            httpx.TooManyRedirects,
        )
    },
}


@pytest.mark.parametrize("answer", list(LEAKY_ANSWERS.values()), ids=list(LEAKY_ANSWERS))
@pytest.mark.parametrize("operation", [*API_PATHS, *UPLOAD_PATHS])
def test_key_never_appears_in_any_error(
    answer: Callable[[httpx.Request], httpx.Response],
    operation: str,
    client: LumaClient,
    mock_api: MockApi,
    secret_key: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    mock_api.on({**API_PATHS, **UPLOAD_PATHS}[operation], answer)
    with pytest.raises(LumaError) as caught:
        _call(client, operation)
    _leak_free(caught.value, secret_key)
    if isinstance(caught.value, TransportError):
        # The httpx exception holds the request and its headers: it must not be chained.
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert secret_key not in caplog.text
    # The key really was sent, to the right host: the test would be empty otherwise.
    assert mock_api.requests[0].headers["Authorization"] == f"Bearer {secret_key}"


def test_key_never_appears_in_setup_and_input_errors(secret_key: str, mock_api: MockApi) -> None:
    bad_setups: list[Callable[[], Any]] = [
        lambda: LumaClient(secret_key + "\nX-Evil: 1"),
        lambda: LumaClient(secret_key + "\x00"),
        lambda: LumaClient(secret_key + " é"),
        lambda: LumaClient(secret_key, api_base="ftp://x"),
        lambda: LumaClient(secret_key, timeout=-1),
        lambda: LumaClient(secret_key, transport=object()),  # type: ignore[arg-type]
    ]
    for setup in bad_setups:
        with pytest.raises(ConfigurationError) as caught:
            setup()
        _leak_free(caught.value, secret_key)
    with LumaClient(secret_key, transport=mock_api.transport()) as client:
        for call in (
            lambda: client.create_task("", VIDEO),
            lambda: client.create_task("p", secret_key),  # a key pasted into the wrong field
            lambda: client.get_task(""),
            lambda: client.upload_file(b"", file_name="a.mp4"),
        ):
            with pytest.raises(InvalidInputError) as caught_input:
                call()
            _leak_free(caught_input.value, secret_key)
    assert mock_api.requests == []


def test_key_never_appears_in_client_repr_or_str(secret_key: str, mock_api: MockApi) -> None:
    client = LumaClient(secret_key, transport=mock_api.transport())
    for text in (repr(client), str(client), repr(client._http), repr(client._auth)):
        assert secret_key not in text
    assert "hidden" in repr(client)
    assert "api_key=None" in repr(LumaClient(transport=mock_api.transport()))


def test_signature_error_is_in_the_tree() -> None:
    assert issubclass(SignatureError, LumaError) and not SignatureError.retryable
