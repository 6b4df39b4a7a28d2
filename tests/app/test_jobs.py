"""The Jobs page: refresh to final and stop, failures keep tasks, import, remove, export, URL restore."""

from __future__ import annotations

import csv
import io
import json
import time

import httpx

from luma.models import TaskStatus
from pages._support import runtime, tasks

from .conftest import alerts, envelope, make_app, page_text

FAST_REFRESH = {"refresh": {"min_seconds": 0.5, "max_seconds": 30}}
RECORD = ("GET", "/api/v1/modify/record-info")
UNKNOWN_ID = "0123456789abcdef0123456789abcdef"


def submitted_app(secrets=None, prompt="make it a snowy night"):
    """An app that has created one task on the Submit page and switched to Jobs."""
    at = make_app({**FAST_REFRESH, **(secrets or {})}).run()
    at.text_area(key="submit_prompt").set_value(prompt)
    at.button(key="submit_button").click().run()
    task_id = at.session_state[runtime.SUBMIT_REQUEST].task_id
    at.switch_page("pages/jobs.py").run()
    assert not at.exception
    return at, task_id


def select(at, row: int = 0):
    at.session_state["jobs_table"] = {"selection": {"rows": [row], "columns": [], "cells": []}}
    return at.run()


def statuses(at) -> list[str]:
    return list(at.dataframe[0].value["status"])


def wait_until_final(at, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.6)
        at.run()
        if at.session_state["jobs_refresh_every"] is None:
            return at
    raise AssertionError(f"tasks never became final: {statuses(at)}")


def test_refresh_takes_tasks_to_final_and_stops():
    at, task_id = submitted_app()
    assert statuses(at) == ["Generating"]
    assert at.session_state["jobs_refresh_every"] == 0.5, "fast while young"
    assert any("refresh automatically" in c.value for c in at.caption)
    wait_until_final(at)
    assert statuses(at) == ["Succeeded"]
    frame = at.dataframe[0].value
    assert frame.loc[0, "result"].endswith(".mp4") and frame.loc[0, "prompt"] == "make it a snowy night"
    assert any("automatic refresh has stopped" in c.value for c in at.caption)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Succeeded"] == "1" and metrics["Generating"] == "0"
    # Once final, reruns read nothing more.
    item = at.session_state[runtime.TASKS][task_id]
    at.run()
    assert at.session_state[runtime.TASKS][task_id].checked_at == item.checked_at


def test_refresh_now_reads_at_once():
    at, _ = submitted_app()
    time.sleep(0.7)
    at.button(key="jobs_refresh_now").click().run()
    assert statuses(at) == ["Succeeded"]


def test_a_failed_read_keeps_the_task_and_its_last_status(seam):
    traffic = seam()
    at, task_id = submitted_app()
    traffic.routes[RECORD] = envelope(500)
    time.sleep(0.7)
    at.button(key="jobs_refresh_now").click().run()
    assert not at.exception
    assert statuses(at) == ["Generating"], "last known status kept"
    assert list(at.dataframe[0].value["task_id"]) == [task_id]
    banner = [w for w in at.warning if w.proto.title == "The provider is not answering"]
    assert banner and "Every task is kept" in banner[0].value
    assert "Last refresh failed" in at.dataframe[0].value.loc[0, "error"]
    # The provider recovers: the task goes on to final.
    del traffic.routes[RECORD]
    wait_until_final(at)
    assert statuses(at) == ["Succeeded"]
    assert not [w for w in at.warning if w.proto.title == "The provider is not answering"]


def test_one_failing_task_is_marked_and_the_others_refresh():
    at, task_id = submitted_app()
    at.text_area(key="jobs_import_text").set_value(UNKNOWN_ID)
    at.button(key="jobs_import_button").click().run()
    wait_until_final(at)  # the unknown id stops polling (404 cannot fix itself); the real one ends
    frame = at.dataframe[0].value.set_index("task_id")
    assert frame.loc[task_id, "status"] == "Succeeded"
    assert frame.loc[UNKNOWN_ID, "status"] == tasks.NOT_READ_LABEL
    assert "does not know this task" in frame.loc[UNKNOWN_ID, "error"]
    assert any("could not be refreshed" in a for a in alerts(at))
    assert any("paused" in c.value for c in at.caption)


