"""The Jobs page over the ledger: followed by the server, mine and everyone's, filters, import, export."""

from __future__ import annotations

import time
from typing import Any

from pages._support import runtime
from studio.tasks import MAX_ADDRESS_IDS

from .conftest import alerts, envelope, make_app, page_text

RECORD = ("GET", "/api/v1/modify/record-info")
UNKNOWN_ID = "0123456789abcdef0123456789abcdef"


def app(secrets: dict[str, Any] | None = None, *, browser: str | None = None, demo: dict[str, Any] | None = None):
    at = make_app(secrets, demo=demo)
    if browser is not None:
        at.session_state[runtime.BROWSER] = browser  # what the id cookie gives a real browser
    return at.run()


def submit(at, prompt: str = "make it a snowy night") -> str:
    at.switch_page("pages/submit.py").run()
    at.text_area(key="submit_prompt").set_value(prompt)
    at.button(key="submit_button").click().run()
    request = at.session_state[runtime.SUBMIT_REQUEST]
    assert request.state == "done", (request.state, alerts(at))
    runtime.new_submission()  # not needed by the page; keeps the next submit of the same inputs legal
    return str(request.task_id)


def jobs(at):
    at.switch_page("pages/jobs.py").run()
    assert not at.exception
    return at


def statuses(at) -> list[str]:
    return list(at.dataframe[0].value["status"]) if at.dataframe else []


def until(at, predicate, timeout: float = 20.0):
    """Re-run the page until ``predicate(at)`` holds (the server's tracker works in the background)."""
    deadline = time.monotonic() + timeout
    while not predicate(at):
        assert time.monotonic() < deadline, f"never happened; statuses now {statuses(at)}"
        time.sleep(0.3)
        at.run()
    return at


def select(at, row: int = 0):
    at.session_state["jobs_table"] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return at.run()


def test_the_server_follows_a_task_to_its_result_without_the_page_asking(seam):
    traffic = seam()
    at = app()
    task_id = submit(at)
    jobs(at)
    until(at, lambda a: statuses(a) == ["Succeeded"])
    frame = at.dataframe[0].value
    assert frame.loc[0, "task_id"] == task_id and frame.loc[0, "result"].endswith(".mp4")
    reads = len([r for r in traffic.seen if r.url.path == RECORD[1]])
    for _ in range(5):
        at.run()
    after = len([r for r in traffic.seen if r.url.path == RECORD[1]])
    assert after == reads, "a final task is not read again, whatever the page does"


def test_a_fresh_visit_from_the_same_browser_sees_its_tasks_without_the_address():
    first = app(browser="browser-one-0123456789abcdef")
    task_id = submit(first)
    # A new session (another tab, a reload, a lost address) of the same browser.
    again = jobs(app(browser="browser-one-0123456789abcdef"))
    assert list(again.dataframe[0].value["task_id"]) == [task_id]
    assert not again.query_params.get("tasks"), "found through the ledger, not the address"
    # A teammate sees it under Everyone, not under Mine.
    teammate = jobs(app(browser="browser-two-0123456789abcdef"))
    assert not teammate.dataframe
    teammate.segmented_control(key="jobs_view").set_value("Everyone").run()
    assert list(teammate.dataframe[0].value["task_id"]) == [task_id]
    assert teammate.dataframe[0].value.loc[0, "person"].startswith("Browser ")


def test_import_adds_valid_ids_to_the_ledger_and_reports_the_rest():
    at = jobs(app())
    at.text_area(key="jobs_import_text").set_value(f"{UNKNOWN_ID}\nnot-an-id\n{UNKNOWN_ID}")
    at.button(key="jobs_import_button").click().run()
    shown = alerts(at)
    assert any("Added 1 task(s)" in a for a in shown)
    assert any("not-an-id" in a and "32 characters" in a for a in shown)
    assert any("Already known, skipped: 1" in a for a in shown)
    assert at.text_area(key="jobs_import_text").value == "not-an-id", "invalid entries stay to be fixed"
    assert UNKNOWN_ID in list(at.dataframe[0].value["task_id"])
    # The provider does not know it: the read says so, and the task is kept.
    until(at, lambda a: "not" in " ".join(a.dataframe[0].value["error"]).lower())


