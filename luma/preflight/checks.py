"""The checks and their words: every verdict a user sees, and the local-file check.

A :class:`Check` says what was found and what to do, in plain words; a :class:`PreflightReport`
holds the checks that ran. The ``_..._check`` builders here are the only place those words are
written; :func:`check_file` uses them on local bytes and :mod:`luma.preflight.remote` on a URL.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import PurePosixPath

import httpx

from .._constants import MAX_VIDEO_BYTES, MAX_VIDEO_SECONDS
from .container import HeaderInfo, _declared_end, _merge_tail, inspect_header

__all__ = ["Check", "Outcome", "PreflightReport", "check_file", "format_size"]

# The provider's limit is "<= 10 s"; a clip trimmed to 10 s often measures a frame longer
# (audio priming, rounding). Within this margin the check warns instead of failing.
_DURATION_MARGIN = 0.05
_MB = 1024 * 1024

_ACCEPTED_TYPES = frozenset(
    {"video/mp4", "video/quicktime", "video/x-msvideo", "video/avi", "video/msvideo"}
)
# Labels that say nothing about the contents: the bytes decide.
_GENERIC_TYPES = frozenset(
    {
        "",
        "application/octet-stream",
        "binary/octet-stream",
        "application/binary",
        "application/mp4",
        "application/x-download",
        "application/force-download",
    }
)
_MIME_FOR = {"mp4": "video/mp4", "mov": "video/quicktime", "avi": "video/x-msvideo"}
_EXTENSIONS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".qt": "mov", ".avi": "avi"}


class Outcome(enum.Enum):
    """How one check ended."""

    PASS = "pass"
    FAIL = "fail"
    #: The check could not be run (or found a doubt, not a certain refusal); the user may go on.
    WARN = "warn"

    @property
    def label(self) -> str:
        """A short word for badges."""
        return {"pass": "OK", "fail": "Problem", "warn": "Warning"}[self.value]


@dataclass(frozen=True)
class Check:
    """The result of one check, in words a user can act on."""

    #: Stable identifier: "url", "reachable", "content_type", "size", "container",
    #: "duration" (and "file_name" for local files).
    key: str
    #: Short human name of what was checked.
    title: str
    #: How it ended.
    outcome: Outcome
    #: What was found, in plain words (never the URL's path or query).
    detail: str
    #: What to do about it; None when there is nothing to do.
    fix: str | None = None


@dataclass(frozen=True)
class PreflightReport:
    """All checks run on one video, plus what was learnt about it."""

    #: The checks that ran, in order; moot checks after a failure are left out.
    checks: tuple[Check, ...]
    #: The server's media type without parameters (URL), or the type the bytes show (file).
    content_type: str | None = None
    #: The file's size in bytes.
    size_bytes: int | None = None
    #: "mp4", "mov", "avi", another short format name ("webm", "html", ...) or None if unknown.
    container: str | None = None
    #: The video's length in seconds.
    duration_seconds: float | None = None
    #: Width of the picture in pixels, as displayed.
    width: int | None = None
    #: Height of the picture in pixels, as displayed.
    height: int | None = None

    @property
    def ok(self) -> bool:
        """True when no check failed (warnings allowed)."""
        return not any(c.outcome is Outcome.FAIL for c in self.checks)

    @property
    def warnings(self) -> bool:
        """True when at least one check could not be run."""
        return any(c.outcome is Outcome.WARN for c in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        """The failed checks, in order."""
        return tuple(c for c in self.checks if c.outcome is Outcome.FAIL)

    def check(self, key: str) -> Check | None:
        """The check with this key, or None when it did not run."""
        return next((c for c in self.checks if c.key == key), None)



def _truncated(info: HeaderInfo, data: bytes, size: int | None) -> HeaderInfo:
    """``info`` with a problem set when the file ends before its structure says it should."""
    if not info.accepted or size is None:
        return info
    claimed = _declared_end(data, size)
    if claimed is None:
        return info
    ends, says = format_size(size), format_size(claimed)
    if ends == says:  # too close to tell apart in rounded units
        ends, says = f"{size:,} bytes", f"{claimed:,} bytes"
    problem = f"The file is damaged or incomplete: it ends at {ends} but its contents say {says}."
    return replace(info, problem=problem, needs_tail=False)



# --------------------------------------------------------------------------------------------
# Words


def format_size(n: int) -> str:
    """A byte count as people read it: "812 bytes", "7 KB", "3.4 MB", "1.2 GB", "1.0 TB".

    Units are powers of 1024, as in the provider's "500 MB" limit (500 * 1024 * 1024 bytes),
    so a file at the limit reads "500.0 MB"; 10**12 bytes read "931.3 GB".
    """
    if n < 1024:
        return f"{n} bytes"
    if round(n / 1024) < 1024:
        return f"{n / 1024:.0f} KB"
    value = n / _MB
    for unit in ("MB", "GB"):
        # Move up a unit where rounding would show "1024.0".
        if round(value, 1) < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def _fmt_seconds(s: float) -> str:
    return f"{s:.2f}".rstrip("0").rstrip(".") + " s"


def _limit_mb(max_bytes: int) -> str:
    return f"{max_bytes / _MB:g} MB"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _dims(width: int | None, height: int | None) -> str:
    return f", {width}×{height}" if width and height else ""


_TITLES = {
    "url": "Address",
    "reachable": "Reachable",
    "content_type": "File type",
    "size": "Size",
    "container": "Video format",
    "duration": "Length",
    "file_name": "File name",
}

_CONVERT = "Convert the video to MP4 (H.264), e.g. `ffmpeg -i input -c:v libx264 -c:a aac output.mp4`."
_TRIM = "Trim the clip to {limit} or less, e.g. `ffmpeg -i input -t {secs} -c copy output.mp4`."
_FASTSTART = (
    "To make it checkable, move the index to the front: `ffmpeg -i input -c copy -movflags "
    "+faststart output.mp4`."
)


def _check(key: str, outcome: Outcome, detail: str, fix: str | None = None) -> Check:
    return Check(key, _TITLES[key], outcome, detail, fix)


def _size_check(size: int | None, max_bytes: int, *, where: str) -> Check:
    if size is None:
        return _check(
            "size",
            Outcome.WARN,
            f"{where} does not say how big the file is, so the {_limit_mb(max_bytes)} limit could not "
            "be checked.",
            f"Make sure the file is at most {_limit_mb(max_bytes)}.",
        )
    if size == 0:
        return _check(
            "size", Outcome.FAIL, "The file is empty (0 bytes).", "Check that this is the right file."
        )
    if size > max_bytes:
        return _check(
            "size",
            Outcome.FAIL,
            f"The file is {format_size(size)}; the provider accepts at most {_limit_mb(max_bytes)}.",
            f"Make the file smaller than {_limit_mb(max_bytes)}: shorten it or re-encode it at a lower "
            "bit rate.",
        )
    return _check("size", Outcome.PASS, f"{format_size(size)}, within the {_limit_mb(max_bytes)} limit.")


def _container_check(info: HeaderInfo) -> Check:
    if info.accepted:
        if info.problem:
            return _check(
                "container",
                Outcome.FAIL,
                f"This is {info.kind}, but it cannot be used: {info.problem}",
                "Export or download the video again; check that it plays from start to end.",
            )
        return _check("container", Outcome.PASS, f"{_capital(info.kind)}{_dims(info.width, info.height)}.")
    if info.container is None:
        return _check(
            "container",
            Outcome.FAIL,
            "The file is not an MP4, MOV or AVI video: its first bytes match no video format.",
            "Use an MP4, MOV or AVI video file. " + _CONVERT,
        )
    if info.container == "html":
        return _check(
            "container",
            Outcome.FAIL,
            "This is a web page, not a video file.",
            "Use the direct link to the video file itself (open the video, then copy its own address).",
        )
    return _check(
        "container",
        Outcome.FAIL,
        f"This is {info.kind}; the provider accepts only MP4, MOV or AVI "
        "(WebM, MKV, GIF and others are not accepted).",
        _CONVERT,
    )


def _duration_check(info: HeaderInfo, max_seconds: float, *, unknown: str, fix: str | None = None) -> Check:
    limit = _fmt_seconds(max_seconds)
    trim = _TRIM.format(limit=limit, secs=f"{max_seconds:g}")
    seconds = info.duration_seconds
    if seconds is None:
        fix = fix or f"Make sure the clip is at most {limit} long."
        return _check("duration", Outcome.WARN, unknown, fix)
    if seconds > max_seconds + _DURATION_MARGIN:
        return _check(
            "duration",
            Outcome.FAIL,
            f"The video is {_fmt_seconds(seconds)} long; the provider accepts at most {limit}.",
            trim,
        )
    if seconds > max_seconds:
        return _check(
            "duration",
            Outcome.WARN,
            f"The video is {_fmt_seconds(seconds)} long, a hair over the {limit} limit; the provider "
            "may refuse it.",
            trim,
        )
    return _check("duration", Outcome.PASS, f"{_fmt_seconds(seconds)}, within the {limit} limit.")


def _report(
    checks: Iterable[Check], info: HeaderInfo | None, *, content_type: str | None, size: int | None
) -> PreflightReport:
    return PreflightReport(
        tuple(checks),
        content_type=content_type,
        size_bytes=size,
        container=info.container if info else None,
        duration_seconds=info.duration_seconds if info else None,
        width=info.width if info else None,
        height=info.height if info else None,
    )


# --------------------------------------------------------------------------------------------
# Local files


def check_file(
    head: bytes,
    *,
    size: int,
    file_name: str,
    max_bytes: int = MAX_VIDEO_BYTES,
    max_seconds: float = MAX_VIDEO_SECONDS,
    tail: bytes | None = None,
) -> PreflightReport:
    """Check a local file before uploading it: size, format and length, without network.

    ``head`` is the start of the file (the whole file is best: an MP4 written without
    "faststart" keeps its length at the end, and only the whole file shows every box); ``size``
    its full size. ``tail``, when given, is the file's last bytes, searched for the index when
    ``head`` does not hold it. ``file_name`` is used only to warn about a name the provider may
    misread; the bytes decide the format. A file that ends before its own structure says it
    should (a box or RIFF chunk running past the end) fails as damaged or incomplete.
    """
    checks: list[Check] = []
    info = inspect_header(head, total_size=size)
    if info.needs_tail and tail:
        aligned = info.tail_offset is not None and size - len(tail) == info.tail_offset
        info = _merge_tail(info, tail, aligned=aligned)
    # A download cut short still starts like a good file: its box sizes give it away.
    info = _truncated(info, head, size)
    ext = PurePosixPath(file_name.replace("\\", "/")).suffix.lower()
    if info.accepted and _EXTENSIONS.get(ext) is None:
        shown = f"ends in '{ext}'" if ext else "has no extension"
        checks.append(
            _check(
                "file_name",
                Outcome.WARN,
                f"The file is {info.kind} but its name {shown}; the uploaded copy keeps the name, "
                "and the provider may judge the type by it.",
                f"Rename the file to end in .{info.container}.",
            )
        )
    checks.append(_size_check(size, max_bytes, where="The upload"))
    content_type = _MIME_FOR.get(info.container or "")
    if size == 0:
        return _report(checks, None, content_type=None, size=size)
    checks.append(_container_check(info))
    if checks[-1].outcome is Outcome.PASS:
        if info.needs_tail:
            unknown = "The file keeps its length at its end, which was not read."
            fix = (
                "Check the whole file rather than its start, or move the index to the front: "
                "`ffmpeg -i input -c copy -movflags +faststart output.mp4`."
            )
            checks.append(_duration_check(info, max_seconds, unknown=unknown, fix=fix))
        else:
            checks.append(_duration_check(info, max_seconds, unknown="The file does not state its length."))
    return _report(checks, info, content_type=content_type, size=size)


# --------------------------------------------------------------------------------------------
# Remote URLs: the words of the checks only the URL flow runs


_PRIVATE_FIX = "Use a public URL; the provider cannot reach your machine (or upload the file instead)."


def _private_check(host: str, reason: str) -> Check:
    return _check(
        "reachable",
        Outcome.FAIL,
        f"{host} {reason}: the provider downloads the video over the internet and cannot reach it.",
        _PRIVATE_FIX,
    )


def _refused_check(host: str, refusal: str, *, via: str | None) -> Check:
    """The egress guard refused to connect to ``host`` (it resolved to a private address)."""
    where = f"{via} redirects to {host}, which" if via else host
    return _check(
        "reachable",
        Outcome.FAIL,
        f"{where} {refusal}: the provider downloads the video over the internet and cannot reach "
        "it, and this server does not fetch private or local addresses.",
        _PRIVATE_FIX,
    )



def _url_check(url: str) -> tuple[httpx.URL | None, Check]:
    def fail(detail: str, fix: str) -> tuple[None, Check]:
        return None, _check("url", Outcome.FAIL, detail, fix)

    if not url or not url.strip():
        return fail("No address was given.", "Paste the video's address, starting with https://.")
    if any(ch.isspace() for ch in url) or any(ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return fail(
            "The address contains spaces or line breaks.",
            "Remove spaces around the address; a space inside it must be written as %20.",
        )
    if "://" not in url:
        return fail(
            "The address does not start with https:// (or http://).",
            "Paste the full address, including https:// at the start.",
        )
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError):
        return fail(
            "This is not a valid web address.", "Copy the video's address again from where it is hosted."
        )
    if parsed.scheme not in ("http", "https"):
        return fail(
            f"The address uses '{parsed.scheme}://'; the provider downloads only over http(s).",
            "Use an https:// (or http://) link to the video.",
        )
    if not parsed.host:
        return fail(
            "The address has no host name.", "Paste the full address, e.g. https://example.com/clip.mp4."
        )
    return parsed, _check("url", Outcome.PASS, f"A web address on {parsed.host}.")


def _status_words(status: int) -> tuple[str, str, str]:
    """(short name of the status, what it means here, what to do), in plain words."""
    if status in (401, 403, 407):
        return (
            "refuses public access",
            "the provider must be able to download the file without logging in",
            "Make the file public, or use a share link that works in a private browser window.",
        )
    if status in (404, 410):
        return (
            "not found",
            "there is no file at this address",
            "Check the address; copy the link again from where the video is hosted.",
        )
    if status == 429:
        return (
            "too many requests",
            "the server is limiting downloads",
            "Wait a minute and check again; if it persists, host the video somewhere else.",
        )
    if status >= 500:
        return (
            "server error",
            "the server hosting the video is failing",
            "Try again later, or host the video somewhere else (or upload the file).",
        )
    return (
        "refused",
        "the server would not send the file",
        "Check the address, and that the file downloads in a browser without logging in.",
    )


def _status_check(host: str, status: int, *, download_only: bool = False) -> Check:
    short, meaning, fix = _status_words(status)
    if download_only:
        detail = (
            f"{host} answers a HEAD request but refused the download with HTTP {status} ({short}): "
            f"{meaning}."
        )
    else:
        detail = f"{host} answered HTTP {status} ({short}): {meaning}."
    return _check("reachable", Outcome.FAIL, detail, fix)


def _unreachable_check(host: str, error: str) -> Check:
    detail = {
        "connect": f"{host} is unreachable from here: no connection could be made.",
        "timeout": f"{host} is unreachable from here: it did not answer in time.",
    }.get(error, f"{host} is unreachable from here: the connection broke off without an answer.")
    return _check(
        "reachable",
        Outcome.FAIL,
        detail,
        "Check the address for typos and that the server is up; the provider must be able to download it.",
    )


def _content_type_check(media: str, info: HeaderInfo | None) -> Check:
    if media in _ACCEPTED_TYPES:
        return _check("content_type", Outcome.PASS, f"The server labels it {media}.")
    accepted = info is not None and info.accepted
    if media.startswith("video/"):
        sniffed = f" The bytes are {info.kind}." if info is not None and accepted else ""
        return _check(
            "content_type",
            Outcome.WARN,
            f"The server labels it {media}, a video type the provider may not take.{sniffed}",
            "Prefer an MP4 (video/mp4), MOV or AVI file.",
        )
    generic = media in _GENERIC_TYPES
    label = f"labels it {media}" if media else "does not say what type of file this is"
    if info is not None and accepted:
        if generic:
            return _check("content_type", Outcome.PASS, f"The server {label}, but the bytes are {info.kind}.")
        return _check(
            "content_type",
            Outcome.WARN,
            f"The server labels it {media}, but the bytes are {info.kind}; the provider may go by the label.",
            "Have the server send the file as video/mp4 (or upload the file instead).",
        )
    if media in ("text/html", "application/xhtml+xml") or (info is not None and info.container == "html"):
        return _check(
            "content_type",
            Outcome.FAIL,
            "This looks like a web page, not a video file.",
            "Use the direct link to the file (open the video, then copy the video's own address).",
        )
    if info is None:
        if generic:
            return _check(
                "content_type",
                Outcome.WARN,
                f"The server {label}, and the start of the file could not be read to tell.",
            )
        return _check(
            "content_type",
            Outcome.FAIL,
            f"The server says this is {media}, not a video file.",
            "Use the direct link to the video file (MP4, MOV or AVI).",
        )
    what = info.kind if info.container else "not in any video format the provider knows"
    return _check(
        "content_type",
        Outcome.FAIL,
        f"The server {label}, and the bytes are {what}: not an MP4, MOV or AVI video.",
        _container_check(info).fix,
    )


