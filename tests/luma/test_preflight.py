"""Preflight checks on a video URL or local file, against real PyAV-made clips (no network)."""

from __future__ import annotations

import asyncio
import re
import struct
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from luma.egress import EgressPolicy, guarded_transport
from luma.preflight import (
    DEFAULT_HEADER_BYTES,
    Outcome,
    PreflightReport,
    check_file,
    check_url,
    check_url_async,
    check_url_over,
    format_size,
    inspect_header,
)

from .conftest import PRIVATE_NAMES, PRIVATE_SPELLINGS, PUBLIC_IP, FakeNet, Page

MB = 1024 * 1024
PASS, FAIL, WARN = Outcome.PASS, Outcome.FAIL, Outcome.WARN


def test_sizes_read_as_people_say_them():
    assert [format_size(n) for n in (812, 3_600, 7 * 1024, 3 * MB + MB // 2)] == ["812 bytes", "4 KB", "7 KB", "3.5 MB"]


def test_big_sizes_read_in_gb_and_tb_with_the_limits_binary_units():
    # Binary units, as the "500 MB" limit is 500 * 1024 * 1024 bytes.
    assert format_size(500 * MB) == "500.0 MB"
    assert format_size(5 * 1024 * MB) == "5.0 GB"
    assert format_size(1024**4) == "1.0 TB"
    assert format_size(10**12) == "931.3 GB"
    assert format_size(1024 * MB - 1) == "1.0 GB"  # never "1024.0 MB"
    assert format_size(MB - 1) == "1.0 MB"  # never "1024 KB"


# --------------------------------------------------------------------------------------------
# Real clips, made once per test session


def _write_clip(
    path: Path,
    fmt: str,
    seconds: float,
    *,
    codec: str = "libx264",
    options: dict[str, str] | None = None,
    noise: bool = False,
    fps: int = 12,
) -> bytes:
    rng = np.random.default_rng(7)
    with av.open(str(path), "w", format=fmt, options=options or {}) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(round(seconds * fps)):
            if noise:  # incompressible frames make a file bigger than one header read
                pixels = rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)
            else:
                pixels = np.full((64, 64, 3), (i * 9) % 255, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path.read_bytes()


@dataclass(frozen=True)
class Clips:
    mp4_1s: bytes  # moov at the end (the muxer's default)
    mp4_1s_faststart: bytes
    mp4_11s_faststart: bytes
    mov_1s: bytes
    avi_1s: bytes
    avi_11s: bytes
    big_1s: bytes  # ~30 KB, moov at the end
    big_11s: bytes  # ~300 KB, moov at the end: beyond the default header read


@pytest.fixture(scope="session")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    d = tmp_path_factory.mktemp("clips")
    fast = {"movflags": "faststart"}
    return Clips(
        mp4_1s=_write_clip(d / "a.mp4", "mp4", 1),
        mp4_1s_faststart=_write_clip(d / "b.mp4", "mp4", 1, options=fast),
        mp4_11s_faststart=_write_clip(d / "c.mp4", "mp4", 11, options=fast),
        mov_1s=_write_clip(d / "d.mov", "mov", 1),
        avi_1s=_write_clip(d / "e.avi", "avi", 1, codec="mpeg4"),
        avi_11s=_write_clip(d / "f.avi", "avi", 11, codec="mpeg4"),
        big_1s=_write_clip(d / "g.mp4", "mp4", 1, noise=True),
        big_11s=_write_clip(d / "h.mp4", "mp4", 11, noise=True),
    )


def _top_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    boxes, off = [], 0
    while off < len(data):
        size, kind = struct.unpack_from(">I4s", data, off)
        boxes.append((kind, off, size))
        off += size
    return boxes


# --------------------------------------------------------------------------------------------
# Hand-built boxes for edge cases


def box(kind: bytes, *children: bytes) -> bytes:
    payload = b"".join(children)
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def full_box(kind: bytes, version: int, payload: bytes) -> bytes:
    return box(kind, bytes([version, 0, 0, 0]) + payload)


def ftyp(major: bytes = b"isom", *compatible: bytes) -> bytes:
    return box(b"ftyp", major, b"\0\0\2\0", *(compatible or (b"isom", b"mp41")))


def mvhd(timescale: int, duration: int, version: int = 0) -> bytes:
    if version == 1:
        head = struct.pack(">QQIQ", 0, 0, timescale, duration)
    else:
        head = struct.pack(">IIII", 0, 0, timescale, duration)
    return full_box(b"mvhd", version, head + b"\0" * 80)


def tkhd(width: int, height: int, *, rotate: bool = False) -> bytes:
    matrix = (0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000) if rotate else (
        0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000
    )
    payload = struct.pack(">IIIII", 0, 0, 1, 0, 0) + b"\0" * 16 + struct.pack(">9i", *matrix)
    return full_box(b"tkhd", 0, payload + struct.pack(">II", width << 16, height << 16))


def trak(
    handler: bytes, width: int = 0, height: int = 0, *, rotate: bool = False, entry: tuple[int, int] | None = None
) -> bytes:
    stsd_payload = struct.pack(">I", 1)
    if entry:
        sample = b"\0" * 6 + b"\0\1" + b"\0" * 16 + struct.pack(">HH", *entry) + b"\0" * 50
        stsd_payload += box(b"avc1", sample)
    minf = box(b"minf", box(b"stbl", full_box(b"stsd", 0, stsd_payload)))
    hdlr = full_box(b"hdlr", 0, b"\0\0\0\0" + handler + b"\0" * 13)
    return box(b"trak", tkhd(width, height, rotate=rotate), box(b"mdia", hdlr, minf))


def mp4_file(*moov_children: bytes, moov_first: bool = True, major: bytes = b"isom") -> bytes:
    moov = box(b"moov", *moov_children)
    mdat = box(b"mdat", b"\0" * 1000)
    return ftyp(major) + (moov + mdat if moov_first else mdat + moov)


# --------------------------------------------------------------------------------------------
# A fake file server on httpx.MockTransport that counts what it streams


class CountingStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, data: bytes, chunk: int, site: Site) -> None:
        self.data, self.chunk, self.site = data, chunk, site

    def __iter__(self) -> Iterator[bytes]:
        for i in range(0, len(self.data), self.chunk):
            piece = self.data[i : i + self.chunk]
            self.site.streamed += len(piece)
            yield piece

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self:
            yield piece


_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


@dataclass
class Site:
    files: dict[str, tuple[bytes, str | None]]
    head_status: int | None = None
    get_status: int | None = None
    ranges: bool = True
    lengths: bool = True
    reported_size: int | None = None  # pretend the file is this big
    hide_total: bool = False  # Content-Range: bytes a-b/*
    redirects: dict[str, str] = field(default_factory=dict)
    chunk: int = 4096
    requests: list[httpx.Request] = field(default_factory=list)
    streamed: int = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path in self.redirects:
            return httpx.Response(302, headers={"Location": self.redirects[path]})
        if path not in self.files:
            return httpx.Response(404, text="<html>not here</html>", headers={"Content-Type": "text/html"})
        data, ctype = self.files[path]
        total = self.reported_size or len(data)
        headers = {"Accept-Ranges": "bytes"} if self.ranges else {}
        if ctype:
            headers["Content-Type"] = ctype
        if request.method == "HEAD":
            if self.head_status:
                return httpx.Response(self.head_status)
            if self.lengths:
                headers["Content-Length"] = str(total)
            return httpx.Response(200, headers=headers)
        if self.get_status:
            return httpx.Response(self.get_status)
        status, body = 200, data
        match = _RANGE.match(request.headers.get("range", ""))
        if self.ranges and match:
            first, last = match.groups()
            if first:
                start, end = int(first), min(int(last or total - 1), total - 1)
            else:
                start, end = max(total - int(last), 0), total - 1
            status, body = 206, data[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{'*' if self.hide_total else total}"
        if self.lengths:
            headers["Content-Length"] = str(len(body) if status == 206 else total)
        return httpx.Response(status, headers=headers, stream=CountingStream(body, self.chunk, self))

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self), **kwargs)  # type: ignore[arg-type]

    def ranges_asked(self) -> list[str]:
        return [r.headers.get("range", "") for r in self.requests if r.method == "GET"]


