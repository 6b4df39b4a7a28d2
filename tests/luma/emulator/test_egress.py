"""The emulator fetches and calls back public addresses only, as the provider does.

Every connection the guard allows lands on the loopback test site of ``fake_net``, and the
recording connector lists the addresses dialled: a refused address must never appear there.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from luma import CreateLimiter, LumaClient, TaskStatus
from luma._constants import DEFAULT_API_BASE, DEFAULT_UPLOAD_BASE, PATH_CREATE, PATH_UPLOAD_URL
from luma.egress import EgressPolicy, GuardedTransports
from luma.emulator import Emulator, EmulatorConfig
from luma.emulator.__main__ import build_parser, config_from_args
from luma.emulator.delivery import REFUSED, CallbackSender, success_body
from luma.preflight import Outcome, check_url_over

from ..conftest import PRIVATE_NAMES, PRIVATE_SPELLINGS, PUBLIC_IP, UNPARSEABLE_SPELLINGS, FakeNet, Page

REFUSED_VIDEO = "videoUrl points to a private or local network address; the service only fetches public addresses"
REFUSED_FILE = "fileUrl points to a private or local network address; the service only fetches public addresses"
PRIVATE_URLS = [
    *(f"http://{host}/v/clip.mp4" for host in PRIVATE_SPELLINGS + UNPARSEABLE_SPELLINGS),
    *(f"https://{name}/v/clip.mp4" for name in PRIVATE_NAMES),
]


def post(emulator: Emulator, base: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A raw request through the in-process transport (the client would refuse some URLs itself)."""
    with httpx.Client(transport=emulator.transport()) as http:
        answer = http.post(base + path, json=body, headers={"Authorization": "Bearer demo"})
    return answer.json()  # type: ignore[no-any-return]


def create(emulator: Emulator, video_url: str, **extra: str) -> dict[str, Any]:
    return post(emulator, DEFAULT_API_BASE, PATH_CREATE, {"prompt": "make it snow", "videoUrl": video_url, **extra})


def _client(emulator: Emulator) -> LumaClient:
    return LumaClient("demo", transport=emulator.transport(), create_limiter=CreateLimiter(1000, 1.0))


# --- fetching videoUrl and fileUrl -----------------------------------------------------------------


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_create_refuses_private_video_urls_without_dialling(
    make_emulator: Callable[..., Emulator], fake_net: FakeNet, url: str
) -> None:
    emulator = make_emulator(fetch_transport=fake_net.transport())
    answer = create(emulator, url)
    assert (answer["code"], answer["msg"]) == (422, REFUSED_VIDEO)
    assert fake_net.recorder.attempts == [] and fake_net.seen == []
    assert emulator.create_count() == 0 and emulator.credits_left("demo") == 1000


@pytest.mark.parametrize("url", ["http://127.1/v.mp4", "http://meta.test/latest/", "http://[::ffff:a9fe:a9fe]/"])
def test_redirect_from_a_public_host_to_a_private_one_is_refused_the_same_way(
    make_emulator: Callable[..., Emulator], fake_net: FakeNet, url: str
) -> None:
    fake_net.pages["/v/clip.mp4"] = Page(status=302, location=url)
    emulator = make_emulator(fetch_transport=fake_net.transport())
    answer = create(emulator, "http://public.test/v/clip.mp4")
    # The same words as a refusal up front: the answer does not tell that public.test answered.
    assert (answer["code"], answer["msg"]) == (422, REFUSED_VIDEO)
    assert fake_net.recorder.addresses == [PUBLIC_IP]
    assert emulator.create_count() == 0


