"""Variant sets and spending: planning takes, pricing them, and checking them against budgets.

A *variant set* is several takes submitted together: one input video with several prompts,
several inputs with one prompt, or both crossed (every prompt on every input), at most 50 tasks.
Before anything is sent, :func:`plan` lists the takes, :class:`Pricing` says what they cost and
:func:`spending_problems` says whether they fit the balance and the budgets: a set that does not
fit is refused whole, with the reason, and nothing is written.

Pricing: kie does not publish a price for Luma modify, so the deployment sets it
(``[pricing] credits_per_task``, default 10, the emulator's charge); the dashboard cross-checks
it against the balance before and after each create sent alone. Budgets (``[budget]``): daily
and monthly caps in credits, in total and per person; each is optional.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .ledger import Admit, SetItem

__all__ = [
    "MAX_PROMPT_CHARS",
    "MAX_SET_TASKS",
    "Budget",
    "Pricing",
    "SetInput",
    "Spent",
    "admit",
    "month_start",
    "plan",
    "short_of_credits",
    "spending_problems",
    "today_start",
]

MAX_PROMPT_CHARS = 2000
"""Our limit on a prompt (the provider documents none): long enough for any real description,
short enough that a stray paste is caught before it costs a task."""
MAX_SET_TASKS = 50
"""The most takes one set may have (the provider allows 100+ concurrent tasks; 50 is a morning's review)."""
DEFAULT_PRICE = 10
"""Credits per task when the deployment names none (the emulator's charge; kie publishes none)."""
CREDIT_USD = 0.005
"""About what a kie credit costs, from community sources: money figures derived from it are labelled."""


@dataclass(frozen=True)
class SetInput:
    """One input video of a set."""

    url: str
    """Its URL, as the provider will fetch it."""
    name: str | None = None
    """A human name (sample title, file name)."""
    source: str = "url"
    """How it was chosen: "url", "sample", "upload"."""


def plan(prompts: Sequence[str], inputs: Sequence[SetInput]) -> list[SetItem]:
    """Every take of the set, prompt by prompt (each prompt on each input).

    Raises ``ValueError`` with a sentence a user can act on when the set cannot be planned.
    """
    clean_prompts = [p.strip() for p in prompts if p.strip()]
    if not clean_prompts:
        raise ValueError("Add at least one prompt.")
    if not inputs:
        raise ValueError("Choose at least one input video.")
    for n, prompt in enumerate(clean_prompts, 1):
        if len(prompt) > MAX_PROMPT_CHARS:
            raise ValueError(
                f"Prompt {n} is {len(prompt):,} characters long; the limit is {MAX_PROMPT_CHARS:,}. Shorten it."
            )
    if len(set(clean_prompts)) != len(clean_prompts):
        raise ValueError("Two prompts are the same: each take should differ.")
    urls = [i.url for i in inputs]
    if len(set(urls)) != len(urls):
        raise ValueError("The same input video is listed twice.")
    total = len(clean_prompts) * len(inputs)
    if total > MAX_SET_TASKS:
        raise ValueError(
            f"{len(clean_prompts)} prompts x {len(inputs)} inputs is {total} tasks; a set has at most {MAX_SET_TASKS}."
        )
    return [
        SetItem(prompt=prompt, video_url=video.url, prompt_index=p, input_index=i, source=video.source,
                source_name=video.name)
        for p, prompt in enumerate(clean_prompts)
        for i, video in enumerate(inputs)
    ]


@dataclass(frozen=True)
class Pricing:
    """What a task costs, in credits."""

    credits_per_task: int = DEFAULT_PRICE
    """The deployment's price per task."""
    configured: bool = False
    """True when the deployment set it (else the default is a guess)."""

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, Any]) -> Pricing:
        table = secrets.get("pricing")
        value = table.get("credits_per_task") if isinstance(table, Mapping) else None
        try:
            price = int(value) if value is not None else None
        except (TypeError, ValueError):
            price = None
        if price is None or price < 0:
            return cls()
        return cls(price, configured=True)

    def cost(self, tasks: int) -> int:
        """Credits for ``tasks`` tasks."""
        return tasks * self.credits_per_task

    @staticmethod
    def dollars(amount: int) -> str:
        """An approximate money figure, labelled as such."""
        return f"about US${amount * CREDIT_USD:,.2f} (at ~${CREDIT_USD} per credit)"