URL = "https://cdn.example.com/v/clip.mp4"


def run(site: Site, url: str = URL, **kwargs: object) -> PreflightReport:
    with site.client() as client:
        return check_url(url, client=client, **kwargs)  # type: ignore[arg-type]


def outcomes(report: PreflightReport) -> dict[str, Outcome]:
    return {c.key: c.outcome for c in report.checks}


def site_for(data: bytes, ctype: str | None = "video/mp4", **kwargs: object) -> Site:
    return Site({"/v/clip.mp4": (data, ctype)}, **kwargs)  # type: ignore[arg-type]


ALL_PASS = dict.fromkeys(["url", "reachable", "content_type", "size", "container", "duration"], PASS)


# --------------------------------------------------------------------------------------------
# inspect_header: real files


def test_inspect_mp4_moov_at_end_whole_file(clips: Clips) -> None:
    assert _top_boxes(clips.mp4_1s)[-1][0] == b"moov"  # the premise: index at the end
    info = inspect_header(clips.mp4_1s, total_size=len(clips.mp4_1s))
    assert (info.container, info.width, info.height, info.needs_tail) == ("mp4", 64, 64, False)
    assert info.duration_seconds == pytest.approx(1.0, abs=0.01)
    assert info.has_video is True and info.problem is None and info.accepted


def test_inspect_mp4_moov_at_end_head_only_asks_for_tail(clips: Clips) -> None:
    data = clips.big_11s
    moov_offset = _top_boxes(data)[-1][1]
    info = inspect_header(data[:DEFAULT_HEADER_BYTES], total_size=len(data))
    assert info.container == "mp4" and info.needs_tail
    assert info.duration_seconds is None
    assert info.tail_offset == moov_offset


def test_inspect_faststart_head_is_enough(clips: Clips) -> None:
    data = clips.mp4_11s_faststart
    assert _top_boxes(data)[1][0] == b"moov"
    info = inspect_header(data[:2048], total_size=len(data))
    assert not info.needs_tail
    assert info.duration_seconds == pytest.approx(11.0, abs=0.01)


def test_inspect_mov(clips: Clips) -> None:
    info = inspect_header(clips.mov_1s, total_size=len(clips.mov_1s))
    assert (info.container, info.width, info.height) == ("mov", 64, 64)
    assert info.duration_seconds == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize(("name", "seconds"), [("avi_1s", 1.0), ("avi_11s", 11.0)])
def test_inspect_avi(clips: Clips, name: str, seconds: float) -> None:
    data = getattr(clips, name)
    info = inspect_header(data[:4096], total_size=len(data))
    assert (info.container, info.width, info.height, info.has_video) == ("avi", 64, 64, True)
    assert info.duration_seconds == pytest.approx(seconds, abs=0.01)


