"""luma.emulator.media: real H.264 results, prompt looks, watermark, probing and sample clips.

Every check decodes the files with PyAV, so a result that merely exists, or does not play, or
does not depend on the prompt, fails here. Clips are tiny (160x96, 1.5 s) to keep the suite fast.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from luma.emulator.media import (
    SAMPLES,
    MediaError,
    SampleSpec,
    VideoInfo,
    describe_look,
    make_sample,
    probe,
    render_result,
)

WIDTH, HEIGHT, FPS, SECONDS = 160, 96, 12, 1.5
# Mean absolute difference (0-255 scale, over all pixels and channels) that counts as "visibly
# different". Re-encoding alone moves pixels by about 1; a look moves them by 10 to 100.
VISIBLE = 6.0
KEYWORD_PROMPTS = {
    "Make it night": "night",
    "a warm sunset over the hills": "sunset",
    "Winter with falling snow": "winter",
    "film noir, black and white": "noir",
    "old vintage sepia film": "vintage",
    "neon cyberpunk city": "neon",
}
OTHER_PROMPT = "turn it into a watercolour painting"


def decode(path: Path) -> np.ndarray:
    """Every frame of ``path`` as one (frames, height, width, 3) uint8 array."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def mean_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def write_clip(
    path: Path,
    frames: np.ndarray,
    *,
    fps: int = FPS,
    format: str | None = None,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    rotation: int = 0,
) -> Path:
    """Encode RGB ``frames`` with PyAV directly (not with the code under test)."""
    with av.open(str(path), "w", format=format) as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        if rotation:
            stream.set_display_rotation(rotation)
        for pixels in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def gradient_frames(count: int, height: int, width: int) -> np.ndarray:
    """Colourful moving gradients: enough variety for every look to show."""
    y = np.linspace(0, 255, height)[:, None]
    x = np.linspace(0, 255, width)[None, :]
    frames = [
        np.stack([np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)),
                  np.full((height, width), (40 + 20 * i) % 256)], axis=-1)
        for i in range(count)
    ]
    return np.array(frames, dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 160x96, 1.5 s, 12 fps H.264 sample clip shared by this module."""
    path = tmp_path_factory.mktemp("media") / "tiny.mp4"
    make_sample("rolling-hills", path, width=WIDTH, height=HEIGHT, seconds=SECONDS, fps=FPS)
    return path


@pytest.fixture(scope="module")
def tiny_frames(tiny_clip: Path) -> np.ndarray:
    return decode(tiny_clip)


@pytest.fixture(scope="module")
def rendered(tiny_clip: Path, tmp_path_factory: pytest.TempPathFactory):
    """render_result(tiny_clip) for a prompt (and watermark), each rendered at most once."""
    folder = tmp_path_factory.mktemp("rendered")
    cache: dict[tuple[str, str | None], tuple[Path, VideoInfo]] = {}

    def render(prompt: str, watermark: str | None = None) -> tuple[Path, VideoInfo]:
        key = (prompt, watermark)
        if key not in cache:
            dst = folder / f"result-{len(cache)}.mp4"
            cache[key] = (dst, render_result(tiny_clip, dst, prompt=prompt, watermark=watermark))
        return cache[key]

    return render


# --- the result is a real, browser-playable video of the same shape ------------------------------


def test_result_is_browser_playable_h264_with_the_input_shape(tiny_clip: Path, rendered) -> None:
    source = probe(tiny_clip)
    path, info = rendered("Make it night")

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        context = stream.codec_context
        assert context.name == "h264"
        assert context.pix_fmt == "yuv420p"
        assert context.profile in ("High", "Main")
        assert (context.width, context.height) == (source.width, source.height)
        assert stream.average_rate == Fraction(FPS)
        decoded = sum(1 for _ in container.decode(stream))
        assert not container.streams.audio
    assert abs(decoded - source.frames) <= 1
    assert abs(info.duration - source.duration) <= 1 / source.fps + 1e-6
    assert info == VideoInfo("mp4", "h264", source.width, source.height, info.duration, float(FPS), decoded)

    # +faststart: the index (moov) comes before the media data, so browsers start at once.
    data = path.read_bytes()
    assert data[4:8] == b"ftyp"
    assert 0 < data.find(b"moov") < data.find(b"mdat")


def test_result_colours_are_tagged_bt709(rendered) -> None:
    path, _ = rendered("Make it night")
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
    assert (frame.colorspace, frame.color_primaries, frame.color_trc, frame.color_range) == (1, 1, 1, 1)


@pytest.mark.parametrize("prompt", [*KEYWORD_PROMPTS, OTHER_PROMPT])
def test_every_prompt_visibly_changes_every_frame(prompt: str, rendered, tiny_frames: np.ndarray) -> None:
    path, _ = rendered(prompt)
    result = decode(path)
    assert result.shape == tiny_frames.shape
    per_frame = [mean_difference(a, b) for a, b in zip(result, tiny_frames, strict=True)]
    assert min(per_frame) > VISIBLE, (prompt, describe_look(prompt), per_frame)


def test_reencoding_alone_stays_below_the_visible_threshold(tiny_clip: Path, tiny_frames: np.ndarray, tmp_path: Path) -> None:
    # Guards the threshold above: if plain re-encoding crossed it, the test before would prove nothing.
    copy = write_clip(tmp_path / "copy.mp4", tiny_frames)
    assert mean_difference(decode(copy), tiny_frames) < VISIBLE / 3


def test_different_looks_give_different_frames(rendered) -> None:
    night, _ = rendered("Make it night")
    sunset, _ = rendered("a warm sunset over the hills")
    assert mean_difference(decode(night), decode(sunset)) > VISIBLE


def test_same_prompt_gives_identical_frames(tiny_clip: Path, rendered, tmp_path: Path) -> None:
    first, _ = rendered(OTHER_PROMPT)
    again = tmp_path / "again.mp4"
    render_result(tiny_clip, again, prompt=OTHER_PROMPT)
    assert np.array_equal(decode(first), decode(again))


def test_snow_and_film_dust_move_from_frame_to_frame(tmp_path: Path) -> None:
    # A still picture: any change between frames comes from the look's own animation.
    still = write_clip(tmp_path / "still.mp4", np.repeat(gradient_frames(1, HEIGHT, WIDTH), 6, axis=0))
    for prompt in ("winter snow", "vintage"):
        dst = tmp_path / f"{prompt}.mp4"
        render_result(still, dst, prompt=prompt)
        out = decode(dst)
        assert mean_difference(out[0], out[3]) > 0.3, prompt
    render_result(still, tmp_path / "plain.mp4", prompt="sunset")
    plain = decode(tmp_path / "plain.mp4")
    assert mean_difference(plain[0], plain[3]) < 0.3  # the control: a look without animation


# --- watermark --------------------------------------------------------------------------------------


def test_watermark_is_drawn_in_the_bottom_right_corner(rendered) -> None:
    plain = decode(rendered("Make it night")[0])
    marked = decode(rendered("Make it night", "DEMO")[0])
    corner = (slice(None), slice(HEIGHT * 3 // 4, None), slice(WIDTH * 2 // 3, None))
    far = (slice(None), slice(0, HEIGHT // 3), slice(0, WIDTH // 2))
    assert mean_difference(plain[corner], marked[corner]) > VISIBLE
    assert mean_difference(plain[far], marked[far]) < 0.5
    # Every frame carries it.
    assert min(mean_difference(a, b) for a, b in zip(plain[corner], marked[corner], strict=True)) > VISIBLE


def test_blank_watermark_draws_nothing_and_long_one_still_fits(tiny_clip: Path, rendered, tmp_path: Path) -> None:
    plain = decode(rendered("Make it night")[0])
    blank = decode(rendered("Make it night", "  \n ")[0])
    assert np.array_equal(plain, blank)
    info = render_result(tiny_clip, tmp_path / "long.mp4", prompt="night", watermark="W" * 500)
    assert (info.width, info.height) == (WIDTH, HEIGHT)


def test_rotated_input_keeps_its_rotation_and_the_watermark_is_bottom_right_as_shown(tmp_path: Path) -> None:
    # Coded 160x96 landscape, shown as portrait (rotated 90 degrees) like a phone video.
    source = write_clip(tmp_path / "phone.mp4", gradient_frames(4, HEIGHT, WIDTH), rotation=90)
    plain, marked = tmp_path / "plain.mp4", tmp_path / "marked.mp4"
    render_result(source, plain, prompt="noir")
    info = render_result(source, marked, prompt="noir", watermark="DEMO")
    assert (info.width, info.height) == (WIDTH, HEIGHT)
    with av.open(str(marked)) as container:
        assert next(container.decode(video=0)).rotation == 90
    shown_plain = np.rot90(decode(plain), 1, axes=(1, 2))  # how a player displays the frames
    shown_marked = np.rot90(decode(marked), 1, axes=(1, 2))
    assert shown_marked.shape[1:3] == (WIDTH, HEIGHT)
    h, w = shown_marked.shape[1:3]
    bottom_right = (slice(None), slice(h * 3 // 4, None), slice(w // 3, None))
    top_left = (slice(None), slice(0, h // 2), slice(0, w // 2))
    near = mean_difference(shown_plain[bottom_right], shown_marked[bottom_right])
    away = mean_difference(shown_plain[top_left], shown_marked[top_left])
    assert near > VISIBLE
    assert away < near / 4  # only compression noise away from the watermark


# --- other inputs and failures -----------------------------------------------------------------------


def test_odd_sized_mov_input_is_padded_to_even_and_keeps_every_frame(tmp_path: Path) -> None:
    frames = gradient_frames(5, 97, 161)
    source = write_clip(tmp_path / "odd.mov", frames, format="mov", codec="png", pix_fmt="rgb24")
    assert probe(source).container == "mov"
    info = render_result(source, tmp_path / "even.mp4", prompt="sunset")
    assert (info.width, info.height, info.frames, info.codec) == (162, 98, 5, "h264")
    result = decode(tmp_path / "even.mp4")
    assert mean_difference(result[:, :97, :161], frames) > VISIBLE


def test_unreadable_source_raises_media_error_and_leaves_no_file(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("this is not a video\n" * 50)
    dst = tmp_path / "out" / "result.mp4"
    dst.parent.mkdir()
    with pytest.raises(MediaError, match="notes.txt"):
        render_result(text, dst, prompt="night")
    with pytest.raises(MediaError, match="not a video"):
        probe(text)  # FFmpeg alone would call a .txt file "ANSI art video"
    with pytest.raises(MediaError, match="no video file"):
        render_result(tmp_path / "missing.mp4", dst, prompt="night")
    assert list(dst.parent.iterdir()) == []


def test_unwritable_destination_raises_media_error(tiny_clip: Path, tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="Could not create"):
        render_result(tiny_clip, tmp_path / "no-such-folder" / "result.mp4", prompt="night")


# --- probe ----------------------------------------------------------------------------------------------


def test_probe_describes_an_mp4(tiny_clip: Path) -> None:
    info = probe(tiny_clip)
    assert info == VideoInfo("mp4", "h264", WIDTH, HEIGHT, info.duration, float(FPS), round(SECONDS * FPS))
    assert info.duration == pytest.approx(SECONDS, abs=1 / FPS)


def test_probe_tells_mov_from_mp4_by_brand_not_extension(tmp_path: Path) -> None:
    frames = gradient_frames(3, 32, 48)
    mov = write_clip(tmp_path / "clip.mov", frames, format="mov")
    assert mov.read_bytes()[8:12] == b"qt  "
    assert probe(mov).container == "mov"
    disguised = mov.rename(tmp_path / "clip.mp4")  # a QuickTime file with the wrong extension
    assert probe(disguised).container == "mov"
    mp4 = write_clip(tmp_path / "real.mov", frames, format="mp4")  # an MP4 named .mov
    assert probe(mp4).container == "mp4"


def test_probe_reads_avi(tmp_path: Path) -> None:
    avi = write_clip(tmp_path / "clip.avi", gradient_frames(6, 32, 48), format="avi", codec="mpeg4")
    info = probe(avi)
    assert (info.container, info.codec, info.width, info.height, info.frames) == ("avi", "mpeg4", 48, 32, 6)
    assert info.fps == pytest.approx(FPS)


def test_probe_refuses_text_and_missing_files(tmp_path: Path) -> None:
    text = tmp_path / "readme.mp4"
    text.write_text("hello, I am text pretending to be a video\n")
    with pytest.raises(MediaError, match="not a video"):
        probe(text)
    with pytest.raises(MediaError, match="no video file"):
        probe(tmp_path / "nothing.mp4")


def test_probe_refuses_a_file_without_video(tmp_path: Path) -> None:
    path = tmp_path / "sound.m4a"
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = np.zeros((1, 1024), dtype=np.float32)
        for i in range(8):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(MediaError, match="no video track"):
        probe(path)
    with pytest.raises(MediaError, match="no video track"):
        render_result(path, tmp_path / "out.mp4", prompt="night")


def test_probe_refuses_a_damaged_video(tiny_clip: Path, tmp_path: Path) -> None:
    # Keep the header and index, replace the picture data with zeros: nothing decodable is left.
    data = bytearray(tiny_clip.read_bytes())
    start = data.find(b"mdat") + 4
    data[start:] = bytes(len(data) - start)
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    with pytest.raises(MediaError):
        probe(damaged)


# --- looks ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("prompt", "look"), KEYWORD_PROMPTS.items())
def test_keywords_pick_their_look(prompt: str, look: str) -> None:
    assert describe_look(prompt) == look


@pytest.mark.parametrize(
    ("prompt", "look"),
    [
        ("MIDNIGHT in the city", "night"),
        ("snowy mountains", "winter"),
        ("B&W documentary", "noir"),
        ("monochrome", "noir"),
        ("a retro look", "vintage"),
        ("synthwave", "neon"),
        ("golden hour", "sunset"),
        ("snow at sunset", "winter"),  # the look named first wins
        ("sunset in the snow", "sunset"),
    ],
)
def test_synonyms_and_first_named_look(prompt: str, look: str) -> None:
    assert describe_look(prompt) == look


def test_other_prompts_get_a_stable_named_fallback_look() -> None:
    keyword_looks = set(KEYWORD_PROMPTS.values())
    names = {describe_look(f"style number {i}") for i in range(40)}
    assert names.isdisjoint(keyword_looks)
    assert len(names) >= 4  # the hash spreads prompts over several tints
    assert describe_look(OTHER_PROMPT) == describe_look("  Turn it into a WATERCOLOUR   painting ")
    assert describe_look("a knight on a horse") != "night"  # whole words only


# --- sample clips ---------------------------------------------------------------------------------------


def test_samples_are_described() -> None:
    assert 3 <= len(SAMPLES) <= 4
    assert len({spec.slug for spec in SAMPLES}) == len(SAMPLES)
    for spec in SAMPLES:
        assert isinstance(spec, SampleSpec) and spec.title and spec.description


@pytest.mark.parametrize("slug", [spec.slug for spec in SAMPLES])
def test_every_sample_is_valid_moving_h264(slug: str, tmp_path: Path) -> None:
    path = tmp_path / f"{slug}.mp4"
    info = make_sample(slug, path, width=96, height=64, seconds=1.0, fps=8)
    assert info == VideoInfo("mp4", "h264", 96, 64, 1.0, 8.0, 8)
    frames = decode(path)
    assert frames.shape == (8, 64, 96, 3)
    assert frames.std() > 20  # a picture, not a flat colour
    assert mean_difference(frames[0], frames[-1]) > 0.5  # and it moves


def test_samples_are_deterministic_and_odd_sizes_are_padded(tmp_path: Path) -> None:
    a = make_sample("city-lights", tmp_path / "a.mp4", width=65, height=37, seconds=0.5, fps=6)
    make_sample("city-lights", tmp_path / "b.mp4", width=65, height=37, seconds=0.5, fps=6)
    assert (a.width, a.height, a.frames) == (66, 38, 3)
    assert np.array_equal(decode(tmp_path / "a.mp4"), decode(tmp_path / "b.mp4"))


def test_make_sample_refuses_bad_requests(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="rolling-hills"):  # the message lists the real slugs
        make_sample("no-such-clip", tmp_path / "x.mp4")
    for bad in ({"width": 8}, {"height": 5000}, {"seconds": 0}, {"fps": 0}):
        with pytest.raises(MediaError):
            make_sample("rolling-hills", tmp_path / "x.mp4", **bad)  # type: ignore[arg-type]
    assert not (tmp_path / "x.mp4").exists()
