"""The demo's sample clips: what they are called, and the copies that ship with the package.

Kept apart from :mod:`luma.emulator.media` (which needs numpy, PyAV and Pillow, about 0.3 s to
import) so that listing the samples, and copying the shipped ones into a data folder, loads none
of them: a demo's first page lists the samples while the server is still starting.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["SAMPLES", "SHIPPED_SAMPLES", "SHIPPED_SHAPE", "SampleSpec", "shipped_sample"]


@dataclass(frozen=True)
class SampleSpec:
    """A demo clip that :func:`luma.emulator.media.make_sample` can generate."""

    slug: str
    """Stable identifier, used in file names and URLs."""
    title: str
    """Short human title."""
    description: str
    """One sentence on what the clip shows."""


SAMPLES: tuple[SampleSpec, ...] = (
    SampleSpec(
        "rolling-hills",
        "Rolling hills",
        "A sunny sky with drifting clouds over three layers of green hills sliding past at "
        "different speeds.",
    ),
    SampleSpec(
        "city-lights",
        "City lights",
        "A city skyline at dusk: twinkling stars, a moon, office windows switching on and off and "
        "cars streaming along the avenue.",
    ),
    SampleSpec(
        "ocean-waves",
        "Ocean waves",
        "Waves rolling towards the camera under a bright sky, with the sun glittering on the water.",
    ),
    SampleSpec(
        "bouncing-shapes",
        "Bouncing shapes",
        "Colourful balls and spinning rounded squares bouncing across a pastel backdrop.",
    ),
)

SHIPPED_SAMPLES = Path(__file__).resolve().parent / "samples"
"""The sample clips at :func:`~luma.emulator.media.make_sample`'s default size and length, drawn by
it and shipped with the package (``python -m luma.emulator.media`` draws them again). A demo's
first start copies them instead of drawing each (about 2 s of CPU, while its first page loads)."""
SHIPPED_SHAPE = (640, 360, 6.0)
"""(width, height, seconds) of the shipped clips."""


def shipped_sample(slug: str, *, width: int, height: int, seconds: float) -> Path | None:
    """The shipped clip ``slug`` when that size and length are what ships, else None (draw it)."""
    if (width, height, float(seconds)) != SHIPPED_SHAPE:
        return None
    path = SHIPPED_SAMPLES / f"{slug}.mp4"
    return path if path.is_file() else None
