"""The submit flow without Streamlit: inputs, the one-click-one-task rule, and the prompt hint.

One click creates exactly one task. The button's callback calls :func:`decide_click` with the
request currently on record; it records a new :class:`SubmitRequest` only when nothing is in
flight for these inputs. The page body then acts on the request: it marks it ``sending`` and
sends it through :class:`CreateOnce`, which lets one create out per submission however many
script runs try, and hands every run the same :class:`CreateOutcome`.

Why a ledger outside session state: with ``runner.fastReruns`` a click does not wait for the
running script. Streamlit starts a new script thread at once and asks the old one to stop; the
old thread runs on until its next *yield point* and raises there. Every ``st.*`` call and every
session-state read or write is a yield point. So two runs of one session can be inside the
create at the same moment, and a run can be stopped between the provider's answer and the line
that records it: credits spent, task never listed. The page therefore reads everything it needs
from session state first, then sends and records the outcome into plain objects it already
holds, with no yield point in between; the ledger makes the second run wait for the first
run's answer instead of sending again. Everything here is pure and unit-tested; the page owns
the Streamlit calls.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from luma.errors import LumaError, MalformedResponseError, TransportError
from studio.sets import MAX_PROMPT_CHARS

__all__ = [
    "IN_FLIGHT_NOTICES",
    "MAX_PROMPT_CHARS",
    "ClickDecision",
    "CreateOnce",
    "CreateOutcome",
    "LanguageHint",
    "SubmitInputs",
    "SubmitRequest",
    "Upload",
    "Uploads",
    "callback_problem",
    "decide_click",
    "input_problems",
    "language_hint",
]

_LOG = logging.getLogger("luma.dashboard")

RequestState = Literal["pending", "sending", "done", "failed", "blocked", "unknown"]


@dataclass(frozen=True)
class SubmitInputs:
    """What the user asked for, as sent to the provider."""

    prompt: str
    """How the video should change (English)."""
    video_url: str
    """The public URL of the input video."""
    callback_url: str | None = None
    """Where the provider should POST the outcome, if anywhere."""
    watermark: str | None = None
    """Watermark identifier, if any."""
    source: str = "url"
    """How the video was chosen: "url", "upload" or "sample"."""
    source_name: str | None = None
    """The uploaded file's name or the sample's title."""

    def fingerprint(self) -> str:
        """Identifies the provider-visible inputs: two submissions with the same one are duplicates."""
        payload = json.dumps(
            [self.prompt.strip(), self.video_url.strip(), self.callback_url or "", self.watermark or ""]
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class SubmitRequest:
    """One recorded click on Submit and what became of it (lives in session state)."""

    inputs: SubmitInputs
    """The inputs at the moment of the click."""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    """A fresh id per recorded click."""
    state: RequestState = "pending"
    """pending -> sending -> done | failed | unknown; or pending -> blocked (pre-flight failed)."""
    task_id: str | None = None
    """The created task's id, once the provider returned it."""
    error: LumaError | None = None
    """Why the create call failed (``failed``/``unknown``)."""
    preflight: Any = None
    """The pre-flight report that blocked or preceded the create call."""
    recorded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    """When the click was recorded (UTC)."""
    announced: bool = False
    """True once the page has said that the task was created (the toast shows once)."""

    @property
    def fingerprint(self) -> str:
        """The inputs' fingerprint."""
        return self.inputs.fingerprint()

    @property
    def in_flight(self) -> bool:
        """True between the click and the create call's answer."""
        return self.state in ("pending", "sending")

    def settle(self, outcome: CreateOutcome) -> None:
        """Record what the create came to (attribute writes only: safe between yield points)."""
        self.task_id, self.error, self.state = outcome.task_id, outcome.error, outcome.state


@dataclass(frozen=True)
class CreateOutcome:
    """What one create call came to."""

    task_id: str | None = None
    """The created task's id (the create succeeded)."""
    error: LumaError | None = None
    """Why it failed, when the client said why."""
    maybe_created: bool = False
    """No usable answer after the request left: the provider may have created (and charged) it."""

    @property
    def state(self) -> RequestState:
        """``done``, ``unknown`` (may exist) or ``failed`` (provably not created)."""
        if self.task_id is not None:
            return "done"
        return "unknown" if self.maybe_created else "failed"

    @classmethod
    def of_error(cls, err: Exception) -> CreateOutcome:
        """Classify a create call's exception: only a request that provably never left is ``failed``."""
        if isinstance(err, LumaError):
            sent = isinstance(err, MalformedResponseError) or (isinstance(err, TransportError) and err.request_sent)
            return cls(error=err, maybe_created=sent)
        return cls(maybe_created=True)  # not ours to understand: assume the worst, never resend


@dataclass
class _Entry:
    request_id: str
    at: float
    outcome: CreateOutcome | None = None
    settled: threading.Event = field(default_factory=threading.Event)