def test_import_adds_valid_ids_and_reports_invalid_and_duplicates():
    at, task_id = submitted_app()
    text = f"{UNKNOWN_ID}\nnot-an-id\n{task_id}\n{UNKNOWN_ID.upper()}"
    at.text_area(key="jobs_import_text").set_value(text)
    at.button(key="jobs_import_button").click().run()
    assert not at.exception
    assert list(at.session_state[runtime.TASKS]) == [task_id, UNKNOWN_ID]
    shown = alerts(at)
    assert any("Added 1 task(s)." in a for a in shown)
    assert any("Already on the list" in a and task_id in a for a in shown)
    assert any("not-an-id" in a and "32 characters" in a for a in shown)
    assert at.text_area(key="jobs_import_text").value == "not-an-id", "invalid ones stay to be fixed"
    assert at.session_state[runtime.TASKS][UNKNOWN_ID].source == "imported"


def test_remove_takes_a_task_off_the_list_and_the_url():
    at, task_id = submitted_app()
    select(at, 0)
    assert at.get_by_key("jobs_details") is not None
    at.button(key="jobs_remove").click().run()
    assert not at.exception
    assert runtime.TASKS in at.session_state and not at.session_state[runtime.TASKS]
    assert "tasks" not in at.query_params
    assert any("No tasks yet" in a for a in alerts(at))


def test_details_show_players_request_download_and_run_again():
    at, task_id = submitted_app()
    wait_until_final(at)
    select(at, 0)
    assert not at.exception
    assert len(at.get("video")) == 2, "input and result players"
    assert at.get("video")[0].proto.url.startswith("/mock/media"), "demo mode sends bytes, not emulator URLs"
    assert any(c.value == task_id for c in at.code)
    assert at.get("table"), "the echoed request"
    shown = str(at.get("table")[0].proto)
    assert "luma-emulator.local" not in shown, "demo file URLs would be dead links in the browser"
    assert ".mp4" in shown, "the input is named by its file"
    assert at.get_by_key("jobs_download") is not None
    at.button(key="jobs_run_again").click().run()
    assert not at.exception
    assert at.text_area(key="submit_prompt").value == "make it a snowy night", "Submit is pre-filled"
    assert at.session_state[runtime.SUBMIT_REQUEST] is None, "a deliberate re-run is a new submission"


def test_failed_task_shows_meaning_and_next_step():
    at, _ = submitted_app({"demo": {"failure_rate": 1.0, "processing_delay": 0.5}})
    wait_until_final(at)
    assert statuses(at) == [TaskStatus.GENERATE_FAILED.label]
    select(at, 0)
    failure = [e for e in at.error if e.proto.title == TaskStatus.GENERATE_FAILED.label]
    assert failure and "Next step" in failure[0].value and "501" in failure[0].value


def test_filter_by_status():
    at, _ = submitted_app()
    at.text_area(key="jobs_import_text").set_value(UNKNOWN_ID)
    at.button(key="jobs_import_button").click().run()
    wait_until_final(at)
    at.pills(key="jobs_status_filter").set_value(["Succeeded"]).run()
    assert statuses(at) == ["Succeeded"]
    at.pills(key="jobs_status_filter").set_value([]).run()
    assert len(statuses(at)) == 2


def test_query_params_restore_the_list_with_details():
    first, task_id = submitted_app()
    wait_until_final(first)
    at = make_app(FAST_REFRESH)
    at.query_params["tasks"] = f"{task_id},garbage"
    at.run()
    assert list(at.session_state[runtime.TASKS]) == [task_id]
    at.switch_page("pages/jobs.py").run()
    assert not at.exception
    frame = at.dataframe[0].value
    assert frame.loc[0, "status"] == "Succeeded"
    assert frame.loc[0, "prompt"] == "make it a snowy night", "the provider's echo restores the details"


