"""The demo's sample clips: rendered in the background, one at a time, once, and kept on disk.

``make_sample`` is replaced by a recorder that copies a real tiny clip (so creates still probe a
real video) and notes which clip it rendered, on which thread, and how many ran at once.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from luma import TaskStatus
from luma._constants import PATH_CREATE
from luma.emulator import Emulator, EmulatorConfig, catalog
from luma.emulator import backend as backend_module
from luma.emulator import media as media_module
from luma.emulator.media import SAMPLES
from luma.emulator.wire import EmulatorRequest, EmulatorResponse

from .conftest import FakeClock, refuse_network

SLUGS = [spec.slug for spec in SAMPLES]
SAMPLER_THREAD = "luma-emulator-samples"


class Renders:
    """Stands in for ``media.make_sample``: records every render, optionally held until released."""

    def __init__(self, clip: Path, *, pause: float = 0.0) -> None:
        self.clip = clip
        self.pause = pause
        self.slugs: list[str] = []
        self.threads: set[str] = set()
        self.running = 0
        self.most_at_once = 0
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.fail_with: Exception | None = None
        self._lock = threading.Lock()

    def __call__(self, slug: str, dst: Path, **options: Any) -> None:
        with self._lock:
            self.slugs.append(slug)
            self.threads.add(threading.current_thread().name)
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            Path(dst).write_bytes(self.clip.read_bytes()[:100])  # half a file, as a render in progress
            self.started.set()
            assert self.release.wait(30), "the test never released the render"
            time.sleep(self.pause)
            if self.fail_with is not None:
                raise self.fail_with
            shutil.copyfile(self.clip, dst)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch, sample_mp4: Path) -> Renders:
    recorder = Renders(sample_mp4)
    monkeypatch.setattr(media_module, "make_sample", recorder)
    # These tests are about drawing: no clip ships at the size they ask for.
    monkeypatch.setattr(backend_module, "shipped_sample", lambda slug, **shape: None)
    return recorder


@pytest.fixture
def bare_emulator(make_emulator: Callable[..., Emulator]) -> Callable[..., Emulator]:
    """An emulator whose data dir holds no sample clip yet (the fixture's copies removed)."""

    def make(**overrides: Any) -> Emulator:
        emulator = make_emulator(**overrides)
        for clip in (emulator.data_dir / "samples").iterdir():
            clip.unlink()
        return emulator

    return make


@pytest.fixture
def shared_dir_emulators(tmp_path: Path, fake_clock: FakeClock) -> Iterator[Callable[[], Emulator]]:
    """Emulators that all use one persistent data dir, as a dashboard restarted on the same disk."""
    made: list[Emulator] = []

    def make() -> Emulator:
        emulator = Emulator(
            EmulatorConfig(data_dir=tmp_path / "persistent"),
            clock=fake_clock,
            fetch_transport=httpx.MockTransport(refuse_network),
            callback_transport=httpx.MockTransport(refuse_network),
        )
        made.append(emulator)
        return emulator

    yield make
    for emulator in made:
        emulator.close()


def get(emulator: Emulator, slug: str) -> EmulatorResponse:
    return emulator.handle(EmulatorRequest.build("GET", f"/files/samples/{slug}.mp4", []))


def in_threads(count: int, work: Callable[[int], object]) -> list[object]:
    results: list[object] = [None] * count

    def run(index: int) -> None:
        results[index] = work(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_first_sample_renders_first_then_the_rest_in_order(bare_emulator: Callable[..., Emulator],
                                                           renders: Renders) -> None:
    emulator = bare_emulator()
    emulator.prepare_samples(first="ocean-waves")
    assert emulator.wait_idle(30)
    assert renders.slugs == ["ocean-waves", *(s for s in SLUGS if s != "ocean-waves")]
    assert all(emulator.sample_ready(slug) for slug in SLUGS)


def test_prepare_samples_returns_at_once_and_renders_on_one_dedicated_thread(
    bare_emulator: Callable[..., Emulator], renders: Renders
) -> None:
    emulator = bare_emulator()
    renders.release.clear()
    started = time.monotonic()
    emulator.prepare_samples(first=SLUGS[0])
    assert time.monotonic() - started < 1.0  # the page is not held up
    assert renders.started.wait(10)
    renders.release.set()
    assert emulator.wait_idle(30)
    assert renders.threads == {SAMPLER_THREAD}  # never the caller, never the task workers


def test_never_two_sample_renders_at_once_even_when_requests_want_other_clips(
    bare_emulator: Callable[..., Emulator], renders: Renders
) -> None:
    emulator = bare_emulator()
    renders.pause = 0.05
    emulator.prepare_samples()
    answers = in_threads(8, lambda i: get(emulator, SLUGS[-1 - i % len(SLUGS)]).status)
    assert emulator.wait_idle(30)
    assert answers == [200] * 8
    assert renders.most_at_once == 1
    assert renders.threads == {SAMPLER_THREAD}  # requests waited; they did not render


def test_a_sample_is_rendered_once_however_many_ask_for_it(bare_emulator: Callable[..., Emulator],
                                                           renders: Renders) -> None:
    emulator = bare_emulator()
    renders.release.clear()
    slug = SLUGS[2]
    emulator.prepare_samples(first=slug)
    assert renders.started.wait(10)
    waiting = threading.Thread(target=lambda: renders.release.wait(0.2) or renders.release.set())
    waiting.start()
    answers = in_threads(6, lambda i: get(emulator, slug).status)
    emulator.prepare_samples(first=slug)  # asked again once it is done: nothing more to do
    waiting.join()
    assert emulator.wait_idle(30)
    assert answers == [200] * 6
    assert renders.slugs.count(slug) == 1
    assert sorted(renders.slugs) == sorted(SLUGS)


def test_readiness_is_false_until_the_whole_file_is_in_place(bare_emulator: Callable[..., Emulator],
                                                             renders: Renders) -> None:
    emulator = bare_emulator()
    slug = SLUGS[0]
    assert emulator.sample_ready(slug) is False
    renders.release.clear()
    emulator.prepare_samples(first=slug)
    assert renders.started.wait(10)
    # Half written, under a temporary name: not ready, and nothing at the served path.
    assert emulator.sample_ready(slug) is False
    assert not (emulator.data_dir / "samples" / f"{slug}.mp4").exists()
    renders.release.set()
    assert emulator.wait_idle(30)
    assert emulator.sample_ready(slug) is True
    served = b"".join(get(emulator, slug).chunks())
    assert served == renders.clip.read_bytes()
    with pytest.raises(KeyError):
        emulator.sample_ready("no-such-clip")
    with pytest.raises(KeyError):
        emulator.prepare_samples(first="no-such-clip")


def test_a_failed_render_leaves_no_file_and_says_why(bare_emulator: Callable[..., Emulator],
                                                     renders: Renders) -> None:
    emulator = bare_emulator()
    renders.fail_with = media_module.MediaError("the encoder is missing")
    answer = get(emulator, SLUGS[1])
    assert answer.status == 500
    assert b"could not be generated: the encoder is missing" in b"".join(answer.chunks())
    assert emulator.sample_ready(SLUGS[1]) is False
    assert list((emulator.data_dir / "samples").iterdir()) == []
    assert list((emulator.data_dir / "tmp").iterdir()) == []
    renders.fail_with = None  # asked again: a new attempt
    assert get(emulator, SLUGS[1]).status == 200
    assert renders.slugs == [SLUGS[1], SLUGS[1]]


def test_a_request_waits_for_the_sample_at_most_sample_wait(bare_emulator: Callable[..., Emulator],
                                                             renders: Renders) -> None:
    emulator = bare_emulator(sample_wait=0.2)
    renders.release.clear()
    started = time.monotonic()
    answer = get(emulator, SLUGS[0])
    assert 0.2 <= time.monotonic() - started < 5
    assert answer.status == 503 and answer.header("Retry-After") == "5"
    with pytest.raises(TimeoutError):
        emulator.sample_path(SLUGS[0])
    renders.release.set()
    assert emulator.wait_idle(30)
    assert get(emulator, SLUGS[0]).status == 200
    assert renders.slugs == [SLUGS[0]]


def test_creating_a_task_from_a_sample_not_yet_rendered_waits_for_it(bare_emulator: Callable[..., Emulator],
                                                                     renders: Renders) -> None:
    emulator = bare_emulator()
    url = emulator.samples()[3].url
    body = b'{"prompt": "make it rain", "videoUrl": "%s"}' % url.encode()
    answer = emulator.handle(EmulatorRequest.build(
        "POST", PATH_CREATE, [("Authorization", "Bearer demo"), ("Content-Type", "application/json")], body))
    assert b'"code":200' in b"".join(answer.chunks())
    assert renders.slugs == [SLUGS[3]] and renders.threads == {SAMPLER_THREAD}


def test_a_task_is_never_queued_behind_sample_renders(bare_emulator: Callable[..., Emulator], renders: Renders,
                                                      sample_mp4: Path, fake_clock: FakeClock) -> None:
    emulator = bare_emulator()
    shutil.copyfile(sample_mp4, emulator.data_dir / "samples" / f"{SLUGS[0]}.mp4")  # the one on screen
    renders.release.clear()
    emulator.prepare_samples(first=SLUGS[0])
    assert renders.started.wait(10)  # the sample thread is busy with the next clip
    body = b'{"prompt": "make it snow", "videoUrl": "%s"}' % emulator.samples()[0].url.encode()
    emulator.handle(EmulatorRequest.build(
        "POST", PATH_CREATE, [("Authorization", "Bearer demo"), ("Content-Type", "application/json")], body))
    fake_clock.advance(60)
    deadline = time.monotonic() + 30
    while emulator.stats()["tasks"][TaskStatus.SUCCESS.name] != 1:
        assert time.monotonic() < deadline, "the task waited for the samples"
        time.sleep(0.05)
    assert renders.running == 1  # still rendering its sample all along
    renders.release.set()
    assert emulator.wait_idle(30)


def test_samples_are_reused_by_an_emulator_restarted_on_the_same_data_dir(
    shared_dir_emulators: Callable[[], Emulator], renders: Renders
) -> None:
    first = shared_dir_emulators()
    first.prepare_samples(wait=True)
    assert sorted(renders.slugs) == sorted(SLUGS)
    first.close()

    renders.slugs.clear()
    second = shared_dir_emulators()
    assert all(second.sample_ready(slug) for slug in SLUGS)
    second.prepare_samples(first=SLUGS[1])
    assert second.wait_idle(30)
    assert get(second, SLUGS[1]).status == 200
    assert renders.slugs == []  # nothing rendered again


def test_a_leftover_partial_file_is_never_served(shared_dir_emulators: Callable[[], Emulator],
                                                 renders: Renders) -> None:
    emulator = shared_dir_emulators()
    # What a crash mid-render leaves behind: temporary files, never a file at the served path.
    (emulator.data_dir / "tmp" / f"sample-{SLUGS[0]}-dead.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom")
    assert emulator.sample_ready(SLUGS[0]) is False
    assert b"".join(get(emulator, SLUGS[0]).chunks()) == renders.clip.read_bytes()
    assert renders.slugs == [SLUGS[0]]


# --- the clips that ship with the package --------------------------------------------------------


def test_at_the_shipped_size_a_first_start_copies_the_clips_at_once_and_draws_none(
    shared_dir_emulators: Callable[[], Emulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_drawing(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a shipped clip was drawn")

    monkeypatch.setattr(media_module, "make_sample", no_drawing)
    emulator = shared_dir_emulators()  # the default size: 640x360, 6 s
    emulator.prepare_samples(first="rolling-hills")
    # Ready when prepare_samples returns: the first page shows the clip without waiting for it.
    assert all(emulator.sample_ready(slug) for slug in SLUGS)
    for slug in SLUGS:
        shipped = catalog.SHIPPED_SAMPLES / f"{slug}.mp4"
        assert (emulator.data_dir / "samples" / f"{slug}.mp4").read_bytes() == shipped.read_bytes()
    assert get(emulator, "rolling-hills").status == 200


def test_another_size_is_drawn_not_copied(make_emulator: Callable[..., Emulator]) -> None:
    assert catalog.shipped_sample("rolling-hills", width=320, height=180, seconds=6.0) is None
    assert catalog.shipped_sample("rolling-hills", width=640, height=360, seconds=4.0) is None
    assert catalog.shipped_sample("rolling-hills", width=640, height=360, seconds=6.0) is not None


@pytest.mark.parametrize("slug", SLUGS)
def test_each_shipped_clip_is_what_the_code_draws(slug: str) -> None:
    """The files in luma/emulator/samples/ are make_sample's output at the shipped size: same
    shape and length, and their frames match freshly drawn ones (within H.264's loss: 1.5-3.5 levels). After a
    change to a scene, ``python -m luma.emulator.media`` draws them again."""
    import av
    import numpy as np

    path = catalog.SHIPPED_SAMPLES / f"{slug}.mp4"
    info = media_module.probe(path)
    assert (info.width, info.height) == (640, 360)
    assert info.duration == pytest.approx(6.0, abs=0.1)
    scene = media_module._SCENES[slug](640, 360)
    with av.open(str(path)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 144
    for index in (0, 71, 143):
        drawn = np.clip(scene(index / 24), 0, 255)
        assert np.abs(frames[index].astype(np.float32) - drawn).mean() < 8.0, f"frame {index} differs"  # another scene: ~90