# inspect_header: hand-built edge cases


def test_mvhd_version_1_and_64_bit_duration() -> None:
    data = mp4_file(mvhd(90000, 90000 * 7 + 45000, version=1), trak(b"vide", 320, 240))
    info = inspect_header(data, total_size=None)
    assert info.duration_seconds == pytest.approx(7.5)
    assert (info.width, info.height) == (320, 240)


def test_fragmented_mp4_takes_length_from_mehd() -> None:
    mvex = box(b"mvex", full_box(b"mehd", 0, struct.pack(">I", 12_000)))
    info = inspect_header(mp4_file(mvhd(1000, 0), mvex, trak(b"vide", 64, 64)), total_size=None)
    assert info.duration_seconds == pytest.approx(12.0)


def test_zero_duration_without_mehd_is_unknown() -> None:
    info = inspect_header(mp4_file(mvhd(1000, 0), trak(b"vide", 64, 64)), total_size=None)
    assert info.container == "mp4" and info.duration_seconds is None and not info.needs_tail


def test_rotated_track_reports_display_size_and_sample_entry_fallback() -> None:
    data = mp4_file(mvhd(600, 600), trak(b"vide", 1920, 1080, rotate=True))
    rotated = inspect_header(data, total_size=None)
    assert (rotated.width, rotated.height) == (1080, 1920)
    entry = inspect_header(mp4_file(mvhd(600, 600), trak(b"vide", entry=(352, 288))), total_size=None)
    assert (entry.width, entry.height) == (352, 288)


def test_sound_only_mp4_is_refused() -> None:
    data = mp4_file(mvhd(600, 600), trak(b"soun"), major=b"mp42")
    info = inspect_header(data, total_size=len(data))
    assert info.has_video is False and "no video picture" in (info.problem or "")
    report = check_file(data, size=len(data), file_name="a.mp4")
    assert outcomes(report)["container"] is FAIL and "duration" not in outcomes(report)


def test_quicktime_without_ftyp_is_mov() -> None:
    data = box(b"wide") + box(b"mdat", b"\0" * 100) + box(b"moov", mvhd(600, 1200), trak(b"vide", 64, 64))
    info = inspect_header(data, total_size=len(data))
    assert info.container == "mov" and info.duration_seconds == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("brand", "container"),
    [(b"qt  ", "mov"), (b"mp42", "mp4"), (b"M4V ", "mp4"), (b"iso5", "mp4"), (b"heic", "heif"), (b"M4A ", "m4a")],
)
def test_brands(brand: bytes, container: str) -> None:
    info = inspect_header(mp4_file(mvhd(600, 600), trak(b"vide", 8, 8), major=brand), total_size=None)
    assert info.container == container


def test_file_without_index_is_damaged() -> None:
    data = ftyp() + box(b"mdat", b"\0" * 500)
    info = inspect_header(data, total_size=len(data))
    assert not info.needs_tail and "no index" in (info.problem or "")
    # ...but with more file to come, the index may still be at the end.
    partial = inspect_header(data, total_size=len(data) + 10_000)
    assert partial.needs_tail and partial.problem is None and partial.tail_offset == len(data)


# EBML header of a WebM file (magic, version fields, DocType "webm").
WEBM = bytes.fromhex("1a45dfa39f4286810142f7810142f2810442f381084282") + b"\x84webm" + b"\0" * 64
MKV = WEBM.replace(b"webm", b"matr") + b"oska"


@pytest.mark.parametrize(
    ("data", "container"),
    [
        (WEBM, "webm"),
        (MKV, "mkv"),
        (b"GIF89a" + b"\0" * 50, "gif"),
        (b"\n  <!DOCTYPE html><html><body>video</body></html>", "html"),
        (b"RIFF\0\0\0\0WAVEfmt " + b"\0" * 40, "wav"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "png"),
        (bytes(range(256)) * 4, None),
        (b"", None),
    ],
)
def test_other_formats_are_named_and_refused(data: bytes, container: str | None) -> None:
    info = inspect_header(data, total_size=len(data))
    assert info.container == container and not info.accepted and not info.needs_tail


# --------------------------------------------------------------------------------------------
# check_file


def test_check_file_passes_a_good_clip(clips: Clips) -> None:
    report = check_file(clips.mp4_1s, size=len(clips.mp4_1s), file_name="Clip.MP4")
    assert outcomes(report) == {"size": PASS, "container": PASS, "duration": PASS}
    assert report.ok and not report.warnings
    assert (report.container, report.content_type) == ("mp4", "video/mp4")
    assert (report.width, report.height) == (64, 64)


@pytest.mark.parametrize("name", ["mp4_11s_faststart", "avi_11s"])
def test_check_file_too_long(clips: Clips, name: str) -> None:
    data = getattr(clips, name)
    report = check_file(data, size=len(data), file_name="clip")
    duration = report.check("duration")
    assert duration is not None and duration.outcome is FAIL and not report.ok
    assert "11 s" in duration.detail and "10 s" in duration.detail
    assert duration.fix and "10 s or less" in duration.fix


def test_check_file_just_over_the_limit_warns() -> None:
    data = mp4_file(mvhd(1000, 10_030), trak(b"vide", 64, 64))
    assert outcomes(check_file(data, size=len(data), file_name="a.mp4"))["duration"] is WARN
    data = mp4_file(mvhd(1000, 10_000), trak(b"vide", 64, 64))
    assert outcomes(check_file(data, size=len(data), file_name="a.mp4"))["duration"] is PASS


