"""Spending, costs and news across the pages: the price and budgets on Settings, each task's cost and
the result's expiry on Jobs, the sidebar's totals, the Overview's charts, and toasts when my
tasks finish."""

from __future__ import annotations

import time
from typing import Any

from pages._support import runtime
from studio.ledger import TaskQuery

from .conftest import alerts, make_app


def submit(at: Any, prompt: str = "make it a snowy night") -> str:
    at.switch_page("pages/submit.py").run()
    at.text_area(key="submit_prompt").set_value(prompt)
    at.button(key="submit_button").click().run()
    request = at.session_state[runtime.SUBMIT_REQUEST]
    assert request.state == "done", (request.state, alerts(at))
    runtime.new_submission()
    return str(request.task_id)


def finished(task_id: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        row = runtime.ledger().get(task_id=task_id)
        if row is not None and row.status is not None and row.status.is_final:
            return row
        assert time.monotonic() < deadline, "the task never finished"
        time.sleep(0.2)


def captions(at: Any) -> str:
    return "\n".join(c.value for c in at.caption)


def test_a_lone_create_is_priced_and_cross_checked_with_the_balance(hermetic):
    """Configured at 12 credits, the emulator charges 10: the balance before and after the create
    says so, the task carries what it really cost and Settings points out the mismatch."""
    at = make_app({"pricing": {"credits_per_task": 12}}).run()
    task_id = submit(at)
    row = runtime.ledger().get(task_id=task_id)
    assert row is not None and row.cost == 10
    at.run()
    assert "**Spent today** 10 (you) · 10 (everyone)" in captions(at)
    at.switch_page("pages/settings.py").run()
    assert any("The last measured create cost 10 credits, not the configured 12" in a for a in alerts(at)), alerts(at)


def test_settings_show_the_price_and_the_budgets(hermetic):
    at = make_app({"pricing": {"credits_per_task": 25}, "budget": {"daily": 500, "monthly_per_person": 2000}}).run()
    at.switch_page("pages/settings.py").run()
    text = captions(at)
    assert "**25 credits**, set by the deployment" in text and "Not measured yet" in text
    assert "500 credits team per day, 2,000 credits per person per month" in text


def test_the_sidebar_shows_spending_against_the_caps(hermetic):
    at = make_app({"budget": {"daily": 500, "daily_per_person": 100}}).run()
    submit(at)
    at.run()
    assert "**Spent today** 10 of 100 (you) · 10 of 500 (everyone)" in captions(at)


def test_jobs_show_each_cost_a_total_and_how_long_the_result_is_kept(hermetic):
    at = make_app().run()
    first, second = submit(at), submit(at, "turn it into a neon-lit night")
    finished(first), finished(second)
    at.switch_page("pages/jobs.py").run()
    frame = at.dataframe[0].value
    assert list(frame["cost"]) == [10, 10]
    assert "2 task(s) shown · 20 credits" in captions(at)
    # The details of the selected task (through the table's selection state).
    at.session_state["jobs_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    tables = [str(t.value) for t in at.table]
    assert any("10 credits" in t for t in tables), tables
    assert any("expires in 13 days" in t for t in tables), tables


def test_the_overview_charts_tasks_credits_and_durations(hermetic):
    at = make_app().run()
    task_id = submit(at)
    finished(task_id)
    at.switch_page("pages/overview.py").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Tasks"] == "1" and metrics["Credits"] == "10"
    assert len(at.get("vega_lite_chart")) >= 3
    at.toggle(key="overview_mine").set_value(True).run()
    assert not at.exception and {m.label: m.value for m in at.metric}["Tasks"] == "1"


def test_a_toast_says_when_one_of_my_tasks_finished(hermetic):
    at = make_app().run()
    task_id = submit(at)
    row = finished(task_id)
    at.run()
    assert any("Finished: make it a snowy night" in t.value for t in at.toast), [t.value for t in at.toast]
    at.run()
    assert not any("Finished" in t.value for t in at.toast), "each task's news is told once"
    assert row.status.succeeded
    assert runtime.ledger().query(TaskQuery(mode="demo")).total == 1
