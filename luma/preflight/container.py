"""Container sniffing: what the first (and last) bytes of a file say about it.

Pure functions, no I/O: :func:`inspect_header` names the format of any byte string and, for the
formats the provider accepts, reads the length and picture size where the file keeps them (an
ISO-BMFF ``moov`` box for MP4/MOV, the ``hdrl`` list for AVI). The box walkers below never trust
a size field beyond the bytes they were given.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, replace

from .._constants import VIDEO_CONTAINERS

__all__ = ["HeaderInfo", "inspect_header"]


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


class _Corrupt(Exception):
    """A box or chunk size that cannot be right."""


_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_BOX = struct.Struct(">I4s")
_U32LE = struct.Struct("<I")  # RIFF sizes are little-endian

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


def _with_movie(info: HeaderInfo, movie: _Movie) -> HeaderInfo:
    """``info`` completed with what its index says (length, picture size, whether it has video)."""
    # An index read to its end with no video track is a sound-only file; one cut short may hold
    # the video track further on, so it stays unknown.
    has_video = True if movie.video else (False if movie.complete else None)
    return replace(
        info,
        needs_tail=False,
        duration_seconds=movie.seconds(),
        width=movie.width,
        height=movie.height,
        has_video=has_video,
        problem="It contains no video picture (sound only)." if has_video is False else info.problem,
    )


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
                return _with_movie(base, movie)
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
                pass  # letters that only look like a box: search on
            else:
                if movie.has_mvhd:
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
                length: int = _U32LE.unpack_from(data, off + 4)[0]
                end = off + 8 + length
                if end > size:
                    return end
                off = end + (length & 1)
    except (_Corrupt, struct.error, IndexError):
        return None
    return None


def _merge_tail(info: HeaderInfo, tail: bytes, *, aligned: bool) -> HeaderInfo:
    """``info`` completed with the index found in ``tail`` (unchanged when none is there)."""
    movie = _find_moov(memoryview(tail), len(tail), aligned)
    if movie is None:
        return info
    return _with_movie(info, movie)

