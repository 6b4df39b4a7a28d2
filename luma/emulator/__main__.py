"""``python -m luma.emulator``: serve the emulator on a loopback port until interrupted.

Secrets never go on the command line (where ``ps`` shows them): the required API key and the
webhook signing key are read from environment variables named by flags.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

from .config import DEFAULT_PUBLIC_BASE, EmulatorConfig
from .core import Emulator
from .server import EmulatorServer
from .store import DataDirInUse

KEY_ENV = "LUMA_EMULATOR_API_KEY"
SIGNING_KEY_ENV = "LUMA_EMULATOR_SIGNING_KEY"


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability between 0 and 1")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must not be negative")
    return value


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where it says something (not for flags, nor where the help already does)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return text
        return super()._get_help_string(action) or text


def build_parser() -> argparse.ArgumentParser:
    """The command line; every option maps to one :class:`EmulatorConfig` field."""
    d = EmulatorConfig()
    parser = argparse.ArgumentParser(
        prog="python -m luma.emulator",
        description=(
            "Offline emulator of kie.ai's Luma modify-video API, its upload host and its file host, "
            "served over HTTP from one process. Point the client's API and upload base URLs at it."
        ),
        epilog=(
            f"Secrets are read from the environment, never from the command line: {KEY_ENV} "
            f"(with --require-key) and {SIGNING_KEY_ENV} (with --sign-callbacks). Admin: GET /_emulator/stats, "
            "GET/POST /_emulator/config."
        ),
        formatter_class=_HelpFormatter,
    )
    net = parser.add_argument_group("server")
    net.add_argument("--host", default="127.0.0.1", help="address to listen on (keep it loopback)")
    net.add_argument("--port", type=int, default=8765, help="port to listen on (0 picks a free one)")
    net.add_argument("--public-base", default=None,
                     help="origin of the file URLs handed out (default: http://HOST:PORT)")
    net.add_argument("--data-dir", type=Path, default=None,
                     help="where uploads, results, samples, creates.jsonl and the emulator's state are kept; "
                          "a restart on the same dir answers for every task it knew; one emulator per dir "
                          "(default: a temp dir, deleted on exit)")
    net.add_argument("--verbose", action="store_true",
                     help="print one line per request (method, path, status; never headers)")
    net.add_argument("--allow-host", dest="allow_hosts", action="append", default=None, metavar="HOST",
                     help="a host (name, name:port or IP) the emulator may fetch videoUrl/fileUrl from and "
                          "send callbacks to even though it is private or local, e.g. 127.0.0.1 for a test "
                          "server; repeatable (default: public addresses only, as the provider)")

    acct = parser.add_argument_group("account")
    acct.add_argument("--require-key", action="store_true",
                      help=f"accept only the API key in ${KEY_ENV} (default: any non-empty Bearer key)")
    acct.add_argument("--credits", type=int, default=d.credits, help="credits each API key starts with")
    acct.add_argument("--credits-per-task", type=int, default=d.credits_per_task, help="credits a create costs")
    acct.add_argument("--create-limit", type=int, default=d.create_limit,
                      help="creates allowed per key per window; more answer 429")
    acct.add_argument("--create-window", type=_seconds, default=d.create_window,
                      help="sliding window of the create limit, seconds")

    tasks = parser.add_argument_group("tasks")
    tasks.add_argument("--processing-delay", type=_seconds, default=d.processing_delay,
                       help="minimum seconds a task stays GENERATING")
    tasks.add_argument("--failure-rate", type=_rate, default=d.failure_rate,
                       help="probability a task ends GENERATE_FAILED (errorCode 501)")
    tasks.add_argument("--create-failure-rate", type=_rate, default=d.create_failure_rate,
                       help="probability a task ends CREATE_TASK_FAILED at once")
    tasks.add_argument("--workers", type=int, default=d.workers, help="background render workers")
    tasks.add_argument("--seed", type=int, default=None, help="seed for task ids, failures and faults")
    tasks.add_argument("--max-video-seconds", type=_seconds, default=d.max_video_seconds,
                       help="longest input video accepted")
    tasks.add_argument("--max-video-bytes", type=int, default=d.max_video_bytes, help="largest input video accepted")
    tasks.add_argument("--sample-size", default=f"{d.sample_width}x{d.sample_height}",
                       help="WIDTHxHEIGHT of the generated sample clips")
    tasks.add_argument("--sample-seconds", type=_seconds, default=d.sample_seconds,
                       help="length of the generated sample clips")

    shape = parser.add_argument_group("answer variants (all documented by the provider)")
    shape.add_argument("--error-style", choices=("body", "http"), default=d.error_style,
                       help="body: HTTP 200 with the error code in the body; http: HTTP status = code too")
    shape.add_argument("--response-while-generating", choices=("null", "absent"), default=d.response_while_generating,
                       help="record-info 'response' while GENERATING: null, or the key left out")
    shape.add_argument("--error-code-type", choices=("int", "string"), default=d.error_code_type,
                       help="record-info errorCode as a number or as a string")
    shape.add_argument("--upload-shape", choices=("auto", "A", "B"), default=d.upload_shape,
                       help="upload data shape; auto: A for stream uploads, B for base64 and URL uploads")
    shape.add_argument("--callback-failure-code", type=int, choices=(500, 501), default=d.callback_failure_code,
                       help="body code of a failure callback")
    shape.add_argument("--retry-after", type=_seconds, default=None,
                       help="add Retry-After (seconds) to 429 answers (undocumented upstream)")

    faults = parser.add_argument_group("faults")
    faults.add_argument("--latency", type=_seconds, default=d.latency, help="seconds added to every request")
    faults.add_argument("--answer-delay", type=_seconds, default=d.answer_delay,
                        help="seconds an accepted create's answer is held back after the task is created and "
                             "charged (a create whose answer is lost); other requests are not held")
    faults.add_argument("--rate-429", type=_rate, default=d.rate_429, help="probability a read answers 429")
    faults.add_argument("--rate-500", type=_rate, default=d.rate_500, help="probability a read answers 500")
    faults.add_argument("--rate-timeout", type=_rate, default=d.rate_timeout,
                        help="probability a read is held for --timeout-seconds, then dropped unanswered")
    faults.add_argument("--rate-malformed", type=_rate, default=d.rate_malformed,
                        help="probability a read answers HTTP 200 with a truncated body")
    faults.add_argument("--fault-creates", action="store_true",
                        help="apply the fault rates to creates too (a create timeout still creates the task)")
    faults.add_argument("--timeout-seconds", type=_seconds, default=d.timeout_seconds,
                        help="how long an injected timeout holds the connection")
    faults.add_argument("--maintenance", action="store_true", help="every API call answers 455")
    faults.add_argument("--feature-disabled", action="store_true", help="creates answer 505")
    faults.add_argument("--reject-bare-user-agent", action="store_true",
                        help="uploads without a real User-Agent get HTTP 403 (the upload host's reported bot filter)")

    hooks = parser.add_argument_group("callbacks")
    hooks.add_argument("--sign-callbacks", action="store_true",
                       help=f"sign callbacks with the HMAC key in ${SIGNING_KEY_ENV}")
    hooks.add_argument("--callback-retries", type=int, default=d.callback_retries,
                       help="retries after a failed first callback attempt")
    hooks.add_argument("--callback-backoff", type=_seconds, default=d.callback_backoff,
                       help="first pause between callback attempts, doubled each time")
    hooks.add_argument("--callback-timeout", type=_seconds, default=d.callback_timeout,
                       help="per-attempt callback timeout, seconds")
    return parser


def config_from_args(args: argparse.Namespace, environ: dict[str, str] | None = None) -> EmulatorConfig:
    """Turn parsed options into a config; raises ``ValueError`` with a plain message on bad input."""
    env = os.environ if environ is None else environ
    try:
        width, height = (int(v) for v in args.sample_size.lower().split("x"))
    except ValueError:
        raise ValueError(f"--sample-size must look like 640x360, not {args.sample_size!r}") from None
    required_key = signing_key = None
    if args.require_key:
        required_key = env.get(KEY_ENV, "").strip()
        if not required_key:
            raise ValueError(f"--require-key needs the key in the environment variable {KEY_ENV}")
    if args.sign_callbacks:
        signing_key = env.get(SIGNING_KEY_ENV, "").strip()
        if not signing_key:
            raise ValueError(f"--sign-callbacks needs the HMAC key in the environment variable {SIGNING_KEY_ENV}")
    values: dict[str, Any] = dict(
        data_dir=args.data_dir,
        public_base=args.public_base or DEFAULT_PUBLIC_BASE,
        required_key=required_key,
        signing_key=signing_key,
        sample_width=width,
        sample_height=height,
        allow_hosts=tuple(args.allow_hosts or ()),
    )
    for name in (
        "credits", "credits_per_task", "create_limit", "create_window", "processing_delay", "failure_rate",
        "create_failure_rate", "workers", "seed", "max_video_seconds", "max_video_bytes", "sample_seconds",
        "error_style", "response_while_generating", "error_code_type", "upload_shape", "callback_failure_code",
        "retry_after", "latency", "answer_delay", "rate_429", "rate_500", "rate_timeout", "rate_malformed", "fault_creates",
        "timeout_seconds", "maintenance", "feature_disabled", "reject_bare_user_agent", "callback_retries", "callback_backoff",
        "callback_timeout",
    ):
        values[name] = getattr(args, name)
    return EmulatorConfig(**values)


def _stop(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        emulator = Emulator(config)
    except DataDirInUse as exc:
        print(f"Cannot start: {exc}", file=sys.stderr)
        return 2
    try:
        try:
            server = EmulatorServer(emulator, args.host, args.port, verbose=args.verbose)
        except OSError as exc:
            print(f"Cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        signal.signal(signal.SIGTERM, _stop)
        print(f"Luma emulator serving {server.url} (API, uploads and files; data in {emulator.data_dir})",
              flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
    finally:
        emulator.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
