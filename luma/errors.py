"""The one error tree of the client.

Every failure the client reports is a :class:`LumaError`; catch that to catch them all::

    LumaError
    ├── ConfigurationError          the client was set up wrongly (no key, bad base URL)
    ├── TransportError              no usable answer came back from the provider
    │   ├── ConnectError            could not connect; the request never left this machine
    │   └── RequestTimeout          sent, but no answer in time: the outcome is unknown
    ├── MalformedResponseError      an answer came, but not in the documented shape
    ├── SignatureError              a callback's signature headers are missing, stale or wrong
    └── APIError                    the provider answered with an error code (HTTP or body)
        ├── BadRequestError         400  upload: the request was incomplete
        ├── AuthenticationError     401  the API key is missing or wrong
        ├── InsufficientCreditsError 402 the account has run out of credits
        ├── NotFoundError           404  unknown task, or the endpoint has moved
        ├── MethodNotAllowedError   405  upload: wrong method for this endpoint
        ├── ValidationError         422  the input was refused (e.g. video URL unreachable)
        ├── RateLimitError          429  too many requests; wait and try again
        ├── MaintenanceError        455  the service is under maintenance
        ├── ServerError             500  the provider failed internally
        ├── GenerationFailedError   501  the video could not be generated
        └── FeatureDisabledError    505  the feature is turned off for this account

An :class:`APIError` is raised whether the code arrived as the HTTP status, as the body's
``code`` with HTTP 200, or both (the provider's docs do not say which it uses). No message or
repr here ever contains the API key: messages are built from codes and our own words only, and
the provider's ``msg`` is kept apart in :attr:`APIError.provider_message`.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConnectError",
    "FeatureDisabledError",
    "GenerationFailedError",
    "InsufficientCreditsError",
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

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ConfigurationError(LumaError):
    """The client was configured in a way that cannot work."""

    next_step = "Check the API key and base URLs in the settings."


class TransportError(LumaError):
    """No usable HTTP answer: the network, DNS or the provider's front door failed."""

    retryable = True
    next_step = "Check the network connection and the base URL, then try again."
    #: True when the request may have reached the provider (so a create may have happened).
    request_sent: bool = True


class ConnectError(TransportError):
    """The connection failed before any byte of the request was sent."""

    request_sent = False


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
    ) -> None:
        self.status_code = code if code is not None else type(self).code
        self.http_status = http_status
        self.provider_message = provider_message
        self.operation = operation
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

    def __init__(self, message: str | None = None, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        #: Seconds the provider asked us to wait, when it said.
        self.retry_after = retry_after


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


def error_for_code(
    code: int,
    *,
    http_status: int | None = None,
    provider_message: str | None = None,
    operation: str | None = None,
    retry_after: float | None = None,
) -> APIError:
    """Map a provider error code (HTTP status or body ``code``) to the matching typed error.

    ``operation`` names the client method ("create_task", "get_task", ...) so that a code can
    read differently where it means something else: a 404 on create is a moved endpoint, not an
    unknown task.
    """
    cls = _BY_CODE.get(code)
    if cls is None:
        cls = ServerError if code >= 500 else APIError
    message: str | None = None
    if cls is NotFoundError and operation not in (None, "get_task", "get_tasks"):
        message = _CREATE_NOT_FOUND if operation == "create_task" else (
            "The endpoint was not found (404): check the base URLs in the settings."
        )
    if cls is ValidationError and operation == "get_download_url":
        message = (
            "The provider refused to make a download link (422): only URLs the provider generated "
            "can be used. Use the result URL shown for the task."
        )
    if cls is APIError:
        message = f"The provider answered with unexpected code {code}. Try again later."
    kwargs: dict[str, object] = {
        "code": code,
        "http_status": http_status,
        "provider_message": provider_message,
        "operation": operation,
    }
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=retry_after, **kwargs)
    return cls(message, **kwargs)  # type: ignore[arg-type]
