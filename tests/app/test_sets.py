"""Variant sets end to end in the demo: one click, every take created once, priced, capped, reviewed.

The dispatcher that sends a set's queued takes is the server's (it runs beside the page in these
tests, as in ``streamlit run``); the emulator's ``creates.jsonl`` counts what was really sent.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from streamlit.runtime.scriptrunner_utils.exceptions import StopException
from streamlit.testing.v1.local_script_runner import LocalScriptRunner

from luma.emulator import media
from pages._support import runtime
from pages._support.set_form import SET_REQUEST
from studio.bundle import zip_bundle
from studio.ledger import TaskQuery

from .conftest import alerts, creates, make_app

PROMPTS = ["make it a snowy winter evening", "turn it into a neon-lit night", "restyle as a watercolour painting"]


def set_form(at: Any, prompts: list[str] = PROMPTS, samples: int = 2) -> Any:
    """Switch Submit to a variant set of these prompts on the first ``samples`` sample clips."""
    at.segmented_control(key="submit_mode").set_value("Variant set").run()
    at.text_area(key="set_prompts").set_value("\n".join(prompts))
    clips = runtime.samples()
    at.multiselect(key="set_samples").set_value([c.slug for c in clips[:samples]])
    return at.run()


def until(predicate: Any, timeout: float = 30.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.1)


def finished_set(at: Any, data_dir: Path) -> str:
    """Start the 3 x 2 set and wait until its six takes have results; returns the set's id."""
    set_form(at)
    at.button(key="set_start_button").click().run()
    set_id = at.session_state[SET_REQUEST].id
    ledger = runtime.ledger()
    until(lambda: all(r.result_url for r in ledger.set_rows(set_id)) and len(ledger.set_rows(set_id)) == 6,
          what="six results")
    return str(set_id)


def test_a_crossed_set_sends_every_take_exactly_once(hermetic):
    at = make_app().run()
    set_form(at)
    assert "**6 task(s)** · 3 prompt(s) x 2 input(s) · **60 credits**" in " ".join(m.value for m in at.markdown)
    at.button(key="set_start_button").click().run()
    # The second click of a double click, and reruns, add nothing: the set is the click's.
    at.session_state[SET_REQUEST].written = False
    at.run()
    at.run()
    assert not at.exception
    set_id = at.session_state[SET_REQUEST].id
    until(lambda: creates(hermetic) >= 6, what="six creates")
    time.sleep(1.5)  # the dispatcher would have sent any duplicate by now
    assert creates(hermetic) == 6
    rows = runtime.ledger().set_rows(set_id)
    assert len(rows) == 6 and len({r.task_id for r in rows}) == 6
    assert sorted((r.prompt_index, r.input_index) for r in rows) == [(p, i) for p in range(3) for i in range(2)]
    assert {r.prompt for r in rows} == set(PROMPTS)
    assert all(r.cost == 10 for r in rows)
    sent = [json.loads(line) for line in (hermetic / "creates.jsonl").read_text().splitlines()]
    assert sorted((s["prompt"], s["videoUrl"]) for s in sent) == sorted((r.prompt, r.video_url) for r in rows)
    assert len(runtime.ledger().sets("demo")) == 1


class Stopper:
    """Raises ``StopException`` at the n-th yield point of a run (a newer run stopping this one)."""

    def __init__(self) -> None:
        self.at: int | None = None
        self.count = 0

    def arm(self, at: int | None) -> None:
        self.at, self.count = at, 0


@pytest.fixture
def stopper(monkeypatch: pytest.MonkeyPatch) -> Stopper:
    stop = Stopper()
    original = LocalScriptRunner._maybe_handle_execution_control_request

    def yield_point(self: Any) -> None:
        if self._execing and threading.current_thread() is self._script_thread:
            stop.count += 1
            if stop.count == stop.at:
                raise StopException()
        original(self)

    monkeypatch.setattr(LocalScriptRunner, "_maybe_handle_execution_control_request", yield_point)
    return stop


