"""Shared fixtures for the emulator tests (small clips, a fake clock, emulators that never touch the network)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

import httpx
import numpy as np
import pytest

# --- emulator service fixtures ---------------------------------------------------------------------

FIRST_NOW = 1_755_078_171.0  # the spec's example createTime, in seconds


class FakeClock:
    """A wall clock that moves only when a test says so (thread-safe enough for float reads)."""

    def __init__(self, start: float = FIRST_NOW) -> None:
        self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


def refuse_network(request: httpx.Request) -> httpx.Response:
    """A transport handler that fails like a machine without internet."""
    raise httpx.ConnectError(f"no network in tests ({request.url.host})", request=request)


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def sample_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny real H.264 MP4 (160x90, 1 s), generated once per session."""
    from luma.emulator.media import make_sample

    path = tmp_path_factory.mktemp("clips") / "small.mp4"
    make_sample("rolling-hills", path, width=160, height=90, seconds=1.0, fps=12)
    return path


@pytest.fixture(scope="session")
def long_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real MP4 longer than the provider's 10 s limit (kept tiny: 64x36 at 4 fps)."""
    from luma.emulator.media import make_sample

    path = tmp_path_factory.mktemp("clips") / "long.mp4"
    make_sample("bouncing-shapes", path, width=64, height=36, seconds=11.0, fps=4)
    return path


@pytest.fixture(scope="session")
def mkv_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid short video in a container the provider refuses (Matroska)."""
    import av

    path = tmp_path_factory.mktemp("clips") / "clip.mkv"
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(8))
        stream.width, stream.height, stream.pix_fmt = 64, 36, "yuv420p"
        for i in range(8):
            pixels = np.full((36, 64, 3), i * 30, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture
def make_emulator(
    tmp_path: Path, sample_mp4: Path, fake_clock: FakeClock
) -> Iterator[Callable[..., object]]:
    """Build emulators on the fake clock, with every sample pre-made from ``sample_mp4``.

    Keyword arguments are :class:`EmulatorConfig` fields, plus ``clock``, ``sleep``,
    ``fetch_transport`` and ``callback_transport``; both transports refuse to reach any network
    unless a test passes its own. ``processing_delay`` defaults to 2 s (of fake time).
    """
    from luma.emulator import Emulator, EmulatorConfig
    from luma.emulator.media import SAMPLES

    made: list[Emulator] = []

    def make(**overrides: object) -> Emulator:
        kwargs = {k: overrides.pop(k) for k in ("clock", "sleep", "fetch_transport", "callback_transport")
                  if k in overrides}
        kwargs.setdefault("clock", fake_clock)
        kwargs.setdefault("fetch_transport", httpx.MockTransport(refuse_network))
        kwargs.setdefault("callback_transport", httpx.MockTransport(refuse_network))
        data_dir = tmp_path / f"emulator-{len(made)}"
        (data_dir / "samples").mkdir(parents=True)
        for spec in SAMPLES:
            shutil.copyfile(sample_mp4, data_dir / "samples" / f"{spec.slug}.mp4")
        overrides.setdefault("processing_delay", 2.0)
        emulator = Emulator(EmulatorConfig(data_dir=data_dir, **overrides), **kwargs)  # type: ignore[arg-type]
        made.append(emulator)
        return emulator

    yield make
    for emulator in made:
        emulator.close()
