"""Real video processing for the offline emulator: probing, rendering results and sample clips.

The hosted provider turns an input video and a prompt into a modified video. The emulator cannot
run a generative model, but it still hands back a *real* result: a new H.264 MP4 made from the
input's own frames, re-coloured by a look that the prompt's words pick, so that a demo shows
something that plays in a browser and visibly depends on what the user typed.

Everything runs in-process through PyAV (which ships FFmpeg with libx264); no ffmpeg binary is
needed. Frames travel as ``(height, width, 3)`` uint8 RGB arrays and every per-pixel operation is a
vectorised numpy expression, so a 10 s 720p clip renders in seconds.

Public surface:

- :func:`probe` reads a file's container, codec, size, duration, frame rate and frame count.
- :func:`render_result` writes the modified video; :func:`describe_look` names the look a prompt
  maps to.
- :data:`SAMPLES` and :func:`make_sample` generate good-looking demo clips entirely from code.
- :class:`MediaError` is the one exception raised for unreadable or unsupported input.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import queue
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .catalog import SAMPLES, SHIPPED_SAMPLES, SHIPPED_SHAPE, SampleSpec, shipped_sample

__all__ = [
    "MediaError",
    "SAMPLES",
    "SampleSpec",
    "VideoInfo",
    "describe_look",
    "make_sample",
    "probe",
    "render_result",
    "shipped_sample",
    "write_shipped_samples",
]

# x264 settings: "veryfast" keeps a 10 s 720p render within seconds on two shared cores, and
# crf 23 is x264's own default quality. "high" is the profile every browser decodes.
_X264_OPTIONS = {"crf": "23", "preset": "veryfast", "profile": "high"}
# The moov atom goes first so a browser can start playing before the whole file has arrived.
_MP4_OPTIONS = {"movflags": "+faststart"}
# Used only when a file carries no usable frame rate at all.
_FALLBACK_FPS = Fraction(24)

_F32 = np.float32


class MediaError(Exception):
    """A video could not be read, decoded or written; the message says why in plain words."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a video file."""

    container: str
    """'mp4', 'mov' or 'avi' for those containers, otherwise FFmpeg's short format name."""
    codec: str
    """FFmpeg's name for the video codec, e.g. 'h264', 'hevc', 'prores'."""
    width: int
    """Coded width in pixels (before any rotation the file asks players to apply)."""
    height: int
    """Coded height in pixels."""
    duration: float
    """Length of the video track in seconds."""
    fps: float
    """Average frame rate in frames per second."""
    frames: int
    """Number of frames (from the container's index, or estimated from duration x fps)."""


# --------------------------------------------------------------------------------------------
# Probing
# --------------------------------------------------------------------------------------------


def probe(path: str | Path) -> VideoInfo:
    """Describe the video in ``path``.

    The first frame is decoded too, so a file that merely looks like a video (a valid header over
    damaged data, or a codec this FFmpeg cannot decode) is reported now rather than half-way
    through processing.

    Raises:
        MediaError: the file is missing, is not a video, has no video track, or cannot be decoded.
    """
    path = Path(path)
    with _open_input(path) as container:
        stream = _video_stream(container, path)
        try:
            next(container.decode(stream))
        except StopIteration:
            raise MediaError(f"'{path.name}' has a video track but no frames in it.") from None
        except av.FFmpegError as exc:
            raise MediaError(
                f"'{path.name}' could not be decoded ({_reason(exc)}); it may be damaged or use "
                "a codec this emulator does not support."
            ) from None
        fps = _frame_rate(stream)
        duration = _duration(container, stream)
        frames = stream.frames or max(1, round(duration * float(fps)))
        return VideoInfo(
            container=_container_name(path, container.format.name),
            codec=stream.codec_context.name,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            duration=duration,
            fps=float(fps),
            frames=int(frames),
        )


# FFmpeg plays any .txt/.nfo/.asc file as "ANSI art" video; for us that is text, not a video.
_TEXT_DEMUXERS = frozenset({"tty"})


@contextlib.contextmanager
def _open_input(path: Path) -> Iterator[av.container.InputContainer]:
    """Open ``path`` for reading with PyAV, turning every failure to open it into MediaError."""
    if not path.is_file():
        raise MediaError(f"There is no video file at '{path}'.")
    try:
        container = av.open(str(path), mode="r")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise MediaError(f"'{path.name}' is not a video file this emulator can read ({_reason(exc)}).") from None
    try:
        if container.format.name in _TEXT_DEMUXERS:
            raise MediaError(f"'{path.name}' is a text file, not a video.")
        yield container
    finally:
        container.close()


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    if not container.streams.video:
        raise MediaError(f"'{path.name}' has no video track (is it an audio file?).")
    stream = container.streams.video[0]
    if not stream.codec_context.width or not stream.codec_context.height:
        raise MediaError(f"'{path.name}' has a video track without a picture size.")
    return stream


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.rstrip(".")


def _container_name(path: Path, format_name: str) -> str:
    names = format_name.split(",")
    if "mov" in names and "mp4" in names:
        # MP4 and QuickTime share one demuxer; the ftyp box's major brand tells them apart.
        try:
            with path.open("rb") as fh:
                head = fh.read(12)
        except OSError:
            head = b""
        if head[4:8] == b"ftyp":
            return "mov" if head[8:12] == b"qt  " else "mp4"
        # Classic QuickTime files start straight with moov/mdat/wide atoms and have no ftyp.
        return "mp4" if path.suffix.lower() in {".mp4", ".m4v"} else "mov"
    if "avi" in names:
        return "avi"
    if "matroska" in names and path.suffix.lower() == ".webm":
        return "webm"
    return names[0]


def _frame_rate(stream: av.video.stream.VideoStream) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and 1 <= rate <= 240:
            return Fraction(rate.numerator, rate.denominator)
    return _FALLBACK_FPS