def test_check_file_too_big(clips: Clips) -> None:
    report = check_file(clips.mp4_1s, size=600 * MB, file_name="a.mp4")
    size = report.check("size")
    assert size is not None and size.outcome is FAIL
    assert "600.0 MB" in size.detail and "500 MB" in size.detail


def test_check_file_empty() -> None:
    report = check_file(b"", size=0, file_name="a.mp4")
    assert outcomes(report) == {"size": FAIL}


def test_check_file_webm_is_refused_by_bytes_not_name() -> None:
    report = check_file(WEBM, size=len(WEBM), file_name="clip.mp4")
    container = report.check("container")
    assert container is not None and container.outcome is FAIL and "WebM" in container.detail
    assert container.fix and "MP4" in container.fix
    assert "duration" not in outcomes(report)


def test_check_file_moov_at_end_needs_tail(clips: Clips) -> None:
    data = clips.big_11s
    head_only = check_file(data[:65536], size=len(data), file_name="a.mp4")
    assert outcomes(head_only)["duration"] is WARN and head_only.ok
    with_tail = check_file(data[:65536], size=len(data), file_name="a.mp4", tail=data[-65536:])
    assert outcomes(with_tail)["duration"] is FAIL
    assert with_tail.duration_seconds == pytest.approx(11.0, abs=0.01)


def test_check_file_odd_extension_warns(clips: Clips) -> None:
    report = check_file(clips.mov_1s, size=len(clips.mov_1s), file_name="clip.bin")
    assert outcomes(report)["file_name"] is WARN and report.ok and report.warnings
    assert ".mov" in (report.check("file_name").fix or "")  # type: ignore[union-attr]


# --------------------------------------------------------------------------------------------
# check_url: the happy paths


@pytest.mark.parametrize(
    ("name", "ctype"),
    [("mp4_1s_faststart", "video/mp4"), ("mov_1s", "video/quicktime"), ("avi_1s", "video/x-msvideo")],
)
def test_url_all_pass(clips: Clips, name: str, ctype: str) -> None:
    site = site_for(getattr(clips, name), ctype)
    report = run(site)
    assert outcomes(report) == ALL_PASS, report.checks
    assert report.ok and not report.warnings
    assert report.content_type == ctype and report.size_bytes == len(getattr(clips, name))
    assert report.duration_seconds == pytest.approx(1.0, abs=0.01)
    assert [r.method for r in site.requests] == ["HEAD", "GET"]
    assert site.ranges_asked() == [f"bytes=0-{DEFAULT_HEADER_BYTES - 1}"]


def test_url_moov_at_end_reads_only_the_tail(clips: Clips) -> None:
    data = clips.big_11s
    site = site_for(data)
    report = run(site)
    moov_offset = _top_boxes(data)[-1][1]
    assert site.ranges_asked() == [f"bytes=0-{DEFAULT_HEADER_BYTES - 1}", f"bytes=-{len(data) - moov_offset}"]
    assert outcomes(report)["duration"] is FAIL
    assert report.duration_seconds == pytest.approx(11.0, abs=0.01)
    assert "11 s" in report.check("duration").detail  # type: ignore[union-attr]
    assert site.streamed == DEFAULT_HEADER_BYTES + len(data) - moov_offset < len(data)


def test_url_moov_at_end_passes_when_short(clips: Clips) -> None:
    site = site_for(clips.big_1s)
    report = run(site, header_bytes=8192)
    assert outcomes(report) == ALL_PASS
    assert len(site.ranges_asked()) == 2 and site.ranges_asked()[1].startswith("bytes=-")


def test_url_tail_search_without_known_offset(clips: Clips) -> None:
    # No sizes at all from the server: the tail read is a plain suffix range, searched for moov.
    data = clips.big_1s
    site = site_for(data, lengths=False, hide_total=True)
    report = run(site, header_bytes=8192, tail_bytes=4096)
    assert site.ranges_asked()[1] == "bytes=-4096"
    assert outcomes(report)["duration"] is PASS


def test_async_variant_matches(clips: Clips) -> None:
    site = site_for(clips.big_11s)

    async def go() -> PreflightReport:
        async with httpx.AsyncClient(transport=httpx.MockTransport(site)) as client:
            return await check_url_async(URL, client=client)

    report = asyncio.run(go())
    assert report == run(site_for(clips.big_11s))
    assert outcomes(report)["duration"] is FAIL


# check_url: url


@pytest.mark.parametrize(
    "url",
    ["", "   ", "ftp://example.com/v.mp4", "example.com/v.mp4", "https://example.com/my video.mp4",
     " https://example.com/v.mp4", "https://example.com/v.mp4\n", "https://"],
)
def test_bad_url_fails_without_any_request(url: str) -> None:
    site = Site({})
    report = run(site, url)
    assert outcomes(report) == {"url": FAIL}
    assert report.checks[0].fix and not site.requests


