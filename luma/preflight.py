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
"""

from __future__ import annotations

import enum
import re
import struct
import warnings
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath

import httpx

from ._constants import MAX_VIDEO_BYTES, MAX_VIDEO_SECONDS, VIDEO_CONTAINERS
from ._transport import BorrowedTransport
from .egress import EgressPolicy, guarded_transport, parse_ip_literal, refusal_of, refusal_reason

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

#: Bytes read from the start of a remote file to identify its format (and, for most files,
#: its length: the MP4 index of a "faststart" file and the AVI header sit there).
DEFAULT_HEADER_BYTES = 256 * 1024
#: Bytes read from the end of a remote MP4/MOV whose index was not in the first bytes. A
#: 10-second clip's index is a few kilobytes; a long film's can be megabytes, but its header
#: box (which carries the length) comes first inside it.
DEFAULT_TAIL_BYTES = 1024 * 1024
#: Short on purpose: a server that cannot answer a HEAD within seconds will not serve the
#: provider well either, and the user is waiting.
DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)

# The provider's limit is "<= 10 s"; a clip trimmed to 10 s often measures a frame longer
# (audio priming, rounding). Within this margin the check warns instead of failing.
_DURATION_MARGIN = 0.05
_MAX_REDIRECTS = 10
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


@dataclass(frozen=True)
class HeaderInfo:
    """What the first bytes of a file say about it (see :func:`inspect_header`)."""

    #: "mp4", "mov" or "avi" when accepted; another short name when recognised but refused
    #: ("webm", "mkv", "gif", "html", ...); None when not recognised.
    container: str | None
    #: Length in seconds, when the bytes held it.
    duration_seconds: float | None
    #: Display width in pixels, when known.
    width: int | None
    #: Display height in pixels, when known.
    height: int | None
    #: True for an MP4/MOV whose index (moov box) was not in the bytes: read the file's end.
    needs_tail: bool
    #: Human name of the format with its article, e.g. "an MP4 video" or "a WebM video".
    kind: str = "unrecognised data"
    #: Offset where the index should start, when the box walk could tell (the end of the last
    #: box whose header was read). A tail read that starts here can be walked box by box.
    tail_offset: int | None = None
    #: True/False once the index shows whether there is a video track; None when unknown.
    has_video: bool | None = None
    #: Why an accepted-looking file still cannot work (damaged, no picture), or None.
    problem: str | None = None

    @property
    def accepted(self) -> bool:
        """True when the format is one the provider takes."""
        return self.container in VIDEO_CONTAINERS


# --------------------------------------------------------------------------------------------
# Parsing (pure)


class _Corrupt(Exception):
    """A box or chunk size that cannot be right."""


_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_BOX = struct.Struct(">I4s")

_MP4_BRANDS = frozenset(
    "isom iso2 iso3 iso4 iso5 iso6 iso7 iso8 iso9 mp41 mp42 mp71 avc1 dash msnv mmp4 "
    "XAVC MSNV NDAS NDSC NDSH NDSM NDSP NDSS NDXC NDXH NDXM NDXP NDXS f4v_ "
    "3gp4 3gp5 3gp6 3gp7 3gp8 3gp9 3g2a 3g2b 3g2c".replace("_", " ").split()
    + ["M4V ", "M4VH", "M4VP"]
)
_IMAGE_BRANDS = frozenset(["heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1", "avif", "avis"])
_AUDIO_BRANDS = frozenset(["M4A ", "M4B ", "M4P "])
# Atoms an old QuickTime file may start with when it has no ftyp box.
_QT_LEADING = frozenset([b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"])
# Boxes seen directly inside a moov; used to tell a real moov from the letters inside mdat.
_MOOV_CHILDREN = frozenset(
    [b"mvhd", b"trak", b"udta", b"mvex", b"iods", b"meta", b"free", b"skip", b"prfl", b"clip", b"ctab",
     b"wide"]
)
_VISUAL_ENTRIES = frozenset(
    [b"avc1", b"avc3", b"hvc1", b"hev1", b"mp4v", b"av01", b"vp08", b"vp09", b"jpeg", b"mjpa",
     b"mjpb", b"apcn", b"apch", b"apcs", b"apco", b"ap4h", b"ap4x", b"dvh1", b"dvhe", b"s263",
     b"rle ", b"raw ", b"2vuy", b"yuv2", b"v210", b"dvc ", b"dvcp", b"dv5n", b"dv5p", b"xdvc"]
)
_UNKNOWN_DURATIONS = (0, 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF)


@dataclass
class _Movie:
    """What was read from one moov box."""

    timescale: int = 0
    duration: int = 0
    fragment_duration: int = 0
    has_mvhd: bool = False
    complete: bool = True
    video: bool = False
    width: int | None = None
    height: int | None = None

    def seconds(self) -> float | None:
        if self.timescale <= 0:
            return None
        if self.duration not in _UNKNOWN_DURATIONS:
            return self.duration / self.timescale
        # Fragmented MP4: the header says 0 and the true length is in mvex/mehd, if anywhere.
        if self.fragment_duration not in _UNKNOWN_DURATIONS:
            return self.fragment_duration / self.timescale
        return None


def _box(buf: bytes | memoryview, off: int, end: int) -> tuple[bytes, int, int | None] | None:
    """(type, header length, total size or None for "to the end") of the box at ``off``."""
    if off + 8 > end:
        return None
    size, kind = _BOX.unpack_from(buf, off)
    if size == 1:
        if off + 16 > end:
            return None
        (size,) = _U64.unpack_from(buf, off + 8)
        if size < 16:
            raise _Corrupt
        return kind, 16, size
    if size == 0:
        return kind, 8, None
    if size < 8:
        raise _Corrupt
    return kind, 8, size


def _children(buf: bytes | memoryview, start: int, stop: int) -> Iterable[tuple[bytes, int, int, bool]]:
    """(type, payload start, payload stop, whole) of each box in ``buf[start:stop]``.

    ``whole`` is False for the last box when ``stop`` cut it short (a truncated read); its
    payload then ends at ``stop``.
    """
    off = start
    while off + 8 <= stop:
        head = _box(buf, off, stop)
        if head is None:
            return
        kind, hdr, size = head
        end = stop if size is None else off + size
        yield kind, off + hdr, min(end, stop), end <= stop
        if end >= stop:
            return
        off = end


def _parse_moov(buf: bytes | memoryview, start: int, stop: int, whole: bool) -> _Movie:
    movie = _Movie(complete=whole)
    for kind, p, q, ok in _children(buf, start, stop):
        movie.complete = movie.complete and ok
        if kind == b"mvhd" and q - p >= 20:
            version = buf[p]
            if version == 1 and q - p >= 32:
                movie.timescale = _U32.unpack_from(buf, p + 20)[0]
                movie.duration = _U64.unpack_from(buf, p + 24)[0]
                movie.has_mvhd = True
            elif version == 0:
                movie.timescale, movie.duration = struct.unpack_from(">II", buf, p + 12)
                movie.has_mvhd = True
        elif kind == b"mvex":
            for k2, p2, q2, _ in _children(buf, p, q):
                if k2 == b"mehd" and q2 - p2 >= 8:
                    if buf[p2] == 1 and q2 - p2 >= 12:
                        movie.fragment_duration = _U64.unpack_from(buf, p2 + 4)[0]
                    else:
                        movie.fragment_duration = _U32.unpack_from(buf, p2 + 4)[0]
        elif kind == b"trak" and not movie.video:
            _parse_trak(buf, p, q, movie)
    return movie


def _parse_trak(buf: bytes | memoryview, start: int, stop: int, movie: _Movie) -> None:
    handler = None
    dims: tuple[int, int] | None = None
    rotated = False
    entry_dims: tuple[int, int] | None = None
    for kind, p, q, _ in _children(buf, start, stop):
        if kind == b"tkhd" and q > p:
            base = p + (36 if buf[p] == 1 else 24)  # after version/flags, times, ids, duration
            if q - base >= 60:
                # reserved 8, layer 2, group 2, volume 2, reserved 2, then the 3x3 matrix.
                a, b, _u, c, d = struct.unpack_from(">iiiii", buf, base + 16)
                rotated = a == 0 and d == 0 and abs(b) == 0x10000 and abs(c) == 0x10000
                w, h = struct.unpack_from(">II", buf, base + 52)
                if w >> 16 and h >> 16:
                    dims = (w >> 16, h >> 16)
        elif kind == b"mdia":
            for k2, p2, q2, _ in _children(buf, p, q):
                if k2 == b"hdlr" and q2 - p2 >= 12:
                    handler = bytes(buf[p2 + 8 : p2 + 12])
                elif k2 == b"minf":
                    entry_dims = _sample_entry_dims(buf, p2, q2)
    if handler == b"vide":
        movie.video = True
        dims = dims or entry_dims
        if dims:
            movie.width, movie.height = (dims[1], dims[0]) if rotated else dims


def _sample_entry_dims(buf: bytes | memoryview, start: int, stop: int) -> tuple[int, int] | None:
    for kind, p, q, _ in _children(buf, start, stop):
        if kind != b"stbl":
            continue
        for k2, p2, q2, _ in _children(buf, p, q):
            if k2 != b"stsd" or q2 - p2 < 8 + 8 + 28:
                continue
            entry = p2 + 8  # after version/flags and entry count
            kind3 = bytes(buf[entry + 4 : entry + 8])
            if kind3 in _VISUAL_ENTRIES:
                w, h = struct.unpack_from(">HH", buf, entry + 8 + 24)
                if w and h:
                    return w, h
    return None


def _movie_to_fields(movie: _Movie) -> dict[str, object]:
    fields: dict[str, object] = {
        "duration_seconds": movie.seconds(),
        "width": movie.width,
        "height": movie.height,
        "has_video": True if movie.video else (False if movie.complete else None),
    }
    if fields["has_video"] is False:
        fields["problem"] = "It contains no video picture (sound only)."
    return fields


def _brand_container(major: str, compatible: list[str]) -> tuple[str, str]:
    """(container, kind) for an ISO-BMFF file with these brands."""
    if major == "qt  ":
        return "mov", "a QuickTime (MOV) video"
    if major in _MP4_BRANDS:
        return "mp4", "an MP4 video"
    if major in _IMAGE_BRANDS:
        return ("avif" if major.startswith("avi") else "heif"), "a still image (HEIF/AVIF)"
    if major in _AUDIO_BRANDS:
        return "m4a", "an M4A audio file"
    if "qt  " in compatible:
        return "mov", "a QuickTime (MOV) video"
    # An ISO media file with a brand we do not know (many cameras have their own): the format
    # is MP4's, and the index check below still catches a file without a picture.
    return "mp4", "an MP4 video"


def _inspect_isobmff(buf: memoryview, n: int, total: int | None) -> HeaderInfo:
    container, kind = "mov", "a QuickTime (MOV) video"
    first = _box(buf, 0, n)
    if first is not None and first[0] == b"ftyp" and n >= 16:
        major = bytes(buf[8:12]).decode("latin-1")
        ftyp_end = min(first[2] or n, n)
        compatible = [bytes(buf[i : i + 4]).decode("latin-1") for i in range(16, ftyp_end - 3, 4)]
        container, kind = _brand_container(major, compatible)
    base = HeaderInfo(container, None, None, None, False, kind)
    if container not in VIDEO_CONTAINERS:
        return base
    off = 0
    try:
        while True:
            if total is not None and off >= total:
                return replace(base, problem="It has no index (moov box): the file is incomplete or damaged.")
            head = _box(buf, off, n)
            if head is None:
                # The next box header lies beyond what was read: the index may be there.
                return replace(base, needs_tail=True, tail_offset=off)
            box_kind, hdr, size = head
            if box_kind == b"moov":
                stop = n if size is None else off + size
                movie = _parse_moov(buf, off + hdr, min(stop, n), stop <= n)
                if not movie.has_mvhd:
                    if stop > n:  # cut short before its header: read it from the file's end
                        return replace(base, needs_tail=True, tail_offset=off)
                    problem = "Its index (moov box) has no movie header: the file is damaged."
                    return replace(base, problem=problem)
                return replace(base, **_movie_to_fields(movie))  # type: ignore[arg-type]
            if size is None:  # a box running to the end of the file, and no index before it
                return replace(base, problem="It has no index (moov box): the file is incomplete or damaged.")
            off += size
    except (_Corrupt, struct.error, IndexError):
        return replace(base, problem="Its box structure is broken: the file is damaged.")


def _find_moov(buf: memoryview, n: int, aligned: bool) -> _Movie | None:
    """The movie in a tail read: walked box by box when ``aligned``, else searched for."""
    if aligned:
        try:
            for kind, p, q, whole in _children(buf, 0, n):
                if kind == b"moov":
                    movie = _parse_moov(buf, p, q, whole)
                    if movie.has_mvhd:
                        return movie
        except (_Corrupt, struct.error, IndexError):
            pass
    data = bytes(buf[:n])
    pos = data.rfind(b"moov")
    while pos >= 4:
        start = pos - 4
        try:
            head = _box(buf, start, n)
        except _Corrupt:
            head = None
        if head is not None and head[0] == b"moov" and data[pos + 8 : pos + 12] in _MOOV_CHILDREN:
            stop = n if head[2] is None else start + head[2]
            try:
                movie = _parse_moov(buf, start + head[1], min(stop, n), stop <= n)
            except (_Corrupt, struct.error, IndexError):
                movie = None
            if movie is not None and movie.has_mvhd:
                return movie
        pos = data.rfind(b"moov", 0, pos)
    return None


def _inspect_avi(buf: memoryview, n: int) -> HeaderInfo:
    base = HeaderInfo("avi", None, None, None, False, "an AVI video")
    usec = frames = width = height = 0
    dml_frames = 0
    stream_seconds: float | None = None
    video = False
    try:
        off = 12
        hdrl: tuple[int, int] | None = None
        whole = False
        while off + 12 <= n:
            cid, size = struct.unpack_from("<4sI", buf, off)
            if cid == b"LIST" and bytes(buf[off + 8 : off + 12]) == b"hdrl":
                hdrl = (off + 12, min(off + 8 + size, n))
                whole = off + 8 + size <= n
                break
            off += 8 + size + (size & 1)
        if hdrl is None:
            return base
        for cid, p, q in _riff_chunks(buf, *hdrl):
            if cid == b"avih" and q - p >= 40:
                usec, _, _, _, frames, _, _, _, width, height = struct.unpack_from("<10I", buf, p)
            elif cid == b"LIST:strl":
                is_video, seconds, dims = _avi_stream(buf, p, q)
                if is_video and not video:
                    video = True
                    stream_seconds = seconds
                    if dims and not (width and height):
                        width, height = dims
            elif cid == b"LIST:odml":
                for cid2, p2, q2 in _riff_chunks(buf, p, q):
                    if cid2 == b"dmlh" and q2 - p2 >= 4:
                        (dml_frames,) = struct.unpack_from("<I", buf, p2)
    except (struct.error, IndexError):
        return base
    duration = None
    frames = max(frames, dml_frames)  # OpenDML (> 1 GB) files count the rest in dmlh
    if usec and frames:
        duration = usec * frames / 1_000_000
    if stream_seconds:
        # The stream header's rate/scale is exact where avih rounds to whole microseconds.
        duration = max(stream_seconds, duration or 0.0) if dml_frames else stream_seconds
    has_video = True if video else (False if whole else None)
    return replace(
        base,
        duration_seconds=duration,
        width=width or None,
        height=height or None,
        has_video=has_video,
        problem="It contains no video picture (sound only)." if has_video is False else None,
    )


def _riff_chunks(buf: memoryview, start: int, stop: int) -> Iterable[tuple[bytes, int, int]]:
    off = start
    while off + 8 <= stop:
        cid, size = struct.unpack_from("<4sI", buf, off)
        if cid == b"LIST" and off + 12 <= stop:
            yield b"LIST:" + bytes(buf[off + 8 : off + 12]), off + 12, min(off + 8 + size, stop)
        else:
            yield cid, off + 8, min(off + 8 + size, stop)
        off += 8 + size + (size & 1)


def _avi_stream(buf: memoryview, start: int, stop: int) -> tuple[bool, float | None, tuple[int, int] | None]:
    """(is a video stream, its length in seconds, its picture size) of one strl list."""
    video = False
    seconds = None
    dims = None
    for cid, p, q in _riff_chunks(buf, start, stop):
        if cid == b"strh" and q - p >= 36:
            kind = bytes(buf[p : p + 4])
            scale, rate, _start, length = struct.unpack_from("<IIII", buf, p + 20)
            video = kind == b"vids"
            if video and rate and scale and length:
                seconds = length * scale / rate
        elif cid == b"strf" and video and q - p >= 12:
            w, h = struct.unpack_from("<ii", buf, p + 4)
            dims = (abs(w), abs(h))
    return video, seconds, dims


_HTML_START = re.compile(
    rb"^\s*(?:<!doctype\s+html|<html|<head|<body|<!--|<\?xml[^>]*>\s*<(?:html|!doctype))", re.I
)


def _other_format(data: bytes) -> tuple[str, str] | None:
    """(container, kind) for formats that are recognised but not accepted."""
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return ("webm", "a WebM video") if b"webm" in data[:64] else ("mkv", "a Matroska (MKV) video")
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif", "a GIF animation"
    if data.startswith(b"FLV"):
        return "flv", "a Flash (FLV) video"
    if data.startswith(b"OggS"):
        return "ogg", "an Ogg media file"
    if data.startswith(b"\x30\x26\xb2\x75\x8e\x66\xcf\x11"):
        return "wmv", "a Windows Media (WMV/ASF) video"
    if data.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "mpeg", "an MPEG-PS video"
    if len(data) >= 377 and data[0] == 0x47 and data[188] == 0x47 and data[376] == 0x47:
        return "ts", "an MPEG transport stream (TS) video"
    if data.startswith(b"RIFF") and len(data) >= 12:
        sub = data[8:12]
        if sub == b"WAVE":
            return "wav", "a WAV audio file"
        if sub == b"WEBP":
            return "webp", "a WebP image"
        return "riff", "a RIFF file that is not an AVI video"
    if data.startswith(b"\x89PNG"):
        return "png", "a PNG image"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg", "a JPEG image"
    if data.startswith(b"%PDF"):
        return "pdf", "a PDF document"
    if data.startswith(b"PK\x03\x04"):
        return "zip", "a ZIP archive"
    if data.startswith(b"ID3") or data[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "mp3", "an MP3 audio file"
    if _HTML_START.match(data[:1024]):
        return "html", "a web page (HTML)"
    stripped = data[:64].lstrip()
    if stripped.startswith((b"{", b"[")):
        return "json", "JSON text"
    if stripped.startswith(b"<"):
        return "xml", "XML or HTML text"
    return None


def _looks_isobmff(data: bytes) -> bool:
    if len(data) < 8:
        return False
    kind = data[4:8]
    if kind == b"ftyp":
        return True
    size = _U32.unpack_from(data, 0)[0]
    return kind in _QT_LEADING and (size in (0, 1) or size >= 8)


def inspect_header(data: bytes, *, total_size: int | None) -> HeaderInfo:
    """Identify a video from its first bytes (pure; no I/O).

    ``data`` is the start of the file (or all of it); ``total_size`` its full size when known,
    which lets a box walk tell "the index is further on" from "there is no index".
    MP4/MOV: the movie header (length) and the first video track's size are read from the
    moov box when it lies in ``data``; otherwise ``needs_tail`` is set. AVI: the avih and
    stream headers. Other formats get a name (``container``) so the refusal can say what the
    file is.
    """
    view = memoryview(data)
    n = len(data)
    if total_size is not None and total_size < n:
        total_size = n
    if _looks_isobmff(data):
        return _inspect_isobmff(view, n, total_size)
    if n >= 12 and data.startswith(b"RIFF") and data[8:12] == b"AVI ":
        return _inspect_avi(view, n)
    other = _other_format(data[:4096])
    if other is not None:
        return HeaderInfo(other[0], None, None, None, False, other[1])
    return HeaderInfo(None, None, None, None, False)


def _declared_end(data: bytes, size: int) -> int | None:
    """Where the file's own top-level structure says it ends, when that is past ``size``.

    ``data`` is the start of the file (ideally all of it), ``size`` its real length. MP4/MOV: the
    top-level boxes are walked as far as their headers lie in ``data``; a box running past the
    end (typically ``mdat`` or ``moov`` cut short by a broken download) gives its end. AVI: the
    RIFF chunks' sizes. None when nothing claims more than ``size`` or the walk cannot tell.
    """
    view = memoryview(data)
    n = len(data)
    try:
        if _looks_isobmff(data):
            off = 0
            while off < size:
                if off + 8 > size:
                    return off + 8  # the file ends inside a box header
                head = _box(view, off, n)
                if head is None or head[2] is None:
                    return None  # header not read, or a box that runs to the end by definition
                off += head[2]
            return off if off > size else None
        if data.startswith(b"RIFF") and data[8:12] == b"AVI ":
            off = 0
            # RIFF 'AVI ' then, past 1 GB, RIFF 'AVIX' extensions (OpenDML).
            while off + 8 <= min(n, size) and data[off : off + 4] == b"RIFF":
                (length,) = struct.unpack_from("<I", data, off + 4)
                end = off + 8 + length
                if end > size:
                    return end
                off = end + (length & 1)
    except (_Corrupt, struct.error, IndexError):
        return None
    return None


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


def _merge_tail(info: HeaderInfo, tail: bytes, *, aligned: bool) -> HeaderInfo:
    """``info`` completed with the index found in ``tail`` (unchanged when none is there)."""
    movie = _find_moov(memoryview(tail), len(tail), aligned)
    if movie is None:
        return info
    return replace(info, needs_tail=False, **_movie_to_fields(movie))  # type: ignore[arg-type]


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
# Remote URLs: the checks are written once as a generator that yields the requests it needs
# and receives their answers; check_url and check_url_async only carry them out.


@dataclass(frozen=True)
class _Request:
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    #: Body bytes to keep at most; the rest of the body is never read.
    limit: int = 0
    #: Read the body only from a 206 answer (a tail read that got the whole file must stop).
    partial_only: bool = False


@dataclass(frozen=True)
class _Answer:
    status: int = 0
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    body: bytes = b""
    #: The body ended before ``limit`` was reached: ``body`` is all of it.
    exhausted: bool = False
    #: "connect", "timeout", "refused" (by the egress guard) or "other" when no answer came.
    error: str | None = None
    #: For "refused": what the host is, e.g. "resolves to a private network address".
    refusal: str | None = None


@dataclass(frozen=True)
class _Fetched:
    answer: _Answer
    url: httpx.URL
    #: Set when following redirects went wrong (reachable: FAIL).
    failure: Check | None = None


_Flow = Generator[_Request, _Answer, PreflightReport]

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_METHOD_REFUSED = frozenset({405, 501})
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".lan", ".home.arpa", ".localdomain")


def _private_reason(host: str) -> str | None:
    """Why the provider cannot reach ``host`` from the internet, or None when it may.

    Judged from the host as written (no DNS): IP literals in every spelling, and local names.
    """
    ip = parse_ip_literal(host)
    if ip is not None:
        reason = refusal_reason(ip)
        return f"is {reason}" if reason else None
    name = host.lower().rstrip(".").strip("[]")
    if name == "localhost" or name.endswith(".localhost"):
        return "is this machine (localhost)"
    if "." not in name or name.endswith(_LOCAL_SUFFIXES):
        return "is a local network name, not a public internet address"
    return None


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


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host.lower().rstrip("."), url.port or {"http": 80, "https": 443}.get(url.scheme)


def _origins(values: Iterable[str]) -> frozenset[tuple[str, str, int | None]]:
    """``local_origins`` as comparable (scheme, host, port) triples."""
    if isinstance(values, str):
        values = (values,)
    found = set()
    for value in values:
        url = httpx.URL(value)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"local_origins must be http(s) origins, not {value!r}")
        found.add(_origin(url))
    return frozenset(found)


@dataclass(frozen=True)
class _Scope:
    """Which hosts skip the by-name private check, and why."""

    #: Origins served in-process (no network is used for them).
    local: frozenset[tuple[str, str, int | None]] = frozenset()
    #: The deprecated ``allow_private=True``: every host skips it.
    anything: bool = False

    def is_local(self, url: httpx.URL) -> bool:
        return _origin(url) in self.local

    def reason(self, url: httpx.URL) -> str | None:
        if self.anything or self.is_local(url):
            return None
        return _private_reason(url.host)


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


def _fetch(
    url: httpx.URL,
    method: str,
    headers: tuple[tuple[str, str], ...],
    *,
    limit: int = 0,
    partial_only: bool = False,
    scope: _Scope,
) -> Generator[_Request, _Answer, _Fetched]:
    """One request, following redirects by hand so that every hop's host is checked."""
    previous: str | None = None
    for _ in range(_MAX_REDIRECTS + 1):
        answer = yield _Request(method, str(url), headers, limit, partial_only)
        if answer.error == "refused":
            refused = _refused_check(url.host, answer.refusal or "is a private or local address", via=previous)
            return _Fetched(answer, url, refused)
        location = answer.headers.get("location")
        if answer.error or answer.status not in _REDIRECTS or not location:
            return _Fetched(answer, url)
        try:
            nxt = url.join(location)
        except (httpx.InvalidURL, ValueError):
            nxt = None
        if nxt is None or nxt.scheme not in ("http", "https") or not nxt.host:
            failure = _check(
                "reachable",
                Outcome.FAIL,
                f"{url.host} redirects to an address the provider cannot download from.",
                "Use the direct link to the video file.",
            )
            return _Fetched(answer, url, failure)
        reason = scope.reason(nxt)
        if reason:
            check = _private_check(nxt.host, reason)
            failure = replace(check, detail=f"{url.host} redirects to {check.detail}")
            return _Fetched(answer, url, failure)
        previous, url = url.host, nxt
    failure = _check(
        "reachable",
        Outcome.FAIL,
        f"{url.host} redirects more than {_MAX_REDIRECTS} times in a row.",
        "Use the direct link to the video file.",
    )
    return _Fetched(_Answer(), url, failure)


