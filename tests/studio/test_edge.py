"""The web edge in front of Streamlit: the browser-id cookie and the /media/ gate."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import HTMLResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from studio.access import BrowserGrants
from studio.edge import BROWSER_COOKIE, EdgeMiddleware, browser_id_from


def make(grants: BrowserGrants, base: str = "") -> TestClient:
    async def page(request):
        return HTMLResponse("<html>app</html>")

    async def media(request):
        return PlainTextResponse("task-id,prompt\n", headers={"Content-Disposition": "attachment"})

    async def health(request):
        return PlainTextResponse("ok")

    prefix = f"/{base}" if base else ""
    inner = Starlette(
        routes=[
            Route(f"{prefix}/", page),
            Route(f"{prefix}/media/{{file}}", media),
            Route(f"{prefix}/_stcore/health", health),
        ]
    )
    return TestClient(EdgeMiddleware(inner, grants=grants, base_path=lambda: base))


def test_the_page_sets_an_http_only_browser_cookie_once():
    client = make(BrowserGrants())
    first = client.get("/")
    cookie = first.headers["set-cookie"]
    assert cookie.startswith(f"{BROWSER_COOKIE}=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie, "plain http on localhost would drop a Secure cookie"
    again = client.get("/")
    assert "set-cookie" not in again.headers, "the browser keeps its id"
    assert "set-cookie" not in make(BrowserGrants()).get("/_stcore/health").headers


def test_behind_tls_the_cookie_is_secure():
    client = make(BrowserGrants())
    cookie = client.get("/", headers={"X-Forwarded-Proto": "https"}).headers["set-cookie"]
    assert "Secure" in cookie


def test_media_only_for_a_browser_with_a_live_session_past_the_gate():
    live = {"session-1"}
    grants = BrowserGrants(is_live=lambda sid: sid in live)
    client = make(grants)
    client.get("/")
    browser = client.cookies[BROWSER_COOKIE]
    assert client.get("/media/abc.csv").status_code == 403, "not past the gate yet"
    grants.grant(browser, "session-1")
    ok = client.get("/media/abc.csv")
    assert ok.status_code == 200 and ok.text.startswith("task-id")
    # Someone holding the URL but not the cookie gets nothing.
    stranger = make(grants)
    assert stranger.get("/media/abc.csv").status_code == 403
    # Nor does the owner once the tab (its session) is closed.
    live.clear()
    assert client.get("/media/abc.csv").status_code == 403


def test_a_base_url_path_is_respected():
    grants = BrowserGrants()
    client = make(grants, base="studio")
    assert client.get("/studio/media/x.csv").status_code == 403


def test_malformed_cookies_are_no_id():
    assert browser_id_from(None) is None
    assert browser_id_from(f"{BROWSER_COOKIE}=short") is None
    assert browser_id_from('a="unterminated') is None
    good = "A" * 32
    assert browser_id_from(f"x=1; {BROWSER_COOKIE}={good}") == good


def test_every_response_carries_the_security_headers():
    client = make(BrowserGrants())
    for path in ("/", "/_stcore/health", "/media/x.csv"):
        headers = client.get(path).headers
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'self' https://*.streamlit.app" in policy and "object-src 'none'" in policy
        assert "strict-transport-security" not in headers, "plain http: no HSTS"
    assert "strict-transport-security" in client.get("/", headers={"X-Forwarded-Proto": "https"}).headers
