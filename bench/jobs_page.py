"""Figure 3, the Jobs page over the ledger: server time of one rerun with 0, 1,000 and 10,000 rows.

Method. ``streamlit.testing.v1.AppTest`` runs dashboard.py (the frame: gate, sidebar, navigation) on
the Jobs page in demo mode, in this process, with its own data folder (an embedded SQLite ledger).
The ledger is seeded straight through :class:`studio.ledger.Ledger`: N tasks of this session's
owner, all final (so the tracker has nothing to read during the timing), with prompts, times and
result URLs. The page reads one page of 50 rows and the counts from the database; nothing is
held in session state. Each figure is the median of a few reruns after one warm-up, divided by
the median rerun of the same page with an empty ledger. Growth is (t(10,000) - t(0)) /
(t(1,000) - t(0)): 10 would be linear, 1 flat.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from .common import REPO, Options, Result

PROMPT = "Make it look like a rainy night in the city, neon reflections on the wet street"
OWNER = "bench-browser-0123456789abcdef"
GOAL_SECONDS = 0.25


def _sizes(options: Options) -> tuple[list[int], int]:
    """(ledger sizes, timed reruns per size)."""
    if options.tiny:
        return [0, 100], 1
    return ([0, 1000, 5000], 3) if options.quick else ([0, 1000, 10000], 7)


def seed(ledger, n: int, start: int, now: datetime) -> None:
    """N final demo tasks of OWNER, written in bulk (ids from ``start``)."""
    from studio.ledger.schema import tasks

    if n <= 0:
        return
    ids = [f"{i:032x}" for i in range(start, start + n)]
    ledger.add_existing(ids, mode="demo", owner=f"browser:{OWNER}", owner_name="Bench", key_ref=None,
                        api_base=None, origin="imported")
    with ledger.transaction(write=True) as conn:
        conn.execute(
            sa.update(tasks)
            .where(tasks.c.task_id.in_(ids))
            .values(
                status=1,
                prompt=PROMPT,
                video_url="http://luma-emulator.local/files/samples/rolling-hills.mp4",
                result_urls=json.dumps(["http://luma-emulator.local/files/results/x.mp4"]),
                provider_created_at=now - timedelta(minutes=10),
                completed_at=now - timedelta(minutes=6),
                checked_at=now - timedelta(minutes=5),
                next_check_at=None,
            )
        )


def run(options: Options) -> Result:
    result = Result("jobs", "Jobs page rerun over the ledger: 0, 1,000 and 10,000 tasks")
    from streamlit.testing.v1 import AppTest

    from pages._support import runtime
    from studio.service import studio_for

    sizes, repeats = _sizes(options)
    result.notes.append(
        "AppTest on dashboard.py switched to pages/jobs.py, demo mode, embedded SQLite ledger seeded with N final "
        f"tasks of this session's owner; server time = wall time of AppTest.run(); median of {repeats} reruns "
        "after one warm-up; the page reads one page of 50 rows and the status counts from the database."
    )
    saved = {k: os.environ.get(k) for k in ("LUMA_DATA_DIR", "LUMA_EMULATOR_DIR", "LUMA_API_KEY", "LUMA_DATABASE_URL")}
    with tempfile.TemporaryDirectory(prefix="luma-bench-jobs-") as tmp:
        os.environ["LUMA_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ["LUMA_EMULATOR_DIR"] = str(Path(tmp) / "emulator")
        for name in ("LUMA_API_KEY", "LUMA_DATABASE_URL"):
            os.environ.pop(name, None)
        runtime.reset()
        try:
            at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=120)
            at.secrets["demo"] = {"sample_width": 160, "sample_height": 90, "sample_seconds": 1.0}
            at.session_state[runtime.BROWSER] = OWNER
            at.run()
            at.switch_page("pages/jobs.py")
            ledger = studio_for(runtime.deployment()).ledger

            def timed() -> float:
                at.run()  # warm-up
                runs = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    at.run()
                    runs.append(time.perf_counter() - start)
                    if at.exception:
                        raise RuntimeError(f"the Jobs page raised: {at.exception[0].value}")
                return statistics.median(runs)

            times: dict[int, float] = {}
            seeded = 0
            now = datetime.now(UTC)
            for n in sizes:
                seed(ledger, n - seeded, seeded + 1, now)
                seeded = n
                times[n] = timed()
                shown = at.metric[0].value if n and at.metric else "0"
                if n and shown.replace(",", "") != str(n):
                    raise RuntimeError(f"the page counted {shown} tasks, not {n}")
        finally:
            runtime.reset()
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    result.raw = {f"n{n}_s": t for n, t in times.items()}
    empty = times[0]
    result.add("empty ledger: one rerun", empty, "s", "the baseline of every ratio below")
    for n in sizes[1:]:
        result.add(f"{n:,} tasks: rerun / empty", times[n] / empty, "x", f"{times[n] * 1000:.0f} ms")
    largest, middle = sizes[-1], sizes[-2] if len(sizes) > 2 else None
    result.add(f"{largest:,} tasks: one rerun", times[largest], "s", f"goal <= {GOAL_SECONDS * 1000:.0f} ms",
               ok=None if options.tiny else times[largest] <= GOAL_SECONDS)
    if middle:
        extra_large, extra_middle = times[largest] - empty, times[middle] - empty
        growth = extra_large / extra_middle if extra_middle > 0 else 1.0
        result.add(f"growth {middle:,} -> {largest:,} tasks (time above empty)", growth, "x",
                   f"{largest // middle}x the rows; linear would be {largest // middle}x",
                   ok=None if options.tiny else growth <= largest / middle)
    return result
