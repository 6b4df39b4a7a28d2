"""Figure 6, fault soak: N tasks created and followed to a final state through a faulty provider.

Method. The emulator runs as its own process on a loopback port and injects, on every read,
10% 429, 5% 500, 5% timeouts (held 3 s, then dropped) and 2% truncated JSON bodies; 5% of tasks
end GENERATE_FAILED. Creates are not fault-injected (as the issue asks), but the emulator
enforces its create limit of 20 per window and refuses the 21st with 429, exactly as the
provider does. The client is ``AsyncLumaClient`` with its default retry policy, a 1 s read
timeout (so an injected timeout costs one second, not thirty) and its own ``CreateLimiter`` with
the same 20 per window. A full run keeps the provider's 10 s window, so 500 creates take at
least 240 s; ``--quick`` shortens it to 1 s (the race at the window's edge is the same at any
length, only more frequent). Each
input is a tiny real clip uploaded once, so rendering hundreds of results stays cheap, with a
1 s processing delay.

Four creators send the N creates (each a distinct prompt); meanwhile a follower reads every
created, unfinished task with ``get_tasks`` every ``POLL`` seconds, as the jobs page does.
Both loops are bounded in time. Afterwards the faults are switched off and every task's record
is read with plain httpx, which is the emulator's ground truth.

Counted:
* lost: asked-for tasks the client did not follow to a final status (a create that failed or
  whose outcome is unknown, or a task never seen final), plus emulator tasks the client never
  learnt the id of (orphans: paid for, invisible);
* duplicate creates: creates the emulator accepted (``/_emulator/stats``) beyond those asked
  for, and prompts appearing twice in ``creates.jsonl``;
* wrong: final statuses that differ from the emulator's record.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from luma import AsyncLumaClient, CreateLimiter, RetryPolicy
from luma._constants import CREATE_LIMIT, CREATE_WINDOW, PATH_CREATE, PATH_RECORD
from luma.errors import LumaError
from luma.models import TaskStatus

from .common import EmulatorProcess, Options, Result, tiny_clip

KEY = "bench-soak"
FAULTS = {"rate_429": 0.10, "rate_500": 0.05, "rate_timeout": 0.05, "rate_malformed": 0.02}
FAILURE_RATE = 0.05
PROCESSING_DELAY = 1.0
HANG_SECONDS = 3.0
READ_TIMEOUT = 1.0
WINDOW = CREATE_WINDOW
"""Seconds of the create window in a full run: the provider's 10 s (quick and tiny runs shorten it)."""
POLL = 0.5
CREATORS = 4
DRAIN_SECONDS = 120.0
"""How long following may go on after the last create before the rest count as lost."""


@dataclass
class Tally:
    """What the client side saw."""

    asked: int = 0
    created: dict[int, str] = field(default_factory=dict)
    """Index of the create -> task id returned."""
    create_errors: dict[int, LumaError] = field(default_factory=dict)
    final: dict[str, TaskStatus] = field(default_factory=dict)
    read_rounds: int = 0
    reads_asked: int = 0
    read_errors: Counter[str] = field(default_factory=Counter)


