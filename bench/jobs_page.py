"""Figure 3, the jobs page with many tasks: server time of one rerun, and session-state memory.

Method. ``streamlit.testing.v1.AppTest`` runs dashboard.py (the frame: gate, sidebar, navigation) on
the Jobs page in demo mode, in this process. The jobs list is seeded straight into session state
under ``runtime.TASKS`` as the page stores it: a ``dict[str, TrackedTask]``. Two mixes per size:

* all final: every task SUCCESS with request, times and URLs; the rerun reads nothing;
* half pending: every other task GENERATING and last read a minute ago, so the rerun refreshes
  those through ``runtime.read_tasks`` (the async client, in-process transport, no injected
  latency) before drawing.

The pending tasks exist in an emulator of our own, plugged in under the clients through the
dashboard's test seam (``runtime.set_test_seam``), so their reads are real reads. Each timed
rerun starts from freshly seeded state; the figure is the median of a few reruns divided by the
median rerun of the same page with no tasks. Memory: the pickled size of the seeded dict, and
the bytes tracemalloc sees allocated while building it (both per 1,000 tasks).
"""

from __future__ import annotations

import logging
import pickle
import statistics
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from luma import CreateLimiter, LumaClient
from luma.models import Task, TaskRequest, TaskStatus

from .common import REPO, Options, Result, tiny_clip

DEMO_KEY = "demo"
PROMPT = "Make it look like a rainy night in the city, neon reflections on the wet street"


def _sizes(options: Options) -> tuple[list[int], int]:
    """(task counts, timed reruns per configuration; 1,000-task reruns get half as many)."""
    if options.tiny:
        return [10], 1
    return ([10, 100], 5) if options.quick else ([10, 100, 1000], 7)


def seed_items(ids: list[str], pending: set[str], now: datetime, base: str = "http://luma-emulator.local"):
    """A jobs list as the page stores it: final tasks fully read, pending ones last read 60 s ago."""
    from pages._support import tasks

    items = {}
    for i, tid in enumerate(ids):
        added = now - timedelta(minutes=10, seconds=i)
        request = TaskRequest(prompt=f"{PROMPT} #{i}", video_url=f"{base}/files/samples/rolling-hills.mp4")
        if tid in pending:
            task = Task(task_id=tid, status=TaskStatus.GENERATING, request=request, created_at=added,
                        origin_urls=(f"{base}/files/origin/{tid}.mp4",))
            checked = now - timedelta(seconds=60)
        else:
            task = Task(task_id=tid, status=TaskStatus.SUCCESS, request=request, created_at=added,
                        completed_at=added + timedelta(minutes=4),
                        origin_urls=(f"{base}/files/origin/{tid}.mp4",),
                        result_urls=(f"{base}/files/results/{tid}.mp4",))
            checked = now - timedelta(minutes=5)
        items[tid] = tasks.TrackedTask(task_id=tid, added_at=added, request=request, source="sample",
                                      source_name="Rolling hills", task=task, checked_at=checked,
                                      attempted_at=checked)
    return items


def fake_ids(count: int, salt: int = 0) -> list[str]:
    return [f"{salt:04x}{i:028x}" for i in range(count)]


def memory_per_1000(now: datetime) -> tuple[int, int]:
    """(pickled bytes, tracemalloc bytes) of a 1,000-task list, all final."""
    ids = fake_ids(1000, salt=0xBEEF)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        items = seed_items(ids, set(), now)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    allocated = sum(s.size_diff for s in after.compare_to(before, "filename"))
    return len(pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)), allocated


def run(options: Options) -> Result:
    # Bare-mode Streamlit (AppTest, caches cleared outside a script run) warns on every call;
    # the warnings say nothing about the figure.
    logging.disable(logging.WARNING)
    try:
        return _run(options)
    finally:
        logging.disable(logging.NOTSET)


