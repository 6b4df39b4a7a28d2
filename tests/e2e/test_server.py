"""The server's own routes against a real ``streamlit run app.py``: callbacks and health.

Live mode against a standalone emulator that signs its callbacks with the deployment's webhook
key and may deliver them to this dashboard's port (and only that). What reaches the provider is
counted at the emulator; what the route writes is read from the dashboard's own ledger file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from bench.common import EmulatorProcess
from studio.ledger import Ledger, TaskQuery
from studio.web import token_hash

from .conftest import SETTLED_JS, _stop, free_port, launch

pytestmark = pytest.mark.e2e

KEY = "sk-e2e-server-0123456789"
HMAC_KEY = "whsec-e2e-0123456789abcdef"
TASK = "0123456789abcdef0123456789abcdef"


def settle(page: Any) -> None:
    page.wait_for_function(SETTLED_JS, timeout=60_000)


def signed(task_id: str, key: str = HMAC_KEY, stamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    digest = hmac.new(key.encode(), f"{task_id}.{stamp}".encode(), hashlib.sha256).digest()
    return {"X-Webhook-Timestamp": str(stamp), "X-Webhook-Signature": base64.b64encode(digest).decode()}


def body(task_id: str) -> dict[str, Any]:
    return {"code": 200, "msg": "Modify record generated successfully.",
            "data": {"taskId": task_id, "promptJson": "{}", "resultUrls": ["https://r/x.mp4"]}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The emulator (signing callbacks) and a live dashboard that receives them on its own port."""
    tmp = tmp_path_factory.mktemp("server")
    port = free_port()
    emulator = EmulatorProcess("--processing-delay", "6", "--sample-size", "160x90", "--sample-seconds", "1",
                               "--sign-callbacks", "--allow-host", f"127.0.0.1:{port}", data_dir=tmp / "provider",
                               env={"LUMA_EMULATOR_SIGNING_KEY": HMAC_KEY})
    home = tmp / "dashboard"
    secrets = f'[callbacks]\npublic_url = "http://127.0.0.1:{port}"\nhmac_key = "{HMAC_KEY}"\n'
    env = {"LUMA_API_KEY": KEY, "LUMA_API_BASE": emulator.url, "LUMA_UPLOAD_BASE": emulator.url}
    process, url, log = launch(home, secrets=secrets, env=env, port=port)
    ledger = Ledger(f"sqlite:///{home / 'data' / 'ledger.sqlite'}")
    try:
        yield {"url": url, "emulator": emulator, "ledger": ledger, "log": log}
    finally:
        ledger.close()
        _stop(process)
        emulator.close()


def rows(ledger: Ledger) -> list[Any]:
    return list(ledger.query(TaskQuery(mode="live", limit=1000)).rows)


def test_a_signed_callback_turns_a_task_final_with_one_status_read(server: dict[str, Any], browser: Any) -> None:
    emulator: EmulatorProcess = server["emulator"]
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(server["url"])
        settle(page)
        page.locator(".st-key-submit_source").get_by_role("radio", name="Public URL").click()
        settle(page)
        field = page.locator(".st-key-submit_video_url input")
        field.fill(f"{emulator.url}/files/samples/rolling-hills.mp4")
        field.press("Enter")
        box = page.locator(".st-key-submit_prompt textarea")
        box.fill("make it a snowy night")
        box.press("Tab")
        expect(page.get_by_text("The video passed every check.")).to_be_visible(timeout=60_000)
        # The options are drawn when opened; they say where results will come from.
        page.get_by_text("Options: callback URL and watermark").click()
        settle(page)
        expect(page.get_by_text("receives the provider's callbacks itself", exact=False)).to_be_attached()
        settle(page)
        reads_before = emulator.stats()["requests"]["reads"]
        page.locator(".st-key-submit_button").get_by_role("button", name="Start task").click()
        expect(page.locator(".st-key-submit_result")).to_be_visible(timeout=60_000)
    finally:
        context.close()
    ledger: Ledger = server["ledger"]
    created = [r for r in rows(ledger) if r.prompt == "make it a snowy night"]
    assert len(created) == 1 and created[0].callback_token, "the task carries our callback secret (hashed)"
    assert created[0].callback_url is None, "our callback URL (with its secret) is never shown or exported"
    deadline = time.monotonic() + 60
    row = created[0]
    while row.status is None or not row.status.is_final:
        assert time.monotonic() < deadline, f"the task never turned final: {row}"
        time.sleep(0.1)
        row = ledger.get(task_id=row.task_id)
    assert row.callback_at is not None, "a callback arrived"
    assert row.status.label == "Succeeded"
    # Known within moments of the provider finishing, with one status read: the one the callback asked for.
    assert (row.checked_at - row.completed_at).total_seconds() < 2.0
    time.sleep(1)
    assert emulator.stats()["requests"]["reads"] - reads_before == 1


