"""An archived result still plays after the provider dropped it: the server's own wiring, on the
emulator's clock (14 days pass in a line)."""

from __future__ import annotations

from pathlib import Path

import pytest

from luma.emulator import Emulator, EmulatorConfig, media
from luma.errors import NotFoundError
from studio.archive import describe, playable
from studio.config import DeploymentConfig
from studio.service import DEMO_KEY, Studio
from studio.tracker import utcnow

DAY = 24 * 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def studio(tmp_path: Path):
    config = DeploymentConfig.from_sources({"archive": {"enabled": True}}, {"LUMA_DATA_DIR": str(tmp_path / "data")})
    service = Studio(config)
    service.ready()  # migrates the ledger, as the server's start does
    clock = Clock()
    service._emulator = Emulator(
        EmulatorConfig(data_dir=tmp_path / "emulator", processing_delay=1.0, sample_width=160, sample_height=90,
                       sample_seconds=1.0),
        clock=clock,
    )
    service.clock = clock  # type: ignore[attr-defined]
    yield service
    service.close()


def test_an_archived_result_plays_after_the_provider_link_expired(studio, tmp_path):
    from luma import LumaClient

    clock, emulator = studio.clock, studio.emulator()
    with LumaClient(DEMO_KEY, transport=studio.demo_transport()) as client:
        clip = emulator.samples(prepare=True)[0]
        task_id = client.create_task("make it a snowy night", clip.url)
        clock.now += 5
        assert emulator.wait_idle(30)
        task = client.get_task(task_id)
        assert task.status.succeeded
    studio.ledger.add_existing([task_id], mode="demo", owner="alice", origin="imported")
    studio.ledger.record_read(task_id, task, now=utcnow(), next_check_at=None)
    row = studio.ledger.get(task_id=task_id)
    original = studio.fetch_result(row)
    assert original

    # The server's archiver copies the finished result once.
    assert studio.archiver is not None and studio.archiver.run_once() == 1
    row = studio.ledger.get(task_id=task_id)
    assert row.archived_path and "archive" in describe(row.archived_path)
    assert studio.archiver.run_once() == 0, "copied once"

    # Fifteen days later the provider no longer has it...
    clock.now += 15 * DAY
    with pytest.raises(NotFoundError):
        studio.fetch_result(row)
    # ...and the archived copy is what plays: the same bytes, a real video.
    shown = playable(row, studio.fetch_result, studio.archive)
    assert shown == original
    path = tmp_path / "shown.mp4"
    path.write_bytes(shown)
    assert media.probe(path).duration > 0
