"""Figure 7, the tracker's cycle: 1,000 due tasks read at 100 ms per request, against its floor.

Method. A ledger (embedded SQLite in a temporary folder) holds N created, due live tasks. One
:class:`studio.tracker.Tracker` cycle claims them all (one batch), reads them through a real
``AsyncLumaClient`` whose transport answers every record-info request after 100 ms (in-process,
``asyncio.sleep``, so the latency is exact and nothing queues on a socket), and writes every
answer back. Floor = ceil(N / 16) x 100 ms: the client reads 16 tasks at once. The ratio is the
cycle's wall time over that floor (1.0x is ideal): what is left is the ledger's claim and writes.
"""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
from pathlib import Path

import httpx

from luma import AsyncLumaClient, RetryPolicy
from studio.ledger import Ledger
from studio.schedule import Schedule
from studio.tracker import Route, Tracker

from .common import Options, Result

LATENCY = 0.1
CONCURRENCY = 16


class SlowProvider(httpx.AsyncBaseTransport):
    """Answers record-info for any id as a GENERATING task, after ``LATENCY`` seconds."""

    def __init__(self) -> None:
        self.reads = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(LATENCY)
        self.reads += 1
        task_id = request.url.params.get("taskId", "")
        data = {"taskId": task_id, "paramJson": "{}", "successFlag": 0, "createTime": 1_769_670_760_000}
        return httpx.Response(200, json={"code": 200, "msg": "success", "data": data})


def run(options: Options) -> Result:
    n = 50 if options.tiny else 300 if options.quick else 1000
    result = Result("tracker", f"Tracker cycle: {n:,} due tasks at {LATENCY * 1000:.0f} ms per read vs its floor")
    provider = SlowProvider()
    with tempfile.TemporaryDirectory(prefix="luma-bench-tracker-") as tmp:
        ledger = Ledger(f"sqlite:///{Path(tmp) / 'ledger.sqlite'}")
        ledger.migrate()
        try:
            ids = [f"{i:032x}" for i in range(1, n + 1)]
            ledger.add_existing(ids, mode="live", owner="bench", owner_name="Bench", key_ref="key",
                                api_base="https://api.example.com", origin="imported")
            route = Route(
                key=("live", "key"),
                client=lambda: AsyncLumaClient("bench-key", api_base="https://api.example.com", transport=provider,
                                               retry=RetryPolicy.never()),
                schedule=Schedule(),
            )
            tracker = Tracker(ledger, lambda row: route, batch=n)
            report = tracker.cycle()
            if report.read != n or provider.reads != n:
                raise RuntimeError(f"the cycle read {report.read} of {n} tasks ({provider.reads} requests)")
            again = tracker.cycle()
            if again.claimed:
                raise RuntimeError(f"{again.claimed} tasks were due again right after being read")
        finally:
            ledger.close()
    floor = math.ceil(n / CONCURRENCY) * LATENCY
    result.raw = {"n": n, "cycle_s": report.seconds, "floor_s": floor, "reads": provider.reads,
                  "report": json.loads(json.dumps(report.__dict__, default=str))}
    result.notes.append(
        f"One Tracker.cycle over {n:,} due rows in an embedded SQLite ledger; AsyncLumaClient.get_tasks reads "
        f"{CONCURRENCY} at once through an in-process transport that answers after {LATENCY * 1000:.0f} ms."
    )
    result.add(f"{n:,} due tasks: cycle / floor", report.seconds / floor, "x",
               f"{report.seconds:.2f} s vs floor ceil({n}/{CONCURRENCY}) x {LATENCY * 1000:.0f} ms = {floor:.2f} s")
    result.add(f"{n:,} due tasks: reads sent", provider.reads, "calls", "one per task; none due again after the cycle",
               ok=provider.reads == n)
    return result