# check_url: reachable


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8501/v.mp4", "http://127.0.0.1/v.mp4", "http://127.8.9.1/v.mp4", "http://10.1.2.3/v.mp4",
        "http://192.168.0.5/v.mp4", "http://172.20.0.1/v.mp4", "http://[::1]/v.mp4", "http://169.254.1.1/v.mp4",
        "http://[fd00::5]/v.mp4", "http://myserver/v.mp4", "http://nas.local/v.mp4", "http://app.localhost/v.mp4",
        "http://localhost./v.mp4",
        *(f"http://{host}/v.mp4" for host in PRIVATE_SPELLINGS),
    ],
)
def test_private_hosts_fail_unless_served_in_process(clips: Clips, url: str) -> None:
    site = Site({"/v.mp4": (clips.mp4_1s_faststart, "video/mp4")})
    report = run(site, url)
    assert outcomes(report) == {"url": PASS, "reachable": FAIL}
    assert "cannot reach your machine" in (report.checks[1].fix or "")
    assert not site.requests
    origin = url.rsplit("/", 1)[0]
    local = run(site, url, local_origins=[origin])
    assert outcomes(local) == ALL_PASS
    assert "internet" not in local.check("reachable").detail  # type: ignore[union-attr]


def test_local_origins_exempt_only_the_exact_origin(clips: Clips) -> None:
    site = Site({"/v.mp4": (clips.mp4_1s_faststart, "video/mp4")})
    for other in ("http://luma-emulator.local:8080/v.mp4", "https://luma-emulator.local/v.mp4",
                  "http://169.254.169.254/v.mp4"):
        report = run(site, other, local_origins=["http://luma-emulator.local"])
        assert outcomes(report) == {"url": PASS, "reachable": FAIL}, other
    assert not site.requests


def test_allow_private_is_a_deprecated_alias(clips: Clips) -> None:
    site = Site({"/v.mp4": (clips.mp4_1s_faststart, "video/mp4")})
    with pytest.warns(DeprecationWarning, match="local_origins"):
        report = run(site, "http://10.1.2.3/v.mp4", allow_private=True)
    assert outcomes(report) == ALL_PASS


def test_public_ip_is_not_private(clips: Clips) -> None:
    report = run(Site({"/v.mp4": (clips.mp4_1s_faststart, "video/mp4")}), "http://93.184.216.34/v.mp4")
    assert outcomes(report)["reachable"] is PASS


@pytest.mark.parametrize(
    ("status", "words"),
    [(404, "not found"), (403, "refuses public access"), (410, "not found"), (503, "server error")],
)
def test_http_errors_fail_in_words(clips: Clips, status: int, words: str) -> None:
    site = site_for(clips.mp4_1s_faststart, head_status=status, get_status=status)
    report = run(site)
    assert outcomes(report) == {"url": PASS, "reachable": FAIL}
    check = report.checks[1]
    assert str(status) in check.detail and words in check.detail and check.fix
    assert "/v/clip.mp4" not in check.detail  # the host only


def test_missing_file_is_404(clips: Clips) -> None:
    report = run(site_for(clips.mp4_1s_faststart), "https://cdn.example.com/v/other.mp4")
    assert outcomes(report) == {"url": PASS, "reachable": FAIL}
    assert "not found" in report.checks[1].detail


def test_head_refused_falls_back_to_ranged_get(clips: Clips) -> None:
    site = site_for(clips.mp4_1s_faststart, head_status=405)
    report = run(site)
    assert outcomes(report) == ALL_PASS
    assert [r.method for r in site.requests] == ["HEAD", "GET"]
    assert site.ranges_asked() == [f"bytes=0-{DEFAULT_HEADER_BYTES - 1}"]
    assert "405" in report.check("reachable").detail  # type: ignore[union-attr]
    assert report.size_bytes == len(clips.mp4_1s_faststart)  # from Content-Range


def test_head_forbidden_but_get_allowed_passes(clips: Clips) -> None:
    # Presigned S3 links are signed for GET only: HEAD gets 403, the download works.
    report = run(site_for(clips.mp4_1s_faststart, head_status=403))
    assert outcomes(report) == ALL_PASS


def test_head_and_get_both_refused_warns_and_goes_on(clips: Clips) -> None:
    report = run(site_for(clips.mp4_1s_faststart, head_status=405, get_status=501))
    assert report.ok and report.warnings
    assert outcomes(report) == {
        "url": PASS, "reachable": WARN, "content_type": WARN, "size": WARN, "container": WARN,
        "duration": WARN,
    }


def test_head_ok_but_download_refused_fails(clips: Clips) -> None:
    report = run(site_for(clips.mp4_1s_faststart, get_status=403))
    assert outcomes(report) == {"url": PASS, "reachable": FAIL}
    assert "403" in report.checks[1].detail