class CreateOnce:
    """At most one create per submission key, shared by every script run in the process.

    A key names one submission: (browser session, submission generation, inputs fingerprint).
    :meth:`create_once` sends for the first caller; a caller that finds the key taken waits for
    that answer and gets the same outcome. A key whose create provably never left the machine
    (``failed``) is taken over by the next *click* (a new request id), never by a rerun of the same
    click, so a failure is reported, not silently retried.
    """

    def __init__(self, *, wait: float = 120.0, keep: float = 6 * 3600.0, clock: Callable[[], float] = time.monotonic):
        self._wait = wait
        self._keep = keep
        self._clock = clock
        self._entries: dict[Hashable, _Entry] = {}
        self._lock = threading.Lock()

    def create_once(self, key: Hashable, request_id: str, send: Callable[[], str]) -> CreateOutcome:
        """Send ``send()`` unless this submission already did; either way, return its outcome.

        Calls nothing but ``send`` and the lock: the page calls it where a Streamlit yield point
        would lose the answer.
        """
        now = self._clock()
        with self._lock:
            for old in [k for k, e in self._entries.items() if now - e.at > self._keep]:
                del self._entries[old]
            entry = self._entries.get(key)
            takes_over = (
                entry is not None
                and entry.request_id != request_id
                and entry.outcome is not None
                and entry.outcome.state == "failed"
            )
            mine = entry is None or takes_over
            if mine:
                entry = self._entries[key] = _Entry(request_id=request_id, at=now)
        assert entry is not None
        if not mine:
            if not entry.settled.wait(self._wait) or entry.outcome is None:
                # The other attempt is still out there: it may yet create the task.
                return CreateOutcome(maybe_created=True)
            return entry.outcome
        try:
            outcome = CreateOutcome(task_id=send())
        except Exception as err:  # noqa: BLE001 - every failure becomes an outcome the page explains
            if not isinstance(err, LumaError):
                _LOG.exception("Unexpected failure while creating a task")
            outcome = CreateOutcome.of_error(err)
        except BaseException:
            entry.outcome = CreateOutcome(maybe_created=True)
            entry.settled.set()
            raise
        entry.outcome = outcome
        entry.settled.set()
        return outcome

    def clear(self) -> None:
        """Forget every entry (tests)."""
        with self._lock:
            self._entries.clear()


SENDING_NOTICE = "Your submission is being sent; wait for the answer."
QUEUED_NOTICE = "Your submission is already queued; wait for the answer."
IN_FLIGHT_NOTICES = frozenset({SENDING_NOTICE, QUEUED_NOTICE})
"""Notices that are only true while the request is in flight (the page drops them after)."""


@dataclass(frozen=True)
class ClickDecision:
    """What a click on Submit does."""

    record: bool
    """True: record a new pending request for the current inputs."""
    notice: str | None = None
    """Why nothing new was recorded, for the page to say."""


def decide_click(
    current: SubmitRequest | None, inputs: SubmitInputs, *, confirmed_resend: bool = False
) -> ClickDecision:
    """Whether a click on Submit records a new request, given the one on record.

    A click never records a second request while one is in flight, nor after a success with the
    same inputs. After a timeout (the task may exist) the same inputs need an explicit confirmation.
    """
    if current is None:
        return ClickDecision(record=True)
    same = current.fingerprint == inputs.fingerprint()
    if current.state == "sending":
        return ClickDecision(False, SENDING_NOTICE)
    if current.state == "pending":
        if same:
            return ClickDecision(False, QUEUED_NOTICE)
        # The pending one was never sent (its run was interrupted before the create call).
        return ClickDecision(record=True)
    if current.state == "done" and same:
        return ClickDecision(
            False,
            f"Already submitted as task {current.task_id}. Change the inputs, or choose "
            "'Start a new submission' to send the same inputs again.",
        )
    if current.state == "unknown" and same and not confirmed_resend:
        return ClickDecision(
            False,
            "The last attempt with these inputs got no answer, so a task may have been created. "
            "Check the Jobs page first; to send again anyway, tick the confirmation box.",
        )
    return ClickDecision(record=True)


# --- what may be sent ----------------------------------------------------------------------------

_MAX_URL_CHARS = 2048


def input_problems(prompt: str, callback_url: str | None) -> list[str]:
    """Why these inputs cannot be sent as typed (empty when they can). Nothing is ever cut short:
    what Start sends is exactly what the page shows."""
    problems = []
    if len(prompt) > MAX_PROMPT_CHARS:
        problems.append(
            f"The prompt is {len(prompt):,} characters long; the limit is {MAX_PROMPT_CHARS:,}. "
            "Shorten it; nothing was sent."
        )
    if callback_url:
        problem = callback_problem(callback_url)
        if problem:
            problems.append(problem)
    return problems


