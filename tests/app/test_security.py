"""The holes an adversarial pass found (issue 8), each pinned at the page level.

Nothing here leaves the machine: live mode runs against a test-owned emulator through the test
seam, and every address the guard must refuse is an IP literal, refused before any connection.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import streamlit as st

from luma.emulator import media
from pages._support import runtime
from pages._support.submission import MAX_PROMPT_CHARS

from .conftest import alerts, creates, make_app, shown

DEPLOYMENT_KEY = "sk-deployment-KEY-0123456789"


def settings_app(secrets=None):
    at = make_app(secrets).run()
    at.switch_page("pages/settings.py").run()
    assert not at.exception
    return at


# --- 1. the deployment's key goes only where the deployment said ------------------------------


def test_the_deployments_key_never_goes_to_an_address_typed_in_a_session(seam, live_backend):
    traffic = seam(backend=live_backend.transport())
    at = settings_app({"luma": {"api_key": DEPLOYMENT_KEY}})
    # The fields are locked, and the page says why.
    assert at.text_input(key="settings_api_base").disabled
    assert any("only sent to" in a for a in alerts(at))
    # A forged widget value (or a stale override) for another host changes nothing.
    at.session_state[runtime.API_BASE_OVERRIDE] = "https://attacker.example"
    at.session_state[runtime.UPLOAD_BASE_OVERRIDE] = "https://attacker.example"
    at.run()
    assert any("is not used" in a for a in alerts(at))
    at.button(key="settings_test").click().run()
    assert not at.exception
    hosts = {r.url.host for r in traffic.seen if "authorization" in r.headers}
    assert hosts and hosts <= {"api.kie.ai", "kieai.redpandaai.co"}, hosts
    assert all(r.url.host != "attacker.example" for r in traffic.seen)


def test_a_deployment_may_allow_more_hosts_for_its_key(seam, live_backend):
    traffic = seam(backend=live_backend.transport())
    at = settings_app({"luma": {"api_key": DEPLOYMENT_KEY, "key_hosts": ["staging.kie.example"]}})
    assert not at.text_input(key="settings_api_base").disabled
    at.text_input(key="settings_api_base").set_value("https://attacker.example")
    at.button(key="settings_save_bases").click().run()
    assert any("may only be sent to" in a for a in alerts(at))
    at.text_input(key="settings_api_base").set_value("https://staging.kie.example")
    at.button(key="settings_save_bases").click().run()
    at.button(key="settings_test").click().run()
    assert "staging.kie.example" in {r.url.host for r in traffic.seen}


def test_with_its_own_key_a_session_may_point_elsewhere_but_not_inside_the_network():
    at = settings_app({"luma": {"api_key": DEPLOYMENT_KEY}})
    at.text_input(key="settings_api_key").set_value("sk-my-own-session-key-123")
    at.button(key="settings_save_key").click().run()
    at.text_input(key="settings_api_base").set_value("http://169.254.169.254")
    at.button(key="settings_save_bases").click().run()
    assert runtime.API_BASE_OVERRIDE in at.session_state
    at.button(key="settings_test").click().run()
    assert not at.exception
    text = " ".join(alerts(at))
    assert "link-local" in text and "only public addresses" in text, text


# --- 2 and 3. the server connects only to public addresses --------------------------------------

METADATA_SPELLINGS = [
    "http://169.254.169.254/files/samples/rolling-hills.mp4",
    "http://169.254.43518/files/samples/rolling-hills.mp4",
    "http://[::a9fe:a9fe]/files/samples/rolling-hills.mp4",
    "http://127.1:2375/files/samples/rolling-hills.mp4",
    "http://0x7f.0.0.1/v.mp4",
    "http://10.1/v.mp4",
    "http://[::7f00:1]/v.mp4",
]


@pytest.mark.parametrize("url", METADATA_SPELLINGS)
def test_demo_video_check_refuses_private_addresses_however_spelled(url, hermetic):
    at = make_app().run()
    at.segmented_control(key="submit_source").set_value("url").run()
    at.text_input(key="submit_video_url").set_value(url).run()
    assert not at.exception
    text = " ".join(shown(m.value) for m in at.markdown)
    assert "Reachable: Fail" in text and ("private" in text or "local" in text or "loopback" in text), text
    at.text_area(key="submit_prompt").set_value("make it night")
    at.button(key="submit_button").click().run()
    assert creates(hermetic) == 0


def test_the_demos_own_sample_still_passes(hermetic):
    at = make_app().run()
    deadline = time.monotonic() + 30
    # A fresh demo draws its sample first (the page shows a placeholder meanwhile).
    while not any("The video passed every check." in a for a in alerts(at)):
        assert time.monotonic() < deadline, alerts(at)
        time.sleep(0.2)
        at.run()


# --- 4. a cache clear from any browser does not rebuild shared state -----------------------------


def test_clearing_streamlits_caches_keeps_the_demo_emulator_and_its_tasks(hermetic):
    at = make_app().run()
    at.text_area(key="submit_prompt").set_value("make it night")
    at.button(key="submit_button").click().run()
    task_id = at.session_state[runtime.SUBMIT_REQUEST].task_id
    before = runtime._PROCESS.get(("probe",), object)  # the registry itself survives
    emulators = [v for k, (v, _) in runtime._PROCESS._items.items() if k[0] == "emulator"]
    # What the websocket "clear_cache" message does, reachable without the password.
    st.cache_data.clear()
    st.cache_resource.clear()
    at.switch_page("pages/jobs.py").run()
    assert not at.exception
    assert runtime._PROCESS.get(("probe",), object) is before
    assert [v for k, (v, _) in runtime._PROCESS._items.items() if k[0] == "emulator"] == emulators
    row = runtime.ledger().get(task_id=task_id)
    assert row is not None
    deadline = time.monotonic() + 20
    while row.status is None or row.read_error:  # the tracker reads it from the same emulator
        assert time.monotonic() < deadline and not row.read_error, row
        time.sleep(0.2)
        row = runtime.ledger().get(task_id=task_id)


# --- 7. a hanging provider costs a page seconds, and says so --------------------------------------


def test_a_hanging_provider_shows_the_outage_banner_within_seconds(hermetic):
    # Every read hangs for a minute; AppTest's own timeout fails the run if the page waits for it.
    at = make_app(demo={"rate_timeout": 1.0, "timeout_seconds": 60.0})
    at.run(timeout=15)
    assert not at.exception
    assert any("The provider is not answering" in a for a in alerts(at))


# --- 8 and 9: outside text as text; exports a spreadsheet will not run -------------------------


def test_a_pasted_link_is_shown_as_text(hermetic):
    at = make_app().run()
    at.switch_page("pages/jobs.py").run()
    at.text_area(key="jobs_import_text").set_value("[x](https://evil.example) https://evil.example")
    at.button(key="jobs_import_button").click().run()
    raw = " ".join(e.value for e in at.error)
    assert "](https" not in raw and "https://" not in raw, "the Markdown is escaped"
    assert "[x](https://evil.example)" in shown(raw).replace("\u2060", "")


# --- 10. what Start sends is exactly what was shown and checked -----------------------------------


def test_an_overlong_prompt_is_refused_with_its_length(hermetic):
    at = make_app().run()
    long_prompt = "make it a night scene " * 120
    at.text_area(key="submit_prompt").set_value(long_prompt).run()
    assert any(f"{len(long_prompt.strip()):,} characters" in e.value for e in at.error)
    at.button(key="submit_button").click().run()
    assert any(f"the limit is {MAX_PROMPT_CHARS:,}" in a for a in alerts(at))
    assert creates(hermetic) == 0


@pytest.mark.parametrize(
    "callback", ["https://example.com/call back", "ftp://example.com/cb", "example.com/cb", "https://"]
)
def test_a_malformed_callback_url_is_refused(callback, hermetic):
    at = make_app().run()
    at.session_state["submit_options"] = True  # the options are drawn only while open
    at.run()
    at.text_input(key="submit_callback_url").set_value(callback)
    at.text_area(key="submit_prompt").set_value("make it night")
    at.button(key="submit_button").click().run()
    assert any("callback URL" in a for a in alerts(at))
    assert creates(hermetic) == 0


def test_a_truncated_file_fails_the_local_check_and_is_not_uploaded(seam, hermetic, tmp_path: Path):
    traffic = seam()
    path = tmp_path / "clip.mp4"
    media.make_sample(media.SAMPLES[0].slug, path, width=64, height=36, seconds=1, fps=4)
    data = path.read_bytes()
    at = make_app().run()
    at.segmented_control(key="submit_source").set_value("upload").run()
    at.file_uploader(key="submit_file").upload("clip.mp4", data[: len(data) * 2 // 3], "video/mp4").run()
    assert not at.exception
    assert "/api/file-stream-upload" not in traffic.paths()
    assert any("damaged or incomplete" in shown(m.value) for m in at.markdown)
    assert creates(hermetic) == 0