def test_exports_are_built_on_click_only_and_hold_the_list_never_the_key(seam, live_backend, monkeypatch):
    key = "sk-live-EXPORT-secret-987654"
    seam(backend=live_backend.transport())
    built: list[str] = []
    real_csv, real_json = tasks.export_csv, tasks.export_json
    monkeypatch.setattr(tasks, "export_csv", lambda items: built.append("csv") or real_csv(items))
    monkeypatch.setattr(tasks, "export_json", lambda items: built.append("json") or real_json(items))
    at = make_app({**FAST_REFRESH, "luma": {"api_key": key}}).run()
    at.segmented_control(key="submit_source").set_value("url").run()
    sample = live_backend.samples()[0].url
    at.text_input(key="submit_video_url").set_value(sample)
    at.text_area(key="submit_prompt").set_value("make it golden hour")
    at.button(key="submit_button").click().run()
    task_id = at.session_state[runtime.SUBMIT_REQUEST].task_id
    at.switch_page("pages/jobs.py").run()
    at.run()
    assert not at.exception
    for name in ("jobs_export_csv", "jobs_export_json"):
        button = at.get_by_key(name)
        assert button is not None and button.proto.HasField("deferred_file_id"), "built when clicked"
    assert built == [], "no export is built on a rerun"
    items = list(at.session_state[runtime.TASKS].values())
    rows = list(csv.DictReader(io.StringIO(tasks.export_csv(items).decode())))
    assert rows[0]["task_id"] == task_id and rows[0]["prompt"] == "make it golden hour"
    data = json.loads(tasks.export_json(items))
    assert data["tasks"][0]["video_url"] == sample
    for blob in (tasks.export_csv(items), tasks.export_json(items)):
        assert key.encode() not in blob
    assert key not in page_text(at) and key not in str(at.query_params)


def test_live_mode_download_link_and_provider_urls(seam, live_backend):
    key = "sk-live-LINK-secret-123456"
    traffic = seam(backend=live_backend.transport())
    at = make_app({**FAST_REFRESH, "luma": {"api_key": key}}).run()
    at.segmented_control(key="submit_source").set_value("url").run()
    at.text_input(key="submit_video_url").set_value(live_backend.samples()[0].url)
    at.text_area(key="submit_prompt").set_value("make it golden hour")
    at.button(key="submit_button").click().run()
    at.switch_page("pages/jobs.py").run()
    wait_until_final(at)
    select(at, 0)
    videos = at.get("video")
    assert videos and videos[-1].proto.url.startswith("https://tempfile.example.com/"), "live: the provider URL"
    at.button(key="jobs_download_link").click().run()
    assert not at.exception
    assert "/api/v1/common/download-url" in traffic.paths("POST")
    assert at.link_button and "20 minutes" in " ".join(c.value for c in at.caption)


def test_empty_list_points_to_submit():
    at = make_app().run()
    at.switch_page("pages/jobs.py").run()
    assert any("No tasks yet" in a for a in alerts(at))
    assert at.session_state["jobs_refresh_every"] is None


def test_outage_on_every_read_is_a_banner_not_a_crash(seam):
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("down", request=request)

    traffic = seam()
    at, task_id = submitted_app()
    traffic.routes[RECORD] = down
    at.text_area(key="jobs_import_text").set_value(UNKNOWN_ID)
    at.button(key="jobs_import_button").click().run()
    time.sleep(0.7)
    at.button(key="jobs_refresh_now").click().run()
    assert not at.exception
    assert list(at.session_state[runtime.TASKS]) == [task_id, UNKNOWN_ID], "nothing dropped"
    assert [w for w in at.warning if w.proto.title == "The provider is not answering"]


def test_import_into_an_empty_list_reports_what_happened():
    at = make_app(FAST_REFRESH).run()
    at.switch_page("pages/jobs.py").run()
    at.text_area(key="jobs_import_text").set_value(f"{UNKNOWN_ID}\nnope")
    at.button(key="jobs_import_button").click().run()
    assert not at.exception
    shown = alerts(at)
    assert any("Added 1 task(s)." in a for a in shown)
    assert any("nope" in a for a in shown)
