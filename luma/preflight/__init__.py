"""Checks on an input video before any credit is spent.

The provider takes a public MP4, MOV or AVI URL of at most 500 MB and 10 seconds, and charges
for a task even when it then fails on the input. :func:`check_url` finds out beforehand, with a
handful of small requests: a ``HEAD``, one ranged ``GET`` of the file's first bytes and, for an
MP4/MOV whose index (``moov``) sits at the end, one ranged ``GET`` of the tail. The whole file is
never downloaded. :func:`check_file` runs the same size, format and length checks on the bytes
of a local file before it is uploaded.

Every check ends as an :class:`Outcome`: ``PASS``, ``FAIL`` (the provider will refuse the video,
or cannot fetch it) or ``WARN`` (the check could not be run; the user may go on). After a failure
that makes the later checks moot (a malformed address, an unreachable server, a web page instead
of a video) those checks are left out of the report rather than shown as passed.

The format is decided by the bytes, never by the file name or the server's label alone.
Details name the host at most, never the path or query string, which may carry signed tokens.
Requests go through the ``httpx`` client the caller passes in (and only that one), so the
offline emulator's transport works here as it does for the API client; ``Authorization`` and
``Cookie`` headers are stripped, because the provider fetches the video without them.

Private and local addresses fail twice over. Before any request, a host written as a private IP
(in any spelling: ``127.1``, ``[::ffff:7f00:1]``, ...) or a local name fails the check, as does
a redirect to one; the provider could not reach it from the internet. And :func:`check_url_over`
without a transport connects through :func:`luma.egress.guarded_transport`, which checks the
address a name resolves to at connect time, on every hop: a public-looking name that resolves to
a private address is refused there, and reported as such, never fetched. Origins the caller serves
in-process (the demo emulator's file host) are exempt by name (``local_origins``): no network is
used for them.

The package reads in three layers, each importing only the ones before it:
:mod:`~luma.preflight.container` (what the bytes say; pure), :mod:`~luma.preflight.checks` (the
verdicts and their words, and :func:`check_file`) and :mod:`~luma.preflight.remote` (the URL
flow and its drivers). Import from ``luma.preflight``; the layers are an implementation detail.
"""

from __future__ import annotations

from .checks import Check, Outcome, PreflightReport, check_file, format_size
from .container import HeaderInfo, inspect_header
from .remote import (
    DEFAULT_HEADER_BYTES,
    DEFAULT_TAIL_BYTES,
    DEFAULT_TIMEOUT,
    check_url,
    check_url_async,
    check_url_over,
)

__all__ = [
    "DEFAULT_HEADER_BYTES",
    "DEFAULT_TAIL_BYTES",
    "DEFAULT_TIMEOUT",
    "Check",
    "HeaderInfo",
    "Outcome",
    "PreflightReport",
    "check_file",
    "check_url",
    "check_url_async",
    "check_url_over",
    "format_size",
    "inspect_header",
]