def _duration(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    if stream.frames:
        return stream.frames / float(_frame_rate(stream))
    return 0.0


# --------------------------------------------------------------------------------------------
# Looks: how a prompt's words become a colour grade
# --------------------------------------------------------------------------------------------

_Vec3 = tuple[float, float, float]
_Mat3 = tuple[_Vec3, _Vec3, _Vec3]


@dataclass(frozen=True)
class _Look:
    """A colour grade. Pixel values are 0-255 RGB throughout."""

    name: str
    matrix: _Mat3
    """Colour mix: output channel i = sum_j matrix[i][j] * input channel j."""
    offset: _Vec3 = (0.0, 0.0, 0.0)
    """Added after the mix; lifts (positive) or crushes (negative) the shadows per channel."""
    contrast: float = 1.0
    """Stretch around mid-grey (128); below 1 fades, above 1 punches."""
    gamma: float = 1.0
    """Tone curve exponent; above 1 brightens the mid-tones, below 1 darkens them."""
    s_curve: float = 0.0
    """0-1: blend towards a smoothstep tone curve (deeper shadows, brighter highlights)."""
    vignette: float = 0.0
    """0-1: how much the corners darken."""
    top_glow: tuple[_Vec3, float] | None = None
    """(colour, strength): light added from the top of the frame, fading by two thirds down."""
    side_glow: tuple[_Vec3, _Vec3, float] | None = None
    """(left colour, right colour, strength): light added towards the left and right edges."""
    dust: bool = False
    """Draw the specks and scratches of worn film. (Not per-pixel grain: the encoder spends
    megabytes on noise and most of it is gone after compression anyway.)"""
    flicker: float = 0.0
    """Fractional brightness change from frame to frame, as on old projected film."""
    snow: bool = False
    """Draw falling snowflakes over the picture."""


_LUMA = np.array([0.2126, 0.7152, 0.0722])
_IDENTITY = np.eye(3)
_SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]])


def _saturation(amount: float) -> np.ndarray:
    return (1.0 - amount) * np.tile(_LUMA, (3, 1)) + amount * _IDENTITY


def _gains(r: float, g: float, b: float) -> np.ndarray:
    return np.diag([r, g, b])


def _hue_rotation(degrees: float) -> np.ndarray:
    # The usual luminance-preserving hue rotation (as in SVG's feColorMatrix hueRotate).
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return np.array(
        [
            [0.213 + c * 0.787 - s * 0.213, 0.715 - c * 0.715 - s * 0.715, 0.072 - c * 0.072 + s * 0.928],
            [0.213 - c * 0.213 + s * 0.143, 0.715 + c * 0.285 + s * 0.140, 0.072 - c * 0.072 - s * 0.283],
            [0.213 - c * 0.213 - s * 0.787, 0.715 - c * 0.715 + s * 0.715, 0.072 + c * 0.928 + s * 0.072],
        ]
    )


def _chain(*steps: np.ndarray) -> _Mat3:
    """The single matrix that applies ``steps`` in order (first step first)."""
    total = _IDENTITY
    for step in steps:
        total = step @ total
    first, second, third = (_vec3(row) for row in total)  # a 3x3 product has three rows of three
    return first, second, third


def _vec3(row: np.ndarray) -> _Vec3:
    x, y, z = (float(v) for v in row)
    return x, y, z


_KEYWORD_LOOKS: tuple[_Look, ...] = (
    _Look(
        "night",
        _chain(_saturation(0.35), _gains(0.4, 0.5, 0.75)),
        offset=(2.0, 6.0, 18.0),
        contrast=1.1,
        gamma=0.8,
        vignette=0.6,
    ),
    _Look(
        "sunset",
        _chain(_saturation(1.25), _gains(1.14, 0.92, 0.7)),
        offset=(14.0, 4.0, -4.0),
        contrast=1.05,
        vignette=0.3,
        top_glow=((255.0, 112.0, 40.0), 0.45),
    ),
    _Look(
        "winter",
        _chain(_saturation(0.55), _gains(0.9, 0.98, 1.1)),
        offset=(22.0, 28.0, 38.0),
        contrast=0.88,
        gamma=1.1,
        vignette=0.15,
        top_glow=((215.0, 232.0, 255.0), 0.2),
        snow=True,
    ),
    _Look("noir", _chain(_saturation(0.0)), contrast=1.3, s_curve=0.3, vignette=0.55, dust=True),
    _Look(
        "vintage",
        _chain(0.85 * _SEPIA + 0.15 * _IDENTITY),
        offset=(18.0, 10.0, 0.0),
        contrast=0.82,
        s_curve=0.15,
        vignette=0.45,
        dust=True,
        flicker=0.035,
    ),
    _Look(
        "neon",
        _chain(_saturation(1.7), _hue_rotation(-20.0), _gains(1.1, 0.82, 1.25)),
        offset=(-6.0, -12.0, 4.0),
        contrast=1.25,
        vignette=0.35,
        side_glow=((0.0, 210.0, 255.0), (255.0, 0.0, 190.0), 0.22),
    ),
)
_LOOKS_BY_NAME = {look.name: look for look in _KEYWORD_LOOKS}

# Which words pick which look. A prompt naming several looks gets the one it names first.
_KEYWORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), name)
    for pattern, name in (
        (r"\b(night\w*|midnight|moon\w*|dark\w*|starlit|starry)\b", "night"),
        (r"\b(sunsets?|sunrises?|dusk|dawn|golden|twilight|evening)\b", "sunset"),
        (r"\b(winter\w*|snow\w*|frozen|frost\w*|ice|icy|blizzard\w*|christmas|cold)\b", "winter"),
        (
            r"\b(noir|black[\s-]*(and|&|n)[\s-]*white|b\s*[&/]\s*w|monochrome|grayscale|greyscale)\b",
            "noir",
        ),
        (
            r"\b(vintage|sepia|retro|antique|nostalgi\w*|old[\s-]+(film|movie|fashioned|photo\w*)"
            r"|film\s+grain|super\s*8|8\s*mm|polaroid)\b",
            "vintage",
        ),
        (r"\b(neon|cyberpunk|cyber\w*|synthwave|vaporwave|futuristic|sci-?fi|blade\s+runner)\b", "neon"),
    )
)

# Any other prompt still changes the picture: a hash of its words picks one of these grades.
_FALLBACK_LOOKS: tuple[_Look, ...] = (
    _Look("teal and orange", _chain(_saturation(1.3), _gains(1.18, 1.0, 0.76)), offset=(-10.0, 10.0, 26.0)),
    _Look("rose tint", _chain(_saturation(0.9), _gains(1.12, 0.84, 0.98)), offset=(12.0, 0.0, 8.0)),
    _Look("emerald tint", _chain(_saturation(1.1), _gains(0.8, 1.1, 0.88)), offset=(0.0, 12.0, 4.0)),
    _Look("amber tint", _chain(_gains(1.15, 1.0, 0.65)), offset=(14.0, 6.0, 0.0), vignette=0.2),
    _Look("violet tint", _chain(_gains(1.0, 0.74, 1.2)), offset=(10.0, 0.0, 20.0), vignette=0.2),
    _Look("ice blue", _chain(_saturation(0.6), _gains(0.84, 1.0, 1.2)), offset=(0.0, 8.0, 22.0)),
    _Look(
        "cross-processed",
        _chain(_saturation(1.4), _hue_rotation(25.0), _gains(1.06, 1.0, 0.8)),
        offset=(0.0, 0.0, 22.0),
        contrast=1.2,
    ),
    _Look("bleach bypass", _chain(_saturation(0.4)), contrast=1.35, s_curve=0.2, vignette=0.3),
)


