"""The one error tree of the client.

Every failure the client reports is a :class:`LumaError`; catch that to catch them all::

    LumaError
    ├── ConfigurationError            the client was set up wrongly (bad key text, bad base URL)
    ├── InvalidInputError             an argument was refused before sending (also a ValueError)
    ├── TransportError                no usable answer came back from the provider
    │   ├── ConnectError              could not connect; the request never left this machine
    │   │   └── AddressRefusedError   the address is private or local: refused, never retried
    │   └── RequestTimeout            sent, but no answer in time: the outcome is unknown
    ├── MalformedResponseError        an answer came, but not in the documented shape
    ├── SignatureError                a callback's signature headers are missing, stale or wrong
    └── APIError                      the provider answered with an error code (HTTP or body)
        ├── BadRequestError           400  upload: the request was incomplete
        ├── AuthenticationError       401  the API key is missing or wrong
        ├── InsufficientCreditsError  402  the account has run out of credits
        ├── NotFoundError             404  unknown task, moved endpoint, or expired file link
        ├── MethodNotAllowedError     405  upload: wrong method for this endpoint
        ├── ValidationError           422  the provider refused the input (e.g. unreachable URL)
        ├── RateLimitError            429  too many requests; wait and try again
        ├── MaintenanceError          455  the service is under maintenance
        ├── ServerError               500  the provider failed internally (also any other 5xx)
        ├── GenerationFailedError     501  the video could not be generated
        └── FeatureDisabledError      505  the feature is turned off for this account

An :class:`APIError` is raised whether the code arrived as the HTTP status, as the body's
``code`` with HTTP 200, or both (the provider's docs do not say which it uses). Codes without a
class of their own become :class:`ServerError` (any other 5xx, e.g. a proxy's 502 page) or a
plain :class:`APIError`. No message or repr here ever contains the API key: messages are built
from codes and our own words only, and the provider's ``msg`` is kept apart in
:attr:`APIError.provider_message`.

:class:`InvalidInputError` is ours, not the provider's: the client checks arguments (an empty
prompt, a video URL that is not http(s), an empty task id) before spending a request, so nothing
is sent and nothing is lost. It is deliberately not :class:`ValidationError`, which means the
provider itself refused the input (HTTP or body code 422).

:class:`AddressRefusedError` comes from a client whose transport is a
:func:`luma.egress.guarded_transport`: the host is, or resolves to, a private or local address,
so no connection was made. Retrying cannot help, so it is not retryable, unlike its parent.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "APIError",
    "AddressRefusedError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConnectError",
    "FeatureDisabledError",
    "GenerationFailedError",
    "InsufficientCreditsError",
    "InvalidInputError",
    "LumaError",
    "MaintenanceError",
    "MalformedResponseError",
    "MethodNotAllowedError",
    "NotFoundError",
    "RateLimitError",
    "RequestTimeout",
    "ServerError",
    "SignatureError",
    "TransportError",
    "ValidationError",
    "error_for_code",
]


class LumaError(Exception):
    """Base of every error raised by the ``luma`` package."""

    #: Whether repeating the same read later may succeed.
    retryable: ClassVar[bool] = False
    #: One sentence a user can act on.
    next_step: ClassVar[str] = "Try again; if it keeps failing, check the provider's status."
    #: How many times the request was sent before this error was given up on.
    attempts: int = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ConfigurationError(LumaError):
    """The client was configured in a way that cannot work."""

    next_step = "Check the API key and base URLs in the settings."


class InvalidInputError(LumaError, ValueError):
    """An argument was refused by the client itself; no request was sent."""

    next_step = "Correct the input and submit again; nothing was sent to the provider."

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        #: The argument at fault ("prompt", "video_url", "task_id", ...), for pointing at a form field.
        self.field = field


class TransportError(LumaError):
    """No usable HTTP answer: the network, DNS or the provider's front door failed."""

    retryable = True
    next_step = "Check the network connection and the base URL, then try again."
    #: True when the request may have reached the provider (so a create may have happened).
    request_sent: bool = True


class ConnectError(TransportError):
    """The connection failed before any byte of the request was sent."""

    request_sent = False


class AddressRefusedError(ConnectError):
    """The guard refused the connection: the host is, or resolves to, a private or local address."""

    # The address will not become public by asking again.
    retryable = False
    next_step = "Use a public address: private and local addresses are not fetched (upload the file instead)."

    def __init__(self, message: str, *, host: str = "", reason: str = "") -> None:
        super().__init__(message)
        #: The host as the URL wrote it.
        self.host = host
        #: The kind of address, in plain words ("a private network address").
        self.reason = reason


class RequestTimeout(TransportError):
    """The request was sent but no answer arrived in time; its effect is unknown."""

    next_step = (
        "The provider did not answer in time. If this was a new task, check the jobs page or the "
        "provider's logs before submitting again: the task may have been created."
    )


class MalformedResponseError(LumaError):
    """The provider answered, but not in any documented shape."""

    retryable = True
    next_step = "The provider's answer was not understood; try again later."


class SignatureError(LumaError):
    """A callback failed signature verification."""

    next_step = "Check that the webhook HMAC key matches the one on the provider's settings page."


class APIError(LumaError):
    """The provider answered with an error code."""

    code: ClassVar[int] = 0
    summary: ClassVar[str] = "The provider reported an error."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: int | None = None,
        http_status: int | None = None,
        provider_message: str | None = None,
        operation: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        #: The provider's code (body ``code``, or the HTTP status when the body had none).
        self.status_code = code if code is not None else type(self).code
        #: The HTTP status of the answer, when there was one.
        self.http_status = http_status
        #: The provider's ``msg``, verbatim; shown only as a detail, never matched on.
        self.provider_message = provider_message
        #: The client method that failed ("create_task", "get_task", ...).
        self.operation = operation
        #: Seconds the provider asked us to wait (``Retry-After``), when it said.
        self.retry_after = retry_after
        super().__init__(message or f"{self.summary} {self.next_step}")