@dataclass(frozen=True)
class Budget:
    """Caps on credits spent, each optional: daily and monthly, in total and per person."""

    daily: int | None = None
    """Credits the whole team may spend per day (UTC)."""
    monthly: int | None = None
    """Credits the whole team may spend per calendar month (UTC)."""
    daily_per_person: int | None = None
    """Credits one person may spend per day."""
    monthly_per_person: int | None = None
    """Credits one person may spend per month."""

    @classmethod
    def from_secrets(cls, secrets: Mapping[str, Any]) -> Budget:
        table = secrets.get("budget")
        table = table if isinstance(table, Mapping) else {}

        def cap(name: str) -> int | None:
            try:
                value = int(table[name])
            except (KeyError, TypeError, ValueError):
                return None
            return value if value >= 0 else None

        return cls(cap("daily"), cap("monthly"), cap("daily_per_person"), cap("monthly_per_person"))

    @property
    def any(self) -> bool:
        """True when at least one cap is set."""
        return any(v is not None for v in (self.daily, self.monthly, self.daily_per_person, self.monthly_per_person))


@dataclass(frozen=True)
class Spent:
    """Credits already spent (or committed by queued takes) in each budget's window."""

    today_mine: int = 0
    month_mine: int = 0
    today_all: int = 0
    month_all: int = 0


def spending_problems(cost: int, spent: Spent, budget: Budget, balance: int | None) -> list[str]:
    """Why spending ``cost`` more credits is refused (empty: it may go ahead), naming each cap."""
    problems = []
    if balance is not None and cost > balance:
        problems.append(f"It costs {cost:,} credits and {_BALANCE} {balance:,} left.")
    checks = (
        (budget.daily_per_person, spent.today_mine, "your daily budget"),
        (budget.monthly_per_person, spent.month_mine, "your monthly budget"),
        (budget.daily, spent.today_all, "the team's daily budget"),
        (budget.monthly, spent.month_all, "the team's monthly budget"),
    )
    for cap, used, name in checks:
        if cap is not None and used + cost > cap:
            problems.append(
                f"It costs {cost:,} credits and {name} of {cap:,} has {max(0, cap - used):,} left "
                f"({used:,} spent)."
            )
    return problems


def admit(cost: int, budget: Budget, owner: str | None, balance: int | None, now: datetime) -> Admit:
    """The ledger-side check of one spend (a set or a single task): :func:`spending_problems` over
    the spending read in the writing transaction itself, so concurrent spends cannot both slip
    under a cap."""

    def check(spent_since: Any) -> list[str]:
        if not budget.any and balance is None:
            return []
        day, month = today_start(now), month_start(now)
        spent = Spent(
            today_mine=spent_since(day, owner) if owner else 0,
            month_mine=spent_since(month, owner) if owner else 0,
            today_all=spent_since(day, None),
            month_all=spent_since(month, None),
        )
        return spending_problems(cost, spent, budget, balance)

    return check


_BALANCE = "the account has"


def short_of_credits(problems: Sequence[str]) -> bool:
    """True when one of :func:`spending_problems`' reasons is the account's balance (not a budget)."""
    return any(_BALANCE in p for p in problems)


def today_start(now: datetime) -> datetime:
    """Midnight UTC of ``now``'s day."""
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(now: datetime) -> datetime:
    """The first of ``now``'s month, midnight UTC."""
    return today_start(now).replace(day=1)
