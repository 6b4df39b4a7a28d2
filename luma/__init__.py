"""A typed client for kie.ai's "Luma modify video" API, with an offline emulator of it.

``LumaClient`` (sync) and ``AsyncLumaClient`` (async) cover every documented endpoint; records
and errors are re-exported here so callers need one import. ``luma.preflight`` (the video
checks; pure Python over httpx) and ``luma.emulator`` (the offline provider; its media module
loads PyAV on first use) are imported on their own.
"""

from __future__ import annotations

from ._constants import (
    DEFAULT_API_BASE,
    DEFAULT_CONCURRENCY,
    DEFAULT_UPLOAD_BASE,
    DEFAULT_UPLOAD_PATH,
    RECOMMENDED_POLL_SECONDS,
    USER_AGENT,
)
from ._retry import CreateLimiter, RetryPolicy
from .callbacks import sign, signature_headers, verify_callback, verify_signature
from .client import AsyncLumaClient, LumaClient
from .errors import (
    AddressRefusedError,
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
from .models import (
    CallbackEvent,
    Task,
    TaskBatch,
    TaskRequest,
    TaskStatus,
    UploadedFile,
    parse_callback,
    parse_request,
    parse_task,
    parse_upload,
)

__all__ = [
    "APIError",
    "AddressRefusedError",
    "AsyncLumaClient",
    "AuthenticationError",
    "BadRequestError",
    "CallbackEvent",
    "ConfigurationError",
    "ConnectError",
    "CreateLimiter",
    "DEFAULT_API_BASE",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_UPLOAD_BASE",
    "DEFAULT_UPLOAD_PATH",
    "FeatureDisabledError",
    "GenerationFailedError",
    "InsufficientCreditsError",
    "InvalidInputError",
    "LumaClient",
    "LumaError",
    "MaintenanceError",
    "MalformedResponseError",
    "MethodNotAllowedError",
    "NotFoundError",
    "RECOMMENDED_POLL_SECONDS",
    "RateLimitError",
    "RequestTimeout",
    "RetryPolicy",
    "ServerError",
    "SignatureError",
    "Task",
    "TaskBatch",
    "TaskRequest",
    "TaskStatus",
    "TransportError",
    "USER_AGENT",
    "UploadedFile",
    "ValidationError",
    "error_for_code",
    "parse_callback",
    "parse_request",
    "parse_task",
    "parse_upload",
    "sign",
    "signature_headers",
    "verify_callback",
    "verify_signature",
]
