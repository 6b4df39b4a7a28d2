"""Figure 1, refresh fan-out: N pending tasks read at once (``get_tasks``) versus one at a time.

Method. The emulator runs as its own process (``python -m luma.emulator``) on a loopback port,
so the client's concurrency meets a real socket server and not the benchmark's own GIL. N
pending tasks are created through the client with no latency (they are set to fail after a day,
so the emulator never spends CPU rendering them), then the emulator is told to add 100 ms to
every request. Timed: ``AsyncLumaClient.get_tasks(ids)`` at the client's default concurrency,
against sequential ``get_task`` calls on the same client. Sequential time for N > the measured
subset is the measured per-task time x N (said in the row's note). The floor is
ceil(N / concurrency) x latency: the time if every round of concurrent reads cost exactly the
injected latency.

A second measurement runs the in-process transport (the dashboard's demo mode) for one N, to
check that ``EmulatorTransport``'s worker threads do not serialise concurrent reads.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from luma import AsyncLumaClient, CreateLimiter, RetryPolicy
from luma._constants import DEFAULT_CONCURRENCY

from .common import EmulatorProcess, Options, Result, tiny_clip

LATENCY = 0.1
KEY = "bench-fanout"
# Keeps the set-up quick: many creates in flight, no limiter (the emulator's limit is raised too).
_CREATE_CONCURRENCY = 8


def sizes(options: Options) -> tuple[list[int], int, int]:
    """(N values, sequential subset, N for the in-process check)."""
    if options.tiny:
        return [20], 5, 20
    if options.quick:
        return [50], 10, 50
    return [50, 200, 1000], 50, 200


def _client(url: str | None, transport=None) -> AsyncLumaClient:
    kwargs = {"transport": transport} if transport is not None else {"api_base": url, "upload_base": url}
    return AsyncLumaClient(
        KEY,
        retry=RetryPolicy.never(),  # no faults here: a failed read must show, not be hidden by a retry
        create_limiter=CreateLimiter(limit=1_000_000, window=1.0),
        timeout=30.0,
        **kwargs,
    )


async def _make_pending(client: AsyncLumaClient, clip: Path, count: int, deadline: float) -> list[str]:
    upload = await client.upload_file(clip.read_bytes(), file_name="fanout.mp4", upload_path="bench")
    gate = asyncio.Semaphore(_CREATE_CONCURRENCY)

    async def one(i: int) -> str:
        async with gate:
            if time.monotonic() > deadline:
                raise TimeoutError("creating pending tasks took too long")
            return await client.create_task(f"fan-out task {i}", upload.download_url)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


async def _time_concurrent(client: AsyncLumaClient, ids: list[str]) -> float:
    start = time.perf_counter()
    batch = await client.get_tasks(ids)
    elapsed = time.perf_counter() - start
    if batch.errors or len(batch.tasks) != len(ids):
        raise RuntimeError(f"{len(batch.errors)} of {len(ids)} reads failed: {next(iter(batch.errors.values()), None)}")
    if any(t.status.is_final for t in batch.tasks.values()):
        raise RuntimeError("a task meant to stay pending was final")
    return elapsed


async def _time_sequential(client: AsyncLumaClient, ids: list[str]) -> float:
    start = time.perf_counter()
    for tid in ids:
        await client.get_task(tid)
    return time.perf_counter() - start


def _floor(n: int, concurrency: int, latency: float) -> float:
    return math.ceil(n / concurrency) * latency


async def _measure(client: AsyncLumaClient, ids: list[str], ns: list[int], seq_n: int, repeats: int) -> dict:
    # Warm the connection pool so neither side pays for connecting.
    await client.get_tasks(ids[:DEFAULT_CONCURRENCY])
    seq_ids = ids[:seq_n]
    seq = await _time_sequential(client, seq_ids)
    per_task = seq / len(seq_ids)
    by_n: dict[int, dict[str, Any]] = {}
    for n in ns:
        subset = ids[:n]
        runs = [await _time_concurrent(client, subset) for _ in range(repeats if n <= 200 else 1)]
        by_n[n] = {"concurrent_s": statistics.median(runs), "runs": runs}
    return {"sequential_subset": len(seq_ids), "sequential_subset_s": seq, "sequential_per_task_s": per_task, "n": by_n}


def _report(result: Result, label: str, data: dict, concurrency: int) -> None:
    per_task = data["sequential_per_task_s"]
    subset = data["sequential_subset"]
    for n, m in data["n"].items():
        conc = m["concurrent_s"]
        seq = per_task * n
        how = f"{subset} measured one at a time" if n == subset else f"{per_task * 1000:.0f} ms/task from {subset} sequential reads, x{n}"
        floor = _floor(n, concurrency, LATENCY)
        result.add(f"{label} N={n}: concurrent / sequential", conc / seq, "x",
                   f"{conc:.2f} s vs {seq:.1f} s ({how}); speed-up {seq / conc:.1f}x")
        result.add(f"{label} N={n}: concurrent / floor", conc / floor, "x",
                   f"floor = ceil({n}/{concurrency}) x {LATENCY * 1000:.0f} ms = {floor:.2f} s")


def run(options: Options) -> Result:
    result = Result("fanout", "Refresh fan-out (get_tasks vs one at a time, 100 ms per request)")
    ns, seq_n, inproc_n = sizes(options)
    most = max(ns)
    concurrency = DEFAULT_CONCURRENCY
    result.notes.append(
        f"Loopback: `python -m luma.emulator` as a subprocess on 127.0.0.1; {LATENCY * 1000:.0f} ms injected per "
        f"request; get_tasks at the default concurrency {concurrency}; pending tasks created through the client first."
    )
    with tempfile.TemporaryDirectory(prefix="luma-bench-fanout-") as tmp:
        clip = tiny_clip(Path(tmp) / "clip.mp4")
        with EmulatorProcess(
            "--create-limit", "1000000", "--failure-rate", "1", "--processing-delay", "86400",
            "--credits", "100000000", "--seed", str(options.seed),
        ) as emulator:

            async def main() -> dict:
                async with _client(emulator.url) as client:
                    ids = await _make_pending(client, clip, most, time.monotonic() + 120)
                    emulator.configure(latency=LATENCY)
                    return await _measure(client, ids, ns, seq_n, repeats=3)

            loopback = asyncio.run(main())
        result.raw["loopback"] = loopback
        _report(result, "loopback", loopback, concurrency)

        # The dashboard's demo mode: the same client over the in-process transport.
        from luma.emulator import Emulator, EmulatorConfig

        config = EmulatorConfig(
            data_dir=Path(tmp) / "inproc", create_limit=1_000_000, failure_rate=1.0,
            processing_delay=86400, credits=100_000_000, seed=options.seed,
        )
        with Emulator(config) as em:

            async def inproc() -> dict:
                async with _client(None, transport=em.transport()) as client:
                    ids = await _make_pending(client, clip, inproc_n, time.monotonic() + 120)
                    em.configure(latency=LATENCY)
                    return await _measure(client, ids, [inproc_n], min(seq_n, inproc_n), repeats=3)

            in_process = asyncio.run(inproc())
        result.raw["in_process"] = in_process
        _report(result, "in-process", in_process, concurrency)
        result.notes.append(
            "In-process: EmulatorTransport runs the handler in anyio worker threads (40 by default); a "
            "concurrent/floor ratio near the loopback one means it does not serialise."
        )
    return result
