"""Smoke tests of the benchmarks: every figure at tiny sizes, so the scripts cannot rot.

Each test asserts properties a working system must show even at small N (no task lost in the
soak, concurrency faster than one at a time, the page knowing every task ends), not exact
timings, which a shared machine cannot promise.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import cold_start, fanout, jobs_page, media_cost, polling, sets, soak, time_to_know, tracker_cycle
from bench.__main__ import main
from bench.common import Options

TINY = Options(tiny=True, seed=11)
REPO = Path(__file__).resolve().parents[2]


def test_fanout_concurrent_refresh_beats_one_at_a_time_and_nears_the_floor() -> None:
    result = fanout.run(TINY)
    for where in ("loopback", "in-process"):
        n = 20
        ratio = result.row(f"{where} N={n}: concurrent / sequential").value
        floor = result.row(f"{where} N={n}: concurrent / floor").value
        assert 0 < ratio < 0.5, f"{where}: get_tasks is not concurrent (ratio {ratio:.2f})"
        assert 1 / ratio > 1  # the fan-out speed-up
        # Below the floor would mean the 100 ms latency was not injected; far above, serialised.
        assert 0.9 <= floor < 3, f"{where}: concurrent time is {floor:.2f}x the floor"
    data = result.raw["in_process"]
    assert data["sequential_per_task_s"] >= fanout.LATENCY * 0.9


def test_polling_simulation_drives_the_trackers_schedule() -> None:
    result = polling.run(TINY)
    one, five = result.raw["1min"], result.raw["5min"]
    for data in (one, five):
        ours, fixed = data["tracker"], data["fixed_10s"]
        assert 0 <= ours["delay_mean"] <= ours["delay_worst"] < 30
        assert ours["calls_mean"] >= 2  # the first read and the one that sees the task final
        assert fixed["delay_worst"] < polling.FIXED_POLL
    # The schedule backs off towards 29 s, so a 5-minute task costs fewer reads than a 10 s poll.
    assert five["tracker"]["calls_mean"] < five["fixed_10s"]["calls_mean"]
    # A task that finishes at once is known at the first read.
    life = polling.tracker_life(0.0)
    assert life.calls == 1
    assert polling.fixed_life(25.0).calls == 4  # reads at 0, 10, 20, 30 s


def test_jobs_page_reruns_over_a_seeded_ledger() -> None:
    result = jobs_page.run(TINY)
    assert result.raw["n0_s"] > 0 and result.raw["n100_s"] > 0
    assert result.row("100 tasks: rerun / empty").value > 0


def test_tracker_cycle_reads_every_due_task_once() -> None:
    result = tracker_cycle.run(TINY)
    assert result.raw["reads"] == result.raw["n"] == 50
    assert result.raw["cycle_s"] >= result.raw["floor_s"] * 0.9
    assert not result.failed_checks


def test_a_set_is_sent_whole_under_the_limit_by_two_dispatchers() -> None:
    result = sets.run(TINY)
    assert result.raw["n"] == 25 and result.raw["accepted"] == 25
    assert result.row("25 takes: creates refused with 429").value == 0
    assert result.row("25 takes: takes created twice").ok is True
    # 25 at 20 per window: the last 5 wait one window, in both runs.
    assert result.raw["set_s"] >= result.raw["window_s"] and result.raw["baseline_s"] >= result.raw["window_s"]


@pytest.mark.skipif(not Path(cold_start.CHROMIUM).exists(), reason="needs Debian chromium at /usr/bin/chromium")
def test_time_to_know_live_with_and_without_callbacks() -> None:
    result = time_to_know.run(TINY)
    polling_delays, callback_delays = result.raw["polling"]["delays"], result.raw["callbacks"]["delays"]
    assert len(polling_delays) == len(callback_delays) == time_to_know.TASKS
    assert max(callback_delays) < 5, "a callback brings the result at once"
    assert result.raw["callbacks"]["reads_per_task"] <= 2


@pytest.mark.skipif(not Path(cold_start.CHROMIUM).exists(), reason="needs Debian chromium at /usr/bin/chromium")
def test_cold_start_reaches_health_then_a_settled_page_then_the_sample() -> None:
    result = cold_start.run(TINY)
    for name in ("hello", "cold", "restart"):
        (run,) = result.raw[name]
        assert 0 < run["healthy_s"] < run["rendered_s"]
    for name in ("cold", "restart"):
        dashboard = result.raw[name][0]
        assert dashboard["rendered_s"] <= dashboard["complete_s"]
    assert result.row("first page settled, cold: dashboard / hello world").value > 0


def test_media_renders_a_result_of_the_same_size_and_length() -> None:
    result = media_cost.run(TINY)
    data = result.raw["360p"]
    assert data["render_s"] > 0 and data["result_bytes"] > 0
    assert abs(data["clip_s"] - 0.5) < 0.1


def test_soak_loses_nothing_creates_nothing_twice_and_reports_true_statuses() -> None:
    result = soak.run(TINY)
    tasks = result.raw["tasks"]
    assert result.row("tasks lost").value == 0, result.raw
    assert result.row("duplicate creates").value == 0, result.raw
    assert result.row("final status wrong").value == 0, result.raw
    assert result.raw["emulator_stats"]["creates"] == tasks
    assert sum(result.raw["final_counts"].values()) == tasks
    calls = result.raw["calls"]
    assert calls["/api/v1/modify/generate"] == tasks  # every create sent exactly once
    assert calls["/api/v1/modify/record-info"] >= tasks  # every task read at least once
    assert not result.failed_checks


def test_entry_point_writes_the_figures_as_json(tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    assert main(["--only", "polling", "--quick", "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["machine"]["nproc"] >= 1
    assert document["options"]["only"] == ["polling"]
    rows = document["figures"]["polling"]["rows"]
    assert any(r["name"].startswith("5 min task: calls") for r in rows)


def test_entry_point_lists_figures_and_refuses_unknown_ones() -> None:
    listed = subprocess.run([sys.executable, "-m", "bench", "--list"], cwd=REPO, capture_output=True, text=True,
                            check=True, timeout=60)
    for name in ("fanout", "polling", "jobs", "cold", "media", "soak", "tracker", "tabs", "know"):
        assert name in listed.stdout
    wrong = subprocess.run([sys.executable, "-m", "bench", "--only", "nope"], cwd=REPO, capture_output=True,
                           text=True, timeout=60)
    assert wrong.returncode == 2 and "unknown figure" in wrong.stderr


def test_committed_results_have_every_figure() -> None:
    latest = REPO / "bench" / "results" / "latest.json"
    if not latest.exists():
        pytest.skip("no full run committed yet")
    document = json.loads(latest.read_text())
    assert {"fanout", "polling", "jobs", "cold", "media", "soak"} <= set(document["figures"])
    assert all(f["error"] is None for f in document["figures"].values())
    soak_rows = {r["name"]: r for r in document["figures"]["soak"]["rows"]}
    assert soak_rows["tasks lost"]["value"] == 0 and soak_rows["duplicate creates"]["value"] == 0
