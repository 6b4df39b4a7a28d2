"""``python -m bench``: measure what users feel, print a table of figures, write them as JSON.

    python -m bench                      # every figure, full sizes (about 17 minutes on 2 cores)
    python -m bench --quick              # every figure at small sizes (a few minutes)
    python -m bench --only fanout,soak   # some figures
    python -m bench --list               # the figures and what each measures

A full run of every figure writes ``bench/results/latest.json``; a quick or partial run writes
``bench/results/latest-partial.json`` (not committed) unless ``--out`` says otherwise. The exit
status is 1 when a figure could not be measured or a required value (no lost task, no duplicate
create, no wrong status) does not hold.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from .common import Options, Result, fmt, machine

RESULTS = Path(__file__).resolve().parent / "results"


def _figures() -> dict[str, tuple[str, Callable[[Options], Result]]]:
    from . import cold_start, fanout, jobs_page, media_cost, polling, sets, soak, tabs, time_to_know, tracker_cycle

    return {
        "fanout": ("refresh N pending tasks at once vs one at a time, 100 ms per request", fanout.run),
        "polling": ("status calls and delay over a task's life: the tracker vs a fixed 10 s poll", polling.run),
        "jobs": ("Jobs-page rerun over the ledger with 0, 1,000 and 10,000 tasks", jobs_page.run),
        "cold": ("streamlit run app.py to healthy and to a rendered page vs hello world", cold_start.run),
        "media": ("emulator render time of 10 s clips at 360p/720p/1080p per clip second", media_cost.run),
        "soak": ("500 tasks through 22% faulty reads: lost, duplicate, wrong, calls, time", soak.run),
        "tracker": ("one tracker cycle over 1,000 due tasks at 100 ms per read vs its floor", tracker_cycle.run),
        "tabs": ("status calls the provider sees with 1, 3 and 10 Jobs tabs open", tabs.run),
        "know": ("live: how late the dashboard learns a task finished, polling vs callbacks", time_to_know.run),
        "sets": ("a 50-take variant set: written to all sent by two dispatchers vs one caller's loop", sets.run),
    }


def table(results: list[Result]) -> str:
    """The figures as a Markdown table."""
    lines = ["| figure | measure | value | compared with / how |", "|---|---|---|---|"]
    for result in results:
        if result.error:
            lines.append(f"| {result.figure} | (not measured) | error | {result.error.splitlines()[-1][:120]} |")
            continue
        for row in result.rows:
            flag = "" if row.ok is None else (" ✓" if row.ok else " ✗ FAILS")
            lines.append(f"| {result.figure} | {row.name} | {fmt(row.value, row.unit)}{flag} | {row.note} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    figures = _figures()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: the whole run in a few minutes")
    parser.add_argument("--only", default="", help=f"comma-separated figures: {', '.join(figures)}")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON (see above for the default)")
    parser.add_argument("--seed", type=int, default=Options.seed, help="seed for the emulator's faults and outcomes")
    parser.add_argument("--soak-window", type=float, default=None,
                        help="create window of the soak in seconds (default: the provider's 10; --quick: 1)")
    parser.add_argument("--list", action="store_true", help="list the figures and exit")
    args = parser.parse_args(argv)
    if args.list:
        for name, (what, _) in figures.items():
            print(f"{name:8} {what}")
        return 0
    chosen = [x.strip() for x in args.only.split(",") if x.strip()] or list(figures)
    unknown = [x for x in chosen if x not in figures]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; choose from {', '.join(figures)}")
    if args.soak_window is not None and not args.soak_window > 0:
        parser.error("--soak-window must be a positive number of seconds")
    options = Options(quick=args.quick, seed=args.seed, soak_window=args.soak_window)
    out = args.out
    if out is None:
        full = not args.quick and chosen == list(figures)
        out = RESULTS / ("latest.json" if full else "latest-partial.json")

    # Streamlit's bare-mode warnings (AppTest, caches outside a server) say nothing about the figures.
    from streamlit.logger import set_log_level

    set_log_level("error")
    started = time.perf_counter()
    info = machine()
    results: list[Result] = []
    for name in chosen:
        print(f"== {name}: {figures[name][0]}", flush=True)
        t0 = time.perf_counter()
        try:
            result = figures[name][1](options)
        except Exception:  # noqa: BLE001 - one broken figure must not hide the others
            result = Result(name, figures[name][0], error=traceback.format_exc())
            print(result.error, file=sys.stderr)
        result.figure = name
        result.seconds = time.perf_counter() - t0
        results.append(result)
        print(f"   {result.seconds:.1f} s", flush=True)

    total = time.perf_counter() - started
    print()
    print(table(results))
    print()
    print(f"machine: nproc={info['nproc']}, Python {info['python']}, {info['date']}, load at start "
          f"{info['loadavg_at_start']}; run took {total:.0f} s{' (--quick)' if options.quick else ''}")
    for result in results:
        for note in result.notes:
            print(f"- {result.figure}: {note}")
    document = {
        "machine": info,
        "options": {"quick": options.quick, "seed": options.seed, "soak_window": options.soak_window, "only": chosen},
        "seconds": round(total, 1),
        "figures": {r.figure: r.to_json() for r in results},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"figures written to {out}")
    failed = [r for r in results if r.error or r.failed_checks]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
