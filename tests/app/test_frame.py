"""dashboard.py: mode badge, credits, the access gate, and routing every page through the frame."""

from __future__ import annotations

import pytest

from pages._support import runtime
from studio.access import THROTTLE

from .conftest import alerts, creates, envelope, make_app, page_text

LIVE_KEY = "sk-live-test-KEY-0123456789"


def credits_shown(at) -> str | None:
    """The balance the sidebar shows ("100,000"), or None when it shows none."""
    for element in at.sidebar.markdown:
        if element.value.endswith("credits left"):
            return element.value.split("**")[1]
    return None


def test_demo_mode_is_the_default_and_says_so(hermetic):
    at = make_app().run()
    assert not at.exception
    sidebar = page_text_of(at.sidebar)
    assert "Demo mode" in sidebar
    assert "built-in emulator" in sidebar
    assert credits_shown(at) == "100,000"
    assert at.text_area(key="submit_prompt") is not None, "the Submit page is the default page"


def test_demo_credits_follow_the_demo_secrets(hermetic):
    """The shared demo account starts large by default; [demo] credits still sets it."""
    at = make_app({"demo": {"credits": 50}}).run()
    assert not at.exception
    assert credits_shown(at) == "50"


def test_live_mode_names_the_host_and_never_shows_the_key(seam, live_backend):
    seam(backend=live_backend.transport())
    at = make_app({"luma": {"api_key": LIVE_KEY}}).run()
    assert not at.exception
    sidebar = page_text_of(at.sidebar).replace("\\", "")  # host names are shown escaped
    assert "Live" in sidebar and "api.kie.ai" in sidebar and "secrets" in sidebar
    assert credits_shown(at) == "1,000"
    assert LIVE_KEY not in page_text(at)
    assert LIVE_KEY not in str(at.query_params)


def test_credits_error_is_shown_in_words(seam):
    seam({("GET", "/api/v1/chat/credit"): envelope(401)})
    at = make_app().run()
    assert not at.exception
    text = page_text_of(at.sidebar)
    assert "Credits unavailable" in text and "API key was not accepted (401)" in text


def test_password_gate_renders_nothing_else_and_calls_nothing(seam, hermetic):
    traffic = seam()
    at = make_app({"access": {"password": "open sesame"}}).run()
    assert not at.exception
    assert at.text_input(key="access_password") is not None
    assert credits_shown(at) is None and "Demo mode" not in page_text(at)
    assert [w.key for w in at.text_area] == [] and not at.dataframe
    assert traffic.seen == [], "no API call before the gate opens"
    assert creates(hermetic) == 0


class Clock:
    """Monotonic seconds that move only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def enter(at, password: str) -> None:
    at.text_input(key="access_password").set_value(password)
    at.button(key="access_submit").click().run()


def test_wrong_password_says_so_and_makes_this_address_wait(seam, monkeypatch):
    traffic = seam()
    clock = Clock()
    monkeypatch.setattr(THROTTLE, "_clock", clock)
    at = make_app({"access": {"password": "open sesame"}}).run()
    enter(at, "guess")
    assert any("Wrong password" in a for a in alerts(at))
    # The right password during the wait is refused without being compared.
    enter(at, "open sesame")
    assert any("Too many wrong passwords" in a for a in alerts(at))
    assert credits_shown(at) is None and traffic.seen == []
    clock.now += 1.01
    enter(at, "open sesame")
    assert at.text_area(key="submit_prompt") is not None


def test_the_wait_holds_across_reloads_and_new_sessions(monkeypatch):
    """A reload is a new session: the wait is kept per client address, not in session state."""
    clock = Clock()
    monkeypatch.setattr(THROTTLE, "_clock", clock)
    first = make_app({"access": {"password": "pw"}}).run()
    for guess in ("a", "b", "c"):
        enter(first, guess)
        clock.now += 60  # past each wait: three real failures in a row
    enter(first, "d")  # the fourth: 8 s to wait
    reloaded = make_app({"access": {"password": "pw"}}).run()
    enter(reloaded, "pw")
    assert any("Too many wrong passwords" in a for a in alerts(reloaded))
    assert not reloaded.text_area
    clock.now += 8.01
    enter(reloaded, "pw")
    assert reloaded.text_area(key="submit_prompt") is not None


def test_the_password_is_not_kept_in_session_state():
    at = make_app({"access": {"password": "open sesame"}}).run()
    enter(at, "open sesame")
    assert not at.exception
    assert all("open sesame" not in repr(at.session_state[k]) for k in at.session_state.keys())  # noqa: SIM118 - not a dict


def test_right_password_opens_the_app():
    at = make_app({"access": {"password": "open sesame"}}).run()
    enter(at, "open sesame")
    assert not at.exception
    assert at.session_state[runtime.ACCESS_GRANTED] is True
    assert at.text_area(key="submit_prompt") is not None
    assert credits_shown(at) == "100,000"
    assert "open sesame" not in page_text(at)


def test_a_deep_link_shows_the_form_not_page_not_found_and_then_that_page(seam):
    traffic = seam()
    at = make_app({"access": {"password": "pw"}})
    at.run()
    # Open /jobs as a browser does: by the page's url path (the gate registered one for it).
    at._page_hash = next(h for h, info in at._registered_pages.items() if info.get("url_pathname") == "jobs")
    at.run()
    assert not at.exception
    assert at.text_input(key="access_password") is not None
    assert "Page not found" not in page_text(at)
    assert traffic.seen == []
    enter(at, "pw")
    assert not at.exception
    assert at.text_area(key="jobs_import_text") is not None, "signed in on the page that was linked"


def test_streamlit_login_gate_when_auth_is_configured(seam):
    traffic = seam()
    auth = {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x" * 32}
    at = make_app({"auth": auth})
    at.user = {"is_logged_in": False}
    at.run()
    assert not at.exception
    assert at.button(key="access_login") is not None
    assert credits_shown(at) is None and traffic.seen == []
    at.user = {"is_logged_in": True, "email": "ada@example.com"}
    at.run()
    assert at.text_area(key="submit_prompt") is not None
    assert at.button(key="access_logout") is not None


@pytest.mark.legacy_pages
def test_deep_link_goes_through_app_py():
    """Streamlit's legacy routing starts pages/jobs.py directly; the guard sends it through app.py."""
    at = make_app().run()
    at.switch_page("pages/jobs.py").run()
    assert not at.exception
    assert "Demo mode" in page_text_of(at.sidebar), "the frame (sidebar) ran"
    assert at.text_area(key="jobs_import_text") is not None, "and then the page that was asked for"


def test_deep_link_waits_for_the_password_then_opens_the_page():
    at = make_app({"access": {"password": "pw"}})
    at.session_state[runtime.DEEP_LINK] = "pages/jobs.py"
    at.run()
    assert at.text_input(key="access_password") is not None
    at.text_input(key="access_password").set_value("pw")
    at.button(key="access_submit").click().run()
    assert not at.exception
    assert at.text_area(key="jobs_import_text") is not None


def page_text_of(block) -> str:
    parts = []

    def walk(node):
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in (getattr(node, "children", None) or {}).values():
            walk(child)

    walk(block)
    return "\n".join(parts)