_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*$", re.I)


def _content_range(headers: httpx.Headers) -> tuple[int | None, int | None]:
    """(first byte, total size) from Content-Range, each None when absent or unknown."""
    match = _CONTENT_RANGE.match(headers.get("content-range", ""))
    if not match:
        return None, None
    first = int(match.group(1)) if match.group(1) else None
    total = int(match.group(3)) if match.group(3) != "*" else None
    return first, total


def _content_length(headers: httpx.Headers) -> int | None:
    value = headers.get("content-length", "").strip()
    return int(value) if value.isdigit() else None


def _is_ok(answer: _Answer) -> bool:
    return answer.error is None and 200 <= answer.status < 300


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


def _url_flow(
    url: str,
    *,
    max_bytes: int,
    max_seconds: float,
    header_bytes: int,
    tail_bytes: int,
    scope: _Scope,
) -> _Flow:
    checks: list[Check] = []
    parsed, url_check = _url_check(url)
    checks.append(url_check)
    if parsed is None:
        return PreflightReport(tuple(checks))
    host = parsed.host
    reason = scope.reason(parsed)
    if reason:
        checks.append(_private_check(host, reason))
        return PreflightReport(tuple(checks))

    identity = (("Accept-Encoding", "identity"),)  # byte ranges and lengths of the file itself
    head = yield from _fetch(parsed, "HEAD", identity, scope=scope)
    if head.failure:
        return PreflightReport((*checks, head.failure))
    if head.answer.error:
        return PreflightReport((*checks, _unreachable_check(host, head.answer.error)))
    head_ok = _is_ok(head.answer)

    # The first bytes: the format, and for most files the length. Also the HEAD fallback.
    ranged = (*identity, ("Range", f"bytes=0-{header_bytes - 1}"))
    start = yield from _fetch(head.url if head_ok else parsed, "GET", ranged, limit=header_bytes, scope=scope)
    if start.failure:
        return PreflightReport((*checks, start.failure))
    got = start.answer
    got_ok = _is_ok(got) or got.status == 416  # 416 to "bytes=0-...": the file is empty
    got_error_status = got.error is None and got.status >= 400 and got.status != 416
    final_host = (start.url if got_ok else head.url).host
    via = f" (after a redirect to {final_host})" if final_host != host else ""

    if head_ok:
        if got_error_status:
            return PreflightReport((*checks, _status_check(host, got.status, download_only=True)))
        checks.append(
            _check(
                "reachable",
                Outcome.PASS,
                f"{host} answered{via}."
                # A local origin is served in-process for the demo, where the "provider" is here.
                + ("" if scope.is_local(parsed) or (scope.anything and _private_reason(host)) else (
                    " This shows it is reachable from here; the provider must reach it from the "
                    "internet as well."
                )),
            )
        )
    elif got_ok:
        checks.append(
            _check(
                "reachable",
                Outcome.PASS,
                f"{host} sent the start of the file{via} (it refused a HEAD request with HTTP "
                f"{head.answer.status}, which is harmless).",
            )
        )
    elif got_error_status and got.status not in _METHOD_REFUSED:
        return PreflightReport((*checks, _status_check(host, got.status)))
    elif head.answer.status >= 400 and head.answer.status not in _METHOD_REFUSED:
        return PreflightReport((*checks, _status_check(host, head.answer.status)))
    else:
        checks.append(
            _check(
                "reachable",
                Outcome.WARN,
                f"{host} refuses HEAD requests (HTTP {head.answer.status}) and gave no usable answer to a "
                "ranged download either, so the file could not be checked.",
                "Check that the link downloads the video in a browser.",
            )
        )

    # Size: Content-Range totals are the file's; a HEAD length or a whole-body length next.
    _, size = _content_range(got.headers) if got.status in (206, 416) else (None, None)
    if size is None and head_ok:
        size = _content_length(head.answer.headers)
    if size is None and got.status == 200 and got.error is None:
        size = len(got.body) if got.exhausted else _content_length(got.headers)

    info: HeaderInfo | None = None
    tail_reason = ""
    if _is_ok(got) and got.body:
        info = _truncated(inspect_header(got.body, total_size=size), got.body, size)
        if info.needs_tail and got.status == 200:
            tail_reason = (
                "The server ignores range requests, so reading the length at the end of the file "
                "would mean downloading all of it."
            )
        elif info.needs_tail:
            span = tail_bytes
            after = None if size is None or info.tail_offset is None else size - info.tail_offset
            if after is not None and 0 < after <= tail_bytes:
                span = after  # exactly the boxes after the last one walked
            tail = yield from _fetch(
                start.url,
                "GET",
                (*identity, ("Range", f"bytes=-{span}")),
                limit=span,
                partial_only=True,
                scope=scope,
            )
            answer = tail.answer
            if answer.error == "refused" and tail.failure is not None:
                # The name answered public a moment ago and private now: refuse, do not warn.
                kept = [c for c in checks if c.key != "reachable"]
                return PreflightReport((*kept, tail.failure))
            if tail.failure is None and answer.error is None and answer.status == 206 and answer.body:
                first, _total = _content_range(answer.headers)
                aligned = first is not None and first == info.tail_offset
                info = _merge_tail(info, answer.body, aligned=aligned)
                tail_reason = "The index at the end of the file held no length."
            else:
                tail_reason = "The end of the file, where its length is stored, could not be read."

    media = ""
    label_source = head.answer if head_ok else (got if _is_ok(got) else None)
    if label_source is not None:
        media = label_source.headers.get("content-type", "").split(";")[0].strip().lower()

    def report() -> PreflightReport:
        return _report(checks, info, content_type=media or None, size=size)

    checks.append(_content_type_check(media, info))
    if checks[-1].outcome is Outcome.FAIL:
        return report()
    checks.append(_size_check(size, max_bytes, where="The server"))
    if size == 0:
        return report()
    if info is None:
        if got.error:
            why = "the download broke off"
        elif got.status and not _is_ok(got):
            why = f"the server answered HTTP {got.status}"
        else:
            why = "the server sent no bytes"
        checks.append(
            _check(
                "container",
                Outcome.WARN,
                f"The start of the file could not be read ({why}), so its format is unknown.",
                "Make sure the link gives an MP4, MOV or AVI file.",
            )
        )
        checks.append(
            _check(
                "duration",
                Outcome.WARN,
                "The length could not be read because the start of the file could not be read.",
                f"Make sure the clip is at most {_fmt_seconds(max_seconds)} long.",
            )
        )
        return report()
    checks.append(_container_check(info))
    if checks[-1].outcome is Outcome.FAIL:
        return report()
    if info.needs_tail:
        checks.append(_duration_check(info, max_seconds, unknown=tail_reason, fix=_FASTSTART))
    else:
        checks.append(_duration_check(info, max_seconds, unknown="The file does not state its length."))
    return report()


