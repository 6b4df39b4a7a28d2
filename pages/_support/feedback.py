"""Turning failures into plain sentences on the page: one helper, ``show_error``, for every page.

``describe_error`` is pure (tested without Streamlit): it maps each typed error of
:mod:`luma.errors` to a headline, the error's own message and its next step. ``show_error``
renders that, and ``last_resort`` is the catch-all for anything that is not a ``LumaError``:
it logs the traceback to the server console (never the API key) and shows one plain sentence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

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
)
from studio.creates import BudgetRefused, CreditsShort, NotSent
from studio.text import plain

__all__ = ["ErrorView", "describe_error", "is_outage_error", "last_resort", "redact", "set_key_source", "show_error"]

_LOG = logging.getLogger("luma.dashboard")

# Most specific first: the first isinstance match wins.
_TITLES: tuple[tuple[type[LumaError], str], ...] = (
    (AuthenticationError, "The API key was not accepted"),
    (InsufficientCreditsError, "Out of credits"),
    (NotFoundError, "Not found"),
    (MethodNotAllowedError, "The upload endpoint refused the request"),
    (BadRequestError, "The upload was rejected"),
    (ValidationError, "The provider refused the input"),
    (RateLimitError, "Too many requests"),
    (MaintenanceError, "The provider is under maintenance"),
    (GenerationFailedError, "The video could not be generated"),
    (FeatureDisabledError, "Video modification is disabled for this account"),
    (ServerError, "The provider had an internal error"),
    (APIError, "The provider reported an error"),
    (RequestTimeout, "No answer in time"),
    (ConnectError, "Could not connect to the provider"),
    (TransportError, "Network problem"),
    (MalformedResponseError, "The provider's answer was not understood"),
    (InvalidInputError, "The input was not accepted"),
    (ConfigurationError, "Configuration problem"),
    (SignatureError, "Callback signature rejected"),
)


@dataclass(frozen=True)
class ErrorView:
    """What the page shows for one failure."""

    title: str
    """A short headline naming the kind of failure (with the provider's code, when there is one)."""
    message: str
    """What happened, in the error's own words."""
    next_step: str
    """What the user can do about it."""
    detail: str | None = None
    """The provider's own message, shown small, when it said anything."""


def redact(text: str, secret: str | None) -> str:
    """Remove ``secret`` from ``text`` (belt and braces: no message should contain it anyway)."""
    if secret and len(secret) >= 4 and secret in text:
        return text.replace(secret, "[hidden]")
    return text


def is_outage_error(err: BaseException) -> bool:
    """True when the provider did not answer, or answered that it is down (not our input's fault)."""
    return isinstance(err, (TransportError, ServerError, MaintenanceError)) and err.retryable


def describe_error(err: BaseException, *, secret: str | None = None) -> ErrorView:
    """Map any exception to a headline, a message and a next step a user can act on."""
    if not isinstance(err, LumaError):
        return ErrorView(
            title="Something went wrong",
            message="The dashboard hit an unexpected problem and stopped this action.",
            next_step="Try again; if it keeps happening, reload the page. Your task list is kept.",
        )
    title = next((t for cls, t in _TITLES if isinstance(err, cls)), "Something went wrong")
    if isinstance(err, BudgetRefused):
        title = "Not enough credits" if isinstance(err, CreditsShort) else "Over the spending budget"
    elif isinstance(err, NotSent):
        title = "Not sent"
    detail: str | None = None
    if isinstance(err, APIError):
        title = f"{title} ({err.status_code})"
        if err.provider_message:
            detail = f"The provider said: {redact(err.provider_message, secret)}"
    next_step = err.next_step
    retry_after = getattr(err, "retry_after", None)
    if retry_after:
        next_step = f"{next_step} The provider asked to wait {retry_after:.0f} s."
    message = redact(err.message, secret)
    # APIError's default message already ends with the next step; don't say it twice.
    if message.endswith(err.next_step):
        message = message[: -len(err.next_step)].rstrip() or message
    return ErrorView(title=title, message=message, next_step=redact(next_step, secret), detail=detail)


def show_error(err: BaseException, *, secret: str | None = None, context: str | None = None) -> None:
    """Show one failure on the page: headline, what happened, what to do next."""
    if secret is None:
        secret = _current_key()
    view = describe_error(err, secret=secret)
    if not isinstance(err, LumaError):
        _log_unexpected(err, context)
    # The message may quote a host name or the operating system's words, the detail the
    # provider's own: shown as text, never as Markdown.
    body = f"{plain(view.message)}\n\n**Next step:** {view.next_step}"
    if context:
        body = f"{context} {body}"
    st.error(body, title=view.title, icon=":material/error:")
    if view.detail:
        st.caption(plain(view.detail))


def last_resort(err: BaseException, *, context: str | None = None) -> None:
    """Show a plain sentence for an unexpected exception and log its traceback for operators."""
    show_error(err, context=context)


# Where show_error finds the key to redact; runtime installs it (this module never imports runtime).
_key_source: Callable[[], str | None] = lambda: None  # noqa: E731 - a default, replaced at start-up


def set_key_source(source: Callable[[], str | None]) -> None:
    """Tell :func:`show_error` how to find the current API key (to redact it, belt and braces)."""
    global _key_source
    _key_source = source


def _current_key() -> str | None:
    try:
        return _key_source()
    except Exception:  # noqa: BLE001 - redaction is a safety net; never fail because of it
        return None


def _log_unexpected(err: BaseException, context: str | None) -> None:
    # The traceback goes to the server log only; exception text never contains the key because
    # the client builds its messages from codes and its own words.
    _LOG.error("Unexpected error%s", f" ({context})" if context else "", exc_info=err)
