"""The submit flow without Streamlit: inputs, the one-click-one-task rule, and the prompt hint.

One click creates exactly one task. The button's callback calls :func:`decide_click` with the
request currently on record; it records a new :class:`SubmitRequest` only when nothing is in
flight for these inputs. The page body then acts on a ``pending`` request once: it marks it
``sending`` before the create call and stores the task id right after. Everything here is pure
and unit-tested; the page owns the Streamlit calls.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from luma.errors import LumaError

__all__ = [
    "ClickDecision",
    "LanguageHint",
    "SubmitInputs",
    "SubmitRequest",
    "decide_click",
    "language_hint",
]

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
    recorded_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    """When the click was recorded (UTC)."""

    @property
    def fingerprint(self) -> str:
        """The inputs' fingerprint."""
        return self.inputs.fingerprint()

    @property
    def in_flight(self) -> bool:
        """True between the click and the create call's answer."""
        return self.state in ("pending", "sending")


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
        return ClickDecision(False, "Your submission is being sent; wait for the answer.")
    if current.state == "pending":
        if same:
            return ClickDecision(False, "Your submission is already queued; wait for the answer.")
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