def test_redirect_hop_is_checked_even_through_an_unguarded_transport(
    make_emulator: Callable[..., Emulator],
) -> None:
    hosts: list[str] = []

    def internet(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return httpx.Response(302, headers={"Location": "http://0x7f.0.0.1/admin"})

    emulator = make_emulator(fetch_transport=httpx.MockTransport(internet))
    assert create(emulator, "https://videos.example.com/v.mp4")["msg"] == REFUSED_VIDEO
    assert hosts == ["videos.example.com"]


def test_public_video_is_fetched_through_the_guard(
    make_emulator: Callable[..., Emulator], fake_net: FakeNet, sample_mp4: Path
) -> None:
    fake_net.pages["/v/clip.mp4"] = Page(sample_mp4.read_bytes(), "video/mp4")
    emulator = make_emulator(fetch_transport=fake_net.transport())
    answer = create(emulator, "http://public.test/v/clip.mp4")
    assert answer["code"] == 200, answer
    assert fake_net.recorder.addresses == [PUBLIC_IP]


@pytest.mark.parametrize("url", ["http://10.1/v.mp4", "http://0177.0.0.1/v.mp4", "http://internal.test/v.mp4"])
def test_url_upload_refuses_private_file_urls(make_emulator: Callable[..., Emulator], fake_net: FakeNet,
                                              url: str) -> None:
    emulator = make_emulator(fetch_transport=fake_net.transport())
    answer = post(emulator, DEFAULT_UPLOAD_BASE, PATH_UPLOAD_URL, {"fileUrl": url, "uploadPath": "t"})
    assert (answer["code"], answer["msg"], answer["success"]) == (400, REFUSED_FILE, False)
    assert fake_net.recorder.attempts == []


def test_default_fetch_is_guarded_and_allow_hosts_opens_it(
    make_emulator: Callable[..., Emulator], fake_net: FakeNet, sample_mp4: Path
) -> None:
    """No injected transport: the emulator's own guarded one, built from the config."""
    fake_net.pages["/v/clip.mp4"] = Page(sample_mp4.read_bytes(), "video/mp4")
    url = f"http://127.0.0.1:{fake_net.port}/v/clip.mp4"
    guarded = make_emulator(fetch_transport=None)
    assert create(guarded, url)["msg"] == REFUSED_VIDEO
    assert fake_net.seen == []  # a live server on loopback, and it heard nothing

    allowed = make_emulator(fetch_transport=None, allow_hosts=("127.0.0.1",))
    assert create(allowed, url)["code"] == 200
    assert [(method, path) for method, _, path in fake_net.seen] == [("GET", "/v/clip.mp4")]


# --- callbacks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [u.replace("/v/clip.mp4", "/hook") for u in PRIVATE_URLS])
def test_callbacks_to_private_addresses_are_refused_once_and_not_retried(fake_net: FakeNet, url: str) -> None:
    pauses: list[float] = []
    sender = CallbackSender(fake_net.transport(), egress=fake_net.policy(), sleep=pauses.append)
    outcome = sender.send(url, success_body("a" * 32, "{}", ["https://x/r.mp4"]))
    sender.close()
    assert (outcome.delivered, outcome.attempts, outcome.detail) == (False, 1, REFUSED)
    assert pauses == [] and fake_net.recorder.attempts == []


@pytest.mark.parametrize("hook", ["http://loop.test/hook", "http://[::ffff:7f00:1]/hook", "http://2130706433/hook"])
def test_successful_task_with_a_private_callback_ends_callback_failed(
    make_emulator: Callable[..., Emulator], fake_net: FakeNet, fake_clock: Any, hook: str
) -> None:
    pauses: list[float] = []
    emulator = make_emulator(callback_transport=fake_net.transport(), sleep=pauses.append)
    client = _client(emulator)
    task_id = create(emulator, emulator.samples()[0].url, callBackUrl=hook)["data"]["taskId"]
    fake_clock.advance(2.0)
    assert emulator.wait_idle(30)
    task = client.get_task(task_id)
    assert task.status is TaskStatus.CALLBACK_FAILED and task.result_url
    assert pauses == [] and fake_net.recorder.attempts == []


def test_default_callbacks_are_guarded_and_allow_hosts_opens_them(
    make_emulator: Callable[..., Emulator], fake_net: FakeNet, fake_clock: Any
) -> None:
    fake_net.pages["/hook"] = Page(b"", "text/plain")
    hook = f"http://127.0.0.1:{fake_net.port}/hook"
    statuses = []
    for allow in ((), ("127.0.0.1",)):
        emulator = make_emulator(callback_transport=None, allow_hosts=allow)
        task_id = _client(emulator).create_task("x", emulator.samples()[0].url, callback_url=hook)
        fake_clock.advance(2.0)
        assert emulator.wait_idle(30)
        statuses.append(_client(emulator).get_task(task_id).status)
    assert statuses == [TaskStatus.CALLBACK_FAILED, TaskStatus.SUCCESS]
    assert [(method, path) for method, _, path in fake_net.seen] == [("POST", "/hook")]  # the allowed one only


# --- the in-process transport: files only for the emulator's own origin --------------------------


def test_files_on_another_host_are_not_answered_in_process(make_emulator: Callable[..., Emulator]) -> None:
    emulator = make_emulator()
    own = emulator.samples()[0].url
    with httpx.Client(transport=emulator.transport()) as http:
        assert http.get(own).status_code == 200
        for other in ("http://169.254.169.254/files/samples/rolling-hills.mp4",
                      "https://cdn.example.com/files/samples/rolling-hills.mp4"):
            with pytest.raises(httpx.ConnectError):
                http.get(other)
        # The provider's API still answers on any host the client is set up with (a path under
        # a prefix gets the provider's 404 envelope, as before).
        key = {"Authorization": "Bearer x"}
        assert http.get("https://proxy.example/api/v1/chat/credit", headers=key).json()["data"] == 1000
        assert http.get("https://proxy.example/kie/api/v1/chat/credit", headers=key).json()["code"] == 404


def test_demo_video_check_refuses_metadata_host_and_passes_real_clips(
    make_emulator: Callable[..., Emulator], fake_net: FakeNet, sample_mp4: Path
) -> None:
    fake_net.pages["/v/clip.mp4"] = Page(sample_mp4.read_bytes(), "video/mp4")
    emulator = make_emulator()
    lent = emulator.transport(network=fake_net.transport())
    local = [emulator.config.public_base]
    metadata = "http://169.254.169.254/files/samples/rolling-hills.mp4"

    assert not check_url_over(metadata, transport=lent, local_origins=local).ok
    # What the dashboard passes today (every host exempt by name): the guard still refuses it.
    with pytest.warns(DeprecationWarning):
        legacy = check_url_over(metadata, transport=lent, allow_private=True)
    reachable = legacy.check("reachable")
    assert reachable is not None and reachable.outcome is Outcome.FAIL
    assert "link-local" in reachable.detail and "does not fetch private" in reachable.detail
    assert fake_net.recorder.attempts == []

    own = check_url_over(emulator.samples()[0].url, transport=lent, local_origins=local)
    assert own.ok and not own.warnings
    public = check_url_over("http://public.test/v/clip.mp4", transport=lent, local_origins=local)
    assert public.ok and not public.warnings
    assert set(fake_net.recorder.addresses) == {PUBLIC_IP}


def test_async_clients_reach_other_hosts_through_the_same_network(
    make_emulator: Callable[..., Emulator], fake_net: FakeNet
) -> None:
    fake_net.pages["/v/clip.mp4"] = Page(b"remote clip", "video/mp4")
    emulator = make_emulator()
    network = GuardedTransports(fake_net.policy(), connect=fake_net.recorder,
                                connect_async=fake_net.recorder.connect_async)
    lent = emulator.transport(network=network)

    async def get(url: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=lent) as http:
            return await http.get(url)

    assert asyncio.run(get("http://public.test/v/clip.mp4")).content == b"remote clip"
    assert asyncio.run(get(emulator.samples()[0].url)).status_code == 200  # in-process
    with pytest.raises(httpx.ConnectError):
        asyncio.run(get("http://169.254.169.254/files/samples/rolling-hills.mp4"))
    assert fake_net.recorder.addresses == [PUBLIC_IP]


# --- configuration -----------------------------------------------------------------------------------


def test_allow_hosts_is_fixed_at_start_and_never_set_over_http(make_emulator: Callable[..., Emulator]) -> None:
    emulator = make_emulator(allow_hosts=["files.internal"])
    assert emulator.config.allow_hosts == ("files.internal",)
    with pytest.raises(ValueError):
        emulator.configure(allow_hosts=("10.0.0.5",))
    with httpx.Client(transport=emulator.transport()) as http:
        answer = http.post(emulator.config.public_base + "/_emulator/config", json={"allow_hosts": ["10.0.0.5"]})
    assert answer.status_code == 400 and "allow_hosts" in answer.json()["error"]
    assert emulator.config.allow_hosts == ("files.internal",)
    for bad in (("",), ("a b",), ("http://x/",)):
        with pytest.raises(ValueError):
            EmulatorConfig(allow_hosts=bad)


def test_cli_allow_host_is_repeatable() -> None:
    args = build_parser().parse_args(["--allow-host", "127.0.0.1", "--allow-host", "files.internal:8080"])
    config = config_from_args(args, environ={})
    assert config.allow_hosts == ("127.0.0.1", "files.internal:8080")
    assert config.egress() == EgressPolicy(allow_hosts=frozenset({"127.0.0.1", "files.internal:8080"}))
    assert config_from_args(build_parser().parse_args([]), environ={}).allow_hosts == ()
    assert json.dumps(config.allow_hosts)  # shown by GET /_emulator/config
