"""``python -m studio track``: the tracker without the dashboard, for a deployment whose app sleeps.

It reads the same configuration as the dashboard (``.streamlit/secrets.toml`` and the ``LUMA_*``
environment), opens the same ledger, and reads due *live* tasks with the deployment's key until
stopped (or once, with ``--once``: for cron or a CI schedule). Demo tasks belong to the demo
emulator inside the dashboard's process and are left to it. Several trackers may run at once on
one Postgres ledger: they share the work through leases.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from .config import DeploymentConfig, read_secrets_file
from .service import Studio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studio", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    track = commands.add_parser("track", help="read due live tasks into the ledger until stopped")
    track.add_argument("--once", action="store_true", help="run cycles until nothing is due, then exit")
    track.add_argument("--secrets", type=Path, default=None, help="a secrets.toml (default: .streamlit/secrets.toml)")
    track.add_argument("--verbose", action="store_true", help="log every cycle")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(message)s")

    config = DeploymentConfig.from_sources(read_secrets_file(args.secrets))
    if not config.api_key:
        print("No API key is configured ([luma] api_key or LUMA_API_KEY): nothing live to track.", file=sys.stderr)
        return 2
    studio = Studio(config)
    studio.tracker.mode = "live"
    try:
        studio.ready()
    except Exception as err:  # noqa: BLE001 - one plain sentence, no traceback
        print(f"The ledger cannot be opened: {err}", file=sys.stderr)
        return 1
    try:
        if args.once:
            total = 0
            while True:
                report = studio.tracker.cycle()
                total += report.read + report.failed
                if report.claimed == 0:
                    break
            print(f"Read {total} task(s).")
            return 0
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        studio.tracker.start()
        print(f"Tracking live tasks in {config.database_url.split('@')[-1]} (Ctrl+C to stop).", flush=True)
        while not stop.wait(1.0):
            pass
        return 0
    finally:
        studio.close()


if __name__ == "__main__":
    raise SystemExit(main())