def test_a_click_whose_run_is_stopped_anywhere_still_starts_the_set_once(hermetic, stopper):
    """A second click or an edit stops the click's run at its next yield point; whichever it is, the
    next run ends with the set written once and every take sent once."""
    at = make_app(demo={"create_limit": 1_000_000}).run()
    set_form(at, PROMPTS[:1])
    stopper.arm(None)
    at.button(key="set_start_button").click().run()
    points = stopper.count
    assert points > 10 and creates_soon(hermetic, 2) == 2
    sets = 1
    for n in range(1, points + 1, max(1, points // 10)):
        prompt = f"take {n}"
        at = make_app(demo={"create_limit": 1_000_000}).run()
        set_form(at, [prompt])
        stopper.arm(n)
        at.button(key="set_start_button").click().run()
        stopper.arm(None)
        at.run()  # what the browser does next: a rerun
        request = at.session_state.get(SET_REQUEST)
        if request is None or not request.written:
            at.button(key="set_start_button").click().run()  # the click never registered: the user clicks again
        sets += 1
        assert not at.exception, n
        assert creates_soon(hermetic, 2 * sets) == 2 * sets, f"stopped at yield point {n}"
        rows = runtime.ledger().query(TaskQuery(mode="demo", text=prompt, limit=100)).rows
        assert [r.prompt for r in rows] == [prompt] * 2


def creates_soon(data_dir: Path, expected: int) -> int:
    """The emulator's create count once it reaches ``expected`` (or after a pause that any extra
    create would have used to show up)."""
    until(lambda: creates(data_dir) >= expected, what=f"{expected} creates")
    time.sleep(0.3)
    return creates(data_dir)


def test_a_set_over_the_budget_is_refused_whole_with_the_reason(hermetic):
    at = make_app({"budget": {"daily": 50}}).run()
    set_form(at)
    texts = alerts(at)
    assert any("does not fit" in t and "the team's daily budget of 50 has 50 left" in t for t in texts), texts
    assert at.button(key="set_start_button").disabled
    time.sleep(1.0)
    assert creates(hermetic) == 0 and runtime.ledger().sets("demo") == []


def test_the_budget_is_checked_again_when_the_set_is_written(hermetic):
    """Someone else's spend between the preview and the click: refused then, not at the preview."""
    at = make_app({"budget": {"daily": 60}}).run()
    set_form(at)
    assert not [t for t in alerts(at) if "does not fit" in t]
    ledger = runtime.ledger()
    ledger.begin_create("someone-else", mode="demo", prompt="p", video_url="https://example.com/v.mp4",
                        owner="bob", cost=10)
    at.button(key="set_start_button").click().run()
    time.sleep(1.0)
    assert any("the team's daily budget of 60 has 50 left (10 spent)" in t for t in alerts(at)), alerts(at)
    assert creates(hermetic) == 0 and ledger.sets("demo") == []


def test_a_single_task_over_the_budget_is_not_sent(hermetic):
    at = make_app({"budget": {"daily_per_person": 5}}).run()
    at.text_area(key="submit_prompt").set_value("make it snow")
    at.button(key="submit_button").click().run()
    assert creates(hermetic) == 0
    assert any("your daily budget of 5 has 5 left" in t for t in alerts(at)), alerts(at)


def test_the_grid_plays_every_take_and_keeps_marks_in_the_ledger(hermetic):
    at = make_app().run()
    set_id = finished_set(at, hermetic)
    at.switch_page("pages/sets.py").run()
    assert not at.exception
    assert [m.label for m in at.metric][:1] == ["Succeeded"] and at.metric[0].value == "6"
    videos = at.get("video")
    assert len(videos) == 6
    rows = runtime.ledger().set_rows(set_id)
    first = rows[0].task_id
    at.toggle(key=f"take-kept-{first}").set_value(True).run()
    at.multiselect(key=f"take-labels-{first}").set_value(["client", "sunset pick"]).run()
    row = runtime.ledger().get(task_id=first)
    assert row is not None and row.kept and list(row.label_list) == ["client", "sunset pick"]
    at.toggle(key="sets_only_kept").set_value(True).run()
    assert len(at.get("video")) == 1
    # A fresh session (a teammate, a reload) sees the marks: they live in the ledger.
    again = make_app().run()
    again.switch_page("pages/sets.py").run()
    again.toggle(key="sets_everyone").set_value(True).run()
    assert again.toggle(key=f"take-kept-{first}").value is True


def test_a_result_becomes_the_input_of_the_next_set(hermetic):
    at = make_app().run()
    set_id = finished_set(at, hermetic)
    at.switch_page("pages/sets.py").run()
    take = runtime.ledger().set_rows(set_id)[2]
    at.button(key=f"take-compare-{take.task_id}").click().run()
    assert not at.exception
    at.button(key="sets_next_input").click().run()
    assert not at.exception
    assert at.text_input(key="submit_video_url").value == take.result_url
    at.switch_page("pages/submit.py").run()  # AppTest keeps its own idea of the page: align it
    assert at.text_input(key="submit_video_url").value == take.result_url
    at.text_area(key="submit_prompt").set_value("now add falling leaves")
    at.button(key="submit_button").click().run()
    request = at.session_state[runtime.SUBMIT_REQUEST]
    assert request.state == "done", alerts(at)
    assert runtime.ledger().get(task_id=request.task_id).video_url == take.result_url


def test_the_zip_holds_every_result_and_a_manifest_matching_the_ledger(hermetic):
    at = make_app().run()
    set_id = finished_set(at, hermetic)
    service = runtime.studio(runtime.settings())
    rows = service.ledger.set_rows(set_id)
    bundle = zipfile.ZipFile(io.BytesIO(zip_bundle(rows, service.fetch_result)))
    videos = sorted(n for n in bundle.namelist() if n.startswith("videos/"))
    assert len(videos) == 6
    for n, name in enumerate(videos):
        path = hermetic.parent / f"take-{n}.mp4"
        path.write_bytes(bundle.read(name))
        assert media.probe(path).duration > 0
    manifest = list(csv.DictReader(io.StringIO(bundle.read("manifest.csv").decode())))
    assert [m["task_id"] for m in manifest] == [r.task_id for r in rows]
    assert [m["prompt"] for m in manifest] == [r.prompt for r in rows]
    assert [t["task_id"] for t in json.loads(bundle.read("manifest.json"))["tasks"]] == [r.task_id for r in rows]
    assert {m["cost"] for m in manifest} == {"10"} and all(m["included"] == "True" for m in manifest)
