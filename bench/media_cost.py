"""Figure 5, emulator processing: seconds to render a result, as a fraction of the clip's length.

Method. ``luma.emulator.media.make_sample`` generates a 10 s, 24 fps "rolling-hills" clip at 360p,
720p and 1080p (generation is timed too, but is not the figure); ``media.render_result`` then
renders the demo's result from it (decode, grade, watermark, H.264 encode), timed once per size.
The figure is render seconds / clip seconds: below 1 means the emulator renders faster than
real time. ``--quick`` uses 2 s clips at 360p and 720p (a fraction, so still comparable).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from .common import Options, Result

SIZES = {"360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080)}


def run(options: Options) -> Result:
    from luma.emulator import media

    result = Result("media", "Emulator processing: render time / clip duration")
    seconds = 0.5 if options.tiny else 2.0 if options.quick else 10.0
    names = ["360p"] if options.tiny else ["360p", "720p"] if options.quick else list(SIZES)
    result.notes.append(
        f"{seconds:g} s 24 fps clips from media.make_sample('rolling-hills'); media.render_result with a prompt and "
        "a watermark, timed once per size in this process."
    )
    with tempfile.TemporaryDirectory(prefix="luma-bench-media-") as tmp:
        for name in names:
            width, height = SIZES[name]
            src, dst = Path(tmp) / f"{name}.mp4", Path(tmp) / f"{name}-result.mp4"
            start = time.perf_counter()
            info = media.make_sample("rolling-hills", src, width=width, height=height, seconds=seconds)
            made = time.perf_counter() - start
            start = time.perf_counter()
            out = media.render_result(src, dst, prompt="a snowy winter evening", watermark="bench")
            rendered = time.perf_counter() - start
            if (out.width, out.height) != (info.width, info.height) or abs(out.duration - info.duration) > 0.1:
                raise RuntimeError(f"{name}: the result is {out.width}x{out.height} {out.duration:.2f} s, "
                                   f"the input {info.width}x{info.height} {info.duration:.2f} s")
            result.raw[name] = {"clip_s": info.duration, "frames": info.frames, "render_s": rendered,
                                "make_sample_s": made, "result_bytes": dst.stat().st_size}
            result.add(f"{name} ({width}x{height}): render / clip length", rendered / info.duration, "x",
                       f"{rendered:.2f} s for {info.duration:.1f} s ({info.frames} frames); "
                       f"generating the clip took {made:.1f} s")
    return result