@pytest.mark.parametrize(
    ("exc", "words"),
    [(httpx.ConnectError("refused"), "no connection"), (httpx.ReadTimeout("slow"), "did not answer")],
)
def test_unreachable_host_fails(exc: Exception, words: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        report = check_url(URL, client=client)
    assert outcomes(report) == {"url": PASS, "reachable": FAIL}
    assert "unreachable from here" in report.checks[1].detail and words in report.checks[1].detail


def test_redirects_are_followed(clips: Clips) -> None:
    site = Site(
        {"/real/clip.mp4": (clips.mp4_1s_faststart, "video/mp4")},
        redirects={"/v/clip.mp4": "https://files.example.net/real/clip.mp4"},
    )
    report = run(site)
    assert outcomes(report) == ALL_PASS
    assert "files.example.net" in report.check("reachable").detail  # type: ignore[union-attr]
    # HEAD was redirected once; the ranged GET went straight to where HEAD ended up.
    assert [(r.method, r.url.host) for r in site.requests] == [
        ("HEAD", "cdn.example.com"), ("HEAD", "files.example.net"), ("GET", "files.example.net")
    ]


@pytest.mark.parametrize("target", ["192.168.1.9", "127.1", "0x7f.0.0.1", "[::ffff:7f00:1]", "[64:ff9b::a9fe:a9fe]"])
def test_redirect_to_private_host_fails(clips: Clips, target: str) -> None:
    site = Site(
        {"/v.mp4": (clips.mp4_1s_faststart, "video/mp4")}, redirects={"/v/clip.mp4": f"http://{target}/v.mp4"}
    )
    report = run(site)
    assert outcomes(report) == {"url": PASS, "reachable": FAIL}
    assert "redirects to" in report.checks[1].detail
    assert [r.url.host for r in site.requests] == ["cdn.example.com"]


def test_redirect_loop_fails() -> None:
    site = Site({}, redirects={"/v/clip.mp4": "/v/clip.mp4"})
    report = run(site)
    assert outcomes(report) == {"url": PASS, "reachable": FAIL}
    assert "redirects" in report.checks[1].detail and len(site.requests) == 11


# check_url: content type


def test_web_page_fails_and_skips_the_rest() -> None:
    page = b"<!doctype html><html><head><title>My video</title></head><body>...</body></html>"
    report = run(site_for(page, "text/html; charset=utf-8"))
    assert outcomes(report) == {"url": PASS, "reachable": PASS, "content_type": FAIL}
    assert "web page" in report.checks[2].detail and "direct link" in (report.checks[2].fix or "")
    assert report.content_type == "text/html"


@pytest.mark.parametrize("ctype", ["application/octet-stream", None, "binary/octet-stream"])
def test_generic_type_decided_by_bytes(clips: Clips, ctype: str | None) -> None:
    assert outcomes(run(site_for(clips.mp4_1s_faststart, ctype))) == ALL_PASS
    report = run(site_for(bytes(range(256)) * 8, ctype))
    assert outcomes(report) == {"url": PASS, "reachable": PASS, "content_type": FAIL}


def test_wrong_label_with_video_bytes_warns(clips: Clips) -> None:
    report = run(site_for(clips.mp4_1s_faststart, "text/plain"))
    assert outcomes(report)["content_type"] is WARN and report.ok
    assert outcomes(report)["duration"] is PASS


def test_other_video_type_warns_then_container_fails() -> None:
    report = run(site_for(WEBM, "video/webm"))
    assert outcomes(report) == {
        "url": PASS, "reachable": PASS, "content_type": WARN, "size": PASS, "container": FAIL
    }
    assert "WebM" in report.checks[-1].detail and "MP4" in (report.checks[-1].fix or "")
    assert report.container == "webm"


def test_garbage_labelled_mp4_fails_on_container() -> None:
    report = run(site_for(bytes(range(256)) * 8, "video/mp4"))
    assert outcomes(report)["container"] is FAIL and "duration" not in outcomes(report)


# check_url: size


def test_too_big_fails_with_both_sizes(clips: Clips) -> None:
    report = run(site_for(clips.mp4_1s_faststart, reported_size=600 * MB))
    size = report.check("size")
    assert size is not None and size.outcome is FAIL and not report.ok
    assert "600.0 MB" in size.detail and "500 MB" in size.detail
    assert report.size_bytes == 600 * MB
    assert outcomes(report)["duration"] is PASS  # the clip's other problems are still reported


def test_unknown_size_warns(clips: Clips) -> None:
    # No Content-Length, no ranges, and more file than the header read: the size is unknown.
    report = run(site_for(clips.big_1s, lengths=False, ranges=False), header_bytes=8192)
    assert outcomes(report)["size"] is WARN and report.size_bytes is None and report.ok


# check_url: servers that ignore Range


def test_server_ignoring_range_is_read_only_to_header_bytes(clips: Clips) -> None:
    data = clips.big_11s
    site = site_for(data, ranges=False, chunk=4096)
    report = run(site, header_bytes=16384)
    assert site.streamed <= 16384 + 4096 < len(data)
    # The index is at the end, and reading it would mean downloading everything: not done.
    assert [r.method for r in site.requests] == ["HEAD", "GET"]
    duration = report.check("duration")
    assert duration is not None and duration.outcome is WARN and "range" in duration.detail
    assert outcomes(report)["container"] is PASS and report.size_bytes == len(data)


def test_server_ignoring_range_small_file_read_whole(clips: Clips) -> None:
    site = site_for(clips.mp4_1s, ranges=False, lengths=False)
    report = run(site)
    assert outcomes(report) == ALL_PASS
    assert report.size_bytes == len(clips.mp4_1s)


def test_unknown_duration_warns() -> None:
    data = mp4_file(mvhd(1000, 0), trak(b"vide", 64, 64))
    report = run(site_for(data))
    assert outcomes(report)["duration"] is WARN and report.ok and report.warnings


# check_url: privacy of the caller's credentials and the URL's secrets


def test_credentials_are_not_sent_and_query_not_echoed(clips: Clips) -> None:
    site = site_for(clips.mp4_1s_faststart)
    with site.client(headers={"Authorization": "Bearer sk-secret"}, cookies={"session": "c00kie"}) as client:
        report = check_url(URL + "?X-Amz-Signature=SIGSECRET", client=client)
    assert outcomes(report) == ALL_PASS
    for request in site.requests:
        assert "authorization" not in request.headers and "cookie" not in request.headers
    text = repr(report)
    assert "SIGSECRET" not in text and "sk-secret" not in text and "/v/clip.mp4" not in text


def test_header_bytes_must_be_sane() -> None:
    with pytest.raises(ValueError):
        run(Site({}), header_bytes=8)


def test_outcome_labels_are_words() -> None:
    assert {o.label for o in Outcome} == {"OK", "Problem", "Warning"}


def test_works_through_the_emulator_transport(clips: Clips, tmp_path: Path) -> None:
    # Demo mode: the emulator's file URLs are on a local name, served in-process, so the caller
    # names that origin as local for the check to reach them.
    from luma.client import LumaClient
    from luma.emulator import Emulator, EmulatorConfig

    emulator = Emulator(EmulatorConfig(data_dir=tmp_path))
    try:
        with LumaClient("demo", transport=emulator.transport()) as luma:
            url = luma.upload_file(clips.big_11s, file_name="long.mp4").download_url
        with httpx.Client(transport=emulator.transport()) as client:
            blocked = check_url(url, client=client)
            report = check_url(url, client=client, local_origins=[emulator.config.public_base])
    finally:
        emulator.close()
    assert outcomes(blocked)["reachable"] is FAIL
    assert outcomes(report) == {**ALL_PASS, "duration": FAIL}
    assert report.size_bytes == len(clips.big_11s)
    assert report.duration_seconds == pytest.approx(11.0, abs=0.01)


def test_inspect_never_raises_on_truncated_or_damaged_files(clips: Clips) -> None:
    rng = np.random.default_rng(3)
    for data in (clips.mp4_1s, clips.mp4_1s_faststart, clips.mov_1s, clips.avi_1s):
        for cut in range(0, len(data), 37):
            inspect_header(data[:cut], total_size=len(data))
            inspect_header(data[:cut], total_size=None)
        for _ in range(200):
            damaged = bytearray(data)
            for at in rng.integers(0, len(data), 8):
                damaged[at] = int(rng.integers(0, 256))
            info = inspect_header(bytes(damaged), total_size=len(damaged))
            check_file(bytes(damaged[:600]), size=len(damaged), file_name="x.mp4", tail=bytes(damaged[-900:]))
            assert info.duration_seconds is None or info.duration_seconds >= 0


def test_check_url_over_borrows_a_transport_without_closing_it() -> None:
    """The dashboard lends the emulator's transport for one check; it must stay usable after."""
    closed: list[bool] = []

    class Lent(httpx.MockTransport):
        def close(self) -> None:
            closed.append(True)

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404)

    lent = Lent(answer)
    first = check_url_over("https://videos.example.com/a.mp4", transport=lent)
    second = check_url_over("https://videos.example.com/a.mp4", transport=lent)
    assert not first.ok and not second.ok
    assert first.check("reachable").outcome is FAIL
    assert closed == []


