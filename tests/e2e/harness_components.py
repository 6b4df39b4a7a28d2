"""A bare Streamlit page with the two custom components, for tests/e2e/test_components.py.

Not part of the app: ``streamlit run tests/e2e/harness_components.py`` from the repository root.
Two distinct sample clips are generated once per server process; the input is one frame longer
than the result, as a provider's result may be, so the player's clamping is exercised too.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from luma.emulator import media
from pages._support.components import compare_player, media_url, tab_title

FPS = 24


@st.cache_resource
def clips() -> tuple[bytes, bytes]:
    """(input, result) MP4 bytes: two different scenes at 320x180, 3 s and 3 s plus one frame."""
    with tempfile.TemporaryDirectory() as tmp:
        source, result = Path(tmp, "input.mp4"), Path(tmp, "result.mp4")
        media.make_sample(media.SAMPLES[0].slug, source, width=320, height=180, seconds=3 + 1 / FPS, fps=FPS)
        media.make_sample(media.SAMPLES[1].slug, result, width=320, height=180, seconds=3, fps=FPS)
        return source.read_bytes(), result.read_bytes()


st.title("Components harness")
# A rerun that changes only the title's text: the title must follow, the player must carry on.
running = 1 if st.checkbox("One task finished", key="finished") else 2
source, result = clips()
compare_player(media_url(source, key="cmp.source"), media_url(result, key="cmp.result"), key="cmp", height=240)
# Three captions in a row, the invisible title element between the first two: the test checks
# that both gaps are the same (the element leaves no space).
st.caption("Before the title element")
tab_title(f"({running} running) Test", key="title")
st.caption("After the title element")
st.caption("End of page")