def test_forged_bad_stale_oversized_and_wrong_method_callbacks_are_refused_with_nothing_written(
    server: dict[str, Any],
) -> None:
    ledger: Ledger = server["ledger"]
    token = "e2e-token-" + "x" * 20
    ledger.begin_create("e2e-refusals", mode="live", prompt="p", video_url="https://v/a.mp4", key_ref="k",
                        callback_token=token_hash(token))
    ledger.settle_create("e2e-refusals", state="created", task_id=TASK)
    endpoint = f"{server['url']}/api/callbacks/luma/{token}"
    with httpx.Client(timeout=5) as http:
        cases = {
            "forged token": http.post(f"{server['url']}/api/callbacks/luma/not-a-token", json=body(TASK), headers=signed(TASK)),
            "bad signature": http.post(endpoint, json=body(TASK), headers=signed(TASK, key="wrong-key")),
            "no signature": http.post(endpoint, json=body(TASK)),
            "stale timestamp": http.post(endpoint, json=body(TASK), headers=signed(TASK, stamp=int(time.time()) - 3600)),
            "another task": http.post(endpoint, json=body("f" * 32), headers=signed("f" * 32)),
            "oversized body": http.post(endpoint, content=b"{" + b" " * 70_000 + b"}", headers=signed(TASK)),
            "wrong method": http.get(endpoint),
        }
    codes = {name: answer.status_code for name, answer in cases.items()}
    assert codes == {"forged token": 401, "bad signature": 403, "no signature": 403, "stale timestamp": 403,
                     "another task": 403, "oversized body": 413, "wrong method": 405}, codes
    assert all(answer.elapsed.total_seconds() < 1.0 for answer in cases.values())
    row = ledger.get(task_id=TASK)
    assert row.callback_at is None, "nothing was written"
    # The real one is accepted; delivered again, it is accepted again and changes nothing more.
    with httpx.Client(timeout=5) as http:
        first = http.post(endpoint, json=body(TASK), headers=signed(TASK))
        once = ledger.get(task_id=TASK)
        again = http.post(endpoint, json=body(TASK), headers=signed(TASK))
    assert first.status_code == again.status_code == 200
    assert once.callback_at is not None
    twice = ledger.get(task_id=TASK)
    assert (twice.status, twice.result_urls) == (once.status, once.result_urls)


def test_a_hundred_concurrent_callbacks_are_all_handled(server: dict[str, Any]) -> None:
    ledger: Ledger = server["ledger"]
    tokens = {}
    for n in range(100):
        task_id = f"{n + 1:032x}"
        token = f"e2e-many-{n:03d}-" + "y" * 16
        tokens[task_id] = token
        ledger.begin_create(f"e2e-many-{n}", mode="live", prompt="p", video_url="https://v/a.mp4", key_ref="k",
                            callback_token=token_hash(token))
        ledger.settle_create(f"e2e-many-{n}", state="created", task_id=task_id)

    def deliver(item: tuple[str, str]) -> int:
        task_id, token = item
        with httpx.Client(timeout=10) as http:
            return http.post(f"{server['url']}/api/callbacks/luma/{token}", json=body(task_id),
                             headers=signed(task_id)).status_code

    with ThreadPoolExecutor(100) as pool:
        codes = list(pool.map(deliver, tokens.items()))
    assert codes == [200] * 100
    assert all(ledger.get(task_id=t).callback_at is not None for t in tokens), "none lost"


def test_health_answers_with_no_secret_and_no_task_data(server: dict[str, Any]) -> None:
    answer = httpx.get(f"{server['url']}/api/health", timeout=5)
    assert answer.status_code == 200
    report = answer.json()
    assert report["status"] == "healthy" and report["mode"] == "live"
    assert report["ledger"]["reachable"] is True and report["tracker"]["running"] is True
    assert report["callbacks"]["enabled"] is True and report["callbacks"]["received"] >= 1
    text = answer.text
    assert KEY not in text and HMAC_KEY not in text and TASK not in text
    headers = answer.headers
    assert headers["x-content-type-options"] == "nosniff" and "frame-ancestors" in headers["content-security-policy"]


def test_health_is_503_when_the_ledger_is_unreachable(tmp_path: Path) -> None:
    env = {"LUMA_DATABASE_URL": "postgresql+psycopg://luma:pw@127.0.0.1:1/none"}
    process, url, _log = launch(tmp_path / "broken", env=env)
    try:
        answer = httpx.get(f"{url}/api/health", timeout=10)
        assert answer.status_code == 503
        assert answer.json()["ledger"]["reachable"] is False
        assert "pw@" not in answer.text
    finally:
        _stop(process)