class CountingTransport(httpx.AsyncBaseTransport):
    """Counts every request that reaches the wire, by path, and every transport failure."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.counts: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.counts[request.url.path] += 1
        self.counts["total"] += 1
        try:
            return await self.inner.handle_async_request(request)
        except httpx.TransportError as exc:
            self.counts[f"transport error: {type(exc).__name__}"] += 1
            raise

    async def aclose(self) -> None:
        await self.inner.aclose()


def sizes(options: Options) -> tuple[int, float]:
    """(tasks, create window seconds)."""
    tasks, window = (30, 1.0) if options.tiny else (60, 1.0) if options.quick else (500, WINDOW)
    return tasks, options.soak_window if options.soak_window is not None else window


async def soak(url: str, n: int, window: float, clip: Path, tally: Tally, counting: CountingTransport) -> float:
    tally.asked = n
    client = AsyncLumaClient(
        KEY,
        api_base=url,
        upload_base=url,
        transport=counting,
        timeout=httpx.Timeout(READ_TIMEOUT, connect=2.0),
        retry=RetryPolicy(),
        create_limiter=CreateLimiter(limit=CREATE_LIMIT, window=window),
    )
    async with client:
        upload = await client.upload_file(clip.read_bytes(), file_name="soak.mp4", upload_path="bench")
        start = time.monotonic()
        create_deadline = start + n / CREATE_LIMIT * window * 2 + 30
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(n):
            queue.put_nowait(i)

        async def creator() -> None:
            while not queue.empty() and time.monotonic() < create_deadline:
                i = queue.get_nowait()
                try:
                    tally.created[i] = await client.create_task(f"soak task {i}: make it a snowy night", upload.download_url)
                except LumaError as err:
                    tally.create_errors[i] = err

        creators = asyncio.gather(*(creator() for _ in range(CREATORS)))

        async def follower() -> None:
            drain_deadline: float | None = None
            while True:
                creating = not creators.done()
                if not creating and drain_deadline is None:
                    drain_deadline = time.monotonic() + DRAIN_SECONDS
                waiting = [tid for tid in tally.created.values() if tid not in tally.final]
                if not creating and not waiting:
                    return
                if drain_deadline is not None and time.monotonic() > drain_deadline:
                    return
                if waiting:
                    tally.read_rounds += 1
                    tally.reads_asked += len(waiting)
                    batch = await client.get_tasks(waiting)
                    for tid, task in batch.tasks.items():
                        if task.status.is_final:
                            tally.final[tid] = task.status
                    for err in batch.errors.values():
                        tally.read_errors[type(err).__name__] += 1
                await asyncio.sleep(POLL)

        await asyncio.gather(creators, follower())
        return time.monotonic() - start


def ground_truth(url: str, ids: list[str]) -> dict[str, int]:
    """successFlag of every task, read with plain httpx once the faults are off."""
    truth: dict[str, int] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10.0) as http:
        for tid in ids:
            body = http.get(PATH_RECORD, params={"taskId": tid}).json()
            if body.get("code") == 200 and isinstance(body.get("data"), dict):
                truth[tid] = int(body["data"]["successFlag"])
    return truth


def run(options: Options, *, n: int | None = None) -> Result:
    tasks, window = sizes(options)
    if n is not None:
        tasks = n
    result = Result("soak", f"Fault soak: {tasks} tasks through 22% faulty reads and 5% failed generations")
    result.notes.append(
        f"Loopback emulator subprocess; reads: 10% 429, 5% 500, 5% timeout (held {HANG_SECONDS:g} s), 2% malformed; "
        f"5% GENERATE_FAILED; processing delay {PROCESSING_DELAY:g} s; client: default RetryPolicy, {READ_TIMEOUT:g} s "
        f"read timeout, CreateLimiter {CREATE_LIMIT} per {window:g} s = the emulator's limit (provider: per 10 s); "
        f"get_tasks every {POLL:g} s on unfinished tasks."
    )
    with tempfile.TemporaryDirectory(prefix="luma-bench-soak-") as tmp:
        clip = tiny_clip(Path(tmp) / "clip.mp4")
        args = [
            "--processing-delay", str(PROCESSING_DELAY), "--failure-rate", str(FAILURE_RATE),
            "--timeout-seconds", str(HANG_SECONDS), "--create-limit", str(CREATE_LIMIT),
            "--create-window", str(window), "--credits", "100000000", "--seed", str(options.seed),
            "--workers", "2",
        ]
        with EmulatorProcess(*args) as emulator:
            emulator.configure(**FAULTS)
            tally = Tally()
            counting = CountingTransport(httpx.AsyncHTTPTransport())
            wall = asyncio.run(soak(emulator.url, tasks, window, clip, tally, counting))
            emulator.configure(rate_429=0.0, rate_500=0.0, rate_timeout=0.0, rate_malformed=0.0)
            stats = emulator.stats()
            lines = [json.loads(x) for x in emulator.creates_log.read_text().splitlines() if x.strip()]
            emulated_ids = [line["taskId"] for line in lines]
            truth = ground_truth(emulator.url, emulated_ids)

    known = set(tally.created.values())
    never_final = [tid for tid in known if tid not in tally.final]
    orphans = [tid for tid in emulated_ids if tid not in known]
    prompts = Counter(line["prompt"] for line in lines)
    duplicate_prompts = sum(c - 1 for c in prompts.values() if c > 1)
    duplicates = max(0, stats["creates"] - tasks) + duplicate_prompts
    wrong = [tid for tid, status in tally.final.items() if truth.get(tid) != int(status)]
    lost = len(tally.create_errors) + len(never_final) + len(orphans) + (tasks - len(tally.created) - len(tally.create_errors))
    failed_final = sum(1 for s in tally.final.values() if s is TaskStatus.GENERATE_FAILED)
    create_errors = Counter(
        f"{type(e).__name__}{f' {e.code}' if hasattr(e, 'code') else ''}" for e in tally.create_errors.values()
    )
    reads_sent = counting.counts[PATH_RECORD]
    result.raw = {
        "tasks": tasks,
        "create_window_s": window,
        "wall_s": wall,
        "emulator_stats": stats,
        "calls": dict(counting.counts),
        "reads_asked": tally.reads_asked,
        "read_rounds": tally.read_rounds,
        "read_errors_after_retries": dict(tally.read_errors),
        "create_errors": dict(create_errors),
        "never_final": never_final[:20],
        "orphans": orphans[:20],
        "wrong": wrong[:20],
        "final_counts": dict(Counter(s.name for s in tally.final.values())),
    }
    result.add("tasks lost", lost, "tasks",
               f"create errors {dict(create_errors) or 0}, never final {len(never_final)}, orphans {len(orphans)}",
               ok=lost == 0)
    result.add("duplicate creates", duplicates, "creates",
               f"emulator accepted {stats['creates']} for {tasks} asked; repeated prompts {duplicate_prompts}",
               ok=duplicates == 0)
    result.add("final status wrong", len(wrong), "tasks",
               f"{len(tally.final)} final statuses checked against the emulator's records", ok=not wrong)
    result.add("generation failures reported", failed_final, "tasks",
               f"{failed_final / max(1, len(tally.final)):.1%} of final (injected {FAILURE_RATE:.0%})")
    result.add("total calls", counting.counts["total"], "calls",
               f"{counting.counts[PATH_CREATE]} creates, {reads_sent} status reads for {tally.reads_asked} asked "
               f"({reads_sent / max(1, tally.reads_asked):.2f} sends per read), 1 upload")
    result.add("status reads per task", reads_sent / tasks, "calls", f"{tally.read_rounds} polling rounds")
    result.add("reads failed after retries", sum(tally.read_errors.values()), "reads",
               f"{dict(tally.read_errors) or 0}; each is retried at the next poll")
    result.add("wall time", wall, "s", f"creates alone need >= {(tasks - CREATE_LIMIT) / CREATE_LIMIT * window:.0f} s "
               f"under {CREATE_LIMIT} per {window:g} s")
    return result