def _build(
    client: httpx.Client | httpx.AsyncClient, req: _Request, timeout: float | httpx.Timeout
) -> httpx.Request:
    request = client.build_request(req.method, req.url, headers=list(req.headers), timeout=timeout)
    # The provider fetches the video with no credentials: neither may we (and an API key set
    # on a shared client must never go to a third-party host).
    for name in ("authorization", "cookie"):
        request.headers.pop(name, None)
    return request


def _error_answer(exc: Exception) -> _Answer:
    refused = refusal_of(exc)
    if refused is not None:
        words = f"resolves to {refused.reason}" if refused.address else f"is {refused.reason}"
        return _Answer(error="refused", refusal=words)
    return _Answer(error=_error_kind(exc))


def _error_kind(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect"
    return "other"


def _wants_body(req: _Request, status: int) -> bool:
    if req.limit <= 0:
        return False
    return status == 206 if req.partial_only else 200 <= status < 300


def _send(client: httpx.Client, req: _Request, timeout: float | httpx.Timeout) -> _Answer:
    try:
        request = _build(client, req, timeout)
        response = client.send(request, stream=True, auth=None, follow_redirects=False)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return _error_answer(exc)
    body = bytearray()
    exhausted = False
    try:
        if _wants_body(req, response.status_code):
            for chunk in response.iter_bytes():
                body += chunk[: req.limit - len(body)]
                if len(body) >= req.limit:
                    break
            else:
                exhausted = True
    except httpx.HTTPError:
        pass  # keep what arrived: a partial start is still worth inspecting
    finally:
        response.close()
    return _Answer(response.status_code, response.headers, bytes(body), exhausted)


async def _send_async(client: httpx.AsyncClient, req: _Request, timeout: float | httpx.Timeout) -> _Answer:
    try:
        request = _build(client, req, timeout)
        response = await client.send(request, stream=True, auth=None, follow_redirects=False)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return _error_answer(exc)
    body = bytearray()
    exhausted = False
    try:
        if _wants_body(req, response.status_code):
            async for chunk in response.aiter_bytes():
                body += chunk[: req.limit - len(body)]
                if len(body) >= req.limit:
                    break
            else:
                exhausted = True
    except httpx.HTTPError:
        pass
    finally:
        await response.aclose()
    return _Answer(response.status_code, response.headers, bytes(body), exhausted)


def _validate(header_bytes: int, tail_bytes: int) -> None:
    if header_bytes < 64 or tail_bytes < 64:
        raise ValueError("header_bytes and tail_bytes must be at least 64")


def _scope(local_origins: Iterable[str], allow_private: bool) -> _Scope:
    if allow_private:
        warnings.warn(
            "allow_private is deprecated: it skips the private-address check for every host. Pass "
            "local_origins (the origins served in-process, e.g. the emulator's public_base) instead.",
            DeprecationWarning,
            stacklevel=3,
        )
    return _Scope(_origins(local_origins), allow_private)


def _run(
    url: str,
    client: httpx.Client,
    scope: _Scope,
    *,
    max_bytes: int,
    max_seconds: float,
    header_bytes: int,
    tail_bytes: int,
    timeout: float | httpx.Timeout,
) -> PreflightReport:
    """The sync driver: carry out the flow's requests one by one."""
    _validate(header_bytes, tail_bytes)
    flow = _url_flow(
        url,
        max_bytes=max_bytes,
        max_seconds=max_seconds,
        header_bytes=header_bytes,
        tail_bytes=tail_bytes,
        scope=scope,
    )
    try:
        req = next(flow)
        while True:
            req = flow.send(_send(client, req, timeout))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def check_url(
    url: str,
    *,
    client: httpx.Client,
    max_bytes: int = MAX_VIDEO_BYTES,
    max_seconds: float = MAX_VIDEO_SECONDS,
    header_bytes: int = DEFAULT_HEADER_BYTES,
    tail_bytes: int = DEFAULT_TAIL_BYTES,
    local_origins: Iterable[str] = (),
    allow_private: bool = False,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
) -> PreflightReport:
    """Check a video URL the way the provider will fetch it, without downloading it whole.

    Checks, in order: ``url`` (well-formed http(s)), ``reachable`` (HEAD, falling back to a
    ranged GET; private and local hosts fail), ``content_type``, ``size`` (<= ``max_bytes``),
    ``container`` (MP4/MOV/AVI by the bytes) and ``duration`` (<= ``max_seconds``). At most
    ``header_bytes`` are read from the start, and ``tail_bytes`` from the end of an MP4/MOV that
    keeps its index there. ``local_origins`` ("http://luma-emulator.local") are origins the
    caller's transport serves in-process, exempt from the private-address check; the offline demo
    needs its file host there. ``allow_private`` is deprecated (it exempts every host).
    Never raises for anything the server does; every request goes through ``client``, whose
    transport decides what the network may reach (see :func:`check_url_over`).
    """
    scope = _scope(local_origins, allow_private)
    return _run(
        url, client, scope, max_bytes=max_bytes, max_seconds=max_seconds, header_bytes=header_bytes,
        tail_bytes=tail_bytes, timeout=timeout,
    )


def check_url_over(
    url: str,
    *,
    transport: httpx.BaseTransport | None,
    local_origins: Iterable[str] = (),
    egress: EgressPolicy | None = None,
    allow_private: bool = False,
) -> PreflightReport:
    """:func:`check_url` through a transport someone else owns (e.g. ``LumaClient.transport``).

    ``None`` means the real network, through :func:`luma.egress.guarded_transport` with
    ``egress`` (default: public addresses only): never httpx's plain network, which would connect
    wherever a name resolves. A given transport is left open, so the emulator's can be lent for
    one check; callers need not import httpx.
    """
    scope = _scope(local_origins, allow_private)
    inner = guarded_transport(egress) if transport is None else BorrowedTransport(transport)
    with httpx.Client(transport=inner) as http:  # closes the guarded transport made here only
        return _run(
            url, http, scope, max_bytes=MAX_VIDEO_BYTES, max_seconds=MAX_VIDEO_SECONDS,
            header_bytes=DEFAULT_HEADER_BYTES, tail_bytes=DEFAULT_TAIL_BYTES, timeout=DEFAULT_TIMEOUT,
        )


async def check_url_async(
    url: str,
    *,
    client: httpx.AsyncClient,
    max_bytes: int = MAX_VIDEO_BYTES,
    max_seconds: float = MAX_VIDEO_SECONDS,
    header_bytes: int = DEFAULT_HEADER_BYTES,
    tail_bytes: int = DEFAULT_TAIL_BYTES,
    local_origins: Iterable[str] = (),
    allow_private: bool = False,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
) -> PreflightReport:
    """:func:`check_url` over an :class:`httpx.AsyncClient` (the same checks, the same logic)."""
    scope = _scope(local_origins, allow_private)
    _validate(header_bytes, tail_bytes)
    flow = _url_flow(
        url,
        max_bytes=max_bytes,
        max_seconds=max_seconds,
        header_bytes=header_bytes,
        tail_bytes=tail_bytes,
        scope=scope,
    )
    try:
        req = next(flow)
        while True:
            req = flow.send(await _send_async(client, req, timeout))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