def _run(options: Options) -> Result:
    result = Result("jobs_page", "Jobs page rerun with many tasks in session state (AppTest, demo mode)")
    from streamlit.testing.v1 import AppTest

    from luma.emulator import Emulator, EmulatorConfig
    from pages._support import runtime

    sizes, repeats = _sizes(options)
    most = max(sizes)
    result.notes.append(
        "AppTest on dashboard.py switched to pages/jobs.py, demo mode; session state seeded under runtime.TASKS; "
        f"server time = wall time of AppTest.run(); median of {repeats} reruns after one warm-up; pending reads "
        "go through runtime.read_tasks to an in-process emulator (test seam), no injected latency."
    )
    with tempfile.TemporaryDirectory(prefix="luma-bench-jobs-") as tmp:
        config = EmulatorConfig(data_dir=Path(tmp) / "em", create_limit=1_000_000, failure_rate=1.0,
                                processing_delay=86400, credits=100_000_000, seed=options.seed)
        with Emulator(config) as em:
            clip = tiny_clip(Path(tmp) / "clip.mp4")
            with LumaClient(DEMO_KEY, transport=em.transport(),
                            create_limiter=CreateLimiter(limit=1_000_000, window=1.0)) as client:
                upload = client.upload_file(clip.read_bytes(), file_name="tasks.mp4", upload_path="bench")
                deadline = time.monotonic() + 120
                pending_pool = []
                for i in range(most // 2):
                    if time.monotonic() > deadline:
                        raise TimeoutError("creating pending tasks took too long")
                    pending_pool.append(client.create_task(f"pending {i}", upload.download_url))

            runtime.reset()
            runtime.set_test_seam(runtime.TestSeam(wrap_transport=lambda _base: em.transport()))
            try:
                at = AppTest.from_file(str(REPO / "dashboard.py"), default_timeout=120)
                at.switch_page("pages/jobs.py")

                def rerun(items: dict) -> float:
                    at.session_state[runtime.TASKS] = dict(items)
                    start = time.perf_counter()
                    at.run()
                    elapsed = time.perf_counter() - start
                    if at.exception:
                        raise RuntimeError(f"the jobs page raised: {at.exception[0].value}")
                    return elapsed

                def timed_reruns(items: dict) -> tuple[float, dict]:
                    rerun(items)  # warm-up: caches, imports, the emulator's first answers
                    runs = [rerun(items) for _ in range(repeats if len(items) < 1000 else max(3, repeats // 2))]
                    return statistics.median(runs), at.session_state[runtime.TASKS]

                empty, _ = timed_reruns({})
                result.raw["empty_s"] = empty
                result.add("no tasks: one rerun", empty, "s", "the baseline of every ratio below")
                for n in sizes:
                    now = datetime.now(UTC)
                    ids = fake_ids(n, salt=n)
                    final_t, final_state = timed_reruns(seed_items(ids, set(), now))
                    if len(final_state) != n:
                        raise RuntimeError(f"the page lost tasks: {len(final_state)} of {n}")
                    pending = pending_pool[: n // 2]
                    mixed_ids = [pending[i // 2] if i % 2 == 0 and i // 2 < len(pending) else ids[i] for i in range(n)]
                    now = datetime.now(UTC)
                    half_t, half_state = timed_reruns(seed_items(mixed_ids, set(pending), now))
                    refreshed = sum(1 for tid in pending if half_state[tid].checked_at and half_state[tid].checked_at > now)
                    if refreshed != len(pending):
                        raise RuntimeError(f"only {refreshed} of {len(pending)} pending tasks were refreshed")
                    address = len(str(at.query_params.get(runtime.QUERY_TASKS, "")))
                    result.raw[f"n{n}"] = {"all_final_s": final_t, "half_pending_s": half_t, "refreshed": refreshed,
                                           "tasks_query_chars": address}
                    result.add(f"{n} tasks, all final: rerun / empty", final_t / empty, "x", f"{final_t:.2f} s")
                    result.add(f"{n} tasks, half pending: rerun / empty", half_t / empty, "x",
                               f"{half_t:.2f} s, {refreshed} reads included")
            finally:
                runtime.reset()
    address = result.raw[f"n{most}"]["tasks_query_chars"]
    result.add(f"page address (?tasks=) with {most} tasks", round(address / 1024, 1), "KiB",
               "dashboard.py mirrors every task id into the page address (33 characters per task)")
    pickled, traced = memory_per_1000(datetime.now(UTC))
    result.raw["memory_per_1000"] = {"pickled_bytes": pickled, "tracemalloc_bytes": traced}
    result.add("session state per 1,000 tasks (pickled)", round(pickled / 1024), "KiB",
               "pickle.dumps of the dict[str, TrackedTask], all final")
    result.add("session state per 1,000 tasks (tracemalloc)", round(traced / 1024), "KiB",
               "bytes allocated while building that dict")
    return result