def callback_problem(url: str) -> str | None:
    """Why ``url`` cannot be a callback URL, or None when it is well formed."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "The callback URL contains spaces or line breaks; a space inside it must be written as %20."
    if len(url) > _MAX_URL_CHARS:
        return f"The callback URL is longer than {_MAX_URL_CHARS:,} characters."
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "The callback URL is not a valid web address."
    if parts.scheme not in ("http", "https") or not host:
        return "The callback URL must be a full http(s) address, such as https://example.com/luma-callback."
    return None


# --- uploads that outlive the run that started them ------------------------------------------------


class Upload:
    """One file upload running in a background thread, with its progress and result."""

    def __init__(self, total: int) -> None:
        self.total = total
        """Bytes to send."""
        self.sent = 0
        """Bytes sent so far (written by the upload thread)."""
        self.result: Any = None
        """The uploaded file (``luma.models.UploadedFile``) once it succeeded."""
        self.error: LumaError | None = None
        """Why it failed, once it failed."""
        self._done = threading.Event()

    @property
    def fraction(self) -> float:
        """Progress from 0 to 1."""
        return min(1.0, self.sent / self.total) if self.total else 1.0

    @property
    def done(self) -> bool:
        """True once the upload succeeded or failed."""
        return self._done.is_set()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the end; True once done."""
        return self._done.wait(timeout)

    def run(self, send: Callable[[Callable[[int, int], None]], Any]) -> None:
        """Run ``send(progress)`` to the end (in the upload thread)."""

        def progress(sent: int, total: int) -> None:
            self.sent, self.total = sent, total or self.total

        try:
            self.result = send(progress)
        except LumaError as err:
            self.error = err
        except Exception as err:  # noqa: BLE001 - reported to the page as a failed upload
            _LOG.exception("Unexpected failure while uploading a file")
            self.error = LumaError(f"The upload failed unexpectedly ({type(err).__name__}).")
        finally:
            self._done.set()


class Uploads:
    """Uploads keyed per browser session and file content, run in background threads.

    A file upload reports progress, and each progress update on the page is a yield point where a
    newer run (any click or edit while it uploads) stops the run showing it. The upload itself
    runs here instead, so it goes on; the next run finds it by key and follows it to the end,
    and the file is sent once however many runs watch it. A failed upload is handed to one
    run to report, then forgotten, so the run after that may try again.
    """

    def __init__(self, *, keep: float = 3600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._keep = keep
        self._clock = clock
        self._uploads: dict[Hashable, tuple[float, Upload]] = {}
        self._lock = threading.Lock()

    def start(self, key: Hashable, total: int, send: Callable[[Callable[[int, int], None]], Any]) -> Upload:
        """The upload for ``key``: the one already running or finished, else a new one started now."""
        now = self._clock()
        with self._lock:
            for old in [k for k, (at, upload) in self._uploads.items() if upload.done and now - at > self._keep]:
                del self._uploads[old]
            found = self._uploads.get(key)
            if found is not None:
                return found[1]
            upload = Upload(total)
            self._uploads[key] = (now, upload)
        threading.Thread(target=upload.run, args=(send,), name="luma-upload", daemon=True).start()
        return upload

    def forget_failed(self, key: Hashable, upload: Upload) -> None:
        """Drop a failed upload once a run has reported it (the next run may try again)."""
        with self._lock:
            found = self._uploads.get(key)
            if found is not None and found[1] is upload and upload.error is not None:
                del self._uploads[key]

    def clear(self) -> None:
        """Forget every upload (tests)."""
        with self._lock:
            self._uploads.clear()


# --- prompt language -----------------------------------------------------------------------------

_SCRIPT_NAMES = {
    "CJK": "Chinese or Japanese characters",
    "HIRAGANA": "Japanese characters",
    "KATAKANA": "Japanese characters",
    "HANGUL": "Korean characters",
    "CYRILLIC": "Cyrillic letters",
    "GREEK": "Greek letters",
    "ARABIC": "Arabic letters",
    "HEBREW": "Hebrew letters",
    "DEVANAGARI": "Devanagari letters",
    "THAI": "Thai letters",
}


@dataclass(frozen=True)
class LanguageHint:
    """A guess at whether a prompt is English, from the letters it uses (no dictionary)."""

    looks_english: bool
    """False when the prompt is written mostly in another script, or full of accented letters."""
    reason: str | None = None
    """What gave it away, for the warning."""


def language_hint(text: str) -> LanguageHint:
    """Guess whether ``text`` is English from its letters' Unicode scripts.

    The provider accepts English prompts only. This cannot tell English from French, but it
    catches prompts in non-Latin scripts and ones with many accented letters.
    """
    letters = 0
    scripts: Counter[str] = Counter()
    accented = 0
    for ch in text:
        if not ch.isalpha():
            continue
        letters += 1
        name = unicodedata.name(ch, "")
        script = name.split(" ", 1)[0] if name else "UNKNOWN"
        if script == "LATIN":
            if unicodedata.decomposition(ch) or ch in "ßæøœðþ":
                accented += 1
        else:
            scripts[script] += 1
    if not letters:
        return LanguageHint(True)
    foreign = sum(scripts.values())
    if foreign and (foreign / letters >= 0.15 or foreign >= 3):
        script = scripts.most_common(1)[0][0]
        what = _SCRIPT_NAMES.get(script, "letters outside the English alphabet")
        return LanguageHint(False, f"The prompt contains {what}.")
    # One accented letter is a loanword (café); several mean another language.
    if accented >= 3 or (accented >= 2 and accented / letters >= 0.1):
        return LanguageHint(False, "The prompt contains accented letters (such as é, ü or ñ).")
    return LanguageHint(True)