def test_five_thousand_pasted_ids_are_added_at_once_and_the_address_stays_short():
    ids = [f"{n:032x}" for n in range(1, 5001)]
    at = jobs(app())
    at.text_area(key="jobs_import_text").set_value("\n".join(ids))
    at.button(key="jobs_import_button").click().run()
    assert any("Added 5,000 task(s)" in a for a in alerts(at))
    assert at.metric[0].value == "5,000"
    address = at.query_params.get("tasks") or ""
    assert len(address.split(",")) == MAX_ADDRESS_IDS, "the address keeps the newest ids only"


def test_filters_search_and_pages_are_done_by_the_ledger():
    ids = [f"{n:032x}" for n in range(1, 121)]
    at = jobs(app())
    at.text_area(key="jobs_import_text").set_value("\n".join(ids))
    at.button(key="jobs_import_button").click().run()
    assert len(at.dataframe[0].value) == 50
    at.number_input(key="jobs_page").set_value(3).run()
    assert len(at.dataframe[0].value) == 20
    at.text_input(key="jobs_search").set_value("nothing matches this").run()
    assert not at.dataframe and any("No tasks here yet" in a for a in alerts(at))


def test_details_show_players_request_and_run_again():
    at = app()
    submit(at, "make it golden hour")
    jobs(at)
    until(at, lambda a: statuses(a) == ["Succeeded"])
    select(at)
    assert at.get_by_key("jobs_details") is not None
    assert len(at.get("video")) == 2, "the input and the result, side by side"
    assert "make it golden hour" in page_text(at)
    at.button(key="jobs_run_again").click().run()
    assert not at.exception
    assert at.text_area(key="submit_prompt").value == "make it golden hour"


def test_a_failed_task_shows_its_meaning_and_next_step():
    at = app(demo={"failure_rate": 1.0})
    submit(at)
    jobs(at)
    until(at, lambda a: statuses(a) == ["Generation failed"])
    select(at)
    assert any("Generation failed" in a and "Next step" in a for a in alerts(at))


def test_an_address_with_task_ids_adds_them_to_the_ledger_and_garbage_is_ignored():
    at = make_app()
    at.query_params["tasks"] = f"{UNKNOWN_ID},<script>alert(1)</script>"
    at.run()
    jobs(at)
    assert list(at.dataframe[0].value["task_id"]) == [UNKNOWN_ID]
    assert not at.exception


def test_demo_tasks_never_show_in_the_live_list(seam, live_backend):
    demo = app(browser="same-browser-0123456789abcdef")
    submit(demo)
    seam(backend=live_backend.transport())
    live = jobs(app({"luma": {"api_key": "sk-live-SEPARATE-0123456789"}}, browser="same-browser-0123456789abcdef"))
    assert not live.dataframe, "the live list has no demo task"


def test_a_provider_outage_is_a_banner_and_every_task_is_kept(seam):
    seam({RECORD: envelope(500)})
    at = app(demo={"processing_delay": 60.0})
    submit(at)
    jobs(at)
    until(at, lambda a: any("The provider is not answering" in x for x in alerts(a)))
    assert len(at.dataframe[0].value) == 1


def test_an_unreachable_ledger_is_a_banner_not_a_traceback(monkeypatch):
    # A Postgres URL on a closed port: nothing can be written, nothing is sent.
    monkeypatch.setenv("LUMA_DATABASE_URL", "postgresql+psycopg://luma:secret-pw@127.0.0.1:1/none")
    at = make_app().run()
    assert not at.exception
    at.switch_page("pages/jobs.py").run()
    assert not at.exception
    text = " ".join(alerts(at))
    assert "The task ledger cannot be reached" in text and "secret-pw" not in text
    at.switch_page("pages/submit.py").run()
    at.text_area(key="submit_prompt").set_value("make it night")
    at.button(key="submit_button").click().run()
    assert not at.exception
    assert any("nothing was sent" in a for a in alerts(at))


def test_empty_list_points_to_submit():
    at = jobs(app())
    assert any("No tasks here yet" in a for a in alerts(at))
    assert not at.exception