def test_allowed_local_host_is_not_told_to_be_reachable_from_the_internet() -> None:
    """The demo's emulator host is local on purpose; the public-reachability caveat is for real hosts."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "video/mp4", "content-length": "10"})

    local = check_url_over(
        "http://luma-emulator.local/files/a.mp4", transport=httpx.MockTransport(answer),
        local_origins=["http://luma-emulator.local"],
    )
    public = check_url_over("https://videos.example.com/a.mp4", transport=httpx.MockTransport(answer))
    assert local.check("reachable").outcome is PASS and "internet" not in local.check("reachable").detail
    assert public.check("reachable").outcome is PASS and "internet" in public.check("reachable").detail


# --------------------------------------------------------------------------------------------
# The network side: names are judged where the connection is made (the egress guard)


def _guarded_report(fake_net: FakeNet, url: str) -> PreflightReport:
    return check_url_over(url, transport=fake_net.transport())


@pytest.mark.parametrize("name", PRIVATE_NAMES)
def test_name_resolving_to_a_private_address_fails_in_plain_words(fake_net: FakeNet, name: str) -> None:
    report = _guarded_report(fake_net, f"https://{name}/v/secret.mp4?sig=SIGSECRET")
    assert outcomes(report) == {"url": PASS, "reachable": FAIL}
    check = report.checks[1]
    assert check.detail.startswith(f"{name} resolves to a ")
    assert "this server does not fetch private or local addresses" in check.detail
    assert "unreachable" not in check.detail
    assert "public URL" in (check.fix or "") and "upload the file" in (check.fix or "")
    # Neither the path and query nor the address the server's DNS gave away.
    shown = repr(report)
    assert "secret.mp4" not in shown and "SIGSECRET" not in shown
    assert all(address not in shown for address in ("10.0.0.5", "127.0.0.1", "169.254.169.254", "fd00::1", "10.0.0.1"))
    assert fake_net.recorder.attempts == []


def test_check_url_over_without_a_transport_is_guarded(fake_net: FakeNet) -> None:
    # The deprecated allow_private skips the by-name check: only the connect-time guard stands
    # between the check and this loopback server, which must see nothing.
    fake_net.pages["/v.mp4"] = Page(b"x" * 100, "video/mp4")
    with pytest.warns(DeprecationWarning):
        report = check_url_over(f"http://127.0.0.1:{fake_net.port}/v.mp4", transport=None, allow_private=True)
    assert outcomes(report) == {"url": PASS, "reachable": FAIL}
    assert "is a loopback address" in report.checks[1].detail
    assert fake_net.seen == []
    named = check_url_over("http://internal.test/v.mp4", transport=None, egress=fake_net.policy())
    assert "resolves to a private network address" in named.checks[1].detail
    assert fake_net.resolver.asked == ["internal.test"]


def test_a_host_the_deployment_trusts_passes_the_private_check_and_nothing_else_does() -> None:
    """A deployment whose own provider (or file host) is private names it in the egress policy."""
    from luma.egress import EgressPolicy

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404)

    trusted = EgressPolicy(allow_hosts=frozenset({"127.0.0.1"}))
    own = check_url_over("http://127.0.0.1:8765/files/a.mp4", transport=httpx.MockTransport(answer), egress=trusted)
    assert own.check("reachable").outcome is FAIL and "not found" in own.check("reachable").detail
    other = check_url_over("http://10.0.0.5/a.mp4", transport=httpx.MockTransport(answer), egress=trusted)
    assert "private network address" in other.check("reachable").detail


def test_redirect_to_a_name_resolving_privately_is_refused_at_the_hop(fake_net: FakeNet) -> None:
    fake_net.pages["/v/clip.mp4"] = Page(status=302, location="http://internal.test/v/real.mp4")
    report = _guarded_report(fake_net, "http://public.test/v/clip.mp4")
    assert outcomes(report) == {"url": PASS, "reachable": FAIL}
    assert report.checks[1].detail.startswith(
        "public.test redirects to internal.test, which resolves to a private network address"
    )
    assert fake_net.recorder.addresses == [PUBLIC_IP]


def test_name_that_turns_private_between_requests_is_refused(fake_net: FakeNet, clips: Clips) -> None:
    """DNS rebinding: public for the HEAD, private for the ranged GET that follows."""
    fake_net.pages["/v/clip.mp4"] = Page(clips.mp4_1s_faststart, "video/mp4")
    answers = iter([[PUBLIC_IP], ["10.0.0.7"]])
    policy = EgressPolicy(resolver=lambda host, port: next(answers))
    report = check_url_over("http://flip.test/v/clip.mp4", transport=guarded_transport(policy, connect=fake_net.recorder))
    assert outcomes(report) == {"url": PASS, "reachable": FAIL}
    assert "resolves to a private network address" in report.checks[1].detail
    assert fake_net.recorder.addresses == [PUBLIC_IP]  # the private answer was never dialled


def test_public_clip_passes_through_the_guard(fake_net: FakeNet, clips: Clips) -> None:
    fake_net.pages["/v/clip.mp4"] = Page(clips.mp4_1s_faststart, "video/mp4")
    report = _guarded_report(fake_net, "http://public.test/v/clip.mp4")
    assert outcomes(report) == ALL_PASS
    assert set(fake_net.recorder.addresses) == {PUBLIC_IP}


# --------------------------------------------------------------------------------------------
# Damaged files: a download cut short still starts like a good one


@pytest.fixture(scope="session")
def sample_clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The emulator's own sample clip (faststart: index first, then the picture data), tiny."""
    from luma.emulator.media import make_sample

    path = tmp_path_factory.mktemp("sample") / "s.mp4"
    make_sample("rolling-hills", path, width=160, height=90, seconds=1.0, fps=12)
    return path.read_bytes()


