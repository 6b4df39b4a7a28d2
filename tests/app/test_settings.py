"""The Settings page: a session-only key that is never shown back, addresses, refresh bounds, test."""

from __future__ import annotations

from pages._support import runtime

from .conftest import alerts, envelope, make_app, page_text

KEY = "sk-session-NEVER-SHOWN-424242"


def settings_app(secrets=None):
    at = make_app(secrets).run()
    at.switch_page("pages/settings.py").run()
    assert not at.exception
    return at


def test_key_is_used_for_the_session_and_never_shown_back(seam, live_backend):
    seam(backend=live_backend.transport())
    at = settings_app()
    at.text_input(key="settings_api_key").set_value(KEY)
    at.button(key="settings_save_key").click().run()
    assert not at.exception
    assert any("A key is set for this session" in a for a in alerts(at))
    assert at.session_state["settings_api_key"] == "", "the field is cleared at once"
    text = page_text(at)
    assert KEY not in text, "never rendered, not even masked in a widget value"
    assert "Live" in text and "your key for this session" in text
    assert KEY not in str(at.query_params)
    # The key stays hidden on every page.
    at.switch_page("pages/jobs.py").run()
    assert KEY not in page_text(at)
    at.switch_page("pages/settings.py").run()
    assert KEY not in page_text(at)
    with_key = [w for w in at.text_input if w.key == "settings_api_key"]
    assert not with_key, "no key field while a key is set"


def test_forget_returns_to_demo():
    at = settings_app()
    at.text_input(key="settings_api_key").set_value(KEY)
    at.button(key="settings_save_key").click().run()
    at.button(key="settings_forget_key").click().run()
    assert not at.exception
    assert runtime.SESSION_API_KEY not in at.session_state
    assert "Demo mode" in page_text(at)


def test_blank_or_odd_keys_are_refused():
    at = settings_app()
    at.button(key="settings_save_key").click().run()
    assert any("Paste a key first" in a for a in alerts(at))
    at.text_input(key="settings_api_key").set_value("has space inside")
    at.button(key="settings_save_key").click().run()
    assert any("does not look like an API key" in a for a in alerts(at))
    assert runtime.SESSION_API_KEY not in at.session_state


def test_test_connection_reports_credits_or_the_error(seam):
    traffic = seam()
    at = settings_app()
    at.button(key="settings_test").click().run()
    assert any("Connected to the built-in emulator. 100,000 credits left." in a for a in alerts(at))
    traffic.routes[("GET", "/api/v1/chat/credit")] = envelope(401)
    at.button(key="settings_test").click().run()
    assert not at.exception
    assert "The API key was not accepted (401)" in [e.proto.title for e in at.error]


def test_base_urls_are_validated_and_saved():
    at = settings_app()
    at.text_input(key="settings_api_base").set_value("ftp://nope")
    at.button(key="settings_save_bases").click().run()
    assert any("must be an http(s) address" in a for a in alerts(at))
    assert runtime.API_BASE_OVERRIDE not in at.session_state
    at.text_input(key="settings_api_base").set_value("https://api.example.org/")
    at.button(key="settings_save_bases").click().run()
    assert at.session_state[runtime.API_BASE_OVERRIDE] == "https://api.example.org"
    at.button(key="settings_reset_bases").click().run()
    assert runtime.API_BASE_OVERRIDE not in at.session_state


def test_settings_say_how_tasks_are_tracked_and_that_the_deployment_sets_it():
    at = make_app({"refresh": {"min_seconds": 5, "max_seconds": 20}}).run()
    at.switch_page("pages/settings.py").run()
    text = " ".join(c.value for c in at.caption)
    assert "first 5 s after it starts" in text and "at least every 20 s" in text
    assert "Tracker running" in text


def test_configured_key_can_be_set_aside_for_demo(seam, live_backend):
    seam(backend=live_backend.transport())
    at = settings_app({"luma": {"api_key": "sk-configured-000000"}})
    assert "Live" in page_text(at)
    at.toggle(key="settings_force_demo").set_value(True).run()
    assert "Demo mode" in page_text(at)
    assert "sk-configured-000000" not in page_text(at)
