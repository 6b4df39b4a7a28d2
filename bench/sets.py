"""Figure 10, a variant set's sending: 50 takes through the dispatcher at the provider's pace.

Method. An emulator (in-process, the provider's create limit of 20 per window enforced: more
answer 429) and a ledger (embedded SQLite) in a temporary folder. Baseline, same run: one caller
sends 50 creates in a loop through ``LumaClient`` with its own in-memory ``CreateLimiter`` at
the same limit; the best one process can do. Then a 50-take set is written queued, as the
Submit page writes it, and **two** dispatchers (two server processes' worth, each with its own
clients) send it, sharing the limit through the ledger (``LedgerCreateLimiter``). The figure is
the time from "written" to "all sent" over the baseline's time. Also counted from the emulator:
creates refused with 429 (must be 0) and takes created twice (must be 0). The floor is
ceil(50 / 20) - 1 windows: the first 20 go at once, each later 20 one window later.

The full run uses the provider's 10 s window (about 20 s per side); ``--quick`` a 1 s window.
"""

from __future__ import annotations

import json
import math
import tempfile
import threading
import time
import uuid
from pathlib import Path

from luma import CreateLimiter, LumaClient, RetryPolicy
from luma.emulator import Emulator, EmulatorConfig
from studio.dispatcher import CreateRoute, Dispatcher
from studio.ledger import Ledger, LedgerCreateLimiter, SetItem
from studio.tracker import utcnow

from .common import Options, Result

LIMIT = 20
KEY = "bench-key"


def run(options: Options) -> Result:
    n = 25 if options.tiny else 50
    window = 0.5 if options.tiny else 1.0 if options.quick else 10.0
    result = Result("sets", f"A {n}-take variant set: written to all sent, two dispatchers vs one caller's loop")
    with tempfile.TemporaryDirectory(prefix="luma-bench-sets-") as tmp:
        root = Path(tmp)
        config = EmulatorConfig(data_dir=root / "emulator", create_limit=LIMIT, create_window=window,
                                processing_delay=3600.0, sample_seconds=1.0, sample_width=160, sample_height=90)
        emulator = Emulator(config)
        ledger = Ledger(f"sqlite:///{root / 'ledger.sqlite'}")
        ledger.migrate()
        try:
            video = emulator.samples(prepare=True)[0].url
            baseline = _baseline(emulator, n, window, video)
            before = emulator.stats()["requests"].get("creates", 0)
            accepted_before = emulator.create_count()
            sent, extra = _dispatch(emulator, ledger, n, window, video)
            stats = emulator.stats()
            requests = stats["requests"].get("creates", 0) - before
            accepted = emulator.create_count() - accepted_before
            lines = [json.loads(line) for line in emulator.creates_log.read_text().splitlines()]
            set_prompts = [line["prompt"] for line in lines if line["prompt"].startswith("set take ")]
            duplicates = len(set_prompts) - len(set(set_prompts))
        finally:
            ledger.close()
            emulator.close()
    floor = (math.ceil(n / LIMIT) - 1) * window
    refused = requests - accepted
    result.raw = {"n": n, "window_s": window, "baseline_s": baseline, "set_s": sent, "floor_s": floor,
                  "create_requests": requests, "accepted": accepted, "refused_429": refused,
                  "duplicates": duplicates, "late_sends": extra}
    result.notes.append(
        f"Emulator in-process with {LIMIT} creates per {window:g} s enforced (429 beyond). Baseline: one LumaClient "
        f"loop with an in-memory CreateLimiter. Set: {n} queued takes sent by two Dispatchers sharing the limit "
        "through the ledger (embedded SQLite)."
    )
    result.add(f"{n} takes: written to all sent / one caller's loop", sent / baseline, "x",
               f"{sent:.2f} s vs {baseline:.2f} s (floor {floor:.1f} s: {LIMIT} per {window:g} s)",
               # Bound at the provider's window; a shorter one magnifies the ledger's fixed cost per take.
               ok=sent / baseline <= 1.1 if window >= 10 else None)
    result.add(f"{n} takes: creates refused with 429", refused, "calls", "the dispatchers keep under the limit",
               ok=refused == 0)
    result.add(f"{n} takes: takes created twice", duplicates, "tasks",
               f"{accepted} creates accepted for {n} takes", ok=duplicates == 0 and accepted == n)
    return result


def _baseline(emulator: Emulator, n: int, window: float, video: str) -> float:
    limiter = CreateLimiter(limit=LIMIT, window=window)
    with LumaClient(KEY, transport=emulator.transport(), retry=RetryPolicy.never(), create_limiter=limiter) as client:
        # The emulator's window starts fresh: wait out anything before.
        time.sleep(window)
        start = time.perf_counter()
        for i in range(n):
            client.create_task(f"baseline take {i}", video)
        return time.perf_counter() - start


def _dispatch(emulator: Emulator, ledger: Ledger, n: int, window: float, video: str) -> tuple[float, int]:
    time.sleep(window)  # the baseline's creates leave the provider's window first
    items = [SetItem(prompt=f"set take {i}", video_url=video, prompt_index=i, input_index=0) for i in range(n)]
    set_id = uuid.uuid4().hex
    clients: list[LumaClient] = []

    def route_for(row: object) -> CreateRoute:
        client = LumaClient(KEY, transport=emulator.transport(), retry=RetryPolicy.never(),
                            create_limiter=LedgerCreateLimiter(ledger, "bench", limit=LIMIT, window=window))
        clients.append(client)

        def create(take: object) -> str:
            return client.create_task(take.prompt, take.video_url)  # type: ignore[attr-defined]

        return CreateRoute(create=create, first_check=utcnow)

    dispatchers = [Dispatcher(ledger, route_for, process_id=f"bench-{i}", idle=0.05) for i in range(2)]
    start = time.perf_counter()
    ledger.create_set(set_id, items, mode="live", name="bench", owner="bench", owner_name="Bench", key_ref="bench",
                      api_base=None, prompts=[i.prompt for i in items], inputs=[{"url": video}], crossed=False,
                      cost_per_task=10)
    for dispatcher in dispatchers:
        dispatcher.start()
        dispatcher.nudge()
    deadline = time.monotonic() + 40 * window + 60
    try:
        while time.monotonic() < deadline:
            states = [r.state for r in ledger.set_rows(set_id)]
            if all(s not in ("queued", "creating") for s in states):
                break
            time.sleep(0.02)
        else:
            raise RuntimeError("the set was not sent in time")
        elapsed = time.perf_counter() - start
    finally:
        stop = [threading.Thread(target=d.stop) for d in dispatchers]
        for thread in stop:
            thread.start()
        for thread in stop:
            thread.join()
        for client in clients:
            client.close()
    states = [r.state for r in ledger.set_rows(set_id)]
    if states.count("created") != n:
        raise RuntimeError(f"only {states.count('created')} of {n} takes were created: {set(states)}")
    return elapsed, sum(d.sent for d in dispatchers) - n