@pytest.mark.parametrize("where", ["one byte short", "mid picture data", "mid index", "mid first box"])
def test_truncated_mp4_fails_as_damaged_and_the_intact_one_passes(sample_clip: bytes, where: str) -> None:
    assert [b[0] for b in _top_boxes(sample_clip)][:2] == [b"ftyp", b"moov"]  # the premise: index first
    intact = check_file(sample_clip, size=len(sample_clip), file_name="s.mp4")
    assert outcomes(intact) == {"size": PASS, "container": PASS, "duration": PASS}
    boxes = {kind: (off, size) for kind, off, size in _top_boxes(sample_clip)}
    moov_off, moov_size = boxes[b"moov"]
    mdat_off, mdat_size = boxes[b"mdat"]
    cut = {
        "one byte short": len(sample_clip) - 1,
        "mid picture data": mdat_off + mdat_size // 2,
        "mid index": moov_off + moov_size // 2,
        "mid first box": 20,
    }[where]
    report = check_file(sample_clip[:cut], size=cut, file_name="s.mp4")
    assert not report.ok
    check = report.check("container")
    assert check is not None and check.outcome is FAIL
    assert "damaged or incomplete: it ends at" in check.detail and "but its contents say" in check.detail
    assert "download it again" in (check.fix or "").lower() or "download the video again" in (check.fix or "")
    assert report.check("duration") is None


def test_truncated_mp4_with_index_at_the_end_fails_as_damaged(clips: Clips) -> None:
    data = clips.mp4_1s[: len(clips.mp4_1s) - 10]  # the index at the end, cut
    report = check_file(data, size=len(data), file_name="a.mp4")
    assert "damaged or incomplete" in report.check("container").detail  # type: ignore[union-attr]


def test_truncated_avi_fails_as_damaged(clips: Clips) -> None:
    whole = check_file(clips.avi_1s, size=len(clips.avi_1s), file_name="e.avi")
    assert whole.ok
    cut = clips.avi_1s[: len(clips.avi_1s) * 2 // 3]
    report = check_file(cut, size=len(cut), file_name="e.avi")
    assert "damaged or incomplete" in report.check("container").detail  # type: ignore[union-attr]
    assert not report.ok


def test_truncated_file_behind_a_url_fails_too(sample_clip: bytes) -> None:
    cut = sample_clip[: len(sample_clip) - 100]
    report = run(site_for(cut))
    assert outcomes(report)["container"] is FAIL
    assert "damaged or incomplete" in report.check("container").detail  # type: ignore[union-attr]