def _look_for(prompt: str) -> _Look:
    text = " ".join(prompt.lower().split())
    best: tuple[int, int, str] | None = None
    for order, (pattern, name) in enumerate(_KEYWORDS):
        match = pattern.search(text)
        if match and (best is None or (match.start(), order) < best[:2]):
            best = (match.start(), order, name)
    if best is not None:
        return _LOOKS_BY_NAME[best[2]]
    # sha256, not hash(): the choice must not change between processes or machines.
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return _FALLBACK_LOOKS[int.from_bytes(digest[:4], "big") % len(_FALLBACK_LOOKS)]


def describe_look(prompt: str) -> str:
    """The human name of the look that :func:`render_result` applies for ``prompt``.

    Words pick a look ("night", "sunset", "winter", "noir", "vintage", "neon", with synonyms such
    as "snow", "black and white", "sepia" or "cyberpunk"; the first one named wins). Any other
    prompt gets one of a few colour tints chosen by a hash of its words, e.g. "teal and orange",
    so every prompt visibly changes the video and the same prompt always gives the same result.
    """
    return _look_for(prompt).name


# --------------------------------------------------------------------------------------------
# Grading frames
# --------------------------------------------------------------------------------------------


class _Grader:
    """Applies one look (and the watermark) to frames of one size.

    Everything that does not change from frame to frame (the colour matrix, vignette and glow
    maps, tone curve, watermark overlay) is computed once here, as full-size arrays, so the
    per-frame work is a handful of same-shape numpy operations into preallocated buffers
    (broadcasting a 3-vector over a frame is several times slower than adding a full-size map).
    """

    def __init__(self, look: _Look, width: int, height: int, fps: Fraction, watermark: str | None) -> None:
        self._look = look
        self._shape = (height, width, 3)
        self._matrix_t = np.ascontiguousarray(np.array(look.matrix).T * look.contrast, dtype=_F32)
        # +0.5 so that the final truncation to uint8 rounds to nearest.
        offset = (np.array(look.offset) - 128.0) * look.contrast + 128.0 + 0.5

        v = (np.arange(height, dtype=_F32)[:, None] + 0.5) / height  # 0 at the top, 1 at the bottom
        u = (np.arange(width, dtype=_F32)[None, :] + 0.5) / width  # 0 left, 1 right
        # graded = (pixels @ matrix) * multiply + add, i.e. (mix + offset) * vignette + glow.
        self._multiply: np.ndarray | None = None
        add = np.empty(self._shape, dtype=_F32)
        add[...] = offset
        if look.vignette:
            radius2 = ((2 * u - 1) ** 2 + (2 * v - 1) ** 2) / 2  # 0 at the centre, 1 in the corners
            multiply = np.empty(self._shape, dtype=_F32)
            multiply[...] = (1.0 - look.vignette * radius2**1.5)[..., None]
            add *= multiply
            self._multiply = multiply
        if look.top_glow:
            colour, strength = look.top_glow
            fade = np.clip(1.0 - v / 0.65, 0.0, 1.0) ** 2
            add += (fade * strength)[..., None] * np.array(colour, dtype=_F32)
        if look.side_glow:
            left, right, strength = look.side_glow
            edge = (0.35 + 0.65 * np.abs(2 * u - 1) ** 1.5) * strength
            mix = u[..., None]
            tint = (1 - mix) * np.array(left, dtype=_F32) + mix * np.array(right, dtype=_F32)
            add += edge[..., None] * tint
        self._add = add

        self._tone = _tone_table(look)
        self._snow = _Snowfall(width, height, fps) if look.snow else None
        self._dust = _FilmDust(width, height) if look.dust else None
        self._overlay = _Overlay.build(watermark, width, height)
        # Frames are graded in bands of rows small enough to stay in the CPU cache. The band size
        # also keeps each matrix product below OpenBLAS's threading threshold: its worker threads
        # stall badly when other processes share the cores (a whole-frame product went from 3 ms
        # to 60+ ms under load), and a single thread is as fast for this memory-bound product.
        self._band = max(1, _BAND_PIXELS // width)
        self._pixels = np.empty((self._band * width, 3), dtype=_F32)
        self._mixed = np.empty((self._band * width, 3), dtype=_F32)

    def __call__(self, rgb: np.ndarray, index: int) -> np.ndarray:
        """Grade one (height, width, 3) uint8 frame into a new array; ``index`` counts from 0."""
        if rgb.shape != self._shape:
            raise ValueError(f"expected a frame of shape {self._shape}, got {rgb.shape}")
        look = self._look
        height, width, _ = self._shape
        matrix_t = self._matrix_t
        if look.flicker:
            wobble = math.sin(index * 12.9898) * 43758.5453
            matrix_t = matrix_t * _F32(1.0 + look.flicker * (2.0 * (wobble - math.floor(wobble)) - 1.0))
        out = np.empty(self._shape, dtype=np.uint8)
        for top in range(0, height, self._band):
            bottom = min(height, top + self._band)
            size = (bottom - top) * width
            pixels, mixed = self._pixels[:size], self._mixed[:size]
            np.copyto(pixels, rgb[top:bottom].reshape(-1, 3))
            np.matmul(pixels, matrix_t, out=mixed)
            graded = mixed.reshape(bottom - top, width, 3)
            if self._multiply is not None:
                graded *= self._multiply[top:bottom]
            graded += self._add[top:bottom]
            np.clip(graded, 0.0, 255.0, out=graded)
            np.copyto(out[top:bottom], graded, casting="unsafe")
        if self._tone is not None:
            # bytes.translate is a byte-wise table lookup in C, ~3x faster than numpy fancy indexing.
            out = np.frombuffer(bytearray(out).translate(self._tone), dtype=np.uint8).reshape(self._shape)
        if self._snow is not None:
            self._snow.draw(out, index)
        if self._dust is not None:
            self._dust.draw(out, index)
        if self._overlay is not None:
            self._overlay.draw(out)
        return out


_BAND_PIXELS = 16384


def _tone_table(look: _Look) -> bytes | None:
    """The look's tone curve as a 256-byte translation table, or None for the identity."""
    if look.s_curve == 0 and look.gamma == 1.0:
        return None
    x = np.linspace(0.0, 1.0, 256)
    curved = ((1 - look.s_curve) * x + look.s_curve * x * x * (3 - 2 * x)) ** (1.0 / look.gamma)
    return np.clip(np.rint(curved * 255.0), 0, 255).astype(np.uint8).tobytes()


def _round_stamp(radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel offsets (dy, dx) and coverage of an anti-aliased disc of ``radius`` pixels."""
    reach = math.ceil(radius)
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    coverage = np.clip(radius + 0.5 - np.hypot(dx, dy), 0.0, 1.0)
    keep = coverage > 0
    return dy[keep], dx[keep], coverage[keep]


def _dab(
    out: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
    stamp: tuple[np.ndarray, np.ndarray, np.ndarray],
    opacity: np.ndarray,
    target: float,
) -> None:
    """In place: blend a disc centred on each (ys[i], xs[i]) of ``out`` towards grey level ``target``."""
    height, width, _ = out.shape
    dy, dx, coverage = stamp
    rows = np.rint(ys).astype(np.intp)[:, None] + dy[None, :]
    cols = np.rint(xs).astype(np.intp)[:, None] + dx[None, :]
    weight = coverage[None, :] * opacity[:, None]
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    rows, cols, weight = rows[inside], cols[inside], weight[inside][:, None]
    base = out[rows, cols].astype(_F32)
    out[rows, cols] = (base + (target - base) * weight + 0.5).astype(np.uint8)


class _Snowfall:
    """Soft white flakes drifting down: small far flakes fall slowly, big near ones faster."""

    def __init__(self, width: int, height: int, fps: Fraction) -> None:
        self._height, self._width, self._fps = height, width, float(fps)
        rng = np.random.default_rng(2024)
        count = int(np.clip(width * height // 1400, 40, 1500))
        scale = max(1.0, min(width, height) / 360.0)
        self._stamps = [_round_stamp(r * scale) for r in (0.8, 1.4, 2.2)]
        self._layer = rng.choice(3, size=count, p=[0.5, 0.32, 0.18])
        depth = (self._layer + rng.uniform(0, 1, count)) / 3.0
        self._x0 = rng.uniform(0, width, count)
        self._y0 = rng.uniform(0, height, count)
        self._speed = height * (0.06 + 0.16 * depth)  # pixels per second
        self._sway = (2.0 + 6.0 * depth) * scale
        self._sway_rate = rng.uniform(0.6, 1.6, count)
        self._phase = rng.uniform(0, 2 * math.pi, count)
        self._opacity = 0.5 + 0.45 * depth

    def draw(self, out: np.ndarray, index: int) -> None:
        t = index / self._fps
        margin = 8  # flakes enter above the top edge and leave below the bottom one
        ys = (self._y0 + self._speed * t) % (self._height + 2 * margin) - margin
        xs = (self._x0 + self._sway * np.sin(self._phase + self._sway_rate * t)) % self._width
        for layer, stamp in enumerate(self._stamps):
            chosen = self._layer == layer
            _dab(out, ys[chosen], xs[chosen], stamp, self._opacity[chosen], 248.0)


class _FilmDust:
    """Specks of dust and a wandering scratch, different on every frame, as on worn film."""

    def __init__(self, width: int, height: int) -> None:
        self._height, self._width = height, width
        scale = max(1.0, min(width, height) / 360.0)
        self._stamps = [_round_stamp(r * scale) for r in (0.7, 1.3, 2.0)]
        self._scratch_width = max(1, round(scale))

    def draw(self, out: np.ndarray, index: int) -> None:
        rng = np.random.default_rng(index)  # seeded by the frame number: same frames, same dust
        for stamp in self._stamps:
            count = int(rng.integers(1, 5))
            ys = rng.uniform(0, self._height, count)
            xs = rng.uniform(0, self._width, count)
            _dab(out, ys, xs, stamp, rng.uniform(0.4, 0.8, count), 24.0)
        # A faint scratch that drifts sideways, visible in runs of frames.
        if (index // 12) % 3 != 2:
            x = int((0.3 + 0.4 * math.sin(index * 0.05)) * self._width)
            column = out[:, x : x + self._scratch_width]
            column[...] = (column * 0.7 + 0.3 * 220.0).astype(np.uint8)


@dataclass(frozen=True, eq=False)
class _Overlay:
    """A pre-rendered RGBA watermark, alpha-blended into the same corner of every frame."""

    top: int
    left: int
    keep: np.ndarray = field(repr=False)
    """(h, w, 1) float32: 1 - alpha."""
    premultiplied: np.ndarray = field(repr=False)
    """(h, w, 3) float32: colour x alpha, 0-255."""

    @classmethod
    def build(cls, text: str | None, width: int, height: int) -> _Overlay | None:
        text = " ".join((text or "").split())  # newlines and tabs would not render on one line
        if not text:
            return None
        short_side = min(width, height)
        font = _font(max(9, round(short_side * 0.05)))
        size = getattr(font, "size", 10)
        pad = max(2, round(size * 0.45))
        margin = max(2, round(short_side * 0.03))
        room = width - 2 * margin - 2 * pad
        if font.getlength(text) > room:
            while text and font.getlength(text + "…") > room:
                text = text[:-1]
            text = text.rstrip() + "…"
        left_edge, top_edge, right_edge, bottom_edge = font.getbbox(text)
        plate_w = int(right_edge - left_edge) + 2 * pad
        plate_h = int(bottom_edge - top_edge) + 2 * pad
        plate = Image.new("RGBA", (plate_w, plate_h), (0, 0, 0, 0))
        ImageDraw.Draw(plate).rounded_rectangle(
            (0, 0, plate_w - 1, plate_h - 1), radius=pad, fill=(0, 0, 0, 120)
        )
        lettering = Image.new("RGBA", (plate_w, plate_h), (0, 0, 0, 0))
        ImageDraw.Draw(lettering).text(
            (pad - left_edge, pad - top_edge), text, font=font, fill=(255, 255, 255, 235)
        )
        rgba = np.asarray(Image.alpha_composite(plate, lettering), dtype=_F32) / 255.0
        # Bottom-right corner; on a frame smaller than the plate, keep the plate's visible part.
        bottom, right = height - margin, width - margin
        top, left = bottom - plate_h, right - plate_w
        rgba = rgba[max(0, -top) :, max(0, -left) :]
        top, left = max(0, top), max(0, left)
        rgba = rgba[: height - top, : width - left]
        alpha = rgba[..., 3:4]
        return cls(top, left, keep=1.0 - alpha, premultiplied=rgba[..., :3] * 255.0 * alpha + 0.5)

    def draw(self, out: np.ndarray) -> None:
        h, w = self.keep.shape[:2]
        region = out[self.top : self.top + h, self.left : self.left + w]
        region[...] = (region * self.keep + self.premultiplied).astype(np.uint8)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's bundled font: the same on every machine, so watermarked frames are reproducible.
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # Pillow built without FreeType
        return ImageFont.load_default()


# --------------------------------------------------------------------------------------------
# Writing H.264 MP4
# --------------------------------------------------------------------------------------------


class _H264Writer:
    """Encodes RGB frames into an H.264 MP4 that browsers play.

    Encoding runs on a background thread fed through a short queue, so the caller decodes and
    grades the next frames while earlier ones are converted to YUV and compressed (numpy and
    FFmpeg both release the GIL for their heavy work).

    The file is written under a temporary name next to ``dst`` and renamed into place only once
    complete, so nobody ever serves or plays a half-written result.
    """

    def __init__(self, dst: Path, width: int, height: int, fps: Fraction, *, rotation: int = 0) -> None:
        self._dst = dst
        if not dst.parent.is_dir():
            # Checked here because FFmpeg only opens the file when the first frame arrives.
            raise MediaError(f"Could not create the video file '{dst}': its folder does not exist.")
        self._partial = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:12]}.partial")
        # yuv420p, the only pixel format every browser decodes, needs even dimensions.
        self._pad_rows, self._pad_cols = height % 2, width % 2
        try:
            self._container = av.open(str(self._partial), mode="w", format="mp4", options=_MP4_OPTIONS)
        except (av.FFmpegError, OSError) as exc:
            raise MediaError(f"Could not create the video file '{dst}' ({_reason(exc)}).") from None
        try:
            stream = self._container.add_stream("libx264", rate=fps, options=dict(_X264_OPTIONS))
            stream.width, stream.height = width + self._pad_cols, height + self._pad_rows
            stream.pix_fmt = "yuv420p"
            context = stream.codec_context
            context.time_base = 1 / fps
            context.gop_size = max(1, round(2 * fps))  # a keyframe every 2 s keeps seeking snappy
            context.thread_count = 0  # as many as the CPU has
            # Tag the colours as BT.709 (what the RGB->YUV conversion below uses), so players
            # do not guess.
            context.colorspace = context.color_primaries = context.color_trc = 1
            context.color_range = 1
            if rotation % 360:
                stream.set_display_rotation(rotation % 360)
        except BaseException:
            self._container.close()
            self._partial.unlink(missing_ok=True)
            raise
        self._stream = stream
        self._count = 0
        self._queue: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=4)
        self._failure: BaseException | None = None
        self._worker = threading.Thread(target=self._encode_all, name="h264-writer", daemon=True)
        self._worker.start()

    def write(self, rgb: np.ndarray) -> None:
        """Queue one (height, width, 3) uint8 RGB frame; the array must not be changed afterwards."""
        if self._failure is not None:
            self._raise_failure()
        self._queue.put(rgb)

    def _encode_all(self) -> None:
        while (rgb := self._queue.get()) is not None:
            if self._failure is not None:
                continue  # keep draining so the producer never blocks on a full queue
            try:
                self._encode(rgb)
            except BaseException as exc:  # noqa: BLE001 - handed to the producer thread
                self._failure = exc
        if self._failure is None:
            try:
                self._container.mux(self._stream.encode(None))  # flush delayed frames
            except BaseException as exc:  # noqa: BLE001 - handed to the producer thread
                self._failure = exc

    def _encode(self, rgb: np.ndarray) -> None:
        if self._pad_rows or self._pad_cols:
            rgb = np.pad(rgb, ((0, self._pad_rows), (0, self._pad_cols), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
            format="yuv420p", dst_colorspace="itu709", dst_color_range="MPEG"
        )
        frame.pts = self._count
        frame.duration = 1
        frame.time_base = self._stream.codec_context.time_base
        self._count += 1
        self._container.mux(self._stream.encode(frame))

    def _raise_failure(self) -> None:
        exc = self._failure
        if isinstance(exc, (av.FFmpegError, OSError)):
            raise MediaError(f"Could not write '{self._dst.name}' ({_reason(exc)}).") from exc
        raise RuntimeError(f"encoding '{self._dst.name}' failed") from exc

    def __enter__(self) -> _H264Writer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self._queue.put(None)
        self._worker.join()
        try:
            close_error: BaseException | None = None
            try:
                self._container.close()
            except (av.FFmpegError, OSError) as exc:
                close_error = exc
            if exc_type is not None:
                return  # the caller's exception is the one that matters
            if self._failure is not None:
                self._raise_failure()
            if close_error is not None:
                raise MediaError(f"Could not finish '{self._dst.name}' ({_reason(close_error)}).")
            os.replace(self._partial, self._dst)
        finally:
            self._partial.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# Rendering a result
# --------------------------------------------------------------------------------------------


def render_result(
    src: str | Path, dst: str | Path, *, prompt: str, watermark: str | None = None
) -> VideoInfo:
    """Write to ``dst`` the modified version of the video in ``src`` and describe it.

    Every frame of ``src`` is decoded, graded with the look ``prompt`` maps to (see
    :func:`describe_look`), optionally stamped with ``watermark`` text in the bottom-right
    corner, and encoded as H.264 (libx264, yuv420p, High profile, BT.709) into an MP4 whose index
    sits at the front (``+faststart``) so browsers start playing at once.

    The result keeps the input's width, height, frame count and average frame rate (so for a
    constant-frame-rate input its duration matches to within a frame; variable-rate input comes
    out at its average rate) and its rotation metadata; the watermark is placed in the corner
    that is bottom-right *as displayed*. Two deliberate differences:

    - Odd widths or heights are padded by one repeated pixel row/column, because yuv420p, the
      only pixel format all browsers decode, needs even dimensions.
    - The audio track is dropped: the emulator's job is to show the picture changing, and a
      silent file is simpler to produce and plays everywhere.

    ``dst`` appears only once complete (it is written under a temporary name first).

    Raises:
        MediaError: ``src`` is missing, not a video, has no video track or cannot be decoded, or
            ``dst`` cannot be written.
    """
    src, dst = Path(src), Path(dst)
    look = _look_for(prompt)
    with _open_input(src) as container:
        stream = _video_stream(container, src)
        stream.thread_type = "AUTO"  # decode on several threads
        fps = _frame_rate(stream)
        frames = _decode(container, stream, src)
        first = next(frames, None)
        if first is None:
            raise MediaError(f"'{src.name}' has a video track but no frames in it.")
        width, height = first.width, first.height
        turns = round((first.rotation or 0) / 90) % 4
        shown_w, shown_h = (height, width) if turns % 2 else (width, height)
        grader = _Grader(look, shown_w, shown_h, fps, watermark)
        with _H264Writer(dst, width, height, fps, rotation=turns * 90) as writer:
            frame: av.VideoFrame | None = first
            index = 0
            while frame is not None:
                # Sizes a stream changes mid-way are scaled back to the first frame's size.
                rgb = frame.to_ndarray(format="rgb24", width=width, height=height)
                if turns:
                    # Grade the picture the way it is shown, then store it the way it is coded.
                    shown = grader(np.rot90(rgb, turns), index)
                    rgb = np.ascontiguousarray(np.rot90(shown, -turns))
                else:
                    rgb = grader(rgb, index)
                writer.write(rgb)
                index += 1
                frame = next(frames, None)
    return probe(dst)


def _decode(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream, path: Path
) -> Iterator[av.VideoFrame]:
    count = 0
    try:
        for frame in container.decode(stream):
            count += 1
            yield frame
    except av.FFmpegError as exc:
        raise MediaError(
            f"'{path.name}' could not be decoded after {count} frames ({_reason(exc)}); "
            "the file may be damaged."
        ) from None


# --------------------------------------------------------------------------------------------
# Sample clips, generated entirely from code
# --------------------------------------------------------------------------------------------


_Scene = Callable[[float], np.ndarray]
"""Returns the frame at time t (seconds) as (height, width, 3) float32 RGB, 0-255."""


def make_sample(
    slug: str, dst: str | Path, *, width: int = 640, height: int = 360, seconds: float = 6.0, fps: int = 24
) -> VideoInfo:
    """Generate the sample clip ``slug`` (one of :data:`SAMPLES`) as an H.264 MP4 at ``dst``.

    The picture is drawn from code (deterministically: the same arguments give the same frames)
    and encoded exactly like :func:`render_result`'s output. Odd sizes are padded by one pixel.

    Raises:
        MediaError: ``slug`` is not a known sample, a size/length/rate is out of range, or ``dst``
            cannot be written.
    """
    builders = _SCENES
    if slug not in builders:
        known = ", ".join(spec.slug for spec in SAMPLES)
        raise MediaError(f"There is no sample clip called '{slug}'; the samples are: {known}.")
    if not (16 <= width <= 3840 and 16 <= height <= 2160):
        raise MediaError(f"Sample size {width}x{height} is out of range (16x16 up to 3840x2160).")
    if not (0 < seconds <= 60):
        raise MediaError(f"Sample length {seconds} s is out of range (more than 0, at most 60 s).")
    if not (1 <= fps <= 120):
        raise MediaError(f"Sample frame rate {fps} is out of range (1 to 120 frames per second).")
    rate = Fraction(fps).limit_denominator(1001)
    scene = builders[slug](width, height)
    count = max(1, round(seconds * float(rate)))
    dst = Path(dst)
    with _H264Writer(dst, width, height, rate) as writer:
        for index in range(count):
            picture = scene(float(index / rate))
            writer.write((np.clip(picture, 0.0, 255.0) + 0.5).astype(np.uint8))
    return probe(dst)


def write_shipped_samples(folder: Path = SHIPPED_SAMPLES) -> list[Path]:
    """Draw every sample at the shipped size into ``folder`` (after a change to the scenes)."""
    folder.mkdir(parents=True, exist_ok=True)
    width, height, seconds = SHIPPED_SHAPE
    paths = [folder / f"{spec.slug}.mp4" for spec in SAMPLES]
    for spec, path in zip(SAMPLES, paths, strict=True):
        make_sample(spec.slug, path, width=width, height=height, seconds=seconds)
    return paths


def _gradient(height: int, stops: list[tuple[float, _Vec3]]) -> np.ndarray:
    """A vertical colour gradient, (height, 1, 3) float32, through (position 0-1, colour) stops."""
    v = (np.arange(height, dtype=_F32) + 0.5) / height
    positions = [p for p, _ in stops]
    channels = [np.interp(v, positions, [c[i] for _, c in stops]) for i in range(3)]
    return np.stack(channels, axis=-1)[:, None, :].astype(_F32)


def _blend(img: np.ndarray, alpha: np.ndarray, colour: np.ndarray | _Vec3) -> None:
    """In place: img = img + alpha * (colour - img); alpha is (h, w), colour broadcastable."""
    img += alpha[..., None] * (np.asarray(colour, dtype=_F32) - img)


def _soft_blob(img: np.ndarray, cx: float, cy: float, rx: float, ry: float, colour: _Vec3, opacity: float) -> None:
    """Blend a soft elliptical puff into img, touching only its bounding box."""
    height, width, _ = img.shape
    top, bottom = max(0, int(cy - 2 * ry)), min(height, int(cy + 2 * ry) + 1)
    left, right = max(0, int(cx - 2 * rx)), min(width, int(cx + 2 * rx) + 1)
    if top >= bottom or left >= right:
        return
    y = np.arange(top, bottom, dtype=_F32)[:, None]
    x = np.arange(left, right, dtype=_F32)[None, :]
    alpha = np.exp(-2.0 * (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)) * opacity
    _blend(img[top:bottom, left:right], alpha, colour)


def _sun(img: np.ndarray, cx: float, cy: float, radius: float, glow: _Vec3, disc: _Vec3) -> None:
    height, width, _ = img.shape
    y = np.arange(height, dtype=_F32)[:, None]
    x = np.arange(width, dtype=_F32)[None, :]
    distance = np.hypot(x - cx, y - cy)
    _blend(img, np.exp(-distance / (radius * 2.5)) * 0.6, glow)
    _blend(img, np.clip(radius + 0.5 - distance, 0.0, 1.0), disc)


def _scene_rolling_hills(width: int, height: int) -> _Scene:
    rng = np.random.default_rng(11)
    sky = _gradient(height, [(0.0, (34, 86, 168)), (0.55, (118, 176, 232)), (0.78, (246, 216, 178))])
    rows = np.arange(height, dtype=_F32)[:, None]
    columns = np.arange(width, dtype=np.float64)
    pace = width / 640.0  # speeds scale with the frame so every size looks alike
    # (base height, amplitude, (freq1, freq2), parallax px/s, top colour, bottom colour)
    hills = [
        (0.60, 0.06, (1.3, 3.1), 5.0, (120, 160, 150), (100, 140, 120)),
        (0.70, 0.07, (0.9, 2.3), 14.0, (88, 150, 78), (60, 120, 58)),
        (0.82, 0.07, (0.7, 1.9), 30.0, (52, 112, 48), (28, 74, 30)),
    ]
    phases = rng.uniform(0, 2 * math.pi, (len(hills), 2))
    shades = [_gradient(height, [(0.5, top), (1.0, bottom)]) for *_, top, bottom in hills]
    clouds = [
        (rng.uniform(0, 1), rng.uniform(0.08, 0.34), rng.uniform(0.7, 1.3), rng.uniform(6, 14))
        for _ in range(5)
    ]

    backdrop = np.array(np.broadcast_to(sky, (height, width, 3)))
    _sun(backdrop, 0.74 * width, 0.34 * height, 0.07 * height, (255, 238, 196), (255, 248, 222))

    def frame(t: float) -> np.ndarray:
        img = backdrop.copy()
        for x0, y, size, speed in clouds:
            span = width * 1.4
            cx = (x0 * span + speed * pace * t) % span - 0.2 * width
            rx, ry = 0.09 * width * size, 0.045 * height * size
            for dx, dy, k in ((-0.8, 0.3, 0.7), (0.0, 0.0, 1.0), (0.9, 0.25, 0.75), (0.35, -0.45, 0.6)):
                _soft_blob(img, cx + dx * rx, y * height + dy * ry, rx * k, ry * k, (252, 252, 255), 0.85)
        for (base, amp, (f1, f2), speed, *_), (p1, p2), shade in zip(hills, phases, shades, strict=True):
            x = (columns + speed * pace * t) / width
            ridge = height * (base + amp * (0.6 * np.sin(2 * math.pi * f1 * x + p1) + 0.4 * np.sin(2 * math.pi * f2 * x + p2)))
            top = max(0, int(ridge.min()))
            alpha = np.clip(rows[top:] - ridge.astype(_F32)[None, :], 0.0, 1.0)  # 1-pixel soft edge
            _blend(img[top:], alpha, shade[top:])
        return img

    return frame


def _scene_city_lights(width: int, height: int) -> _Scene:
    rng = np.random.default_rng(23)
    sky = _gradient(height, [(0.0, (12, 16, 48)), (0.45, (52, 44, 104)), (0.72, (214, 110, 100)), (0.9, (248, 168, 112))])
    pace = width / 640.0
    stars = rng.integers(0, (width, int(height * 0.5)), size=(max(20, width * height // 2500), 2))
    star_phase = rng.uniform(0, 2 * math.pi, len(stars))
    star_rate = rng.uniform(1.0, 3.0, len(stars))
    road_top = int(height * 0.9)
    cell_w, cell_h = max(3, round(width / 110)), max(3, round(height / 45))
    period = 2 * width  # the skyline repeats every two frame widths
    palette = np.array([(255, 214, 120), (255, 236, 180), (190, 220, 255), (255, 190, 110)], dtype=_F32)

    def skyline(
        top_range: tuple[float, float], widths: tuple[float, float], body: _Vec3, lit_share: float, seed: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """A repeating strip of buildings, drawn once: pixels, which pixels are solid, and windows.

        The strip is (height, period + width): its first ``width`` columns repeat at the end, so
        every view of the scrolling skyline is one plain slice.
        """
        local = np.random.default_rng(seed)
        strip = np.zeros((height, period, 3), dtype=_F32)
        solid = np.zeros((height, period), dtype=bool)
        windows = []
        x = 0
        gap_x, gap_y = max(1, cell_w // 2), max(1, cell_h // 2)
        while x < period:
            w = min(int(local.uniform(*widths) * width), period - x)
            top = int(local.uniform(*top_range) * height)
            strip[top:road_top, x : x + w] = body
            solid[top:road_top, x : x + w] = True
            for wy in range(top + gap_y * 2, road_top - cell_h - gap_y, cell_h + gap_y):
                for wx in range(x + gap_x * 2, x + w - cell_w - gap_x, cell_w + gap_x):
                    windows.append((wx, wy))
            x += w + int(local.uniform(0.0, 0.015) * width)
        spots = np.array(windows, dtype=np.int64).reshape(-1, 2)
        colours = palette[local.integers(0, len(palette), len(spots))]
        lit = local.uniform(0, 1, len(spots)) < lit_share
        for (wx, wy), colour in zip(spots[lit], colours[lit], strict=True):
            strip[wy : wy + cell_h, wx : wx + cell_w] = colour
        return (np.concatenate([strip, strip[:, :width]], axis=1),
                np.concatenate([solid, solid[:, :width]], axis=1), spots, colours, lit)

    far_strip, far_solid, *_ = skyline((0.42, 0.62), (0.05, 0.10), (46, 42, 86), 0.3, 5)
    near_body = (18.0, 18.0, 34.0)
    near_strip, near_solid, spots, colours, base_lit = skyline((0.28, 0.58), (0.07, 0.14), near_body, 0.6, 9)
    # One window in eight switches on and off now and then; the others keep their state.
    switching = np.flatnonzero(rng.uniform(0, 1, len(spots)) < 0.125)
    switch_phase = rng.uniform(0, 1, len(switching))
    switch_rate = rng.uniform(0.05, 0.3, len(switching))
    cars = [(rng.uniform(0, 1), rng.choice([-1, 1]) * rng.uniform(60, 140)) for _ in range(7)]

    backdrop = np.array(np.broadcast_to(sky, (height, width, 3)))
    _sun(backdrop, 0.17 * width, 0.2 * height, 0.05 * height, (120, 120, 170), (246, 242, 222))  # the moon
    lane = int(height * 0.95)
    dashes = (np.arange(width) // 12) % 2 == 0

    def frame(t: float) -> np.ndarray:
        img = backdrop.copy()
        ys, xs = stars[:, 1], stars[:, 0]
        twinkle = (0.45 + 0.45 * np.sin(star_phase + star_rate * t))[:, None]
        img[ys, xs] += twinkle * (255.0 - img[ys, xs])
        far_at = int(5.0 * pace * t) % period
        near_at = int(16.0 * pace * t) % period
        view = slice(far_at, far_at + width)
        np.copyto(img, far_strip[:, view], where=far_solid[:, view, None])
        view = slice(near_at, near_at + width)
        np.copyto(img, near_strip[:, view], where=near_solid[:, view, None])
        lit_now = ((switch_phase + switch_rate * t) % 1.0) < 0.6
        changed = switching[lit_now != base_lit[switching]]
        on = lit_now[lit_now != base_lit[switching]]
        for index, light in zip(changed, on, strict=True):
            wx, wy = spots[index]
            x = (wx - near_at) % period
            if x > period - cell_w:
                x -= period  # partly off the left edge
            if x < width:
                img[wy : wy + cell_h, max(0, x) : min(width, x + cell_w)] = colours[index] if light else near_body
        img[road_top:] = (30, 28, 36)
        img[lane : lane + 1, dashes] = (120, 110, 90)
        car_h, car_w = max(2, height // 120), max(4, width // 60)
        for x0, speed in cars:
            x = int((x0 * width * 1.2 + speed * pace * t) % (width * 1.2) - 0.1 * width)
            y = road_top + (2 * car_h if speed > 0 else 5 * car_h)
            colour = (255, 244, 210) if speed > 0 else (255, 50, 40)
            left, right = max(0, x), min(width, x + car_w)
            if left < right:
                img[y : y + car_h, left:right] = colour
        return img

    return frame


def _scene_ocean_waves(width: int, height: int) -> _Scene:
    rng = np.random.default_rng(31)
    sky = _gradient(height, [(0.0, (58, 118, 200)), (0.46, (196, 224, 246))])
    x = np.arange(width, dtype=_F32)[None, :]
    u = (x - width / 2) / width
    rows = np.arange(height, dtype=_F32)[:, None]
    deep, shallow, foam, glint = (
        np.array(c, dtype=_F32) for c in ((8, 52, 96), (70, 140, 190), (236, 246, 250), (255, 246, 214))
    )
    clouds = [(rng.uniform(0, 1), rng.uniform(0.08, 0.28), rng.uniform(0.6, 1.1)) for _ in range(4)]
    pace = width / 640.0

    sun_x = 0.62 * width
    backdrop = np.array(np.broadcast_to(sky, (height, width, 3)))
    _sun(backdrop, sun_x, 0.2 * height, 0.06 * height, (255, 244, 214), (255, 252, 236))

    def frame(t: float) -> np.ndarray:
        img = backdrop.copy()
        for x0, y, size in clouds:
            cx = (x0 * width * 1.4 + 8 * pace * t) % (width * 1.4) - 0.2 * width
            _soft_blob(img, cx, y * height, 0.12 * width * size, 0.035 * height * size, (250, 252, 255), 0.8)
        horizon = height * (0.46 + 0.006 * math.sin(0.9 * t))  # a gentle bob, as from a boat
        top = int(horizon)
        z = np.clip((rows[top:] - horizon) / (height - horizon), 0.0, 1.0)  # 0 at the horizon
        perspective = 1.0 / (z + 0.06)
        pattern = 0.6 * np.sin(perspective * 9.0 - 1.6 * t + u * perspective * 1.2) + 0.4 * np.sin(
            perspective * 15.0 + 1.1 * t - u * perspective * 2.5 + 1.3
        )
        water = shallow + (deep - shallow) * (z**0.7)[..., None]
        water = water + (pattern * (14.0 + 20.0 * z))[..., None]
        _blend(water, np.clip((pattern - 0.72) * 4.0, 0.0, 1.0) * (0.35 + 0.5 * z), foam)
        spread = width * (0.03 + 0.1 * z)
        sparkle = np.exp(-(((x - sun_x) / spread) ** 2)) * np.clip(pattern * 1.5 - 0.5, 0.0, 1.0)
        _blend(water, sparkle * 0.8, glint)
        _blend(water, np.broadcast_to(np.exp(-z * 12.0) * 0.6, pattern.shape), sky[top])
        edge = np.clip(rows[top:] - horizon, 0.0, 1.0)  # soft horizon line
        _blend(img[top:], np.broadcast_to(edge, pattern.shape), water)
        return img

    return frame


def _scene_bouncing_shapes(width: int, height: int) -> _Scene:
    rng = np.random.default_rng(47)
    y = np.arange(height, dtype=_F32)[:, None] / height
    x = np.arange(width, dtype=_F32)[None, :] / width
    mix = ((x + y) / 2)[..., None]
    backdrop = (1 - mix) * np.array((252, 236, 216), dtype=_F32) + mix * np.array((210, 228, 252), dtype=_F32)
    floor = 0.88 * height
    palette = [(239, 71, 111), (255, 196, 70), (6, 190, 150), (17, 138, 178), (131, 56, 236), (255, 130, 60), (58, 134, 255)]
    shapes = []
    for i, colour in enumerate(palette):
        radius = rng.uniform(0.06, 0.11) * height
        shapes.append(
            dict(
                round=i % 2 == 0,
                colour=np.array(colour, dtype=_F32),
                radius=radius,
                x0=rng.uniform(0, 1),
                vx=rng.uniform(0.08, 0.2) * rng.choice([-1, 1]),
                period=rng.uniform(0.9, 1.6),
                phase=rng.uniform(0, 1),
                leap=rng.uniform(0.3, 0.6) * height,
                spin=rng.uniform(-2.0, 2.0),
            )
        )

    def frame(t: float) -> np.ndarray:
        img = backdrop.copy()
        img[int(floor) :] *= 0.93
        for s in shapes:
            r = s["radius"]
            travel = width - 2 * r
            k = (s["x0"] + s["vx"] * t) % 2.0
            cx = r + travel * (k if k < 1 else 2 - k)  # bounce off the side walls
            hop = ((t / s["period"] + s["phase"]) % 1.0) * 2 - 1
            lift = s["leap"] * (1 - hop * hop)  # a parabola between floor contacts
            cy = floor - r - lift
            # Shadow on the floor: smaller and fainter the higher the shape flies.
            height_frac = lift / s["leap"]
            _soft_blob(img, cx, floor, r * (1.0 - 0.4 * height_frac), r * 0.22, (70, 70, 90), 0.35 * (1 - 0.6 * height_frac))
            top, bottom = max(0, int(cy - 1.5 * r)), min(height, int(cy + 1.5 * r) + 2)
            left, right = max(0, int(cx - 1.5 * r)), min(width, int(cx + 1.5 * r) + 2)
            if top >= bottom or left >= right:
                continue
            dy = np.arange(top, bottom, dtype=_F32)[:, None] - cy
            dx = np.arange(left, right, dtype=_F32)[None, :] - cx
            if s["round"]:
                distance = np.hypot(dx, dy)
                alpha = np.clip(r + 0.5 - distance, 0.0, 1.0)
                light = 1.12 - 0.4 * np.clip(np.hypot(dx + 0.35 * r, dy + 0.35 * r) / (1.6 * r), 0, 1)
            else:
                angle = s["spin"] * t
                c, sn = math.cos(angle), math.sin(angle)
                lx, ly = np.abs(c * dx + sn * dy), np.abs(-sn * dx + c * dy)
                corner = 0.25 * r
                half = 0.85 * r - corner
                outside = np.hypot(np.maximum(lx - half, 0), np.maximum(ly - half, 0)) - corner
                alpha = np.clip(0.5 - outside, 0.0, 1.0)
                light = 1.05 - 0.2 * np.clip((dy + r) / (2 * r), 0, 1)
            _blend(img[top:bottom, left:right], alpha, s["colour"] * light[..., None])
        return img

    return frame


_SCENES: dict[str, Callable[[int, int], _Scene]] = {
    "rolling-hills": _scene_rolling_hills,
    "city-lights": _scene_city_lights,
    "ocean-waves": _scene_ocean_waves,
    "bouncing-shapes": _scene_bouncing_shapes,
}


if __name__ == "__main__":
    for written in write_shipped_samples():
        print(f"{written} ({written.stat().st_size:,} bytes)")