class BadRequestError(APIError):
    """400: the upload request was missing a field or malformed."""

    code = 400
    summary = "The upload request was incomplete or malformed."
    next_step = "Check the file and upload path, then try again."


class AuthenticationError(APIError):
    """401: the API key is missing or not accepted."""

    code = 401
    summary = "The provider did not accept the API key."
    next_step = "Check the API key in the settings (kie.ai API key page), or use demo mode."


class InsufficientCreditsError(APIError):
    """402: the account has no credits left for this operation."""

    code = 402
    summary = "The account is out of credits."
    next_step = "Top up credits on the provider's billing page, then submit again."


class NotFoundError(APIError):
    """404: an unknown task id, or (on create) an endpoint that has moved."""

    code = 404
    summary = "The provider does not know this task."
    next_step = "Check the task id; tasks created with another API key or account are not visible."


class MethodNotAllowedError(APIError):
    """405: the upload endpoint refused the HTTP method."""

    code = 405
    summary = "The upload endpoint refused the request method."
    next_step = "Check the upload base URL in the settings; the endpoint may have changed."


class ValidationError(APIError):
    """422: the provider refused the input (e.g. an unreachable or unsupported video URL)."""

    code = 422
    summary = "The provider refused the input."
    next_step = (
        "Use a public MP4, MOV or AVI URL of at most 10 seconds and 500 MB, and an English prompt."
    )


class RateLimitError(APIError):
    """429: too many requests in a short time."""

    code = 429
    retryable = True
    summary = "Too many requests were sent in a short time."
    next_step = "Wait a few seconds and try again (the limit is 20 new tasks per 10 seconds)."


class MaintenanceError(APIError):
    """455: the service is temporarily down for maintenance."""

    code = 455
    retryable = True
    summary = "The provider is under maintenance."
    next_step = "Wait a few minutes and try again; your tasks are kept."


class ServerError(APIError):
    """500 (or any other 5xx): the provider failed internally."""

    code = 500
    retryable = True
    summary = "The provider had an internal error."
    next_step = "Try again in a minute; if it persists, check the provider's status page."


class GenerationFailedError(APIError):
    """501: the provider could not generate the video."""

    code = 501
    summary = "The provider could not generate the video."
    next_step = "Try a different prompt or input video; no result was produced."


class FeatureDisabledError(APIError):
    """505: the feature is disabled for this account or region."""

    code = 505
    summary = "The video modification feature is disabled for this account."
    next_step = "Contact the provider's support to enable it, or use demo mode."


_BY_CODE: dict[int, type[APIError]] = {
    cls.code: cls
    for cls in (
        BadRequestError,
        AuthenticationError,
        InsufficientCreditsError,
        NotFoundError,
        MethodNotAllowedError,
        ValidationError,
        RateLimitError,
        MaintenanceError,
        ServerError,
        GenerationFailedError,
        FeatureDisabledError,
    )
}

_CREATE_NOT_FOUND = (
    "The task-creation endpoint was not found (404). The provider may have retired or moved the "
    "Luma modify-video API: check the API base URL in the settings and the provider's docs."
)
_FILE_GONE = (
    "The file was not found ({code}): links expire (download links after 20 minutes, results "
    "after 14 days). Get a fresh download link for the task, or check that the URL is complete."
)
_FILE_REFUSED = (
    "The file host refused access ({code}): the link may have expired. Get a fresh download link "
    "for the task and try again."
)
# Operations whose 404 means "no such task" rather than "no such endpoint".
_TASK_READS = (None, "get_task", "get_tasks")


def error_for_code(
    code: int,
    *,
    http_status: int | None = None,
    provider_message: str | None = None,
    operation: str | None = None,
    retry_after: float | None = None,
) -> APIError:
    """Map a provider error code (HTTP status or body ``code``) to the matching typed error.

    ``operation`` names the client method ("create_task", "get_task", "fetch", ...) so that a
    code can read differently where it means something else: a 404 on create is a moved
    endpoint, not an unknown task, and a 404 from ``fetch`` is an expired file link.
    """
    cls = _BY_CODE.get(code)
    if cls is None:
        cls = ServerError if code >= 500 else APIError
    message: str | None = None
    if operation == "fetch" and code in (401, 403):
        # A public file host has no notion of our API key: these mean a signed link went stale.
        cls, message = APIError, _FILE_REFUSED.format(code=code)
    elif operation == "fetch" and code in (404, 410):
        cls, message = NotFoundError, _FILE_GONE.format(code=code)
    elif cls is NotFoundError and operation not in _TASK_READS:
        message = _CREATE_NOT_FOUND if operation == "create_task" else (
            "The endpoint was not found (404): check the base URLs in the settings."
        )
    elif cls is ValidationError and operation == "get_download_url":
        message = (
            "The provider refused to make a download link (422): only URLs the provider generated "
            "can be used. Use the result URL shown for the task."
        )
    elif cls is APIError and 300 <= code < 400:
        message = (
            f"The provider answered with a redirect ({code}): the API may have moved. Check the "
            "base URLs in the settings."
        )
    elif cls is APIError:
        message = f"The provider answered with unexpected code {code}. Try again later."
    return cls(
        message,
        code=code,
        http_status=http_status,
        provider_message=provider_message,
        operation=operation,
        retry_after=retry_after,
    )
